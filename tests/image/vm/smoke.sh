#!/bin/sh
# Inside the image: the kernel pieces wgsplit needs are there and work, and the
# static binary runs on this CPU.
. /test/lib.sh
metric modules_loaded "$(wc -l </proc/modules)"
check "wireguard module loaded" grep -q '^wireguard ' /proc/modules
check "nf_tables module loaded" grep -q '^nf_tables ' /proc/modules
check "wgsplit runs (--version)" sh -c 'wgsplit --version | grep -q wgsplit'
check "wgsplit config check accepts the fixture" wgsplit --config /test/wgsplit.conf config check
check "ip link add type wireguard" ip link add wsis0 type wireguard
check "wg configures it" sh -c 'wg set wsis0 private-key /test/keys/router.key listen-port 51999 && wg show wsis0 listen-port | grep -qx 51999'
ip link del wsis0 2>/dev/null
check "nft: concatenated interval set with timeouts" nft -f - <<'NFT'
table inet wsismoke {
    set pairs {
        type ipv4_addr . ipv4_addr
        flags interval, timeout
        elements = { 10.8.0.2 . 198.51.100.0/24 timeout 60s }
    }
    set learned {
        type ipv4_addr . ipv4_addr
        flags timeout
        elements = { 10.8.0.2 . 192.0.2.7 timeout 30s }
    }
    chain pre {
        type filter hook prerouting priority mangle; policy accept;
        ip saddr . ip daddr @pairs meta mark set 0x01000000 ct mark set meta mark
    }
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        meta mark 0x01000000 masquerade
    }
}
NFT
check "nft lists the element timeout" sh -c 'nft list set inet wsismoke learned | grep -q "expires"'
nft delete table inet wsismoke 2>/dev/null
check "policy routing: fwmark rule and table" sh -c 'ip rule add fwmark 0x1000000/0xff000000 lookup 201 pref 6000 && ip route add unreachable default table 201 && ip rule | grep -q "lookup 201" && ip rule del pref 6000 && ip route flush table 201'
check "ipv6 is there" test -e /proc/net/if_inet6

# Kernel WireGuard between two namespaces: a ping through the tunnel.
wsi-netns add a && wsi-netns add b
wsi-netns veth wsia0 a wsib0 b
in_ns a ip addr add 192.168.77.1/24 dev wsia0; in_ns a ip link set wsia0 up
in_ns b ip addr add 192.168.77.2/24 dev wsib0; in_ns b ip link set wsib0 up
for n in a b; do in_ns $n ip link add wsiw$n type wireguard; done
in_ns a wg set wsiwa private-key /test/keys/client.key listen-port 51001 \
    peer "$(cat /test/keys/upstream.pub)" endpoint 192.168.77.2:51002 allowed-ips 10.99.0.2/32
in_ns b wg set wsiwb private-key /test/keys/upstream.key listen-port 51002 \
    peer "$(cat /test/keys/client.pub)" endpoint 192.168.77.1:51001 allowed-ips 10.99.0.1/32
in_ns a ip addr add 10.99.0.1/24 dev wsiwa; in_ns a ip link set wsiwa up
in_ns b ip addr add 10.99.0.2/24 dev wsiwb; in_ns b ip link set wsiwb up
check "kernel WireGuard tunnel: ping through it" in_ns a ping -c 2 -W 5 10.99.0.2
check "handshake recorded" sh -c "wsi-netns exec b wg show wsiwb latest-handshakes | awk '{exit !(\$2 > 0)}'"
wsi-netns del a; wsi-netns del b

# The Buildroot package's init script: starts the daemon from /etc/config/wgsplit,
# stop removes what it made (tests/image/initscript.sh tests the rest on the host).
if [ -f /etc/config/wgsplit ]; then
    # fwmark rules that are not wgsplit's (stop must leave them) are counted first
    rules_before=$(ip rule | grep -c fwmark)
    check "S95wgsplit start" /etc/init.d/S95wgsplit start
    i=0
    while ! nft list table inet wgsplit >/dev/null 2>&1 && [ $i -lt 300 ]; do usleep 100000; i=$((i + 1)); done
    check "daemon started by S95wgsplit made table inet wgsplit" nft list table inet wgsplit
    i=0
    while [ "$(ip rule | grep -c fwmark)" = "$rules_before" ] && [ $i -lt 100 ]; do usleep 100000; i=$((i + 1)); done
    check "daemon started by S95wgsplit added its fwmark rules" sh -c "[ \$(ip rule | grep -c fwmark) -gt $rules_before ]"
    pid=$(cat /var/run/wgsplit.pid 2>/dev/null)
    check "S95wgsplit pid file names the running wgsplit" grep -q '^Name:.*wgsplit' "/proc/$pid/status"
    check "S95wgsplit stop" /etc/init.d/S95wgsplit stop
    i=0
    while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do usleep 100000; i=$((i + 1)); done
    check "daemon gone after stop" sh -c "! kill -0 $pid 2>/dev/null"
    # stop runs `wgsplit down`, as the OpenWrt service does
    check "S95wgsplit stop removed table inet wgsplit" sh -c '! nft list table inet wgsplit 2>/dev/null'
    check "S95wgsplit stop removed wgsplit's ip rules ($rules_before fwmark rules before start)" \
        sh -c "ip rule; [ \$(ip rule | grep -c fwmark) = $rules_before ]"
fi
finish
