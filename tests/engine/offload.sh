#!/usr/bin/env bash
# Flow offloading (issue #19): with a flowtable like fw4's "software flow
# offloading" (over the server interface and the WAN, and a second time with the
# upstream tunnels in it too), no packet of a flow marked for an upstream leaves
# by the WAN (nor the router's own ICMP errors about it) — IPv4 and IPv6, TCP and UDP, offloaded from the server's reply or
# from the client's packet, and while the upstream is down — every flow gets
# through, and direct flows are still offloaded. Real kernel, network namespaces
# (tests/engine/guard_topology.sh). Root only. ~40 s; on a kernel without
# flowtables only the first part runs (the router's ICMP errors, ~15 s).
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/guard_test.sh offload

at_least() { # name min actual
    if [ "${3:-0}" -ge "$2" ] 2>/dev/null; then echo "ok   $1 ($3)"; else echo "FAIL $1: expected ≥ $2, got '$3'"; fails=$((fails + 1)); fi
}
counter() { # ns family table name → packets
    in_ns "$1" nft list counter "$2" "$3" "$4" | grep -o 'packets [0-9]*' | grep -o '[0-9]*$'
}
FLOWS="python3 tests/engine/flows.py"
UDP_N=600
TCP_BYTES=3000000

# Can this kernel offload at all (CONFIG_NF_FLOW_TABLE; the CI machine's may not)?
ip netns add wsgd-probe
has_flowtables=yes
ip netns exec wsgd-probe nft -f - >/dev/null 2>&1 <<'NFT' || has_flowtables=no
table inet probe { flowtable ft { hook ingress priority 0; devices = { "lo" }; }; }
NFT
ip netns del wsgd-probe
trap topo_down EXIT
topo_up || exit 1
wgsplit_r apply >/dev/null || { echo "offload: apply failed"; exit 1; }
wait_tunnel wsgd-c1 || echo "tunnel of wsgd-c1 not up"

# The echo servers, and the packets the router's WAN sends to server A (counted
# where they arrive: offloaded packets skip the router's own hooks) and to B.
in_ns wsgd-net $FLOWS serve 9300 $SRV_A4 $SRV_A6 $SRV_B4 >/dev/null 2>&1 &
netns_wait_listen wsgd-net 9300 || fails=$((fails + 1))
in_ns wsgd-net nft -f - <<'NFT'
table netdev wsgd_wan {
    counter to_a {}
    counter to_b {}
    counter icmp_to_a {}
    chain in {
        type filter hook ingress device "wsgd-rwan-n" priority 0; policy accept;
        ip daddr 198.51.100.100 meta l4proto { tcp, udp } counter name to_a
        ip6 daddr fd00:5e::100 meta l4proto { tcp, udp } counter name to_a
        ip daddr 198.51.100.101 meta l4proto { tcp, udp } counter name to_b
        ip daddr 198.51.100.100 meta l4proto icmp counter name icmp_to_a
        ip6 daddr fd00:5e::100 meta l4proto ipv6-icmp counter name icmp_to_a
    }
}
NFT
# fw4's offloading: a flowtable and `flow add` in the forward hook; a counter
# before it shows how many of a flow's packets still take the slow path.
# (tests/lib/fw4_flowtable.sh: the same table the image's VM test builds)
. tests/lib/fw4_flowtable.sh
flowtable() { # devices…
    in_ns $R nft delete table inet wsgd_fw4 2>/dev/null
    fw4_flowtable wsgd_fw4 slow_to_b "ip daddr 198.51.100.101" "$@" | in_ns $R nft -f -
}
fresh() { # counters at 0 (each case is a new flow: a new socket, a new port)
    in_ns wsgd-net nft reset counters table netdev wsgd_wan >/dev/null
    in_ns $R nft reset counters table inet wsgd_fw4 >/dev/null 2>&1
}
udp_case() { # label host mode
    fresh
    local got
    got=$(in_ns wsgd-c1 $FLOWS udp "$2" 9300 $UDP_N "$3")
    at_least "$1: UDP $3 delivered (of $UDP_N)" $((UDP_N * 95 / 100)) "$got"
    check "$1: UDP $3 packets to A on the WAN" 0 "$(counter wsgd-net netdev wsgd_wan to_a)"
}
tcp_case() { # label host
    fresh
    local got
    got=$(in_ns wsgd-c1 timeout 20 $FLOWS tcp "$2" 9300 $TCP_BYTES 2>"$WSE_DIR/flows.err")
    check "$1: TCP echo of $TCP_BYTES bytes delivered" $TCP_BYTES "$got"
    [ "$got" = $TCP_BYTES ] || sed 's/^/     /' "$WSE_DIR/flows.err"
    check "$1: TCP packets to A on the WAN" 0 "$(counter wsgd-net netdev wsgd_wan to_a)"
    check "$1: the router's ICMP errors about it to A on the WAN" 0 "$(counter wsgd-net netdev wsgd_wan icmp_to_a)"
}

echo "--- no flowtable: the first bulk flows (no path MTU known yet)"
# The router's "packet too big" about the server's replies is the router's own
# ICMP: without the output_related rules it left by the WAN (from the router's
# WAN address) and never reached the server through the tunnel, and the first
# bulk flow stalled.
in_ns $R nft -f - <<'NFT'
table inet wsgd_fw4 {
    counter slow_to_b {}
}
NFT
tcp_case "no flowtable $SRV_A6" $SRV_A6
tcp_case "no flowtable $SRV_A4" $SRV_A4
if [ $has_flowtables = no ]; then
    echo "SKIP the offloading cases: this kernel has no flowtables (CONFIG_NF_FLOW_TABLE)"
    echo
    if [ $fails -eq 0 ]; then echo "offload: all checks passed (offloading itself not checked)"; else echo "offload: $fails checks failed"; fi
    exit $((fails > 0))
fi

echo "--- control: without the oif rules, offloading leaks (so this test can fail)"
flowtable wsgd-wg0 wsgd-rwan
in_ns $R ip -6 rule | grep -q 'oif wsgd-u1 lookup' && echo "ok   the oif rules are planned" || { echo "FAIL no oif rule for wsgd-u1"; fails=$((fails + 1)); }
for v in "" -6; do
    in_ns $R ip $v rule show | awk -F: '/oif .* proto 87/ {print $1}' | while read -r prio; do
        in_ns $R ip $v rule del priority "$prio" 2>/dev/null
    done
done
fresh
in_ns wsgd-c1 $FLOWS udp $SRV_A6 9300 $UDP_N reply-first >/dev/null
leaked=$(counter wsgd-net netdev wsgd_wan to_a)
at_least "without the oif rules an IPv6 UDP flow leaks by the WAN" 1 "$leaked"
wgsplit_r apply >/dev/null

for variant in "wsgd-wg0 wsgd-rwan" "wsgd-wg0 wsgd-rwan wsgd-u1 wsgd-u2"; do
    echo "--- flowtable over: $variant"
    # shellcheck disable=SC2086
    flowtable $variant
    label="ft{${variant// /,}}"
    for host in $SRV_A4 $SRV_A6; do
        udp_case "$label $host" $host reply-first
        udp_case "$label $host" $host client-first
        tcp_case "$label $host" $host
    done
    # A direct flow is still offloaded: most of its packets skip the forward hook.
    fresh
    check "$label: direct TCP delivered" $TCP_BYTES "$(in_ns wsgd-c1 timeout 20 $FLOWS tcp $SRV_B4 9300 $TCP_BYTES)"
    wire=$(counter wsgd-net netdev wsgd_wan to_b); slow=$(counter $R inet wsgd_fw4 slow_to_b)
    check "$label: direct flow offloaded (on the wire $wire packets, slow path $slow: wire > 4 × slow)" 1 $(( ${wire:-0} > 4 * ${slow:-999999} ))
done

echo "--- the upstream down (kill switch): a marked flow reaches nothing, and not by the WAN"
flowtable wsgd-wg0 wsgd-rwan
pid=""
for p in $(ip netns pids $R); do
    [ "$(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)" = "boringtun-cli wsgd-u1 " ] && pid=$p
done
[ -n "$pid" ] && kill "$pid"
for i in $(seq 40); do in_ns $R ip link show wsgd-u1 >/dev/null 2>&1 || break; sleep 0.1; done
for host in $SRV_A4 $SRV_A6; do
    fresh
    in_ns wsgd-c1 $FLOWS udp $host 9300 200 client-first >/dev/null
    check "up1 down: UDP to $host, packets to A on the WAN" 0 "$(counter wsgd-net netdev wsgd_wan to_a)"
done

echo
if [ $fails -eq 0 ]; then echo "offload: all checks passed"; else echo "offload: $fails checks failed"; fi
[ $fails -eq 0 ]
