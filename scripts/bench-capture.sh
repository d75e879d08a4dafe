#!/usr/bin/env bash
# Live capture benchmark (prints figures; exits 1 if the kernel dropped a frame): tcpreplay
# floods the lab's hub from NAME-oth, the sensor's sniff interface sees every frame (the bridge
# floods like a hub), and the daemon's capture on it must not fall behind.
#
#   scripts/bench-capture.sh [-f FLOWS] [-k PACKETS_PER_FLOW] [-r RATES] [-m MODES] [-p SENDERS]
#
#   -f, -k  the generated capture (`cargo xtask captures`, padded to full frames by tcprewrite):
#           FLOWS concurrent TCP flows x PACKETS_PER_FLOW (default 20000 x 50 = 1,000,000 frames)
#   -r      tcpreplay rates: "top" for --topspeed, or Mbit/s for --mbps (default "top")
#   -p      tcpreplay processes replaying the capture at once, from NAME-oth, NAME-cli and
#           NAME-srv (1-3, default 1); the rate shown is their sum
#   -m      daemon modes (default "all normal track"), each with --track eth1 (the flow table on):
#             all     1,000 rules: more hosts than the prefilter names (filter::MAX_HOSTS), so it
#                     falls back to all TCP and every frame reaches user space, is parsed,
#                     tracked and matched: the worst case
#             normal  40 rules: the prefilter passes their hosts' segments and the SYN/FIN/RST
#                     of everyone (3 frames of each generated flow)
#             track   no rule: tracking only, as the daemon runs on a sniff port from its start;
#                     the prefilter passes only SYN/FIN/RST (3 frames of each generated flow)
#
# Rule hosts never appear in the replayed traffic (no RSTs are sent) except one rule on the lab
# client 10.77.0.1. For each run it prints tcpreplay's achieved rate and the daemon's libpcap
# counters from `tcpreset stats` (deltas over the run): received, dropped by the kernel, dropped
# by the interface, the frames expected, and the CPU time the daemon used meanwhile (user +
# system, from /proc/PID/stat) as milliseconds and as a share of one core over the replay.
# Everything stays inside the lab's namespaces (named $TCPRESET_LAB_PREFIX-bcapPID).
set -euo pipefail
cd "$(dirname "$0")/.."
flows=20000 per_flow=50 rates="top" modes="all normal track" senders=1
while getopts "f:k:r:m:p:" o; do
    case $o in
        f) flows=$OPTARG ;; k) per_flow=$OPTARG ;; r) rates=$OPTARG ;; m) modes=$OPTARG ;;
        p) senders=$OPTARG ;; *) exit 2 ;;
    esac
done
[[ $senders =~ ^[123]$ ]] || { echo "-p takes 1, 2 or 3" >&2; exit 2; }
hosts=(oth cli srv)

scripts/install-deps.sh
cargo build --release --quiet --bins --package tcpreset --package xtask
bin=$PWD/target/release
lab=${TCPRESET_LAB_PREFIX:-}bcap$$
work=$(mktemp -d)
sock=$work/tcpresetd.sock
daemon=
stop_daemon() {
    if [[ -n $daemon ]]; then
        kill "$daemon" 2>/dev/null || true
        wait "$daemon" 2>/dev/null || true
        daemon=
    fi
}
cleanup() {
    stop_daemon
    scripts/lab.sh down "$lab"
    rm -rf "$work"
}
trap cleanup EXIT

echo "== generating $flows flows x $per_flow frames" >&2
"$bin/xtask" captures "$work/raw.pcap" "$work/rules.json" "$flows" "$per_flow" 1000 0 2>&2
# Full frames on the wire (the generator stores headers only); its snaplen warning is expected.
tcprewrite --fixlen=pad -i "$work/raw.pcap" -o "$work/flood.pcap" 2>/dev/null
rm "$work/raw.pcap"
frames=$((flows * per_flow * senders))
python3 -c 'import json,sys; [print(r["host"]) for r in json.load(open(sys.argv[1]))]' \
    "$work/rules.json" >"$work/hosts"

scripts/lab.sh up "$lab"
sen=(ip netns exec "$lab-sen")
tcpreset() { "${sen[@]}" "$bin/tcpreset" --socket "$sock" "$@"; }

# start_daemon RULES: a fresh daemon tracking eth1, with RULES rules (the last on 10.77.0.1).
start_daemon() {
    local n=$1
    rm -rf "$work/state"
    "${sen[@]}" "$bin/tcpresetd" --config /dev/null --state-dir "$work/state" --socket "$sock" \
        --track eth1 2>"$work/daemon.log" &
    daemon=$!
    for _ in $(seq 200); do [[ -S $sock ]] && break; sleep 0.05; done
    ((n > 0)) || return 0
    # Over one control connection (one `tcpreset` process per rule takes minutes).
    head -n $((n - 1)) "$work/hosts" | python3 -c '
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
answers = s.makefile()
for host in sys.stdin.read().split():
    s.sendall(json.dumps({"v": 1, "op": "add", "engid": "bench", "sniff_if": "eth1",
                          "reset_if": "eth0", "host": host, "seconds": "3600"}).encode() + b"\n")
    answer = json.loads(answers.readline())
    if answer["status"] != "added":
        sys.exit(f"rule for {host} refused: {answer}")' "$sock"
    tcpreset lab -i eth1 -o eth0 -h 10.77.0.1 -d 3600 >/dev/null
}

# counters: "received dropped if_dropped" of eth1, as `tcpreset stats` shows them.
counters() {
    tcpreset stats --json | python3 -c '
import json, sys
i = [i for i in json.load(sys.stdin)["interfaces"] if i["iface"] == "eth1"][0]
print(i["pcap_received"], i["pcap_dropped"], i["pcap_if_dropped"])'
}

# cpu_ticks: user + system clock ticks the daemon has used.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$daemon/stat"; }

failed=0
hz=$(getconf CLK_TCK)
printf '%-6s %-5s %9s %10s %9s %10s %10s %8s %10s %8s %6s\n' mode rate frames "sent pps" "sent Mb/s" expected received dropped if_dropped "cpu ms" "cpu %"
for mode in $modes; do
    case $mode in
        all) rules=1000 expected=$frames ;;
        normal) rules=40 expected=$((flows * 3 * senders)) ;;
        track) rules=0 expected=$((flows * 3 * senders)) ;;
        *) echo "unknown mode $mode (all, normal, track)" >&2; exit 2 ;;
    esac
    start_daemon "$rules"
    for rate in $rates; do
        if [[ $rate == top ]]; then speed=(--topspeed); else speed=(--mbps "$rate"); fi
        sleep 1.2 # the capture thread refreshes libpcap's counters every second
        read -r r0 d0 i0 < <(counters)
        c0=$(cpu_ticks) t0=$(date +%s.%N)
        pids=()
        for h in "${hosts[@]:0:senders}"; do
            ip netns exec "$lab-$h" tcpreplay --preload-pcap "${speed[@]}" -i eth0 "$work/flood.pcap" \
                >"$work/tcpreplay-$h.out" 2>&1 &
            pids+=($!)
        done
        wait "${pids[@]}"
        c1=$(cpu_ticks) t1=$(date +%s.%N)
        sleep 1.5
        read -r r1 d1 i1 < <(counters)
        read -r pps mbps < <(python3 -c '
import re, sys
rated = [re.search(r"Rated: [\d.]+ Bps, ([\d.]+) Mbps, ([\d.]+) pps", open(f).read()) for f in sys.argv[1:]]
print(sum(float(m.group(2)) for m in rated), sum(float(m.group(1)) for m in rated))' "$work"/tcpreplay-*.out)
        read -r cpu_ms cpu_pct < <(python3 -c 'import sys; t, hz, c = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]); ms = c * 1000 / hz; print(f"{ms:.0f} {ms / 10 / t:.1f}")' \
            "$(python3 -c "print($t1 - $t0)")" "$hz" $((c1 - c0)))
        printf '%-6s %-5s %9s %10.0f %9.1f %10s %10s %8s %10s %8s %6s\n' "$mode" "$rate" "$frames" \
            "$pps" "$mbps" "$expected" $((r1 - r0)) $((d1 - d0)) $((i1 - i0)) "$cpu_ms" "$cpu_pct"
        if ((d1 - d0 > 0)); then failed=1; fi
    done
    tcpreset stats >"$work/stats.txt"
    stop_daemon
done
if ((failed)); then
    echo "the kernel dropped frames: the capture fell behind" >&2
    exit 1
fi
