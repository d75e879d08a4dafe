#!/usr/bin/env bash
# Kill benchmark (prints figures; not a test): N trials per mode of a real connection in the
# namespace lab, killed by `tcpreset` and, on the same trials, by `tcpkill` (Debian's dsniff).
#
#   scripts/bench-kill.sh [-n TRIALS] [-m "chat bulk idle"]
#
# Per trial: did both ends see the reset, the milliseconds from launching the command until
# both ends saw it, and how many RSTs the sensor sent (counted leaving its reset interface).
# tcpkill sniffs the reset interface (-i eth0): it cannot open the IP-less sniff interface.
set -euo pipefail
cd "$(dirname "$0")/.."
trials=10 modes="chat bulk idle"
while getopts "n:m:" o; do
    case $o in n) trials=$OPTARG ;; m) modes=$OPTARG ;; *) exit 2 ;; esac
done

scripts/install-deps.sh
cargo build --release --quiet --bins
bin=$PWD/target/release
lab=bench$$
sock=/tmp/tcpreset-$lab.sock
work=$(mktemp -d)
cleanup() {
    [[ -n ${daemon:-} ]] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
    pkill -f "tcpkill -i eth0 host 10.77.0.1" 2>/dev/null || true
    scripts/lab.sh down "$lab"
    rm -rf "$sock" "$work"
}
trap cleanup EXIT
scripts/lab.sh up "$lab"
ip netns exec "$lab-sen" "$bin/tcpresetd" --config /dev/null --state-dir "$work/state" --socket "$sock" --track eth1 2>"$work/daemon.log" &
daemon=$!
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
sen=(ip netns exec "$lab-sen")

# trial TOOL MODE PORT: one connection, killed by TOOL; appends a JSON line to $work/results.
trial() {
    local tool=$1 mode=$2 port=$3 timeout=3000 run
    [[ $mode == idle ]] && timeout=1500
    if [[ $tool == tcpreset ]]; then
        run=("${sen[@]}" "$bin/tcpreset" --socket "$sock" "bench-$port" -i eth1 -o eth0 -h 10.77.0.1 -d 60)
    else
        run=(sh -c "${sen[*]} tcpkill -i eth0 host 10.77.0.1 >/dev/null 2>&1 & echo \$! > $work/tcpkill.pid")
    fi
    "${sen[@]}" tcpdump -Q out -i eth0 -nn -l --immediate-mode 'tcp[tcpflags] & tcp-rst != 0' \
        >"$work/rst.txt" 2>"$work/tcpdump.err" &
    local dump=$!
    for _ in $(seq 100); do grep -q listening "$work/tcpdump.err" 2>/dev/null && break; sleep 0.02; done
    "$bin/tcpreset-lab" trial --client-ns "$lab-cli" --server-ns "$lab-srv" \
        --server "10.77.0.2:$port" --mode "$mode" --timeout-ms "$timeout" --run "${run[@]}" \
        >"$work/report.json" 2>/dev/null || true
    sleep 0.2
    kill "$dump" 2>/dev/null; wait "$dump" 2>/dev/null || true
    if [[ $tool == tcpkill ]]; then
        pkill -f "tcpkill -i eth0 host 10.77.0.1" 2>/dev/null || true
        sleep 0.1
    else
        "${sen[@]}" "$bin/tcpreset" --socket "$sock" flush >/dev/null
    fi
    python3 - "$tool" "$mode" "$(wc -l <"$work/rst.txt")" "$(cat "$work/report.json")" >>"$work/results" <<'PY'
import json, sys
tool, mode, rsts, report = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
r = json.loads(report) if report.strip() else {"killed_both": False, "client": {}, "server": {}}
ms = max(r["client"].get("ms") or 0, r["server"].get("ms") or 0)
print(json.dumps({"tool": tool, "mode": mode, "killed": r["killed_both"], "ms": ms, "rsts": rsts}))
PY
}

port=20000
for mode in $modes; do
    for i in $(seq "$trials"); do
        for tool in tcpreset tcpkill; do
            port=$((port + 1))
            trial "$tool" "$mode" "$port"
        done
    done
    echo "  $mode: $trials trials done" >&2
done

python3 - "$work/results" "$trials" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"kill benchmark, {sys.argv[2]} trials per mode (ms from launching the command until both ends saw the reset)")
print(f"{'tool':9} {'mode':5} {'trials':>6} {'killed':>6} {'median ms':>9} {'max ms':>8} {'RSTs/conn (median)':>18}")
for mode in dict.fromkeys(r["mode"] for r in rows):
    for tool in ("tcpreset", "tcpkill"):
        rs = [r for r in rows if r["tool"] == tool and r["mode"] == mode]
        k = [r for r in rs if r["killed"]]
        med = f"{statistics.median(r['ms'] for r in k):.1f}" if k else "-"
        mx = f"{max(r['ms'] for r in k):.1f}" if k else "-"
        rst = f"{statistics.median(r['rsts'] for r in k):.0f}" if k else "-"
        print(f"{tool:9} {mode:5} {len(rs):>6} {len(k):>6} {med:>9} {mx:>8} {rst:>18}")
PY
