#!/usr/bin/env bash
# Installs the Debian packages that building, testing and the demo need, if any is missing.
set -euo pipefail
packages=(libpcap-dev tcpdump iproute2 ethtool dsniff socat openssh-server openssh-client tcpreplay
    systemd man-db bsdextrautils strace    # scripts/check-units.sh, test-packaging.sh
    debootstrap systemd-container binutils # scripts/test-systemd.sh; strip for cargo xtask stage
    openssl python3-pip)                   # tests/hunt_https.rs (a CA and a TLS server); osmem-server
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "missing packages: ${missing[*]}; run as root, or: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    echo "== installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
    echo "cargo is not installed: install a Rust toolchain (https://rustup.rs) and retry" >&2
    exit 1
fi
# tests/hunt_cluster.rs: an in-memory OpenSearch-compatible server (the osmem-server binary).
if ! python3 -c 'import osmem_server' 2>/dev/null && ! command -v osmem-server >/dev/null; then
    echo "== installing osmem-server (pip)"
    pip install --quiet osmem-server 2>/dev/null || pip install --quiet --break-system-packages osmem-server
fi
