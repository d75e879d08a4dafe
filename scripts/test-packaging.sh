#!/usr/bin/env bash
# Tests the packaging (as root): scripts/install.sh into staging trees (files, modes, man pages
# that render, bash completions that complete, idempotence, --prefix), scripts/check-units.sh,
# the .deb from scripts/build-deb.sh (dpkg-deb -I/-c: exactly the files install.sh installs, with
# the same modes and bytes), then dpkg -i of the .deb here: users,
# systemd-analyze verify of the installed unit, the installed daemon run as its unit runs it
# (user tcpresetd, only CAP_NET_RAW and CAP_NET_ADMIN) in a network namespace of its own, its
# READY=1 and watchdog pings on a NOTIFY_SOCKET (traced too), socket rights by group membership, its strace held against the unit's sandbox (system calls, address
# families, W^X, writes only in its runtime and state directories: what a sandbox that answers
# EPERM would hide), and dpkg -r / -P. The unit itself, under a real systemd, is proven by
# scripts/test-systemd.sh.
# Removes what it installed.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

if [[ $(id -u) -ne 0 ]]; then
    echo "test-packaging: needs root (dpkg -i, users, network namespaces): sudo $0" >&2
    exit 1
fi
scripts/install-deps.sh

fail() {
    echo "test-packaging: FAIL: $*" >&2
    exit 1
}
trap 'echo "test-packaging: FAIL: line $LINENO: $BASH_COMMAND" >&2' ERR
tmp=$(mktemp -d)
netns=tcpreset-pkg-$$
daemon_pid= strace_job= notify_pid=
cleanup() {
    [[ -z $notify_pid ]] || kill "$notify_pid" 2>/dev/null || true
    if [[ -n $daemon_pid ]]; then
        kill "$daemon_pid" 2>/dev/null || true
        wait "$strace_job" 2>/dev/null || true
    fi
    ip netns del "$netns" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

expect_mode() { # PATH MODE
    [[ -e $1 ]] || fail "$1 is missing"
    [[ -s $1 ]] || fail "$1 is empty"
    local mode
    mode=$(stat -c %a "$1")
    [[ $mode == "$2" ]] || fail "$1 has mode $mode, not $2"
}

# Renders a man page; fails on groff warnings or when a wanted text is absent.
check_man() { # FILE TEXT...
    local file=$1 text
    shift
    local warnings
    warnings=$(zcat -f "$file" | groff -man -Tutf8 -ww -z 2>&1) || fail "groff failed on $file"
    [[ -z $warnings ]] || fail "groff warns about $file: $warnings"
    text=$(MANWIDTH=100 man -l "$file" 2>&1 | col -b) || fail "man -l $file failed"
    for want in "$@"; do
        grep -qF -- "$want" <<<"$text" || fail "man page $file lacks '$want'"
    done
}

# Completes WORDS... with the bash completion in FILE; prints the candidates, one a line.
complete_bash() { # FILE CMD WORDS...
    bash -c 'source "$1"; shift; fn=$(complete -p "$1" | sed -n "s/.*-F \([^ ]*\).*/\1/p")
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        "$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
        printf "%s\n" "${COMPREPLY[@]}"' _ "$@"
}

echo "== install.sh into a staging tree (--prefix /usr)"
stage=$tmp/stage
DESTDIR=$stage scripts/install.sh --prefix /usr >/dev/null
expect_mode "$stage/usr/sbin/tcpresetd" 755
expect_mode "$stage/usr/bin/tcpreset" 755
expect_mode "$stage/usr/bin/tcpreset-hunt" 755
expect_mode "$stage/usr/lib/systemd/system/tcpresetd.service" 644
expect_mode "$stage/usr/lib/sysusers.d/tcpreset.conf" 644
expect_mode "$stage/etc/tcpreset/tcpresetd.toml" 644
for page in man1/tcpreset.1 man1/tcpreset-list.1 man1/tcpreset-hunt.1 man1/tcpreset-hunt-run.1 man8/tcpresetd.8; do
    expect_mode "$stage/usr/share/man/$page.gz" 644
done
for name in tcpreset tcpresetd tcpreset-hunt; do
    expect_mode "$stage/usr/share/bash-completion/completions/$name" 644
    expect_mode "$stage/usr/share/zsh/vendor-completions/_$name" 644
    expect_mode "$stage/usr/share/fish/vendor_completions.d/$name.fish" 644
done
for file in README.md tcpresetd.toml examples/playbooks/failed-logins.yaml; do
    expect_mode "$stage/usr/share/doc/tcpreset/$file" 644
done
grep -qx 'ExecStart=/usr/sbin/tcpresetd' "$stage/usr/lib/systemd/system/tcpresetd.service" ||
    fail "the staged unit does not start /usr/sbin/tcpresetd"
"$stage/usr/bin/tcpreset" --help | grep -qF -- '-h HOST' || fail "the staged tcpreset --help lacks '-h HOST'"
"$stage/usr/sbin/tcpresetd" --version | grep -qx "tcpresetd $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml)" ||
    fail "the staged tcpresetd --version is wrong"

echo "== man pages render"
man=$stage/usr/share/man
check_man "$man/man1/tcpreset.1.gz" "ENGID -i SNIFF_IF -o RESET_IF -h HOST [-p PORT] -d SECONDS" \
    "exit codes" "tcpreset-list(1)" "--socket"
check_man "$man/man1/tcpreset-add.1.gz" "-h <HOST>" "IPv4 or IPv6 address of the host to isolate"
check_man "$man/man8/tcpresetd.8.gz" "--state-dir" "SIGHUP" "/etc/tcpreset/tcpresetd.toml" "CAP_NET_RAW"
check_man "$man/man1/tcpreset-hunt.1.gz" "tcpreset-hunt-schedule(1)"
check_man "$man/man1/tcpreset-hunt-run.1.gz" "--dry-run" "--now"

echo "== bash completions complete"
bash_dir=$stage/usr/share/bash-completion/completions
for name in tcpreset tcpresetd tcpreset-hunt; do
    bash -n "$bash_dir/$name" || fail "$bash_dir/$name is not valid bash"
done
grep -qx list <(complete_bash "$bash_dir/tcpreset" tcpreset li) || fail "bash does not complete 'tcpreset li' to list"
grep -qx -- --state-dir <(complete_bash "$bash_dir/tcpresetd" tcpresetd --st) ||
    fail "bash does not complete 'tcpresetd --st' to --state-dir"
grep -qx schedule <(complete_bash "$bash_dir/tcpreset-hunt" tcpreset-hunt sch) ||
    fail "bash does not complete 'tcpreset-hunt sch' to schedule"
if complete_bash "$bash_dir/tcpreset" tcpreset zz | grep -q .; then
    fail "bash completes 'tcpreset zz' to something"
fi

echo "== install.sh again: the same files, a changed configuration kept"
echo "# local change" >>"$stage/etc/tcpreset/tcpresetd.toml"
sums() { (cd "$stage" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
before=$(sums)
DESTDIR=$stage scripts/install.sh --prefix /usr >/dev/null
[[ $(sums) == "$before" ]] || fail "a second install.sh changed the tree: $(diff <(echo "$before") <(sums))"
grep -q 'local change' "$stage/etc/tcpreset/tcpresetd.toml" || fail "install.sh overwrote the existing configuration"

echo "== install.sh --prefix /usr/local"
local_stage=$tmp/local
DESTDIR=$local_stage scripts/install.sh --prefix /usr/local >/dev/null
expect_mode "$local_stage/usr/local/sbin/tcpresetd" 755
expect_mode "$local_stage/usr/local/share/man/man8/tcpresetd.8.gz" 644
expect_mode "$local_stage/usr/local/share/zsh/site-functions/_tcpreset" 644
grep -qx 'ExecStart=/usr/local/sbin/tcpresetd' "$local_stage/etc/systemd/system/tcpresetd.service" ||
    fail "--prefix /usr/local: the unit in /etc/systemd/system does not start /usr/local/sbin/tcpresetd"
expect_mode "$local_stage/etc/sysusers.d/tcpreset.conf" 644
[[ ! -e $local_stage/usr/lib/systemd ]] || fail "--prefix /usr/local wrote under /usr/lib/systemd"

scripts/check-units.sh "$stage"

echo "== build the .deb"
deb=$(scripts/build-deb.sh | tail -n 1)
[[ -f $deb ]] || fail "build-deb.sh did not print the path of a .deb: '$deb'"
info=$(dpkg-deb -I "$deb")
for want in "Package: tcpreset" "Maintainer: tcpreset developers <tcpreset@localhost>" \
    "Depends: libc6, libpcap0.8" " postinst" " prerm" " postrm" " conffiles"; do
    grep -qF -- "$want" <<<"$info" || fail "dpkg-deb -I lacks '$want': $info"
done
[[ $(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles) == /etc/tcpreset/tcpresetd.toml ]] ||
    fail "conffiles is not exactly /etc/tcpreset/tcpresetd.toml"
contents=$(dpkg-deb -c "$deb")
owner='(root/root|0/0)'
for want in "-rwxr-xr-x $owner .* ./usr/sbin/tcpresetd$" "-rwxr-xr-x $owner .* ./usr/bin/tcpreset$" \
    "-rwxr-xr-x $owner .* ./usr/bin/tcpreset-hunt$" "-rw-r--r-- $owner .* ./usr/lib/systemd/system/tcpresetd.service$" \
    " ./usr/lib/sysusers.d/tcpreset.conf$" " ./etc/tcpreset/tcpresetd.toml$" \
    " ./usr/share/man/man8/tcpresetd.8.gz$" " ./usr/share/man/man1/tcpreset.1.gz$" \
    " ./usr/share/man/man1/tcpreset-hunt.1.gz$" " ./usr/share/bash-completion/completions/tcpreset$" \
    " ./usr/share/zsh/vendor-completions/_tcpreset$" " ./usr/share/fish/vendor_completions.d/tcpreset.fish$" \
    " ./usr/share/doc/tcpreset/README.md"; do
    grep -qE -- "$want" <<<"$contents" || fail "the .deb has no file matching '$want'"
done
if grep -qE 'tcpreset-lab|xtask' <<<"$contents"; then
    fail "the .deb ships a test tool: $(grep -E 'tcpreset-lab|xtask' <<<"$contents")"
fi
debroot=$tmp/deb
dpkg-deb -x "$deb" "$debroot"
cmp -s systemd/tcpresetd.service "$debroot/usr/lib/systemd/system/tcpresetd.service" || fail "the .deb's unit differs from systemd/"
# One layout: the .deb holds what install.sh --prefix /usr installed (plus the copyright file
# cargo-deb writes), with the same modes and bytes (the configuration was changed above).
deb_files=$(sed -E 's/^([-a-z]+) .* \.\/(.*)$/\1 \2/; /^d/d' <<<"$contents" | grep -vx -- '-rw-r--r-- usr/share/doc/tcpreset/copyright' | sort)
staged_files=$(cd "$stage" && find . -type f -printf '%M %P\n' | sort)
[[ $deb_files == "$staged_files" ]] ||
    fail "the .deb and install.sh install different files: $(diff <(echo "$staged_files") <(echo "$deb_files"))"
tree_sums() { (cd "$1" && find . -type f ! -path ./etc/tcpreset/tcpresetd.toml ! -path ./usr/share/doc/tcpreset/copyright -print0 | sort -z | xargs -0 sha256sum); }
[[ $(tree_sums "$debroot") == "$(tree_sums "$stage")" ]] ||
    fail "the .deb's files differ from install.sh's: $(diff <(tree_sums "$stage") <(tree_sums "$debroot"))"
cmp -s config/tcpresetd.toml "$debroot/etc/tcpreset/tcpresetd.toml" || fail "the .deb's configuration differs from config/"
for bin in usr/sbin/tcpresetd usr/bin/tcpreset usr/bin/tcpreset-hunt; do
    if readelf -S "$debroot/$bin" | grep -q '\.debug_info'; then
        fail "$bin in the .deb is not stripped"
    fi
done
check_man "$debroot/usr/share/man/man8/tcpresetd.8.gz" "--state-dir" "SIGHUP"
check_man "$debroot/usr/share/man/man1/tcpreset.1.gz" "ENGID -i SNIFF_IF -o RESET_IF -h HOST [-p PORT] -d SECONDS"

echo "== dpkg -i of the .deb"
if dpkg-query -W tcpreset >/dev/null 2>&1 || [[ -e /usr/sbin/tcpresetd || -e /etc/tcpreset ]]; then
    echo "   SKIPPED: tcpreset is already installed on this machine; not touching it"
    echo "test-packaging: ok except dpkg -i ($((SECONDS - start)) s)"
    exit 0
fi
had_group=$(getent group tcpreset || true)
had_user=$(getent passwd tcpresetd || true)
remove_package() {
    dpkg -P tcpreset >/dev/null 2>&1 || true
    [[ -n $had_user ]] || userdel tcpresetd 2>/dev/null || true
    [[ -n $had_group ]] || groupdel tcpreset 2>/dev/null || true
}
trap 'cleanup; remove_package' EXIT
dpkg -i "$deb" >/dev/null || fail "dpkg -i $deb failed"
[[ $(dpkg-query -W -f '${Status}' tcpreset) == "install ok installed" ]] || fail "tcpreset is not installed after dpkg -i"
getent group tcpreset >/dev/null || fail "postinst did not create group tcpreset"
[[ $(id -gn tcpresetd) == tcpreset ]] || fail "postinst did not create user tcpresetd in group tcpreset"
man -w tcpresetd >/dev/null 2>&1 || fail "man does not find the installed tcpresetd(8)"
echo "# local change" >>/etc/tcpreset/tcpresetd.toml
dpkg -i "$deb" </dev/null >/dev/null 2>&1 || fail "dpkg -i over the installed package (the upgrade path) failed"
grep -q 'local change' /etc/tcpreset/tcpresetd.toml || fail "reinstalling replaced the changed configuration"
[[ $(id -gn tcpresetd) == tcpreset ]] || fail "reinstalling lost user tcpresetd"
out=$(systemd-analyze verify /usr/lib/systemd/system/tcpresetd.service 2>&1) && [[ -z $out ]] ||
    fail "systemd-analyze verify of the installed unit: $out"

echo "== the installed daemon as its unit runs it: user tcpresetd, CAP_NET_RAW and CAP_NET_ADMIN only"
# RuntimeDirectory/StateDirectory as systemd makes them; the lab is a namespace of our own.
run=$tmp/run state=$tmp/state
install -d -m 0750 -o tcpresetd -g tcpreset "$run" "$state"
chmod 0755 "$tmp"
ip netns add "$netns"
ip -n "$netns" link set lo up
ip -n "$netns" link add sniff0 type veth peer name tap0
ip -n "$netns" link set sniff0 up
ip -n "$netns" link set tap0 up
# The reset interface: a veth with an address (the loopback is refused as one).
ip -n "$netns" link add reset0 type veth peer name reset1
ip -n "$netns" link set reset0 up
ip -n "$netns" link set reset1 up
ip -n "$netns" addr add 192.0.2.254/24 dev reset0
caps=-all,+net_raw,+net_admin
# systemd's side of Type=notify and WatchdogSec=: a datagram socket the daemon's user may write.
(umask 0 && exec socat -u UNIX-RECV:"$tmp/notify.sock" - >"$tmp/notify.log") &
notify_pid=$!
for _ in $(seq 50); do
    [[ -S $tmp/notify.sock ]] && break
    sleep 0.1
done
# Under strace, to compare its system calls with what the unit's sandbox allows. The shell
# writes its pid, which setpriv and then tcpresetd keep (exec).
NOTIFY_SOCKET=$tmp/notify.sock WATCHDOG_USEC=1000000 ip netns exec "$netns" \
    strace -f -qq -o "$tmp/strace.log" sh -c 'echo $$ >"$0"; exec "$@"' "$tmp/daemon.pid" \
    setpriv --reuid tcpresetd --regid tcpreset --init-groups --no-new-privs \
    --inh-caps "$caps" --ambient-caps "$caps" --bounding-set "$caps" \
    /usr/sbin/tcpresetd --socket "$run/tcpresetd.sock" --state-dir "$state" \
    >"$tmp/daemon.log" 2>&1 &
strace_job=$!
for _ in $(seq 50); do
    [[ -s $tmp/daemon.pid ]] && break
    sleep 0.1
done
daemon_pid=$(cat "$tmp/daemon.pid" 2>/dev/null) || fail "tcpresetd did not start under strace: $(cat "$tmp/daemon.log")"
for _ in $(seq 50); do
    [[ -S $run/tcpresetd.sock ]] && break
    kill -0 "$daemon_pid" 2>/dev/null || fail "the daemon died: $(cat "$tmp/daemon.log")"
    sleep 0.1
done
[[ -S $run/tcpresetd.sock ]] || fail "no socket after 5 s: $(cat "$tmp/daemon.log")"
[[ $(stat -c '%a %U %G' "$run/tcpresetd.sock") == "660 tcpresetd tcpreset" ]] ||
    fail "socket is $(stat -c '%a %U %G' "$run/tcpresetd.sock"), not 660 tcpresetd tcpreset"
client() { ip netns exec "$netns" /usr/bin/tcpreset --socket "$run/tcpresetd.sock" "$@"; }
client ids-pkg -i sniff0 -o reset0 -h 198.51.100.7 -d 60 >/dev/null ||
    fail "root could not add a rule (libpcap capture as tcpresetd?): $(cat "$tmp/daemon.log")"
grep -q 'ids-pkg' <(client list) || fail "the rule is not listed"
[[ -s $state/rules.json ]] || fail "the daemon did not save the rule in its StateDirectory"
member() { ip netns exec "$netns" setpriv --reuid nobody --regid nogroup "$@" /usr/bin/tcpreset --socket "$run/tcpresetd.sock" list; }
member --groups tcpreset >/dev/null || fail "a member of group tcpreset may not list rules"
rc=0
member --clear-groups >/dev/null 2>&1 || rc=$?
((rc == 4)) || fail "a user outside group tcpreset got exit code $rc, not 4 (refused)"
for _ in $(seq 30); do # WatchdogSec=1s: a ping every 0.5 s
    (($(grep -o 'WATCHDOG=1' "$tmp/notify.log" | wc -l) >= 2)) && break
    sleep 0.1
done
grep -q 'READY=1' "$tmp/notify.log" || fail "no READY=1 on NOTIFY_SOCKET: $(cat "$tmp/notify.log")"
(($(grep -o 'WATCHDOG=1' "$tmp/notify.log" | wc -l) >= 2)) ||
    fail "fewer than two WATCHDOG=1 in 3 s with WATCHDOG_USEC=1000000: $(cat "$tmp/notify.log")"
kill -TERM "$daemon_pid"
wait "$strace_job" || fail "the daemon did not stop cleanly on SIGTERM: $(cat "$tmp/daemon.log")"
daemon_pid=
[[ ! -e $run/tcpresetd.sock ]] || fail "the daemon left its socket behind"

echo "== the daemon stays inside the unit's sandbox (system calls, address families, W^X)"
trace=$(awk '/execve\("\/usr\/sbin\/tcpresetd"/ { on = 1 } on' "$tmp/strace.log")
[[ -n $trace ]] || fail "strace did not see tcpresetd start"
filter=$(sed -n 's/^SystemCallFilter=//p' systemd/tcpresetd.service)
expand() { # CALL or @GROUP...: the system calls, groups expanded
    local item list
    for item in "$@"; do
        if [[ $item != @* ]]; then
            echo "$item"
            continue
        fi
        list=$(systemd-analyze syscall-filter "$item") || fail "systemd-analyze does not know $item"
        # shellcheck disable=SC2046 # one word per line
        expand $(sed -n 's/^    //p' <<<"$list" | grep -v '^#')
    done
}
# shellcheck disable=SC2086 # a list of words
allowed=$(expand $filter | sort -u)
used=$(grep -oE '^[0-9]+ +[a-z0-9_]+\(' <<<"$trace" | sed -E 's/^[0-9]+ +//; s/\($//' | sort -u)
[[ $(wc -l <<<"$used") -gt 20 ]] || fail "too few system calls traced to be believable: $used"
outside=$(comm -23 <(echo "$used") <(echo "$allowed"))
[[ -z $outside ]] || fail "tcpresetd uses system calls outside SystemCallFilter=$filter: $outside"
families=$(sed -n 's/^RestrictAddressFamilies=//p' systemd/tcpresetd.service)
for family in $(grep -oE '\bsocket\(AF_[A-Z0-9]+' <<<"$trace" | sed 's/socket(//' | sort -u); do
    [[ " $families " == *" $family "* ]] || fail "tcpresetd opens $family sockets, not in RestrictAddressFamilies=$families"
done
grep -q 'socket(AF_PACKET' <<<"$trace" || fail "no AF_PACKET socket traced: did the capture open?"
# ProtectSystem=strict: every path it creates, writes, renames, removes or chmods is in its
# RuntimeDirectory or StateDirectory (here $run and $state), or a device.
written=$(grep -E 'openat\(.*O_(WRONLY|RDWR|CREAT)|rename|unlink|mkdir|chmod|chown|bind\(.*sun_path=' <<<"$trace" |
    grep -oE '"/[^"]*"' | tr -d '"' | sort -u)
grep -q "^$state/rules.json" <<<"$written" || fail "no write of the rules traced: $written"
grep -qx "$run/tcpresetd.sock" <<<"$written" || fail "no bind of the socket traced: $written"
outside=$(grep -vE "^($run|$state)(/|$)|^/dev/" <<<"$written" || true)
[[ -z $outside ]] || fail "tcpresetd writes outside its RuntimeDirectory and StateDirectory: $outside"
if grep -E '(mmap|mprotect)\(.*PROT_EXEC' <<<"$trace" | grep -E 'PROT_WRITE|^[0-9]+ +mprotect'; then
    fail "tcpresetd maps memory writable and executable, or makes it executable (MemoryDenyWriteExecute)"
fi

echo "== dpkg -r and dpkg -P"
dpkg -r tcpreset >/dev/null || fail "dpkg -r failed"
[[ ! -e /usr/sbin/tcpresetd ]] || fail "dpkg -r left /usr/sbin/tcpresetd"
[[ -f /etc/tcpreset/tcpresetd.toml ]] || fail "dpkg -r removed the conffile (only purge may)"
dpkg -P tcpreset >/dev/null || fail "dpkg -P failed"
[[ ! -e /etc/tcpreset/tcpresetd.toml ]] || fail "dpkg -P left the conffile"
remove_package
trap cleanup EXIT
echo "test-packaging: ok ($((SECONDS - start)) s)"
