#!/usr/bin/env bash
# Replay throughput benchmark (prints figures; not a test): `tcpresetd --replay` on a generated
# capture with 100,000 live rules and the flow table on, against `tcpdump -r FILE -w /dev/null tcp`
# (libpcap's own read floor) on the same file, alternating, ROUNDS times each; medians printed.
#
#   scripts/bench-replay.sh [-r ROUNDS] [-f FLOWS] [-p PACKETS_PER_FLOW]
#
# The capture (FLOWS x PACKETS_PER_FLOW packets, FLOWS client hosts and 4,096 servers) and the
# rules (100,000 hosts, 1,000 of them in the traffic) are written once under target/bench/.
# Targets (issue 3): >= 3 million packets/s, not slower than tcpdump, peak memory <= 150 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=5 flows=100000 per_flow=50
while getopts "r:f:p:" o; do
    case $o in r) rounds=$OPTARG ;; f) flows=$OPTARG ;; p) per_flow=$OPTARG ;; *) exit 2 ;; esac
done

scripts/install-deps.sh
cargo build --release --quiet --bins --package tcpreset --package xtask
dir=target/bench
mkdir -p "$dir"
cap=$dir/replay-$flows-$per_flow.pcap rules=$dir/replay-rules.json
if [[ ! -s $cap || ! -s $rules ]]; then
    target/release/xtask captures "$cap" "$rules" "$flows" "$per_flow" 100000 1000
fi
packets=$((flows * per_flow))
out=$(mktemp)
trap 'rm -f "$out" "$out".*' EXIT

# measure NAME CMD...: one run; appends "NAME wall_s cpu_s maxrss_kb" to $out.runs.
measure() {
    local name=$1
    shift
    /usr/bin/time -o "$out.t" -f "%e %U %S %M" "$@" >/dev/null 2>"$out.err" ||
        { cat "$out.err" >&2; exit 1; }
    read -r wall user sys rss <"$out.t"
    echo "$name $wall $(echo "$user + $sys" | bc) $rss" >>"$out.runs"
}

cat "$cap" >/dev/null # both read from the page cache
for _ in $(seq "$rounds"); do
    measure tcpdump tcpdump -r "$cap" -w /dev/null tcp
    measure tcpresetd target/release/tcpresetd --replay "$cap" --rules "$rules" \
        --inject-to "$out.pcap" --max-flows 1000000
done
target/release/tcpresetd --replay "$cap" --rules "$rules" --inject-to "$out.pcap" \
    --max-flows 1000000 >"$out.summary"
# The same run on the first packet alone: what loading the rules costs.
tcpdump -r "$cap" -c 1 -w "$out.one" 2>/dev/null
for _ in $(seq "$rounds"); do
    measure load target/release/tcpresetd --replay "$out.one" --rules "$rules" \
        --inject-to "$out.pcap" --max-flows 1000000
done

echo "capture: $packets packets, $flows flows, $((flows + 4096)) hosts; 100000 rules; $(nproc) cores; $rounds rounds"
echo "tcpresetd: $(cat "$out.summary")"
printf '%-10s %10s %10s %14s %12s\n' tool "wall s" "cpu s" "packets/s" "peak MB"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for tool in tcpdump tcpresetd; do
    wall=$(awk -v t=$tool '$1==t {print $2}' "$out.runs" | median)
    cpu=$(awk -v t=$tool '$1==t {print $3}' "$out.runs" | median)
    rss=$(awk -v t=$tool '$1==t {print $4}' "$out.runs" | median)
    printf '%-10s %10s %10s %14.0f %12.1f\n' "$tool" "$wall" "$cpu" \
        "$(echo "$packets / $wall" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
    eval "${tool}_wall=$wall ${tool}_rss=$rss"
done
load=$(awk '$1=="load" {print $2}' "$out.runs" | median)
echo "of which loading the 100000 rules (a one-packet run): $load s;" \
    "packets alone: $(echo "$packets / ($tcpresetd_wall - $load)" | bc) packets/s"
verdict() { if [[ $2 == 1 ]]; then echo "met:     $1"; else echo "NOT met: $1"; fi; }
verdict ">= 3,000,000 packets/s" "$(echo "$packets / $tcpresetd_wall >= 3000000" | bc -l)"
verdict "not slower than tcpdump (median wall)" "$(echo "$tcpresetd_wall <= $tcpdump_wall" | bc -l)"
verdict "peak memory <= 150 MB" "$(echo "$tcpresetd_rss <= 150 * 1024" | bc -l)"
