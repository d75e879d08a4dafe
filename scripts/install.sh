#!/usr/bin/env bash
# Installs tcpreset on a sensor: the tree that `cargo xtask stage` lays out (binaries, the systemd
# unit, the sysusers snippet, the default configuration, man pages, completions, README and
# example playbooks; the .deb packages the same tree), then the tcpreset group and tcpresetd user.
# An existing /etc/tcpreset/tcpresetd.toml is kept. Safe to run again.
#
# usage: [DESTDIR=/stage] scripts/install.sh [--prefix DIR] [--staged DIR]
#
# --prefix (default /usr/local) is given to `cargo xtask stage`, which builds first (a no-op
# when up to date); --staged DIR installs a tree staged before (with the same prefix) instead,
# where cargo is missing. With DESTDIR the files are only copied: no user is created and systemd
# is not told.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=/usr/local staged=
while (($#)); do
    case $1 in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --staged) staged=${2:?--staged needs a directory}; shift 2 ;;
        --staged=*) staged=${1#--staged=}; shift ;;
        -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument '$1'; usage: [DESTDIR=DIR] $0 [--prefix DIR] [--staged DIR]" >&2; exit 2 ;;
    esac
done
if [[ $prefix != /* ]]; then
    echo "install.sh: --prefix must be an absolute path, not '$prefix'" >&2
    exit 2
fi
prefix=${prefix%/}
dest=${DESTDIR:-}
dest=${dest%/}
if [[ -z $dest && $(id -u) -ne 0 ]]; then
    echo "install.sh: installing into / needs root (sudo $0), or stage with DESTDIR=DIR" >&2
    exit 1
fi

tmp=
trap '[[ -z $tmp ]] || rm -rf "$tmp"' EXIT
if [[ -z $staged ]]; then
    if ! command -v cargo >/dev/null; then
        echo "install.sh: cargo is not on PATH; stage elsewhere (cargo xtask stage --destdir DIR --prefix $prefix) and pass --staged DIR" >&2
        exit 1
    fi
    tmp=$(mktemp -d)
    staged=$tmp/stage
    echo "== staging the release build (cargo xtask stage --prefix $prefix)"
    cargo xtask stage --destdir "$staged" --prefix "$prefix" >/dev/null
fi
[[ -x $staged$prefix/sbin/tcpresetd ]] || {
    echo "install.sh: $staged has no $prefix/sbin/tcpresetd; stage it with cargo xtask stage --destdir $staged --prefix $prefix" >&2
    exit 1
}

echo "== installing into ${dest:-/} (prefix $prefix)"
config=etc/tcpreset/tcpresetd.toml
while IFS= read -r -d '' file; do
    file=${file#./}
    if [[ $file == "$config" && -e $dest/$config ]]; then
        echo "   kept the existing $dest/$config (the shipped one is in $prefix/share/doc/tcpreset)"
        continue
    fi
    install -D -m "$(stat -c %a "$staged/$file")" "$staged/$file" "$dest/$file"
done < <(cd "$staged" && find . -type f -print0 | sort -z)

if [[ -n $dest ]]; then
    echo "== copied into $dest; on the sensor, create the users with systemd-sysusers"
    exit 0
fi

echo "== group tcpreset and user tcpresetd"
sysusers=$(cd "$staged" && find . -path '*/sysusers.d/tcpreset.conf' | sed 's|^\.||')
if command -v systemd-sysusers >/dev/null; then
    systemd-sysusers "$sysusers"
else
    getent group tcpreset >/dev/null || groupadd --system tcpreset
    getent passwd tcpresetd >/dev/null ||
        useradd --system --gid tcpreset --no-create-home --home-dir / \
            --shell /usr/sbin/nologin --comment "tcpreset daemon" tcpresetd
fi
if [[ -d /run/systemd/system ]]; then
    systemctl daemon-reload
fi
cat <<EOF
== installed. Next:
   edit /etc/tcpreset/tcpresetd.toml (protected networks first), then
   systemctl enable --now tcpresetd
   usermod -aG tcpreset SSHUSER     # the playbook's SSH user may then run tcpreset
EOF
