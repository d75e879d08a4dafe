#!/usr/bin/env bash
# Benchmark: a burst of 100 results to 10 sensors over SSH, with and without connection reuse.
#
# Ten sensor namespaces NAME-s0..s9, each with its own sshd on 10.98.I.2:22, reached from a
# management namespace NAME-mgt over one veth each. One playbook run renders 100 `tcpreset`
# lines (100 alerts, 100 source addresses, 10 per sensor name) and sends them:
#   routed:    each line only to the sensor its alert names (route_by: host): 10 lines a sensor
#   broadcast: every line to every sensor: 100 lines a sensor, 1,000 in all
# each with `persist: 0s` (one SSH connection per line) and `persist: 10m` (OpenSSH
# ControlMaster: one connection per sensor, reused by the next lines and the next run; "cold" is
# the first run, "warm" the next, while the connections are still up). The remote program is
# /bin/true mapped as `tcpreset` (the line is checked as a `tcpreset` line; the remote client's
# own cost is left out), so the figures are SSH's. Handshakes are counted from sshd's log
# ("Accepted publickey").
#
# Each line is one SSH session, and the remote side runs it through the user's shell: bash sources
# ~/.bashrc for sshd sessions, and root's here runs `pyenv init` (about 0.4 s a session on this
# machine), which would swamp what is measured. So sshd runs in a private mount namespace where
# an empty file is bound over $HOME/.bashrc (BENCH_KEEP_BASHRC=1 keeps it). A deployment's SSH
# user wants a shell that starts fast for the same reason.
#
# Usage: scripts/bench-fleet.sh            (needs root: namespaces)
# Env:   BENCH_RUNS (default 3), BENCH_MODES (default "routed broadcast"), BENCH_TIMEOUT (the
#        playbook's per-sensor timeout, default 900s; lines it cuts off show as fewer "lines"),
#        NAME (default fl-bf),
#        CARGO_TARGET_DIR (default ./target),
#        HUNT_BIN (a tcpreset-hunt binary instead of building one)
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${BENCH_RUNS:-3}
MODES=${BENCH_MODES:-routed broadcast}
TIMEOUT=${BENCH_TIMEOUT:-900s}
NAME=${NAME:-fl-bf}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
SENSORS=10
command -v bc >/dev/null || apt-get install -y bc >/dev/null
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || apt-get install -y openssh-server >/dev/null
if [ -n "${HUNT_BIN:-}" ]; then
  HUNT=$HUNT_BIN
else
  cargo build --release --bin tcpreset-hunt >&2
  HUNT="$TARGET/release/tcpreset-hunt"
fi
DIR=$(mktemp -d /tmp/tcpreset-bench-fleet.XXXXXX)
MGT=$NAME-mgt
SSHD_PIDS=()

cleanup() {
  for pid in "${SSHD_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for ns in "$MGT" $(for i in $(seq 0 $((SENSORS - 1))); do echo "$NAME-s$i"; done); do
    # Session children and ControlPersist masters started here live in these namespaces.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$DIR"
}
trap cleanup EXIT

ip netns add "$MGT"
ip -n "$MGT" link set lo up
: >"$DIR/empty"
ssh-keygen -q -t ed25519 -N "" -f "$DIR/id"
: >"$DIR/known_hosts"
: >"$DIR/sensors.yaml"
mkdir -p /run/sshd
for i in $(seq 0 $((SENSORS - 1))); do
  ns=$NAME-s$i addr=10.98.$i.2
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip link add "m$i" netns "$MGT" type veth peer name mgmt netns "$ns"
  ip -n "$MGT" addr add "10.98.$i.1/24" dev "m$i"
  ip -n "$ns" addr add "$addr/24" dev mgmt
  ip -n "$MGT" link set "m$i" up
  ip -n "$ns" link set mgmt up
  mkdir -p "$DIR/s$i"
  ssh-keygen -q -t ed25519 -N "" -f "$DIR/s$i/host_key"
  cp "$DIR/id.pub" "$DIR/s$i/authorized_keys"
  echo "$addr $(cat "$DIR/s$i/host_key.pub")" >>"$DIR/known_hosts"
  echo "sensor-$i: $addr" >>"$DIR/sensors.yaml"
  cat >"$DIR/s$i/sshd_config" <<EOF
ListenAddress $addr:22
HostKey $DIR/s$i/host_key
AuthorizedKeysFile $DIR/s$i/authorized_keys
PidFile $DIR/s$i/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
EOF
  if [ -f "$HOME/.bashrc" ] && [ -z "${BENCH_KEEP_BASHRC:-}" ]; then
    unshare -m sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' _ "$DIR/empty" "$HOME/.bashrc" \
      ip netns exec "$ns" /usr/sbin/sshd -D -e -f "$DIR/s$i/sshd_config" 2>"$DIR/s$i/sshd.log" &
  else
    ip netns exec "$ns" /usr/sbin/sshd -D -e -f "$DIR/s$i/sshd_config" 2>"$DIR/s$i/sshd.log" &
  fi
  SSHD_PIDS+=($!)
done
for i in $(seq 0 $((SENSORS - 1))); do
  for _ in $(seq 100); do
    ip netns exec "$MGT" ssh -o BatchMode=yes -o ControlPath=none -o UserKnownHostsFile="$DIR/known_hosts" \
      -i "$DIR/id" -l root "10.98.$i.2" true 2>/dev/null && break
    sleep 0.05
  done
done

python3 - "$DIR/eve.json" "$SENSORS" <<'PY'
import datetime, sys
path, sensors = sys.argv[1], int(sys.argv[2])
ts = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000+0000")
with open(path, "w") as out:
    for i in range(100):
        out.write(f'{{"timestamp":"{ts}","event_type":"alert","host":"sensor-{i % sensors}","src_ip":"10.200.0.{i + 1}",'
                  f'"dest_ip":"10.201.0.1","alert":{{"signature_id":2024897,"severity":1}}}}\n')
PY

playbook() { # playbook NAME PERSIST ROUTE
  cat >"$DIR/$1.yaml" <<EOF
name: $1
schedule: {interval_minutes: 5}
source: {paths: [eve.json]}
query: {field: event_type, is: alert}
calculations: [{name: by_sensor, type: top, field: host, size: 10, subgroups: [{name: by_src, type: top, field: srcip, size: 100}]}]
conditions: [{name: any, type: compare_value, operator: greater, value: 0}]
actions:
  - name: reset
    trigger: any
    for_each: by_src
    run_script:
      target: {ssh: {inventory: sensors.yaml, user: root, identity_file: $DIR/id, known_hosts_file: $DIR/known_hosts, parallel: 10, persist: $2}}
      timeout: ${TIMEOUT}
$3      commands: {tcpreset: /bin/true}
      script: "tcpreset 2024897 -i eth1 -o eth0 -h {{srcip}} -d 60"
EOF
}

handshakes() { cat "$DIR"/s*/sshd.log | grep -c "Accepted publickey" || true; }

stop_masters() { for pid in $(ip netns pids "$MGT"); do kill "$pid" 2>/dev/null || true; done; sleep 0.2; }

run_once() { # run_once PLAYBOOK -> "seconds lines handshakes"
  local before after start end lines
  before=$(handshakes)
  start=$(date +%s.%N)
  # A run that is not all ok still counts: its "lines" say how many ran.
  ip netns exec "$MGT" "$HUNT" run "$DIR/$1.yaml" --json >"$DIR/out.json" || true
  end=$(date +%s.%N)
  lines=$(python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["actions"][0]; print(sum(sum(1 for l in h["output"] if "-> ok" in l) for h in a["hosts"]))' "$DIR/out.json")
  after=$(handshakes)
  echo "$(echo "$end - $start" | bc) $lines $((after - before))"
}

echo "machine: $(nproc) cores, load before: $(cut -d' ' -f1-3 /proc/loadavg); OpenSSH: $(ssh -V 2>&1)"
printf "%-10s %-22s %8s %8s %11s\n" mode reuse seconds lines handshakes
for route in $MODES; do
  r=""; [ $route = routed ] && r="      route_by: host"$'\n'
  playbook "$route-noreuse" 0s "$r"
  playbook "$route-reuse" 10m "$r"
  for n in $(seq "$RUNS"); do
    read -r s l h < <(run_once "$route-noreuse")
    printf "%-10s %-22s %8.2f %8d %11d\n" $route "none (persist: 0s)" "$s" "$l" "$h"
    stop_masters
    read -r s l h < <(run_once "$route-reuse")
    printf "%-10s %-22s %8.2f %8d %11d\n" $route "cold (persist: 10m)" "$s" "$l" "$h"
    read -r s l h < <(run_once "$route-reuse")
    printf "%-10s %-22s %8.2f %8d %11d\n" $route "warm (next run)" "$s" "$l" "$h"
    stop_masters
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
