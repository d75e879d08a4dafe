#!/usr/bin/env bash
# Builds the fuzz targets of fuzz/ and runs each for SECONDS (default 600), one at a time in a
# single process (no -jobs, whose output would go to fuzz-N.log), on stable Rust without a
# sanitizer (`cargo fuzz build -s none -O`).
#
#   scripts/fuzz.sh [--cpu] [SECONDS] [TARGET...]
#
# SECONDS is wall time (libFuzzer's -max_total_time); with --cpu it is the CPU time the fuzzer
# itself spends (user + system, read from /proc), so a run beside other work still fuzzes as long
# as asked; the fuzzer is then stopped with SIGINT and prints its final statistics.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The live corpus grows in fuzz/corpus/TARGET
# (not committed), seeded from fuzz/seeds/TARGET; a crash is written to fuzz/artifacts/TARGET and
# the script stops with an error. Each run's last libFuzzer line (executions, time) is printed.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
budget=wall
if [ "${1:-}" = "--cpu" ]; then
    budget=cpu
    shift
fi
seconds=${1:-600}
shift || true
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed; install it with: cargo install cargo-fuzz" >&2
    exit 1
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
cargo fuzz build -s none -O
bin_dir="target/$(rustc -vV | sed -n 's/^host: //p')/release"
tick=$(getconf CLK_TCK)

# CPU seconds (user + system) spent so far by process $1, or nothing once it is gone.
cpu_seconds() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    # Fields after the command name (which may hold spaces) start at field 3: utime is 14, stime 15.
    stat=${stat##*) }
    set -- $stat
    echo $(((${12} + ${13}) / tick))
}

for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    mkdir -p logs; log="logs/$t.log"
    echo "== fuzz $t for ${seconds}s ($budget time)"
    if [ "$budget" = wall ]; then
        limit=$seconds
    else
        limit=$((seconds * 100)) # never reached: the CPU budget stops it first
    fi
    "$bin_dir/$t" -artifact_prefix="artifacts/$t/" "corpus/$t" "seeds/$t" \
        -max_total_time="$limit" -print_final_stats=1 >"$log" 2>&1 &
    pid=$!
    used=0
    if [ "$budget" = cpu ]; then
        while kill -0 "$pid" 2>/dev/null; do
            used=$(cpu_seconds "$pid")
            [ -n "$used" ] || break
            if [ "$used" -ge "$seconds" ]; then
                kill -INT "$pid"
                break
            fi
            sleep 5
        done
    fi
    status=0
    wait "$pid" || status=$?
    # libFuzzer exits 72 after SIGINT once it has printed its statistics.
    if [ "$status" -ne 0 ] && ! { [ "$budget" = cpu ] && [ "$status" -eq 72 ] &&
        ! grep -q 'ERROR: libFuzzer' "$log"; }; then
        tail -n 40 "$log" >&2
        echo "fuzz target $t failed: see fuzz/$log and the input in fuzz/artifacts/$t/" >&2
        exit 1
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" | tr '\n' ' '
    [ "$budget" = cpu ] && echo -n "cpu_seconds: $used"
    echo
done
