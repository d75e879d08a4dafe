#!/usr/bin/env bash
# Builds the .deb (target/debian/tcpreset_VERSION-1_ARCH.deb) with cargo-deb, from the metadata in
# Cargo.toml: release binaries (stripped), gzipped man pages and completions (examples/gen-docs.rs), the systemd
# unit, the sysusers snippet, the default configuration and debian/ maintainer scripts.
# Installs cargo-deb first if it is missing. Prints the path of the .deb on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
    echo "== installing cargo-deb (cargo install cargo-deb --locked)"
    cargo install cargo-deb --locked --quiet
fi
release=${CARGO_TARGET_DIR:-target}/release
echo "== building the release binaries and the docs"
cargo build --release --locked --bin tcpresetd --bin tcpreset --bin tcpreset-hunt
rm -rf "$release/docs"
cargo run --locked --quiet --example gen-docs -- "$release/docs" >/dev/null
# Debian ships man pages gzipped (reproducibly: -n); install.sh uses the plain ones.
mkdir -p "$release/docs/man-gz"
for page in "$release"/docs/man/*; do
    gzip -9nc "$page" >"$release/docs/man-gz/${page##*/}.gz"
done
echo "== cargo deb"
cargo deb --locked --no-build --strip --quiet
