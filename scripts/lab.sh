#!/usr/bin/env bash
# The namespace lab: a hub, three hosts and a sensor, all in network namespaces named NAME-*.
#
#   scripts/lab.sh up NAME [--tagged] [--second-segment]   build it (fails if NAME-* exists)
#   scripts/lab.sh down NAME                               remove it (idempotent)
#
#   NAME-sw   a Linux bridge br0 with ageing_time 0: it forwards every frame to every port,
#             like a hub, so the sensor's sniff port sees all traffic (a SPAN port in miniature)
#   NAME-cli  eth0 10.77.0.1/24 fd77::1/64    the host the tests isolate
#   NAME-srv  eth0 10.77.0.2/24 fd77::2/64    its server
#   NAME-oth  eth0 10.77.0.3/24 fd77::3/64    another host, whose connections must survive
#   NAME-sen  eth1 (sniff, no address) and eth0 (reset) 10.77.0.254/24 fd77::fe/64
#
# --tagged: the sniff port is not a bridge port. NAME-sen eth1 is a veth to NAME-sw "mirror",
#   which is enslaved to nothing (MTU 1600 both ends, room for two tags), so eth1 sees only what
#   a fixture writes there: `tcpreset-lab mirror` copies br0's frames onto "mirror" with VLAN
#   tags added (this kernel has no 802.1Q support to do it).
#
# --second-segment: a second hub br1 in NAME-sw, sniffed by the sensor's eth2:
#   NAME-cl2  eth0 10.78.0.1/24 fd78::1/64
#   NAME-sv2  eth0 10.78.0.2/24 fd78::2/64
#   NAME-ot2  eth0 10.78.0.3/24 fd78::3/64
#   NAME-sen  eth2 (sniff, no address) and eth3 (reset) 10.78.0.254/24 fd78::fe/64
#
# The addresses exist only inside these namespaces; nothing is routed out of the lab.
set -euo pipefail

usage() { echo "usage: $0 up NAME [--tagged] [--second-segment] | down NAME" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
cmd=$1 name=$2
shift 2
tagged=0 second=0
for opt in "$@"; do
    case $cmd/$opt in
        up/--tagged) tagged=1 ;;
        up/--second-segment) second=1 ;;
        *) usage ;;
    esac
done
[[ $name =~ ^[A-Za-z0-9-]{1,20}$ ]] || { echo "NAME must be 1-20 of A-Z a-z 0-9 -" >&2; exit 2; }

down() {
    for ns in sw cli srv oth sen cl2 sv2 ot2; do
        ip netns del "$name-$ns" 2>/dev/null || true
    done
}

# [BR=br1] port NS IFNAME [ADDR4 ADDR6]: a veth from NS (named IFNAME there) to a port of the
# bridge BR (br0 unless given).
port() {
    local ns=$1 ifname=$2 peer="$1$2"
    ip link add "$ifname" netns "$name-$ns" type veth peer name "$peer" netns "$name-sw"
    ip -n "$name-sw" link set "$peer" master "${BR:-br0}" up
    # MTU-sized segments on the wire, as on a real SPAN port.
    ip netns exec "$name-$ns" ethtool -K "$ifname" tso off gso off gro off >/dev/null 2>&1 || true
    ip -n "$name-$ns" link set "$ifname" up
    if [[ $# -ge 4 ]]; then
        ip -n "$name-$ns" addr add "$3" dev "$ifname"
        ip -n "$name-$ns" addr add "$4" dev "$ifname" nodad
    fi
}

# The sensor's eth1 as the far end of the tagging mirror's veth, bridged to nothing.
mirror_port() {
    ip link add eth1 netns "$name-sen" mtu 1600 type veth peer name mirror netns "$name-sw" mtu 1600
    # Nothing but the fixture's copies on this link: no IPv6 chatter from NAME-sw.
    ip netns exec "$name-sw" sysctl -qw net.ipv6.conf.mirror.disable_ipv6=1
    ip -n "$name-sw" link set mirror up
    ip -n "$name-sen" link set eth1 up
}

second_segment() {
    ip -n "$name-sw" link add br1 type bridge ageing_time 0 stp_state 0 forward_delay 0
    ip -n "$name-sw" link set br1 up
    BR=br1 port cl2 eth0 10.78.0.1/24 fd78::1/64
    BR=br1 port sv2 eth0 10.78.0.2/24 fd78::2/64
    BR=br1 port ot2 eth0 10.78.0.3/24 fd78::3/64
    BR=br1 port sen eth2
    BR=br1 port sen eth3 10.78.0.254/24 fd78::fe/64
    ip netns exec "$name-sen" sysctl -qw net.ipv6.conf.eth2.disable_ipv6=1
}

up() {
    trap 'down' ERR
    local namespaces=(sw cli srv oth sen)
    if [[ $second == 1 ]]; then namespaces+=(cl2 sv2 ot2); fi
    for ns in "${namespaces[@]}"; do
        ip netns add "$name-$ns"
        ip -n "$name-$ns" link set lo up
        # No duplicate address detection: until it ends (about 2 s) the kernel silently drops
        # IPv6 sent from a raw socket, and nothing in the lab can collide anyway.
        ip netns exec "$name-$ns" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
    done
    ip -n "$name-sw" link add br0 type bridge ageing_time 0 stp_state 0 forward_delay 0
    ip -n "$name-sw" link set br0 up
    port cli eth0 10.77.0.1/24 fd77::1/64
    port srv eth0 10.77.0.2/24 fd77::2/64
    port oth eth0 10.77.0.3/24 fd77::3/64
    if [[ $tagged == 1 ]]; then
        mirror_port
    else
        port sen eth1
    fi
    port sen eth0 10.77.0.254/24 fd77::fe/64
    # The sniff port takes no part in IPv6 (no link-local address, no router solicitations).
    ip netns exec "$name-sen" sysctl -qw net.ipv6.conf.eth1.disable_ipv6=1
    if [[ $second == 1 ]]; then second_segment; fi
    trap - ERR
}

case $cmd in
    up) up ;;
    down) down ;;
    *) usage ;;
esac
