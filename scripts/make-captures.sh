#!/usr/bin/env bash
# Records the small real-kernel captures under tests/data/ that the replay tests assert on.
# Each is tcpdump on the sensor's sniff port (eth1) while tcpreset-lab drives real TCP between
# the lab's namespaces; no daemon runs, so the captures show undisturbed connections.
#
#   scripts/make-captures.sh        (re-running gives captures of the same shape; the sequence
#                                    numbers and times differ, and the tests derive from them)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --quiet --bin tcpreset-lab
peer=$PWD/target/debug/tcpreset-lab
out=tests/data
lab=cap$$
trap 'scripts/lab.sh down $lab' EXIT
scripts/lab.sh up "$lab"

# record FILE TCPDUMP_FILTER_ARGS -- PEER_ARGS: capture while one peer command runs.
record() {
    local file=$1; shift
    local dump=()
    while [[ $1 != -- ]]; do dump+=("$1"); shift; done
    shift
    ip netns exec "$lab-sen" tcpdump -Z root -i eth1 -nn -U --immediate-mode "${dump[@]}" -w "$out/$file" 2>"$out/.tcpdump.err" &
    local pid=$!
    for _ in $(seq 100); do grep -q listening "$out/.tcpdump.err" && break; sleep 0.02; done
    "$@" >/dev/null 2>&1 || true
    sleep 0.3
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$out/.tcpdump.err"
    echo "$file: $(tcpdump -nn -r "$out/$file" 2>/dev/null | wc -l) packets"
}

ends() { echo --client-ns "$lab-$1" --server-ns "$lab-srv" --server "$2" --client-bind "$3"; }

# 1.5 s of chat (1 byte every 10 ms each way) with handshake and FIN close.
record chat-v4.pcap tcp -- "$peer" trial $(ends cli 10.77.0.2:5001 10.77.0.1:40001) --mode chat --hold-ms 1500
record chat-v6.pcap tcp -- "$peer" trial $(ends cli [fd77::2]:5001 [fd77::1]:40001) --mode chat --hold-ms 300
# A full-speed transfer, cut to its first 400 segments (headers only).
record bulk-v4.pcap -s 96 -c 400 tcp -- "$peer" trial $(ends cli 10.77.0.2:5002 10.77.0.1:40002) --mode bulk --hold-ms 200
# Two hosts at once: 10.77.0.1 to port 5001 and 10.77.0.3 to port 5003.
record two-hosts-v4.pcap tcp -- bash -c "
    $peer trial $(ends cli 10.77.0.2:5001 10.77.0.1:40003) --mode chat --hold-ms 400 &
    $peer trial $(ends oth 10.77.0.2:5003 10.77.0.3:40004) --mode chat --hold-ms 400 &
    $peer trial $(ends cli 10.77.0.2:5004 10.77.0.1:40005) --mode chat --hold-ms 400 &
    wait"
