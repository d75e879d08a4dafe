#!/usr/bin/env bash
# Real-time hunting benchmark (prints figures; not a test): the time from writing one Suricata
# alert line to eve.json until both ends of a live chat connection of the alerted host saw the
# reset, through `tcpreset-hunt schedule` following a real-time playbook in the lab's sensor,
# `tcpresetd` there, and Run Script over SSH to 127.0.0.1 (sshd in the sensor, as the
# documentation deploys it) or run locally.
#
#   scripts/bench-realtime.sh [-n TRIALS] [-t "ssh ssh-reuse local"] [-r RECORDS_PER_SECOND] [-a]
#
# Targets: `ssh` makes one SSH connection per line (`persist: 0s`), `ssh-reuse` keeps it for the
# next lines (`persist: 10m`, OpenSSH ControlMaster: only the first trial pays the handshake),
# `local` runs `tcpreset` in the sensor without SSH. As in scripts/bench-fleet.sh, sshd runs in a
# private mount namespace with an empty file bound over $HOME/.bashrc (root's here runs
# `pyenv init`, ~0.4 s a session); BENCH_KEEP_BASHRC=1 keeps it.
#
# -r appends that many generated EVE records a second to the followed file during the trials
# (98 % flow records, 2 % low-severity alerts from 10.1.0.1: none matches), and reports the follower's CPU
# (user + system time of the tcpreset-hunt process over the trials' wall time; 100 % = 1 core).
# -a makes the generated low-severity alerts match too (the query keeps every alert), so the
# window fills with 2 % of the load and each evaluation replays it: the rescan's cost.
# Each trial's alert has its own signature id (so its `tcpreset` line is a new result, not a
# suppressed one), and the rule is flushed after it. The lab is named $TCPRESET_LAB_PREFIX-rtbenchPID.
set -euo pipefail
cd "$(dirname "$0")/.."
trials=20 targets="ssh ssh-reuse local" rate=0
query="{all: [{field: event_type, is: alert}, {field: alert.severity, less_or_equal: 1}]}"
while getopts "n:t:r:a" o; do
    case $o in
        n) trials=$OPTARG ;; t) targets=$OPTARG ;; r) rate=$OPTARG ;;
        a) query="{field: event_type, is: alert}" ;;
        *) exit 2 ;;
    esac
done

scripts/install-deps.sh
cargo build --release --quiet --bins
bin=$PWD/target/release
lab=${TCPRESET_LAB_PREFIX:-}rtbench$$
work=$(mktemp -d)
sock=$work/tcpresetd.sock
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    scripts/lab.sh down "$lab"
    rm -rf "$work"
}
trap cleanup EXIT
scripts/lab.sh up "$lab"
sen=(ip netns exec "$lab-sen")
"${sen[@]}" "$bin/tcpresetd" --config /dev/null --state-dir "$work/state" --socket "$sock" \
    --track eth1 2>>"$work/daemon.log" &
pids+=($!)
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done

# sshd in the sensor on 127.0.0.1:2222, one generated key for root.
mkdir -p "$work/ssh" /run/sshd
ssh-keygen -q -t ed25519 -N "" -f "$work/ssh/host_key"
ssh-keygen -q -t ed25519 -N "" -f "$work/ssh/id_ed25519"
cp "$work/ssh/id_ed25519.pub" "$work/ssh/authorized_keys"
echo "[127.0.0.1]:2222 $(cat "$work/ssh/host_key.pub")" >"$work/ssh/known_hosts"
cat >"$work/ssh/sshd_config" <<EOF
ListenAddress 127.0.0.1:2222
HostKey $work/ssh/host_key
AuthorizedKeysFile $work/ssh/authorized_keys
PidFile $work/ssh/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
SetEnv TCPRESET_SOCKET=$sock
EOF
: >"$work/empty"
if [[ -f $HOME/.bashrc && -z ${BENCH_KEEP_BASHRC:-} ]]; then
    unshare -m sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' _ "$work/empty" "$HOME/.bashrc" \
        "${sen[@]}" /usr/sbin/sshd -D -e -f "$work/ssh/sshd_config" 2>>"$work/sshd.log" &
else
    "${sen[@]}" /usr/sbin/sshd -D -e -f "$work/ssh/sshd_config" 2>>"$work/sshd.log" &
fi
pids+=($!)
ssh_target="{ssh: {host: 127.0.0.1, port: 2222, user: root, identity_file: $work/ssh/id_ed25519, known_hosts_file: $work/ssh/known_hosts, persist: PERSIST}}"
for _ in $(seq 100); do
    "${sen[@]}" ssh -o BatchMode=yes -o ControlMaster=no -o ControlPath=none \
        -o UserKnownHostsFile="$work/ssh/known_hosts" \
        -i "$work/ssh/id_ed25519" -p 2222 -l root 127.0.0.1 true 2>/dev/null && break
    sleep 0.05
done

# What one SSH login (handshake, `true`, close) costs here, apart from the hunt.
for _ in $(seq 10); do
    a=$(date +%s%N)
    "${sen[@]}" ssh -o BatchMode=yes -o ControlMaster=no -o ControlPath=none \
        -o UserKnownHostsFile="$work/ssh/known_hosts" \
        -i "$work/ssh/id_ed25519" -p 2222 -l root 127.0.0.1 true
    echo $((($(date +%s%N) - a) / 1000)) >>"$work/ssh-login-us"
done

alert() { # alert SRC SIGNATURE_ID: one alert line as Suricata writes it, stamped now
    local now
    now=$(date -u +%Y-%m-%dT%H:%M:%S.%6N+0000)
    printf '{"timestamp":"%s","flow_id":1822543207741036,"in_iface":"eth1","event_type":"alert","src_ip":"%s","src_port":41234,"dest_ip":"10.77.0.2","dest_port":80,"proto":"TCP","pkt_src":"wire/pcap","alert":{"action":"allowed","gid":1,"signature_id":%s,"rev":1,"signature":"ET EXPLOIT Apache log4j RCE Attempt (http ldap) (Outbound)","category":"Attempted Administrator Privilege Gain","severity":1},"app_proto":"http","direction":"to_server","flow":{"pkts_toserver":4,"pkts_toclient":3,"bytes_toserver":420,"bytes_toclient":300,"start":"%s"}}' \
        "$now" "$1" "$2" "$now"
}

port=21000 sig=3000000
for target in $targets; do
    books=$work/books-$target eve=$work/eve-$target.json status=$work/status-$target
    mkdir -p "$books"
    : >"$eve"
    case $target in
        ssh) t=${ssh_target/PERSIST/0s} ;;
        ssh-reuse) t=${ssh_target/PERSIST/10m} ;;
        *) t=local ;;
    esac
    cat >"$books/realtime.yaml" <<EOF
name: reset after high-severity alerts, real time
schedule: {realtime: {lookback: 10m}}
source: {paths: ['$eve'], format: suricata}
query: $query
calculations:
  - {name: find_unique_engid, type: top, field: engid, by: count, size: 100,
     subgroups: [{name: find_unique_srcip, type: top, field: srcip, by: count, size: 100}]}
conditions: [{name: any, type: compare_value, operator: greater, value: 0}]
actions:
  - name: TCP Reset
    trigger: any
    suppress: 180s
    run_script:
      target: $t
      commands: {tcpreset: $bin/tcpreset}
      script: |
        {{#ctx.payload.aggregations.find_unique_engid.buckets}}
        {{#find_unique_srcip.buckets}}
        tcpreset {{engid}} -i eth1 -o eth0 -h {{srcip}} -d 180
        {{/find_unique_srcip.buckets}}
        {{/ctx.payload.aggregations.find_unique_engid.buckets}}
EOF
    TCPRESET_SOCKET=$sock "${sen[@]}" "$bin/tcpreset-hunt" schedule "$books" --status-dir "$status" \
        2>>"$work/hunt-$target.log" &
    hunt=$!
    pids+=("$hunt")
    for _ in $(seq 200); do [[ -f $status/realtime.yaml.json ]] && break; sleep 0.05; done
    gen=
    if ((rate > 0)); then
        python3 - "$eve" "$rate" <<'PY' &
import datetime, sys, time
path, rate = sys.argv[1], int(sys.argv[2])
tick = 0.02
per = max(1, int(rate * tick))
flow = '{"timestamp":"%s","flow_id":%d,"in_iface":"eth1","event_type":"flow","src_ip":"10.1.%d.%d","src_port":%d,"dest_ip":"192.168.1.40","dest_port":443,"proto":"TCP","app_proto":"tls","flow":{"pkts_toserver":3,"pkts_toclient":2,"bytes_toserver":200,"bytes_toclient":120,"start":"%s","end":"%s","age":0,"state":"closed","reason":"timeout","alerted":false},"tcp":{"tcp_flags":"1b","syn":true,"fin":true,"psh":true,"ack":true,"state":"closed"}}\n'
low = '{"timestamp":"%s","flow_id":%d,"in_iface":"eth1","event_type":"alert","src_ip":"10.1.0.1","src_port":%d,"dest_ip":"192.168.1.40","dest_port":80,"proto":"TCP","alert":{"action":"allowed","gid":1,"signature_id":2200003,"rev":2,"signature":"SURICATA IPv4 truncated packet","category":"Generic Protocol Command Decode","severity":3}}\n'
n = 0
with open(path, "a") as f:
    start = time.monotonic()
    while True:
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
        lines = []
        for _ in range(per):
            n += 1
            a, b = n // 250 % 250, n % 250
            lines.append(low % (now, n, 1024 + n % 60000) if n % 50 == 0 else flow % (now, n, a, b, 1024 + n % 60000, now, now))
        f.write("".join(lines))
        f.flush()
        start += tick
        time.sleep(max(0.0, start - time.monotonic()))
PY
        gen=$!
        pids+=("$gen")
        sleep 2
    fi
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$hunt/stat")
    t0=$(date +%s.%N)
    for i in $(seq "$trials"); do
        port=$((port + 1)) sig=$((sig + 1))
        line=$(alert 10.77.0.1 "$sig")
        "$bin/tcpreset-lab" trial --client-ns "$lab-cli" --server-ns "$lab-srv" \
            --server "10.77.0.2:$port" --mode chat --timeout-ms 3000 \
            --run /bin/sh -c "printf '%s\n' '$line' >> '$eve'" >"$work/report.json" 2>/dev/null || true
        python3 - "$target" "$rate" "$(cat "$work/report.json")" >>"$work/results" <<'PY'
import json, sys
target, rate, report = sys.argv[1], sys.argv[2], sys.argv[3]
r = json.loads(report) if report.strip() else {"killed_both": False, "client": {}, "server": {}}
ms = max(r["client"].get("ms") or 0, r["server"].get("ms") or 0)
print(json.dumps({"target": target, "rate": int(rate), "killed": r["killed_both"], "ms": ms}))
PY
        "${sen[@]}" "$bin/tcpreset" --socket "$sock" flush >/dev/null
        sleep 0.2
    done
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$hunt/stat")
    t1=$(date +%s.%N)
    cpu=$(python3 -c "import os; print(f'{100 * (($u1 + $s1) - ($u0 + $s0)) / os.sysconf(\"SC_CLK_TCK\") / ($t1 - $t0):.0f}')")
    echo "{\"target\": \"$target\", \"cpu\": $cpu}" >>"$work/cpu"
    sleep 1.2 # the status is written at least once a second
    echo "  $target: $trials trials done; follower: $(jq -r '.realtime | "\(.records_read) records read, \(.evaluations) evaluations (the last took \(.last_evaluation_micros) µs), \(.window_records) records in the window"' "$status/realtime.yaml.json")" >&2
    if [[ -n $gen ]]; then kill "$gen"; wait "$gen" 2>/dev/null || true; fi
    kill "$hunt"; wait "$hunt" 2>/dev/null || true
done

echo "$query" >"$work/query"
python3 - "$work/results" "$work/cpu" "$trials" "$rate" "$work/ssh-login-us" "$(uptime)" "$work/query" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cpu = {c["target"]: c["cpu"] for c in map(json.loads, open(sys.argv[2]))}
rate = int(sys.argv[4])
load = f"{rate} records/s appended" if rate else "no other records"
if "alert.severity" not in open(sys.argv[7]).read():
    load += ", 2 % of them matching (-a)"
print(f"real-time benchmark, {sys.argv[3]} trials per target, {load} (ms from writing the alert line until both ends of a chat connection saw the reset)")
print(f"{'target':9} {'trials':>6} {'killed':>6} {'median ms':>9} {'max ms':>8} {'follower CPU':>12}   scheduled mode (interval_minutes: 5)")
for target in dict.fromkeys(r["target"] for r in rows):
    rs = [r for r in rows if r["target"] == target]
    k = [r for r in rs if r["killed"]]
    med = f"{statistics.median(r['ms'] for r in k):.1f}" if k else "-"
    mx = f"{max(r['ms'] for r in k):.1f}" if k else "-"
    print(f"{target:9} {len(rs):>6} {len(k):>6} {med:>9} {mx:>8} {cpu[target]:>11}%   expected 150000 ms on average, up to 300000 ms")
logins = [int(l) / 1000 for l in open(sys.argv[5])]
print(f"one ssh login alone, no reuse (ip netns exec + ssh ... true, 10 runs): median {statistics.median(logins):.1f} ms, max {max(logins):.1f} ms")
print(f"machine: {sys.argv[6].strip()}")
PY
