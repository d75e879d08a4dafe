#!/usr/bin/env bash
# Runs every test of tcpreset: formatting, lints, unit, replay and live namespace tests, packaging,
# the unit under a real systemd, and a short fuzzing run of each fuzz target when cargo-fuzz is
# installed.
# Installs what is missing first (Debian packages; needs root, as the live tests do).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test (unit, replay, live)"
cargo test --locked --all-targets -- --test-threads="${TEST_THREADS:-4}"
echo "== packaging: install.sh, systemd units, .deb (release build)"
scripts/test-packaging.sh
echo "== the unit under a real systemd: a minimal Debian booted in the lab's sensor namespace"
scripts/test-systemd.sh
echo "== fuzzing: each target 20 s"
if cargo fuzz --version >/dev/null 2>&1; then
    scripts/fuzz.sh 20
else
    echo "fuzzing skipped: cargo-fuzz is not installed (cargo install cargo-fuzz enables it)"
fi
