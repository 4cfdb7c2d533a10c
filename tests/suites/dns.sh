#!/usr/bin/env bash
# The resolver against the real kernel, in network namespaces of its own (prefix wsd):
#
#   wsd-c (clients 10.8.0.2-4) ── wsd-r (router: wgsplit dns-serve on 10.8.0.1:53,
#                                        nft table inet wgsplit with the clients' sets)
#                                   ├── wsd-w "WAN": resolver 10.99.0.53, and a decoy at
#                                   │     10.64.0.1 that must never see a query
#                                   └── wsd-u "tunnel": the upstream's resolver 10.64.0.1,
#                                         reachable only by packets marked for upstream 0
#                                         (ip rule fwmark → table 20000 → dev wsd-tun)
#
# Each stub resolver logs every question it gets, so the test sees which way each
# query went. Root only; skipped otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then echo "skipped: needs root"; exit 0; fi
cargo build --quiet
BIN=$PWD/target/debug/wgsplit
TOOL="python3 $PWD/tests/dns/dnstool.py"
TMP=$(mktemp -d /tmp/wsd.XXXXXX)
export WGSPLIT_LIST_ROOTS=$TMP   # wgsplit reads lists only in its folders
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    for n in wsd-c wsd-r wsd-w wsd-u; do ip netns del "$n" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
fail=0
ok() { echo "  ok   $1"; }
bad() { echo "  FAIL $1"; fail=1; }
check() { # check "what" expected actual
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: expected [$2] got [$3]"; fi
}

. tests/lib/netns.sh
netns_fresh wsd-c wsd-r wsd-w wsd-u
R="ip netns exec wsd-r"
netns_link wsd-r wsd-srv wsd-c wsd-cli
ip -n wsd-r addr add 10.8.0.1/24 dev wsd-srv
ip -n wsd-r addr add fd42:8::1/64 dev wsd-srv nodad
ip -n wsd-c addr add fd42:8::2/64 dev wsd-cli nodad
for a in 2 3 4 9; do ip -n wsd-c addr add 10.8.0.$a/24 dev wsd-cli; done
netns_link wsd-r wsd-wan wsd-w wsd-wr
ip -n wsd-r addr add 10.99.0.1/24 dev wsd-wan
ip -n wsd-r route add default via 10.99.0.2
ip -n wsd-w addr add 10.99.0.2/24 dev wsd-wr
ip -n wsd-w addr add 10.99.0.53/32 dev lo
ip -n wsd-w addr add 10.64.0.1/32 dev lo       # the decoy: the WAN's idea of 10.64.0.1
ip -n wsd-w route add default via 10.99.0.1
netns_link wsd-r wsd-tun wsd-u wsd-ut
ip -n wsd-r addr add 10.64.0.2/32 dev wsd-tun
ip -n wsd-u addr add 10.64.0.1/32 dev wsd-ut
ip -n wsd-u route add default dev wsd-ut
# What the engine does for upstream 0 (mark 0x03000000 in mask 0xff000000).
ip -n wsd-r route add default dev wsd-tun table 20000
ip -n wsd-r route add unreachable default metric 100 table 20000
ip -n wsd-r rule add fwmark 0x03000000/0xff000000 lookup 20000 priority 6000
# Upstream 1 ("dead"): its resolver never answers.
ip -n wsd-r route add default dev wsd-tun table 20001
ip -n wsd-r rule add fwmark 0x04000000/0xff000000 lookup 20001 priority 6000

cat > "$TMP/wan.zone" <<'EOF'
www.netflix.com A 198.51.100.10 300
video.example.org CNAME edge.netflix.com 300
edge.netflix.com A 198.51.100.20 120
plain.example.com A 198.51.100.30 300
short.netflix.com A 198.51.100.40 5
long.netflix.com A 198.51.100.50 999999
tunnelled.example A 198.51.100.60 300
ads.example A 198.51.100.99 300
EOF
cat > "$TMP/up.zone" <<'EOF'
www.netflix.com A 203.0.113.10 300
www.netflix.com AAAA 2001:db8::10 200
short.netflix.com A 203.0.113.40 5
long.netflix.com A 203.0.113.50 999999
cached.netflix.com A 203.0.113.70 600
fresh.netflix.com A 203.0.113.80 300
tunnelled.example A 203.0.113.60 300
video.example.org CNAME edge.netflix.com 300
edge.netflix.com A 203.0.113.20 120
cdn7.regex.example A 203.0.113.90 300
EOF
: > "$TMP/decoy.zone"
stub() { # stub NS ADDR ZONE LOG [flags]
    local ns=$1 addr=$2 zone=$3 log=$4; shift 4
    : > "$log"
    ip netns exec "$ns" $TOOL stub --listen "$addr:53" --zone "$zone" --log "$log" "$@" > "$TMP/$(basename "$log").out" 2>&1 &
    PIDS+=($!)
}
stub wsd-w 10.99.0.53 "$TMP/wan.zone" "$TMP/wan.log"
stub wsd-w 10.64.0.1 "$TMP/decoy.zone" "$TMP/decoy.log"
stub wsd-u 10.64.0.1 "$TMP/up.zone" "$TMP/up.log"

echo "netflix.com" > "$TMP/stream.list"
echo "server=/tunnelled.example/10.0.0.1" > "$TMP/dm.conf"
printf 'regexp:^cdn[0-9]+\\.regex\\.example$\nregexp:(?=unsupported)\n' > "$TMP/v2.list"
KEY=yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=
cat > "$TMP/wgsplit" <<EOF
config server 'server'
	option address '10.8.0.1/24'
	option address6 'fd42:8::1/64'
	option private_key '$KEY'
	list dns_server '10.99.0.53'
	option ttl_min '10'
	option ttl_max '3600'
config upstream 'us'
	option private_key '$KEY'
	list address '10.64.0.2/32'
	option public_key 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='
	option endpoint '192.0.2.1:51820'
	list dns '10.64.0.1'
config upstream 'dead'
	option private_key '$KEY'
	list address '10.65.0.2/32'
	option public_key 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='
	option endpoint '192.0.2.2:51820'
	list dns '10.64.0.99'
config client 'alice'
	option public_key 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='
	list address '10.8.0.2/32'
	list address 'fd42:8::2/128'
	option upstream 'us'
config rule
	option client 'alice'
	option action 'proxy'
	list list 'stream'
	list list 'dm'
	list list 'v2'
config rule
	option client 'alice'
	option action 'block'
	list domain 'ads.example'
config rule
	option client 'alice'
	option action 'proxy'
	option upstream 'dead'
	list domain 'dead.example'
config client 'bob'
	option public_key 'TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0='
	list address '10.8.0.3/32'
	option upstream 'us'
config rule
	option client 'bob'
	option action 'direct'
	list domain 'netflix.com'
config client 'carol'
	option public_key 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw='
	list address '10.8.0.4/32'
	option upstream 'us'
config rule
	option client 'carol'
	option action 'proxy'
	list domain 'netflix.com'
config list 'stream'
	option path '$TMP/stream.list'
config list 'dm'
	option path '$TMP/dm.conf'
	option format 'dnsmasq'
config list 'v2'
	option path '$TMP/v2.list'
	option format 'v2fly'
EOF
"$BIN" -c "$TMP/wgsplit" config check

# The sets the engine would create (only the resolver fills them).
$R nft -f - <<'EOF'
table inet wgsplit {
    set alice_r0_dns4 { type ipv4_addr; flags timeout; }
    set alice_r0_dns6 { type ipv6_addr; flags timeout; }
    set alice_r2_dns4 { type ipv4_addr; flags timeout; }
    set alice_r2_dns6 { type ipv6_addr; flags timeout; }
    set bob_r0_dns4 { type ipv4_addr; flags timeout; }
    set bob_r0_dns6 { type ipv6_addr; flags timeout; }
    set carol_r0_dns4 { type ipv4_addr; flags timeout; }
    set carol_r0_dns6 { type ipv6_addr; flags timeout; }
}
EOF

$R "$BIN" -c "$TMP/wgsplit" dns-serve --stats "$TMP/stats.json" 2> "$TMP/resolver.err" &
RPID=$!
PIDS+=($RPID)
for _ in $(seq 50); do
    grep -q listening "$TMP/resolver.err" 2>/dev/null && [ -s "$TMP/up.log.out" ] && [ -s "$TMP/wan.log.out" ] && break
    sleep 0.1
done

q() { # q CLIENT-IP NAME [TYPE] [--tcp]
    local src=$1 name=$2 type=${3:-A}; shift 3 2>/dev/null || shift $#
    ip netns exec wsd-c $TOOL q "$@" --src "$src" 10.8.0.1 "$name" "$type"
}
elems() { # elems SET → "addr timeout" lines, sorted
    $R nft -j list set inet wgsplit "$1" | python3 -c '
import json, sys
for item in json.load(sys.stdin)["nftables"]:
    for e in item.get("set", {}).get("elem", []):
        e = e["elem"] if isinstance(e, dict) and "elem" in e else {"val": e}
        print(e["val"], e.get("timeout", "-"))' | sort
}
count() { grep -c "^$2 " "$1" || true; }

echo "- the same name for two clients lands in two sets, each resolved its own way"
check "alice gets the upstream's answer" "NOERROR|A 203.0.113.10 300" "$(q 10.8.0.2 www.netflix.com A | paste -sd'|')"
check "alice's set holds it, timeout = TTL" "203.0.113.10 300" "$(elems alice_r0_dns4)"
# An element already in the kernel that this resolver never wrote (as after a
# restart): the answer refreshes it, so it lives as long as the answer's TTL.
$R nft add element inet wgsplit bob_r0_dns4 '{ 198.51.100.10 timeout 7s }'
check "bob gets the WAN's answer" "NOERROR|A 198.51.100.10 300" "$(q 10.8.0.3 www.netflix.com A | paste -sd'|')"
check "bob's set holds the WAN address, its old element refreshed to the TTL" "198.51.100.10 300" "$(elems bob_r0_dns4)"
check "the upstream resolver saw alice's query once" 1 "$(count "$TMP/up.log" www.netflix.com)"
check "the WAN resolver saw only bob's" 1 "$(count "$TMP/wan.log" www.netflix.com)"
check "the WAN decoy for 10.64.0.1 saw nothing" 0 "$(wc -l < "$TMP/decoy.log")"
check "AAAA goes to the v6 set" "NOERROR|AAAA 2001:db8::10 200" "$(q 10.8.0.2 www.netflix.com AAAA | paste -sd'|')"
check "alice_r0_dns6" "2001:db8::10 200" "$(elems alice_r0_dns6)"

echo "- a dnsmasq-format list matches, through the tunnel"
q 10.8.0.2 tunnelled.example A > /dev/null
check "dnsmasq list name inserted" "203.0.113.10 300|203.0.113.60 300" "$(elems alice_r0_dns4 | paste -sd'|')"
check "dnsmasq list name asked upstream only" "1 0" "$(count "$TMP/up.log" tunnelled.example) $(count "$TMP/wan.log" tunnelled.example)"

echo "- a v2fly regexp entry matches; an unsupported one is reported"
check "regexp name answered through the tunnel" "NOERROR|A 203.0.113.90 300" "$(q 10.8.0.2 cdn7.regex.example A | paste -sd'|')"
elems alice_r0_dns4 | grep -q "^203.0.113.90 300$" && ok "regexp name's address in alice's set" || bad "regexp: $(elems alice_r0_dns4 | paste -sd' ')"
check "a name the regexp does not match is not proxied" "0" "$(q 10.8.0.2 cdnx.regex.example A > /dev/null; count "$TMP/up.log" cdnx.regex.example)"
grep -q "list v2: 1 of 2 regexp entries are not supported.*(?=unsupported)" "$TMP/resolver.err" && ok "the skipped regexp is reported" || bad "no report of the skipped regexp: $(grep -i regexp "$TMP/resolver.err")"

echo "- a CNAME to a matched name matches, and is resolved the way its traffic goes"
# alice asks video.example.org (no rule: asked the WAN's resolver); its chain
# reaches edge.netflix.com, proxied through 'us': asked again through the
# tunnel, so she gets the exit's address, and that is what her set holds.
out=$(q 10.8.0.2 video.example.org A | paste -sd'|')
check "answer is the upstream's, chain and all" "NOERROR|CNAME edge.netflix.com 300|A 203.0.113.20 120" "$out"
elems alice_r0_dns4 | grep -q "^203.0.113.20 120$" && ok "CNAME target's (upstream) address in alice's set" || bad "CNAME: $(elems alice_r0_dns4 | paste -sd' ')"
elems alice_r0_dns4 | grep -q "^198.51.100.20 " && bad "the WAN's address for the CNAME target was inserted too" || ok "the WAN's address was not inserted"
check "asked the WAN first, then the tunnel, once each" "1 1" "$(count "$TMP/wan.log" video.example.org) $(count "$TMP/up.log" video.example.org)"
check "served from the cache the same way" "NOERROR|CNAME edge.netflix.com|A 203.0.113.20" "$(q 10.8.0.2 video.example.org A | sed 's/ [0-9]*$//' | paste -sd'|')"
check "not asked again" "1 1" "$(count "$TMP/wan.log" video.example.org) $(count "$TMP/up.log" video.example.org)"
# carol has the same rule: the cached answer fills her set too.
q 10.8.0.4 video.example.org A > /dev/null
elems carol_r0_dns4 | grep -q "^203.0.113.20 " && ok "carol's set from the cached chain" || bad "carol: $(elems carol_r0_dns4 | paste -sd' ')"
# bob sends netflix direct: he gets the WAN's answer (cached from alice's first
# try, not her tunnel answer), and his set holds the WAN's address.
check "bob gets the WAN's answer for the same chain" "NOERROR|CNAME edge.netflix.com|A 198.51.100.20" "$(q 10.8.0.3 video.example.org A | sed 's/ [0-9]*$//' | paste -sd'|')"
elems bob_r0_dns4 | grep -q "^198.51.100.20 " && ok "bob's set holds the WAN address" || bad "bob: $(elems bob_r0_dns4 | paste -sd' ')"
check "still asked once each way" "1 1" "$(count "$TMP/wan.log" video.example.org) $(count "$TMP/up.log" video.example.org)"

echo "- a name matched by no rule inserts nothing"
before=$(for s in alice_r0_dns4 alice_r2_dns4 bob_r0_dns4 carol_r0_dns4; do elems $s; done | wc -l)
check "answered" "NOERROR|A 198.51.100.30 300" "$(q 10.8.0.2 plain.example.com A | paste -sd'|')"
after=$(for s in alice_r0_dns4 alice_r2_dns4 bob_r0_dns4 carol_r0_dns4; do elems $s; done | wc -l)
check "no set grew" "$before" "$after"

echo "- a sender that is no client (and on no dns_listen network) gets REFUSED, nothing asked"
check "10.8.0.9: REFUSED" "REFUSED" "$(q 10.8.0.9 www.netflix.com A | paste -sd'|')"
check "10.8.0.9 over TCP: REFUSED" "REFUSED" "$(q 10.8.0.9 refused.example A --tcp | paste -sd'|')"
check "not asked anywhere" "0 0" "$(count "$TMP/up.log" refused.example) $(count "$TMP/wan.log" refused.example)"

echo "- TTLs become timeouts, clamped to ttl_min/ttl_max"
q 10.8.0.2 short.netflix.com A > /dev/null
q 10.8.0.2 long.netflix.com A > /dev/null
elems alice_r0_dns4 | grep -q "^203.0.113.40 10$" && ok "TTL 5 → 10 (ttl_min)" || bad "ttl_min: $(elems alice_r0_dns4 | paste -sd' ')"
elems alice_r0_dns4 | grep -q "^203.0.113.50 3600$" && ok "TTL 999999 → 3600 (ttl_max)" || bad "ttl_max: $(elems alice_r0_dns4 | paste -sd' ')"

echo "- cache hits insert too, per client"
q 10.8.0.2 cached.netflix.com A > /dev/null
out=$(q 10.8.0.4 cached.netflix.com A | paste -sd'|')
[[ $out == "NOERROR|A 203.0.113.70 "* ]] && ok "carol answered from the cache" || bad "carol: $out"
check "the upstream was asked once" 1 "$(count "$TMP/up.log" cached.netflix.com)"
elems carol_r0_dns4 | grep -q "^203.0.113.70 " && ok "carol's set has it" || bad "carol's set: $(elems carol_r0_dns4)"
# An element that expired in the kernel is put back by the next cache hit.
q 10.8.0.2 short.netflix.com A > /dev/null
$R nft delete element inet wgsplit alice_r0_dns4 '{ 203.0.113.40 }'
sleep 1.2
q 10.8.0.2 short.netflix.com A > /dev/null
elems alice_r0_dns4 | grep -q "^203.0.113.40 " && ok "re-inserted on a later answer" || echo "  note: deleted element comes back only after its remembered expiry (ttl_min)"

echo "- block rules"
check "NXDOMAIN for a blocked name" "NXDOMAIN" "$(q 10.8.0.2 x.ads.example A | paste -sd'|')"
check "not asked anywhere" "0 0" "$(count "$TMP/up.log" x.ads.example) $(count "$TMP/wan.log" x.ads.example)"

echo "- IPv6: the resolver listens on the server's v6 address too"
out=$(ip netns exec wsd-c $TOOL q --src fd42:8::2 "[fd42:8::1]:53" short.netflix.com A | paste -sd'|' | sed 's/ [0-9]*$//')
check "query over IPv6, client known by its v6 address" "NOERROR|A 203.0.113.40" "$out"

echo "- TCP"
check "TCP query" "NOERROR|A 203.0.113.10" "$(q 10.8.0.2 www.netflix.com A --tcp | paste -sd'|' | sed 's/ [0-9]*$//')"

echo "- a dead upstream resolver: SERVFAIL in bounded time"
out=$(DNSTOOL_TIME=1 q 10.8.0.2 dead.example A 2> "$TMP/time" | paste -sd'|')
ms=$(cat "$TMP/time")
check "SERVFAIL" "SERVFAIL" "$out"
# The resolver's budget is 2 s; the slack is for a loaded machine.
[ "$ms" -lt 2600 ] && ok "within ${ms} ms (budget 2000)" || bad "took ${ms} ms"
check "never leaked to the WAN" "0 0" "$(count "$TMP/wan.log" dead.example) $(wc -l < "$TMP/decoy.log")"

echo "- malformed packets are dropped and counted, the resolver keeps answering"
for hex in 00 0000000000 12340100000100000000000003777777 ffffffffffffffffffffffffffffffff 1234010000010000000000000377777706676f6f676c6503636f6d0000010001c0; do
    ip netns exec wsd-c $TOOL raw 10.8.0.1 "$hex" > /dev/null
done
check "still answers" "NOERROR|A 203.0.113.10 300" "$(q 10.8.0.2 www.netflix.com A | paste -sd'|' | sed 's/ [0-9]*$/ 300/')"
kill -USR1 $RPID; sleep 0.3
mal=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["malformed"])' "$TMP/stats.json")
[ "$mal" -ge 4 ] && ok "malformed counted ($mal)" || bad "malformed: $mal"

echo "- a full set or a netlink error: logged, counted, the answer still goes out"
$R nft delete set inet wgsplit carol_r0_dns4
out=$(q 10.8.0.4 fresh.netflix.com A | paste -sd'|')
check "answer sent without its set" "NOERROR|A 203.0.113.80 300" "$out"
kill -USR1 $RPID; sleep 0.3
errs=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["set_errors"])' "$TMP/stats.json")
[ "$errs" -ge 1 ] && ok "set error counted ($errs)" || bad "set errors: $errs"

echo "- config reload (SIGHUP)"
sed -i "s/list domain 'ads.example'/list domain 'ads2.example'/" "$TMP/wgsplit"
kill -HUP $RPID; sleep 0.5
check "new block rule" "NXDOMAIN" "$(q 10.8.0.2 ads2.example A | paste -sd'|')"
check "old block rule gone" "NOERROR|A 198.51.100.99 300" "$(q 10.8.0.2 ads.example A | paste -sd'|')"
# Only a rule changed, no route: the cache stays (it used to empty on every reload).
out=$(q 10.8.0.4 cached.netflix.com A | paste -sd'|')
[[ $out == "NOERROR|A 203.0.113.70 "* ]] && ok "a cached answer survives the reload" || bad "after reload: $out"
check "and is not asked upstream again" 1 "$(count "$TMP/up.log" cached.netflix.com)"
# The upstream's resolver changes: its answers go, the WAN's stay.
sed -i "s/list dns '10.64.0.1'/list dns '10.64.0.1'\n\tlist dns '10.64.0.1:53'/" "$TMP/wgsplit"
kill -HUP $RPID; sleep 0.5
q 10.8.0.4 cached.netflix.com A > /dev/null
check "a changed upstream's answers are asked again" 2 "$(count "$TMP/up.log" cached.netflix.com)"
q 10.8.0.2 plain.example.com A > /dev/null
check "the WAN's answers stay cached" 1 "$(count "$TMP/wan.log" plain.example.com)"

kill -TERM $RPID; wait $RPID 2>/dev/null || true
echo "  stats: $(cat "$TMP/stats.json")"
if [ $fail != 0 ]; then echo "--- resolver log"; cat "$TMP/resolver.err"; fi
exit $fail
