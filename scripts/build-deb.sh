#!/usr/bin/env bash
# Builds the .deb (target/debian/tcpreset_VERSION-1_ARCH.deb) with cargo-deb: `cargo xtask stage
# --prefix /usr` lays out the one install tree in target/stage (stripped binaries, gzipped man
# pages, completions, the unit, the sysusers snippet, the configuration, docs and playbooks; the
# tree scripts/install.sh installs too), and the assets in Cargo.toml package it as staged, with
# the debian/ maintainer scripts. Installs cargo-deb first if it is missing. Prints the path of
# the .deb on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
    echo "== installing cargo-deb (cargo install cargo-deb --locked)"
    cargo install cargo-deb --locked --quiet
fi
echo "== staging the release build in target/stage"
rm -rf target/stage
cargo xtask stage --destdir target/stage --prefix /usr
echo "== cargo deb"
cargo deb --locked --no-build --package tcpreset --quiet
