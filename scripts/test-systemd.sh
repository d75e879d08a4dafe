#!/usr/bin/env bash
# The unit under a real systemd (as root): a minimal Debian booted by systemd-nspawn with systemd
# as PID 1 inside the lab's sensor namespace (the container *is* NAME-sen, with its sniff eth1
# and reset eth0), the .deb built from this checkout installed with dpkg -i, and with the shipped
# unit and configuration unchanged:
#   - systemctl start: active (Type=notify: READY=1 received), its status text, the watchdog set;
#   - an idle connection set up before any rule, and chat connections, die on both ends within
#     IDLE_MS (10) and CHAT_MS (20) of launching `tcpreset` (medians, less the median cost of
#     nsenter that launches it; every trial must die, the first rule after the start among them);
#   - systemctl reload keeps the rules; systemctl kill -s KILL is followed by a restart whose
#     restored rule still kills; a SIGSTOPped daemon is caught by the watchdog (a drop-in with
#     WatchdogSec=2s) and restarted;
#   - journalctl -o json shows the audit fields as journal fields (ENGID, HOST, EVENT).
#
# usage: scripts/test-systemd.sh      (TRIALS=N trials per mode, default 5)
#
# The root (debootstrap --variant=minbase, ~250 MB) is cached under /var/tmp, keyed by the
# suite and the package list; the container runs on a tmpfs overlay of it (--volatile=overlay),
# so the cache stays clean. The lab's namespaces are named sd-*; everything is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
trials=${TRIALS:-5} idle_ms=${IDLE_MS:-10} chat_ms=${CHAT_MS:-20}

if [[ $(id -u) -ne 0 ]]; then
    echo "test-systemd: needs root (debootstrap, network namespaces, systemd-nspawn): sudo $0" >&2
    exit 1
fi
scripts/install-deps.sh

fail() {
    echo "test-systemd: FAIL: $*" >&2
    exit 1
}
trap 'echo "test-systemd: FAIL: line $LINENO: $BASH_COMMAND" >&2' ERR

suite=bookworm
include=systemd,systemd-sysv,dbus,libpcap0.8,iproute2
root=/var/tmp/tcpreset-sd-$(echo "$suite minbase $include" | sha256sum | cut -c1-12)
lab=sd
tmp=$(mktemp -d)
nspawn=
cleanup() {
    if [[ -n $nspawn ]]; then
        # SIGTERM asks the container's systemd to power off; then the overlay is gone.
        kill "$nspawn" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$nspawn" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$nspawn" 2>/dev/null || true
        wait "$nspawn" 2>/dev/null || true
    fi
    scripts/lab.sh down "$lab"
    rm -rf "$tmp"
}
trap cleanup EXIT

echo "== the .deb from this checkout"
deb=$(scripts/build-deb.sh | tail -n 1)
[[ -f $deb ]] || fail "build-deb.sh did not print the path of a .deb: '$deb'"
mkdir "$tmp/deb"
cp "$deb" "$tmp/deb/tcpreset.deb"
cargo build --quiet --locked --bin tcpreset-lab
peer=$PWD/target/debug/tcpreset-lab

if [[ ! -x $root/usr/lib/systemd/systemd ]]; then
    echo "== debootstrap $suite into $root (cached for the next runs)"
    rm -rf "$root.tmp"
    debootstrap --variant=minbase --include="$include" "$suite" "$root.tmp" http://deb.debian.org/debian \
        >"$tmp/debootstrap.log" 2>&1 || fail "debootstrap failed: $(tail -n 5 "$tmp/debootstrap.log")"
    mv "$root.tmp" "$root"
fi

echo "== boot it with systemd as PID 1 in the lab's sensor namespace $lab-sen"
scripts/lab.sh down "$lab"
scripts/lab.sh up "$lab"
# --keep-unit --register=no: no systemd on the host to register with.
systemd-nspawn --quiet --boot --directory="$root" --volatile=overlay --machine=sd-sensor \
    --register=no --keep-unit --console=passive --capability=CAP_NET_ADMIN \
    --network-namespace-path="/run/netns/$lab-sen" --bind-ro="$tmp/deb:/mnt/tcpreset" \
    >"$tmp/nspawn.log" 2>&1 &
nspawn=$!
# The leader is nspawn's child once it has become systemd (before, nspawn's own helper).
leader=
for _ in $(seq 100); do
    leader=$(pgrep -P "$nspawn" || true)
    [[ -n $leader && $(cat "/proc/$leader/comm" 2>/dev/null) == systemd ]] && break
    sleep 0.1
done
[[ -n $leader && $(cat "/proc/$leader/comm") == systemd ]] ||
    fail "systemd-nspawn started no container with systemd as PID 1: $(cat "$tmp/nspawn.log")"
inside() { nsenter --target "$leader" --all "$@"; }
state=
for _ in $(seq 300); do # systemctl answers once PID 1 has its socket up
    state=$(timeout 60 nsenter --target "$leader" --all systemctl is-system-running --wait 2>&1) || true
    [[ $state == *bus* ]] || break
    sleep 0.1
done
[[ $state == running ]] || fail "the container's systemd is '$state': $(inside systemctl --failed --no-legend 2>&1)"
show() { inside systemctl show --value -p "$1" tcpresetd; }

echo "== dpkg -i, systemctl start tcpresetd (shipped unit and configuration)"
inside dpkg -i /mnt/tcpreset/tcpreset.deb >"$tmp/dpkg.log" 2>&1 || fail "dpkg -i failed: $(cat "$tmp/dpkg.log")"
inside cmp -s /usr/lib/systemd/system/tcpresetd.service - <systemd/tcpresetd.service || fail "the installed unit is not systemd/'s"
inside cmp -s /etc/tcpreset/tcpresetd.toml - <config/tcpresetd.toml || fail "the installed configuration is not config/'s"
inside systemctl start tcpresetd || fail "systemctl start failed: $(inside journalctl -u tcpresetd --no-pager -n 20)"
[[ $(show Type) == notify ]] || fail "Type=$(show Type), not notify"
[[ $(show ActiveState)/$(show SubState) == active/running ]] ||
    fail "tcpresetd is $(show ActiveState)/$(show SubState) after start"
[[ $(show StatusText) == "listening on /run/tcpreset/tcpresetd.sock" ]] ||
    fail "StatusText is '$(show StatusText)', not the READY=1 status"
[[ $(show WatchdogUSec) == 30s ]] || fail "WatchdogUSec=$(show WatchdogUSec), not 30s"
[[ $(inside id -gn tcpresetd) == tcpreset ]] || fail "no user tcpresetd in group tcpreset"

# trial MODE: a connection of MODE set up first, then `tcpreset` launched in the container;
# prints the report and appends "MODE ms killed" to $tmp/trials.
port=30000
trial() {
    local mode=$1 report
    port=$((port + 1))
    report=$("$peer" trial --client-ns "$lab-cli" --server-ns "$lab-srv" --server "10.77.0.2:$port" \
        --mode "$mode" --timeout-ms 2000 \
        --run nsenter --target "$leader" --all tcpreset "sd-$port" -i eth1 -o eth0 -h 10.77.0.1 -d 180 \
        2>>"$tmp/trials.log") || true
    python3 - "$mode" "$report" >>"$tmp/trials" <<'PY'
import json, sys
mode, report = sys.argv[1], sys.argv[2]
r = json.loads(report) if report.strip() else {"killed_both": False, "client": {}, "server": {}}
ms = max(r["client"].get("ms") or 0, r["server"].get("ms") or 0)
print(mode, f"{ms:.1f}", "killed" if r["killed_both"] else "survived")
PY
    tail -n 1 "$tmp/trials" | sed 's/^/   /'
    inside tcpreset flush >/dev/null
}
# check_trials MODE LIMIT_MS: every trial of MODE killed on both ends, the median from the
# launch of tcpreset (nsenter's median taken off) within LIMIT_MS.
check_trials() {
    python3 - "$tmp/trials" "$1" "$2" "$nsenter_ms" <<'PY' || fail "$1 trials: $(grep "^$1 " "$tmp/trials" | tr '\n' ';')"
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.startswith(sys.argv[2] + " ")]
ms = [float(r[1]) for r in rows]
killed = sum(r[2] == "killed" for r in rows)
med, limit, nsenter = statistics.median(ms), float(sys.argv[3]), float(sys.argv[4])
print(f"   {sys.argv[2]}: {killed}/{len(rows)} killed on both ends; from launching nsenter median {med:.1f} ms, "
      f"max {max(ms):.1f} ms; from tcpreset's launch median {med - nsenter:.1f} ms (limit {limit:g} ms)")
sys.exit(0 if killed == len(rows) and med - nsenter <= limit else 1)
PY
}

# What entering the container costs (nsenter -a, its fork into the PID namespace, the exec):
# the trials launch nsenter, so its median is taken off their figures to give them from the
# launch of tcpreset itself.
launch=()
for _ in 1 2 3 4 5; do
    t0=$EPOCHREALTIME
    inside true
    launch+=("$(python3 -c "print(f'{($EPOCHREALTIME - $t0) * 1e3:.1f}')")")
done
nsenter_ms=$(printf '%s\n' "${launch[@]}" | sort -n | sed -n 3p)
echo "   nsenter -a true: $(printf '%s ' "${launch[@]}")ms (median $nsenter_ms ms)"
echo "== idle and chat connections set up before their rule (the first rule after the start first)"
trial idle
for _ in $(seq "$trials"); do trial chat; done
for _ in $(seq $((trials - 1))); do trial idle; done
echo "== after a restart, the first rule is a chat connection's"
inside systemctl restart tcpresetd
trial chat

# still_killing WHAT: a new connection of the client is reset (the rule sd-keep lives).
still_killing() {
    port=$((port + 1))
    if "$peer" connect --client-ns "$lab-cli" --server-ns "$lab-srv" --server "10.77.0.2:$port" \
        >"$tmp/connect.json" 2>&1; then
        fail "$1: a new connection of 10.77.0.1 survived: $(cat "$tmp/connect.json")"
    fi
}
# restarted_after RESTARTS WHAT: systemd restarted the daemon on its own within 10 s.
restarted_after() {
    for _ in $(seq 100); do
        [[ $(show NRestarts) -gt $1 && $(show ActiveState) == active ]] && return
        sleep 0.1
    done
    fail "no restart 10 s after $2: $(show ActiveState) NRestarts=$(show NRestarts)"
}
echo "== systemctl reload keeps the rules"
inside tcpreset sd-keep -i eth1 -o eth0 -h 10.77.0.1 -d 600 >/dev/null
pid=$(show MainPID)
inside systemctl reload tcpresetd || fail "systemctl reload failed: $(inside journalctl -u tcpresetd --no-pager -n 5)"
[[ $(show MainPID) == "$pid" && $(show ActiveState) == active ]] || fail "reload restarted or stopped the daemon"
[[ $(show StatusText) == "configuration reloaded" ]] || fail "StatusText after reload: '$(show StatusText)'"
inside tcpreset list | grep -q sd-keep || fail "the rule is gone after reload: $(inside tcpreset list)"
still_killing "after reload"

echo "== systemctl kill -s KILL: restarted, the rule restored and still killing"
restarts=$(show NRestarts)
inside systemctl kill -s KILL tcpresetd
restarted_after "$restarts" SIGKILL
inside tcpreset list | grep -q sd-keep || fail "the rule was not restored after SIGKILL: $(inside tcpreset list)"
still_killing "after the SIGKILL restart"

echo "== a stopped daemon is caught by the watchdog (drop-in WatchdogSec=2s)"
inside mkdir -p /run/systemd/system/tcpresetd.service.d
inside sh -c 'printf "[Service]\nWatchdogSec=2s\nTimeoutAbortSec=2s\n" >/run/systemd/system/tcpresetd.service.d/sd-watchdog.conf'
inside systemctl daemon-reload
inside systemctl restart tcpresetd
pid=$(show MainPID) restarts=$(show NRestarts)
sleep 3 # pings at 1 s keep it alive past the 2 s limit
[[ $(show MainPID) == "$pid" && $(show NRestarts) == "$restarts" ]] || fail "the daemon did not survive 3 s of WatchdogSec=2s: are its pings lost?"
inside systemctl kill -s STOP --kill-who=main tcpresetd
restarted_after "$restarts" "SIGSTOP with WatchdogSec=2s"
for _ in $(seq 50); do # journald may write it a moment after the restart
    inside journalctl --no-pager | grep -q 'tcpresetd.service: Watchdog timeout' && break
    sleep 0.1
done
inside journalctl --no-pager | grep -q 'tcpresetd.service: Watchdog timeout' ||
    fail "the restart was not the watchdog's: $(inside journalctl --no-pager | grep 'tcpresetd.service:' | tail -n 8)"
inside rm /run/systemd/system/tcpresetd.service.d/sd-watchdog.conf
inside systemctl daemon-reload
still_killing "after the watchdog restart"

echo "== journalctl -o json: the audit fields are journal fields"
inside journalctl -u tcpresetd -o json --no-pager >"$tmp/journal.json"
python3 - "$tmp/journal.json" <<'PY' || fail "no audit entry with ENGID, HOST and EVENT fields in the journal"
import json, sys
entries = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
hits = [e for e in entries if e.get("ENGID") == "sd-keep" and e.get("HOST") == "10.77.0.1" and "EVENT" in e]
for e in hits[:1]:
    print("   " + " ".join(f"{k}={e[k]}" for k in ("EVENT", "ENGID", "HOST", "PRIORITY", "MESSAGE") if k in e))
sys.exit(0 if hits else 1)
PY

echo "== the connection figures"
check_trials idle "$idle_ms"
check_trials chat "$chat_ms"
echo "test-systemd: ok ($((SECONDS - start)) s)"
