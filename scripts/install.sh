#!/usr/bin/env bash
# Installs tcpreset on a sensor: binaries, the systemd unit, the sysusers snippet and the
# tcpreset group / tcpresetd user, the default configuration (an existing one is kept), man pages
# and shell completions. Safe to run again.
#
# usage: [DESTDIR=/stage] scripts/install.sh [--prefix DIR]     (default prefix: /usr/local)
#
# Builds the release binaries and the docs first when cargo is there (a no-op when up to date).
# With DESTDIR the files are only staged: no user is created and systemd is not told.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=/usr/local
while (($#)); do
    case $1 in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument '$1'; usage: [DESTDIR=DIR] $0 [--prefix DIR]" >&2; exit 2 ;;
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

release=${CARGO_TARGET_DIR:-target}/release
docs=$release/docs
bins=(tcpresetd tcpreset tcpreset-hunt)
if command -v cargo >/dev/null; then
    echo "== building the release binaries and the docs"
    cargo build --release --locked --bin tcpresetd --bin tcpreset --bin tcpreset-hunt
    rm -rf "$docs"
    cargo run --locked --quiet --example gen-docs -- "$docs" >/dev/null
fi
for f in "${bins[@]/#/$release/}" "$docs/man/tcpresetd.8"; do
    if [[ ! -s $f ]]; then
        echo "install.sh: $f is missing and cargo is not on PATH; build first (cargo build --release; cargo run --example gen-docs -- $docs)" >&2
        exit 1
    fi
done

# Vendor locations under /usr; admin locations under /etc for any other prefix.
if [[ $prefix == /usr ]]; then
    unitdir=/usr/lib/systemd/system sysusersdir=/usr/lib/sysusers.d
else
    unitdir=/etc/systemd/system sysusersdir=/etc/sysusers.d
fi
share=$prefix/share

echo "== installing into ${dest:-/} (prefix $prefix)"
install -d -m 0755 "$dest$prefix/bin" "$dest$prefix/sbin"
install -m 0755 "$release/tcpresetd" "$dest$prefix/sbin/tcpresetd"
install -m 0755 "$release/tcpreset" "$release/tcpreset-hunt" "$dest$prefix/bin/"

install -d -m 0755 "$dest$unitdir" "$dest$sysusersdir"
sed "s|^ExecStart=/usr/sbin/tcpresetd|ExecStart=$prefix/sbin/tcpresetd|" systemd/tcpresetd.service \
    >"$dest$unitdir/tcpresetd.service.tmp"
chmod 0644 "$dest$unitdir/tcpresetd.service.tmp"
mv "$dest$unitdir/tcpresetd.service.tmp" "$dest$unitdir/tcpresetd.service"
install -m 0644 systemd/tcpreset.sysusers "$dest$sysusersdir/tcpreset.conf"

install -d -m 0755 "$dest/etc/tcpreset"
if [[ -e $dest/etc/tcpreset/tcpresetd.toml ]]; then
    echo "   kept the existing $dest/etc/tcpreset/tcpresetd.toml (the shipped one is in $share/doc/tcpreset)"
else
    install -m 0644 config/tcpresetd.toml "$dest/etc/tcpreset/tcpresetd.toml"
fi

install -d -m 0755 "$dest$share/man/man1" "$dest$share/man/man8" "$dest$share/doc/tcpreset"
install -m 0644 "$docs"/man/*.1 "$dest$share/man/man1/"
install -m 0644 "$docs"/man/*.8 "$dest$share/man/man8/"
install -m 0644 README.md config/tcpresetd.toml "$dest$share/doc/tcpreset/"
for shell_dir in bash:bash-completion/completions zsh:zsh/site-functions fish:fish/vendor_completions.d; do
    install -d -m 0755 "$dest$share/${shell_dir#*:}"
    install -m 0644 "$docs/completions/${shell_dir%%:*}"/* "$dest$share/${shell_dir#*:}/"
done

if [[ -n $dest ]]; then
    echo "== staged in $dest; on the sensor, create the users with: systemd-sysusers $sysusersdir/tcpreset.conf"
    exit 0
fi

echo "== group tcpreset and user tcpresetd"
if command -v systemd-sysusers >/dev/null; then
    systemd-sysusers "$sysusersdir/tcpreset.conf"
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
