#!/usr/bin/env bash
# Kill benchmark (prints figures; not a test): N trials per mode of a real connection in the
# namespace lab, killed by `tcpreset` and, on the same trials, by `tcpkill` (Debian's dsniff).
#
#   scripts/bench-kill.sh [-n TRIALS] [-m "chat bulk idle"] [--as-unit]   (also: bulk-both)
#
# Per trial: did both ends see the reset, the milliseconds from launching the command until
# both ends saw it, and how many RSTs the sensor sent (counted leaving its reset interface).
# tcpkill sniffs the reset interface (-i eth0): it cannot open the IP-less sniff interface.
#
# --as-unit runs the daemon as systemd/tcpresetd.service does: ExecStart=/usr/sbin/tcpresetd,
# no flag at all, with the shipped config/tcpresetd.toml (only its socket and state_dir moved
# to a temporary directory, so nothing of a real installation is touched), so the sniff port is
# tracked by `track = "auto"` alone. The daemon is started afresh before each mode, so the
# first trial of each mode is the first rule after a start; its figure is shown apart too
# ("1st ms"). tcpreset only (no tcpkill). The lab is named $TCPRESET_LAB_PREFIX-benchPID.
#
# TCPRESET_BENCH_KEEP=DIR also captures each trial on the server's side (headers only) and keeps,
# for every trial not killed on both ends, that capture, the RSTs sent and the report in DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
trials=10 modes="chat bulk idle" as_unit=0 tools="tcpreset tcpkill"
if [[ ${1:-} == --as-unit ]]; then as_unit=1 tools=tcpreset; shift; fi
while getopts "n:m:" o; do
    case $o in n) trials=$OPTARG ;; m) modes=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
if [[ ${1:-} == --as-unit ]]; then as_unit=1 tools=tcpreset; fi

scripts/install-deps.sh
cargo build --release --quiet --bins
bin=$PWD/target/release
lab=${TCPRESET_LAB_PREFIX:-}bench$$
sock=/tmp/tcpreset-$lab.sock
work=$(mktemp -d)
cleanup() {
    stop_daemon
    ((as_unit)) || pkill -f "tcpkill -i eth0 host 10.77.0.1" 2>/dev/null || true
    scripts/lab.sh down "$lab"
    rm -rf "$sock" "$work"
}
stop_daemon() {
    if [[ -n ${daemon:-} ]]; then
        kill "$daemon" 2>/dev/null || true
        wait "$daemon" 2>/dev/null || true
        daemon=
    fi
}
trap cleanup EXIT
scripts/lab.sh up "$lab"
# The shipped configuration, its socket and state directory moved into $work.
sed -e "s|^socket = .*|socket = \"$sock\"|" -e "s|^state_dir = .*|state_dir = \"$work/state\"|" \
    config/tcpresetd.toml >"$work/tcpresetd.toml"
start_daemon() {
    rm -rf "$work/state" "$sock"
    if ((as_unit)); then
        # The unit's command line: no flag; the configuration file is the only input.
        ip netns exec "$lab-sen" "$bin/tcpresetd" \
            --config "$work/tcpresetd.toml" 2>>"$work/daemon.log" &
    else
        ip netns exec "$lab-sen" "$bin/tcpresetd" --config /dev/null --state-dir "$work/state" \
            --socket "$sock" --track eth1 2>>"$work/daemon.log" &
    fi
    daemon=$!
    for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
}
start_daemon
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
    local srvdump=
    if [[ -n ${TCPRESET_BENCH_KEEP:-} ]]; then
        ip netns exec "$lab-srv" tcpdump -i eth0 -nn -s 96 -w "$work/srv.pcap" tcp \
            2>"$work/srvdump.err" &
        srvdump=$!
        for _ in $(seq 100); do grep -q listening "$work/srvdump.err" 2>/dev/null && break; sleep 0.02; done
    fi
    "$bin/tcpreset-lab" trial --client-ns "$lab-cli" --server-ns "$lab-srv" \
        --server "10.77.0.2:$port" --mode "$mode" --timeout-ms "$timeout" --run "${run[@]}" \
        >"$work/report.json" 2>/dev/null || true
    sleep 0.2
    kill "$dump" 2>/dev/null; wait "$dump" 2>/dev/null || true
    if [[ -n $srvdump ]]; then
        kill "$srvdump" 2>/dev/null; wait "$srvdump" 2>/dev/null || true
        if ! grep -q '"killed_both": *true' "$work/report.json"; then
            mkdir -p "$TCPRESET_BENCH_KEEP"
            cp "$work/srv.pcap" "$TCPRESET_BENCH_KEEP/$mode-$port.pcap"
            cp "$work/rst.txt" "$TCPRESET_BENCH_KEEP/$mode-$port.rsts.txt"
            cp "$work/report.json" "$TCPRESET_BENCH_KEEP/$mode-$port.report.json"
        fi
    fi
    if [[ $tool == tcpkill ]]; then
        pkill -f "tcpkill -i eth0 host 10.77.0.1" 2>/dev/null || true
        sleep 0.1
    else
        "${sen[@]}" "$bin/tcpreset" --socket "$sock" flush >/dev/null
    fi
    python3 - "$tool" "$mode" "$(wc -l <"$work/rst.txt")" "$(cat "$work/report.json")" "${first:-0}" >>"$work/results" <<'PY'
import json, sys
tool, mode, rsts, report, first = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
r = json.loads(report) if report.strip() else {"killed_both": False, "client": {}, "server": {}}
ms = max(r["client"].get("ms") or 0, r["server"].get("ms") or 0)
print(json.dumps({"tool": tool, "mode": mode, "killed": r["killed_both"], "ms": ms, "rsts": rsts, "first": first == "1"}))
PY
}

port=20000 started=1
for mode in $modes; do
    if ((as_unit)); then stop_daemon; start_daemon; started=1; fi
    for i in $(seq "$trials"); do
        for tool in $tools; do
            port=$((port + 1))
            # The first trial after the daemon started (each mode's with --as-unit).
            first=$started trial "$tool" "$mode" "$port"
        done
        started=0
    done
    echo "  $mode: $trials trials done" >&2
done

python3 - "$work/results" "$trials" "$tools" "$as_unit" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
tools, as_unit = sys.argv[3].split(), sys.argv[4] == "1"
how = "as the unit runs it (shipped config, no flag), restarted before each mode" if as_unit else "--track eth1"
print(f"kill benchmark, {sys.argv[2]} trials per mode, daemon {how} (ms from launching the command until both ends saw the reset)")
print(f"{'tool':9} {'mode':9} {'trials':>6} {'killed':>6} {'median ms':>9} {'max ms':>8} {'1st ms':>7} {'RSTs/conn (median)':>18}")
for mode in dict.fromkeys(r["mode"] for r in rows):
    for tool in tools:
        rs = [r for r in rows if r["tool"] == tool and r["mode"] == mode]
        k = [r for r in rs if r["killed"]]
        med = f"{statistics.median(r['ms'] for r in k):.1f}" if k else "-"
        mx = f"{max(r['ms'] for r in k):.1f}" if k else "-"
        first = [r for r in rs if r["first"]]
        fst = (f"{first[0]['ms']:.1f}" if first[0]["killed"] else "alive") if first else "-"
        rst = f"{statistics.median(r['rsts'] for r in k):.0f}" if k else "-"
        print(f"{tool:9} {mode:9} {len(rs):>6} {len(k):>6} {med:>9} {mx:>8} {fst:>7} {rst:>18}")
PY
