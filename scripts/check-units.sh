#!/usr/bin/env bash
# Checks the systemd files in systemd/ against an installed tree:
#   - `systemd-analyze verify` of the unit prints nothing (its ExecStart binary and the man pages
#     of Documentation= exist in the tree, every key is known), and a copy with a missing
#     ExecStart binary is reported, so the check can fail;
#   - `systemd-analyze security --offline` rates the unit at most THRESHOLD/100
#     (default 30, i.e. exposure 3.0);
#   - the unit's RuntimeDirectory/StateDirectory are the directories of the shipped config's
#     socket and state_dir;
#   - `systemd-sysusers --root` creates group tcpreset and user tcpresetd (primary group tcpreset,
#     no login shell) from the snippet.
#
# usage: scripts/check-units.sh [ROOT]   ROOT: a tree staged by `DESTDIR=ROOT scripts/install.sh
#        --prefix /usr`; without it one is staged in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
threshold=${THRESHOLD:-30}

fail() {
    echo "check-units: FAIL: $*" >&2
    exit 1
}
trap 'echo "check-units: FAIL: line $LINENO: $BASH_COMMAND" >&2' ERR
for tool in systemd-analyze systemd-sysusers; do
    command -v "$tool" >/dev/null || fail "$tool is missing; run scripts/install-deps.sh (Debian package systemd)"
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=${1:-}
if [[ -z $root ]]; then
    root=$tmp/root
    DESTDIR=$root scripts/install.sh --prefix /usr >/dev/null
fi
root=$(realpath "$root")
unit=$root/usr/lib/systemd/system/tcpresetd.service
[[ -f $unit ]] || fail "$unit is missing: stage with DESTDIR=$root scripts/install.sh --prefix /usr"
cmp -s <(grep -v '^ExecStart=' systemd/tcpresetd.service) <(grep -v '^ExecStart=' "$unit") ||
    fail "$unit differs from systemd/tcpresetd.service beyond ExecStart; stage it again"

# verify checks ExecStart on this machine, so the copy it checks starts the staged binary (--root
# would need a whole systemd tree). Documentation=man:... is looked up with man(1): MANPATH.
verify() { # UNIT_FILE EXEC_START
    mkdir -p "$tmp/verify"
    sed "s|^ExecStart=/usr/sbin/tcpresetd|ExecStart=$2|" "$1" >"$tmp/verify/tcpresetd.service"
    MANPATH=$root/usr/share/man systemd-analyze verify "$tmp/verify/tcpresetd.service" 2>&1
}
echo "== systemd-analyze verify tcpresetd.service"
grep -qx 'ExecStart=/usr/sbin/tcpresetd' "$unit" || fail "$unit does not start /usr/sbin/tcpresetd"
out=$(verify "$unit" "$root/usr/sbin/tcpresetd") || fail "systemd-analyze verify failed: $out"
[[ -z $out ]] || fail "systemd-analyze verify reported: $out"
out=$(verify "$unit" "$root/usr/sbin/tcpresetd-missing") && [[ -z $out ]] &&
    fail "verify accepted a unit whose ExecStart binary does not exist"
grep -q 'tcpresetd-missing' <<<"$out" || fail "verify did not name the missing binary: $out"

echo "== systemd-analyze security (offline, at most $threshold/100)"
report=$(systemd-analyze security --offline=yes --threshold="$threshold" "$tmp/verify/tcpresetd.service" 2>&1) ||
    fail "exposure above $threshold/100: $(tail -n 1 <<<"$report")"
echo "   $(grep -o 'Overall exposure level.*' <<<"$report")"

echo "== unit directories match the shipped configuration"
key() { sed -n "s/^$1=//p" "$unit"; }
conf() { sed -n "s/^$1 *= *\"\(.*\)\"/\1/p" config/tcpresetd.toml; }
[[ $(dirname "$(conf socket)") == "/run/$(key RuntimeDirectory)" ]] ||
    fail "socket $(conf socket) is not in RuntimeDirectory=$(key RuntimeDirectory)"
[[ $(conf state_dir) == "/var/lib/$(key StateDirectory)" ]] ||
    fail "state_dir $(conf state_dir) is not StateDirectory=$(key StateDirectory)"
[[ $(key Group) == "$(conf socket_group)" ]] ||
    fail "Group=$(key Group) is not socket_group $(conf socket_group): the daemon could not chown its socket"

echo "== systemd-sysusers creates the group and the user"
sysroot=$tmp/sysroot
mkdir -p "$sysroot/etc"
systemd-sysusers --root="$sysroot" "$root/usr/lib/sysusers.d/tcpreset.conf" >/dev/null 2>&1 ||
    fail "systemd-sysusers rejected $root/usr/lib/sysusers.d/tcpreset.conf"
gid=$(awk -F: '$1 == "tcpreset" { print $3 }' "$sysroot/etc/group")
[[ -n $gid ]] || fail "no group tcpreset in $(cat "$sysroot/etc/group")"
IFS=: read -r _ _ uid ugid _ _ shell < <(grep '^tcpresetd:' "$sysroot/etc/passwd") ||
    fail "no user tcpresetd in $(cat "$sysroot/etc/passwd")"
((uid < 1000)) || fail "tcpresetd has uid $uid, not a system uid"
[[ $ugid == "$gid" ]] || fail "tcpresetd's primary group is $ugid, not tcpreset ($gid)"
[[ $shell == */nologin ]] || fail "tcpresetd has the login shell $shell"
[[ $(key User) == tcpresetd ]] || fail "User=$(key User) is not the user the snippet creates"
echo "check-units: ok"
