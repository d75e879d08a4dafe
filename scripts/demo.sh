#!/usr/bin/env bash
# The main job, end to end, on this machine: a sensor in network namespaces cuts a live TCP
# connection of a host with the documented command line, and both ends see the reset.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
echo "== building (cargo build --release)"
cargo build --release --quiet --bins
bin=$PWD/target/release
lab=demo$$
sock=/tmp/tcpreset-$lab.sock
log=/tmp/tcpreset-$lab.log

cleanup() {
    [[ -n ${daemon:-} ]] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
    scripts/lab.sh down "$lab"
    rm -rf "$sock" "/tmp/tcpreset-$lab.state"
}
trap cleanup EXIT

echo "== lab: client 10.77.0.1 and server 10.77.0.2 on a hub; the sensor sniffs eth1 (no IP) and resets via eth0"
scripts/lab.sh up "$lab"
ip netns exec "$lab-sen" "$bin/tcpresetd" --config /dev/null --state-dir "/tmp/tcpreset-$lab.state" --socket "$sock" --track eth1 2>"$log" &
daemon=$!
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done

show() { # the JSON report of tcpreset-lab trial
    python3 -c '
import json, sys
r = json.loads(sys.argv[1])
for end, ip in (("client", sys.argv[2]), ("server", "10.77.0.2")):
    e = r[end]
    what = "%s %.1f ms after tcpreset was launched" % (e["error"], e["ms"]) if e["error"] else "nothing (still connected)"
    print(f"   {end:6} {ip:9} saw: {what}")
print("   => both ends reset" if r["killed_both"] else "   => NOT reset on both ends")' "$@"
}
tcpreset_in_sensor=(ip netns exec "$lab-sen" env TCPRESET_SOCKET="$sock" "$bin/tcpreset")

line=(demo-engid -i eth1 -o eth0 -h 10.77.0.1 -d 180)
echo "== a chat connection 10.77.0.1 -> 10.77.0.2:8080 (1 byte every 10 ms each way); then, in the sensor:"
echo "   tcpreset ${line[*]}"
report=$("$bin/tcpreset-lab" trial --client-ns "$lab-cli" --server-ns "$lab-srv" \
    --server 10.77.0.2:8080 --mode chat --run "${tcpreset_in_sensor[@]}" "${line[@]}" \
    2> >(grep -v READY | sed 's/^/   /' >&2)) || true
show "$report" 10.77.0.1

echo "== a new connection attempt of 10.77.0.1 while the rule lives"
"$bin/tcpreset-lab" connect --client-ns "$lab-cli" --server-ns "$lab-srv" --server 10.77.0.2:8081 |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print("   established" if r["established"] else "   refused: %s" % r["error"])' || true

echo "== an idle connection 10.77.0.3 -> 10.77.0.2:2222 (silent, like an SSH session waiting for input)"
line=(idle-c2 -i eth1 -o eth0 -h 10.77.0.3 -d 60)
echo "   tcpreset ${line[*]}"
report=$("$bin/tcpreset-lab" trial --client-ns "$lab-oth" --server-ns "$lab-srv" \
    --server 10.77.0.2:2222 --mode idle --run "${tcpreset_in_sensor[@]}" "${line[@]}" \
    2> >(grep -v READY | sed 's/^/   /' >&2)) || true
show "$report" 10.77.0.3

echo "== tcpreset list"
ip netns exec "$lab-sen" "$bin/tcpreset" --socket "$sock" list
echo "== daemon log"
sed -e 's/^/   /' "$log" | tail -n 8
