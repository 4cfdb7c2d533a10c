#!/usr/bin/env bash
# The DNS bypass guard (issue #19), for clients with domain rules: DoT (TCP 853)
# to an outside resolver gets no connection; the Firefox canary and a DoH name
# from the list are answered NXDOMAIN; HTTPS to a listed DoH address gets no
# connection. Carol, with domain rules and `dns_guard '0'`, gets all of them.
# Real kernel, network namespaces (tests/engine/guard_topology.sh). The "DoH
# address" 1.1.1.1 is one inside the test's own internet namespace. Root only. ~15 s.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/guard_test.sh bypass
WAN_DNS=198.51.100.53
DOH4=1.1.1.1
rcode() { local out; out=$(in_ns "$1" $DNSTOOL q 10.8.0.1:5353 "$2" A); echo "${out%%$'\n'*}"; }
connect() { # client-ns host port → what the server said ("-": no connection)
    local out
    out=$(in_ns "$1" timeout 4 socat -T 3 - "TCP:$2:$3,connect-timeout=3" </dev/null 2>/dev/null | tr -d '\r\n')
    echo "${out:--}"
}

trap topo_down EXIT
topo_up || exit 1
in_ns wsgd-net ip addr add $WAN_DNS/32 dev wsgd-br
in_ns wsgd-net ip addr add $DOH4/32 dev wsgd-br
cat > "$WSE_DIR/wan.zone" <<ZONE
use-application-dns.net A 198.51.100.7 60
dns.google A $DOH4 60
www.example.com A $SRV_B4 60
ZONE
in_ns wsgd-net $DNSTOOL stub --listen $WAN_DNS:53 --zone "$WSE_DIR/wan.zone" --log "$WSE_DIR/wan.log" >/dev/null 2>&1 &
# An outside DoT resolver (TCP 853) and a DoH endpoint (TCP 443 on 1.1.1.1).
in_ns wsgd-net socat TCP4-LISTEN:853,bind=$SRV_A4,fork,reuseaddr 'SYSTEM:echo dot' >/dev/null 2>&1 &
in_ns wsgd-net socat TCP4-LISTEN:443,bind=$DOH4,fork,reuseaddr 'SYSTEM:echo doh' >/dev/null 2>&1 &
for c in 1 3; do in_ns wsgd-c$c ip route add $DOH4/32 dev wsgd-c${c}w; done
# alice (guard on by default) and carol (guard off) each get a domain rule.
sed -i -e "/^config server/a\\	list dns_server '$WAN_DNS'" "$WSE_DIR/wgsplit.conf"
sed -i -e "/^config client 'carol'/a\\	option dns_guard '0'" "$WSE_DIR/wgsplit.conf"
for c in alice carol; do
    printf "\nconfig rule\n\toption client '%s'\n\toption action 'direct'\n\tlist domain 'example.com'\n" $c >> "$WSE_DIR/wgsplit.conf"
done
WGSPLIT_HEALTH_EVERY=3600 WGSPLIT_RUN_DIR="$WSE_DIR/run" \
    in_ns $R "$WSE_BIN" --config "$WSE_DIR/wgsplit.conf" daemon >"$WSE_DIR/daemon.log" 2>&1 &
for i in $(seq 50); do in_ns $R nft list chain inet wgsplit client_carol >/dev/null 2>&1 && break; sleep 0.2; done
for c in 1 3; do wait_tunnel wsgd-c$c || echo "tunnel of wsgd-c$c not up"; done

echo "--- alice (guard on)"
check "DoT to an outside resolver: no connection" - "$(connect wsgd-c1 $SRV_A4 853)"
check "the canary use-application-dns.net: NXDOMAIN" NXDOMAIN "$(rcode wsgd-c1 use-application-dns.net)"
check "a DoH name from the list (dns.google): NXDOMAIN" NXDOMAIN "$(rcode wsgd-c1 dns.google)"
check "HTTPS to a listed DoH address: no connection" - "$(connect wsgd-c1 $DOH4 443)"
check "other names still answered" NOERROR "$(rcode wsgd-c1 www.example.com)"
check "other connections still work" $WAN4 "$(whoami wsgd-c1 $SRV_B4 8080)"
echo "--- carol (dns_guard '0')"
check "DoT: connects" dot "$(connect wsgd-c3 $SRV_A4 853)"
check "the canary: answered" NOERROR "$(rcode wsgd-c3 use-application-dns.net)"
check "dns.google: answered" NOERROR "$(rcode wsgd-c3 dns.google)"
check "HTTPS to the DoH address: connects" doh "$(connect wsgd-c3 $DOH4 443)"

echo
if [ $fails -eq 0 ]; then echo "bypass: all checks passed"; else echo "bypass: $fails checks failed"; fi
[ $fails -eq 0 ]
