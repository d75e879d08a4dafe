#!/usr/bin/env bash
# Builds the fuzz targets of fuzz/ and runs each for SECONDS (default 600), one at a time in a
# single process (no -jobs, whose output would go to fuzz-N.log), on stable Rust without a
# sanitizer (`cargo fuzz build -s none -O`).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The live corpus grows in fuzz/corpus/TARGET
# (not committed), seeded from fuzz/seeds/TARGET; a crash is written to fuzz/artifacts/TARGET and
# the script stops with an error. Each run's last libFuzzer line (executions, time) is printed.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
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
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    mkdir -p logs; log="logs/$t.log"
    echo "== fuzz $t for ${seconds}s"
    if ! cargo fuzz run -s none -O "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "fuzz target $t failed: see fuzz/$log and the input in fuzz/artifacts/$t/" >&2
        exit 1
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" | tr '\n' ' '
    echo
done
