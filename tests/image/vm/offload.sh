#!/bin/sh
# Inside the image: fw4's software flow offloading (issue #19) on Debian's
# kernel, which has flowtables (the CI host's kernel does not, so
# tests/engine/offload.sh skips there). With a flowtable over the server
# interface and the WAN (and again with the upstream tunnel in it too), a
# client's flows marked for upstream up1 — TCP and UDP, IPv4 and IPv6 — all
# arrive and put 0 packets on the WAN; a direct flow is still offloaded. A
# control run without wgsplit's oif rules shows the leak, so the test can fail.
#
#   cli ns ══ wgc0 (10.8.0.2, fd42:8::2) ══> router wg0 ─┬─ wgs_up1 ══> up ns ── up1 ──┐
#                                                         └─ r-wan (WAN) ── inet0 ─ inet ns
#   inet ns: A 198.51.100.10 / 2001:db8:100::10 (alice's rule: up1), B 203.0.113.10 (direct)
#
# UDP flows are WireGuard inside the client's tunnel (wgx0 in the client, its
# peer in inet ns at A:51900): one long UDP flow, started by the client and
# answered by the server, whatever runs through it.
#
# With `wsi.bench=1` on the kernel command line (tests/bench/offload_vm.sh) it
# also measures throughput with offloading off and on, side by side.
. /test/lib.sh
. /test/fw4_flowtable.sh
CONF=/test/offload.conf
K=/test/keys
A4=198.51.100.10 A6=2001:db8:100::10 B4=203.0.113.10
W() { wgsplit --config "$CONF" "$@"; }
BYTES=${BYTES:-40000}

sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
for n in cli up inet; do wsi-netns add $n; done
wsi-netns veth r-cli - cli0 cli
wsi-netns veth r-up - up0 up
wsi-netns veth r-wan - inet0 inet
wsi-netns veth up1 up inet1 inet
addr() { # addr NS DEV CIDR...
    ns=$1 dev=$2; shift 2
    for a in "$@"; do
        case "$a" in *:*) f=-6 ;; *) f= ;; esac
        if [ "$ns" = - ]; then ip $f addr add "$a" dev "$dev"; else in_ns "$ns" ip $f addr add "$a" dev "$dev"; fi
    done
    if [ "$ns" = - ]; then ip link set "$dev" up; else in_ns "$ns" ip link set "$dev" up; fi
}
# no duplicate address detection: addresses usable at once
for c in all default; do
    sysctl -qw net.ipv6.conf.$c.accept_dad=0
    for n in cli up inet; do in_ns $n sysctl -qw net.ipv6.conf.$c.accept_dad=0; done
done
addr - r-cli 192.168.50.1/24
addr - r-up 172.30.0.1/24
addr - r-wan 172.31.0.1/24 fd00:31::1/64
ip route add default via 172.31.0.2
ip -6 route add default via fd00:31::2
addr cli cli0 192.168.50.2/24
addr up up0 172.30.0.2/24
addr up up1 172.31.1.1/24 fd00:311::1/64
addr inet inet0 172.31.0.2/24 fd00:31::2/64
addr inet inet1 172.31.1.2/24 fd00:311::2/64
for a in $A4/32 $B4/32; do in_ns inet ip addr add "$a" dev lo; done
in_ns inet ip -6 addr add $A6/128 dev lo
in_ns inet ip route add 10.8.0.0/24 via 172.31.0.1
in_ns inet ip -6 route add fd42:8::/64 via fd00:31::1

# The upstream provider: WireGuard in, NAT out (both families) to the internet.
in_ns up sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
in_ns up ip route add default via 172.31.1.2
in_ns up ip -6 route add default via fd00:311::2
in_ns up ip link add wgu0 type wireguard
in_ns up wg set wgu0 private-key $K/upstream.key listen-port 51821 \
    peer "$(cat $K/routerup.pub)" allowed-ips 10.64.0.2/32,fd64:1::2/128,10.8.0.0/24,fd42:8::/64
addr up wgu0 10.64.0.1/24 fd64:1::1/64
in_ns up ip route add 10.8.0.0/24 dev wgu0
in_ns up ip -6 route add fd42:8::/64 dev wgu0
in_ns up nft -f - <<'NFT'
table inet wsiup {
    chain post { type nat hook postrouting priority srcnat; policy accept; oifname "up1" masquerade; }
}
NFT

# The client: everything through its tunnel to the router.
in_ns cli ip link add wgc0 type wireguard
in_ns cli wg set wgc0 private-key $K/client.key peer "$(cat $K/router.pub)" \
    endpoint 192.168.50.1:51820 allowed-ips 0.0.0.0/0,::/0 persistent-keepalive 1
addr cli wgc0 10.8.0.2/32 fd42:8::2/128
in_ns cli ip route add default dev wgc0
in_ns cli ip -6 route add default dev wgc0
# Inner WireGuard for the UDP flows: the client's wgx0 to its peer at A:51900.
in_ns inet ip link add wgx0 type wireguard
in_ns inet wg set wgx0 private-key $K/inners.key listen-port 51900 \
    peer "$(cat $K/innerc.pub)" allowed-ips 10.200.0.2/32
addr inet wgx0 10.200.0.1/24
in_ns cli ip link add wgx0 type wireguard
in_ns cli wg set wgx0 private-key $K/innerc.key peer "$(cat $K/inners.pub)" allowed-ips 10.200.0.1/32
addr cli wgx0 10.200.0.2/24
# Its packets must fit the upstream's MTU (1420) to stay on the fast path: a
# flow's packets above the route's MTU always take the slow path.
in_ns cli ip link set wgx0 mtu 1280
in_ns inet ip link set wgx0 mtu 1280

# What the router's WAN sends to A and B, counted where it arrives (offloaded
# packets skip the router's own hooks).
in_ns inet nft -f - <<'NFT'
table netdev wsiwan {
    counter to_a {}
    counter to_b {}
    chain in {
        type filter hook ingress device "inet0" priority 0; policy accept;
        ip daddr 198.51.100.10 meta l4proto { tcp, udp } counter name to_a
        ip6 daddr 2001:db8:100::10 meta l4proto { tcp, udp } counter name to_a
        ip daddr 203.0.113.10 meta l4proto { tcp, udp } counter name to_b
    }
}
NFT
counter() { # NS FAMILY TABLE NAME: packets (NS "-": the router)
    if [ "$1" = - ]; then nft list counter "$2" "$3" "$4"; else in_ns "$1" nft list counter "$2" "$3" "$4"; fi |
        sed -n 's/.*packets \([0-9]*\).*/\1/p'
}
fresh() {
    in_ns inet nft reset counters table netdev wsiwan >/dev/null
    nft reset counters table inet wsifw4 >/dev/null 2>&1
}

# sink NS ADDR PORT: a TCP receiver (on every address) counting bytes into /tmp/sink.bytes
sink() {
    rm -f /tmp/sink.bytes /tmp/sink.end
    in_ns "$1" nc -l -p "$3" -e sh -c 'wc -c >/tmp/sink.bytes; cut -d" " -f1 /proc/uptime >/tmp/sink.end' </dev/null &
    SINK=$!
    usleep 200000
}
# send NS HOST PORT BYTES [TIMEOUT]: BYTES from NS, then the bytes the sink counted
send() {
    head -c "$4" /dev/zero | in_ns "$1" timeout "${5:-60}" nc "$2" "$3"
    i=0
    while [ ! -s /tmp/sink.end ] && [ $i -lt 100 ]; do usleep 100000; i=$((i + 1)); done
    kill $SINK 2>/dev/null
    cat /tmp/sink.bytes 2>/dev/null || echo 0
}
# Every case is a new flow: new ports (a listener a failed case left behind
# holds its own).
N=0
tcp_case() { # LABEL HOST
    fresh
    N=$((N + 1))
    sink inet "$2" $((9300 + N))
    got=$(send cli "$2" $((9300 + N)) "$BYTES")
    check "$1: TCP to $2, $BYTES bytes delivered (got $got)" [ "$got" = "$BYTES" ]
    n=$(counter inet netdev wsiwan to_a)
    check "$1: TCP to $2, packets on the WAN: $n (0 wanted)" [ "$n" = 0 ]
    offloaded "$1: TCP to $2"
}
# offloaded LABEL: with a flowtable, the client's packets to A skipped the
# router's forward hook (else 0 packets on the WAN would prove nothing):
# BYTES take >= BYTES/1448 packets; the slow path saw a handful at most
offloaded() {
    [ -n "${FT:-}" ] || return 0
    slow=$(counter - inet wsifw4 slow_to_a)
    check "$1: offloaded (slow path $slow packets of >= $((BYTES / 1448)): < 10)" [ "${slow:-999}" -lt 10 ]
}
# inner HOST: the client's wgx0 to HOST:51900 from a new source port
inner() {
    N=$((N + 1))
    case "$1" in *:*) ep="[$1]:51900" ;; *) ep="$1:51900" ;; esac
    in_ns cli wg set wgx0 listen-port $((41000 + N)) peer "$(cat $K/inners.pub)" endpoint "$ep"
    sink inet 10.200.0.1 $((9300 + N))
}
udp_case() { # LABEL HOST: a WireGuard tunnel to HOST:51900 inside the client's tunnel
    fresh
    inner "$2"
    got=$(send cli 10.200.0.1 $((9300 + N)) "$BYTES")
    check "$1: UDP to $2 (WireGuard inside), $BYTES bytes delivered (got $got)" [ "$got" = "$BYTES" ]
    n=$(counter inet netdev wsiwan to_a)
    check "$1: UDP to $2, packets on the WAN: $n (0 wanted)" [ "$n" = 0 ]
    offloaded "$1: UDP to $2"
}
direct_case() { # LABEL
    fresh
    N=$((N + 1))
    sink inet $B4 $((9300 + N))
    got=$(send cli $B4 $((9300 + N)) "$BYTES")
    check "$1: direct TCP to $B4 delivered (got $got)" [ "$got" = "$BYTES" ]
    wire=$(counter inet netdev wsiwan to_b) slow=$(counter - inet wsifw4 slow_to_b)
    check "$1: direct flow offloaded (on the wire $wire packets, slow path $slow: wire > 4 x slow)" \
        [ "${wire:-0}" -gt $((4 * ${slow:-999999})) ]
}
flowtable() { # DEVICE...: fw4's table, and a count of A's packets on the slow path
    nft delete table inet wsifw4 2>/dev/null
    fw4_flowtable wsifw4 slow_to_b "ip daddr $B4" "$@" | nft -f -
    nft -f - <<NFT
add counter inet wsifw4 slow_to_a
insert rule inet wsifw4 forward ip daddr $A4 counter name slow_to_a
insert rule inet wsifw4 forward ip6 daddr $A6 counter name slow_to_a
NFT
}
oif_rules_del() {
    for f in -4 -6; do while ip $f rule del pref 5999 2>/dev/null; do :; done; done
}

check "wgsplit apply" W apply
i=0
while ! in_ns cli ping -c 1 -W 1 10.8.0.1 >/dev/null 2>&1 && [ $i -lt 30 ]; do i=$((i + 1)); done
check "the client's tunnel is up" in_ns cli ping -c 1 -W 2 10.8.0.1
check "wgsplit planned the oif rules (priority 5999, both families)" sh -c \
    'ip -4 rule | grep -q "^5999:" && ip -6 rule | grep -q "^5999:"'

echo "--- no flowtable: the harness itself"
tcp_case "no flowtable" $A4
udp_case "no flowtable" $A6

echo "--- control: without the oif rules, offloading leaks (so this test can fail)"
flowtable wg0 r-wan
oif_rules_del
fresh
inner $A6
# (the flow may stall once it leaks: a short wait)
send cli 10.200.0.1 $((9300 + N)) "$BYTES" 10 >/dev/null
leaked=$(counter inet netdev wsiwan to_a)
check "without the oif rules an IPv6 UDP flow leaks by the WAN ($leaked packets)" [ "${leaked:-0}" -gt 0 ]
check "wgsplit apply puts them back" sh -c 'wgsplit --config '$CONF' apply && ip -6 rule | grep -q "^5999:"'

for variant in "wg0 r-wan" "wg0 r-wan wgs_up1"; do
    echo "--- flowtable over: $variant"
    # shellcheck disable=SC2086
    flowtable $variant
    FT=1
    label="ft{$(echo $variant | tr ' ' ,)}"
    for host in $A4 $A6; do
        tcp_case "$label" $host
        udp_case "$label" $host
    done
    direct_case "$label"
done

# The upstream goes down under an offloaded flow (the flowtable still holds it,
# the upstream's tunnel in the flowtable too): the flow's packets fall back to
# the slow path, find the upstream's table with only its unreachable default
# (the kill switch), and are dropped; none leaves by the WAN.
echo "--- the upstream goes down under an offloaded flow"
for host in $A4 $A6; do
    fresh
    inner "$host"
    got=$(send cli 10.200.0.1 $((9300 + N)) "$BYTES")
    check "upstream down, UDP to $host: the flow runs first ($got bytes)" [ "$got" = "$BYTES" ]
    offloaded "upstream down, UDP to $host"
    ip link set wgs_up1 down
    fresh
    # The same flow (the inner tunnel keeps its port): more of it, for a while.
    N=$((N + 1))
    sink inet 10.200.0.1 $((9300 + N))
    got=$(send cli 10.200.0.1 $((9300 + N)) "$BYTES" 5)
    n=$(counter inet netdev wsiwan to_a)
    check "upstream down, UDP to $host: packets on the WAN: $n (0 wanted)" [ "$n" = 0 ]
    check "upstream down, UDP to $host: nothing delivered ($got bytes)" [ "${got:-0}" -lt "$BYTES" ]
    ip link set wgs_up1 up
    check "upstream back: wgsplit apply restores its routes" W apply
done

# --- throughput, offloading off and on, side by side (tests/bench/offload_vm.sh)
if grep -q 'wsi.bench=1' /proc/cmdline; then
    TP_SECS=${TP_SECS:-8}
    tp() { # HOST: Mbit/s of TP_SECS of sending
        N=$((N + 1))
        sink inet "$1" $((9300 + N))
        t0=$(uptime_s)
        timeout "$TP_SECS" cat /dev/zero | in_ns cli timeout $((TP_SECS + 30)) nc "$1" $((9300 + N))
        i=0
        while [ ! -s /tmp/sink.end ] && [ $i -lt 300 ]; do usleep 100000; i=$((i + 1)); done
        kill $SINK 2>/dev/null
        awk -v b="$(cat /tmp/sink.bytes 2>/dev/null)" -v a="$t0" -v e="$(cat /tmp/sink.end 2>/dev/null)" \
            'BEGIN { if (b + 0 < 1024 || e + 0 <= a + 0) print "0"; else printf "%.2f", b * 8 / (e - a) / 1e6 }'
    }
    for round in 1 2 3; do
        for mode in off on; do
            if [ $mode = on ]; then flowtable wg0 r-wan wgs_up1; else nft delete table inet wsifw4 2>/dev/null; fi
            metric "bench_direct_${mode}_${round}_mbit" "$(tp $B4)"
            metric "bench_upstream_${mode}_${round}_mbit" "$(tp $A4)"
        done
    done
fi

nft delete table inet wsifw4 2>/dev/null
W down >/dev/null 2>&1
for n in cli up inet; do wsi-netns del $n; done
ip link del r-cli 2>/dev/null
finish
