#!/usr/bin/env bash
# Durable registration benchmark (prints figures; not a test): tcpresetd in the namespace lab,
# its state directory on this machine's disk (not a tmpfs), and `tcpreset-lab register`'s
# concurrent clients on the control socket: fill the table with RULES rules, add OPS new ones
# at that size, refresh OPS, then refresh 200 from one client (the latency a lone playbook sees).
# Every answer counted was acknowledged, so its change is on disk (journal + group commit).
#
#   scripts/bench-register.sh [-r RULES] [-c CLIENTS] [-o OPS] [-d STATE_PARENT]
#
# The lab is named ${TCPRESET_LAB_PREFIX}breg$$.
set -euo pipefail
cd "$(dirname "$0")/.."
rules=10000 clients=64 ops=10000 parent=/var/tmp
while getopts "r:c:o:d:" o; do
    case $o in r) rules=$OPTARG ;; c) clients=$OPTARG ;; o) ops=$OPTARG ;; d) parent=$OPTARG ;; *) exit 2 ;; esac
done
scripts/install-deps.sh
cargo build --release --quiet --bins
bin=$PWD/target/release
lab=${TCPRESET_LAB_PREFIX:-}breg$$
work=$(mktemp -d -p "$parent" tcpreset-breg.XXXXXX)
sock=$work/tcpresetd.sock
cleanup() {
    [[ -n ${daemon:-} ]] && { kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null || true; }
    scripts/lab.sh down "$lab"
    rm -rf "$work"
}
trap cleanup EXIT
scripts/lab.sh up "$lab" >/dev/null
printf 'max_rules = %d\ntrack = ["eth1"]\n' $((rules + ops + 1000)) >"$work/tcpresetd.toml"
ip netns exec "$lab-sen" "$bin/tcpresetd" --config "$work/tcpresetd.toml" --state-dir "$work/state" \
    --socket "$sock" 2>"$work/daemon.log" &
daemon=$!
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
[[ -S $sock ]] || { cat "$work/daemon.log" >&2; exit 1; }
echo "state directory on $(df --output=source,fstype "$work" | tail -1); $(nproc) cores; $(date -u +%FT%TZ)"
${PERF:-} "$bin/tcpreset-lab" register --socket "$sock" --rules "$rules" --clients "$clients" --ops "$ops"
echo "journal: $(wc -l <"$work/state/rules.journal") lines now; rules.json $(stat -c %s "$work/state/rules.json") bytes"
