#!/usr/bin/env bash
# Learned routes fail closed while in use (issue #19): a client resolves a name
# bound for up1 whose answer has a 5 s TTL, then keeps connecting, never asking
# again, for 30 s: every connection still leaves through up1 (each new connection
# refreshed the element in the data path). An address it never resolved goes by
# its default (direct). After the hold (WGSPLIT_LEARNED_HOLD=12 here, a day by
# default) with no traffic the element is gone and the address goes direct too.
# Real kernel, network namespaces (tests/engine/guard_topology.sh). Root only. ~55 s.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/guard_test.sh learned
HOLD=12
learned() { in_ns $R nft list set inet wgsplit alice_r0_dns4 2>/dev/null | grep -c "$SRV_A4 timeout"; }
expires_s() { # whole seconds left on server A's element ("-" if none)
    local e
    e=$(in_ns $R nft list set inet wgsplit alice_r0_dns4 2>/dev/null | grep -o 'expires [0-9hms]*' | head -1)
    [ -z "$e" ] && { echo -; return; }
    e=${e#expires }
    local h=0 m=0 s=0
    [[ $e =~ ([0-9]+)h ]] && h=${BASH_REMATCH[1]}
    [[ $e =~ ([0-9]+)m([0-9]|$) ]] && m=${BASH_REMATCH[1]}
    [[ $e =~ ([0-9]+)s ]] && s=${BASH_REMATCH[1]}
    echo $((h * 3600 + m * 60 + s))
}

trap topo_down EXIT
topo_up || exit 1
# up1's resolver, inside its tunnel (10.64.0.1 on up1's server side).
cat > "$WSE_DIR/up1.zone" <<ZONE
short.test A $SRV_A4 5
ZONE
in_ns wsgd-up1 $DNSTOOL stub --listen 10.64.0.1:53 --zone "$WSE_DIR/up1.zone" --log "$WSE_DIR/up1.log" >/dev/null 2>&1 &
# alice: short.test through up1, the rest direct.
sed -i -e "/^config upstream 'up1'/a\\	list dns '10.64.0.1'" \
       -e "/^config server/a\\	option ttl_min '1'" "$WSE_DIR/wgsplit.conf"
sed -i '/^# alice/,/^# bob/{/^config rule/,/^$/d}' "$WSE_DIR/wgsplit.conf"
cat >> "$WSE_DIR/wgsplit.conf" <<CONF

config rule
	option client 'alice'
	option action 'proxy'
	list domain 'short.test'
CONF
WGSPLIT_LEARNED_HOLD=$HOLD WGSPLIT_HEALTH_EVERY=3600 WGSPLIT_RUN_DIR="$WSE_DIR/run" \
    in_ns $R "$WSE_BIN" --config "$WSE_DIR/wgsplit.conf" daemon >"$WSE_DIR/daemon.log" 2>&1 &
for i in $(seq 50); do in_ns $R nft list set inet wgsplit alice_r0_dns4 >/dev/null 2>&1 && break; sleep 0.2; done
wait_tunnel wsgd-c1 || echo "tunnel of wsgd-c1 not up"
check "before any question, server A goes direct (alice's default)" $WAN4 "$(whoami wsgd-c1 $SRV_A4 8080)"
in_ns $R conntrack -F >/dev/null 2>&1

echo "--- alice asks once (TTL 5 s), then only connects"
answer=$(in_ns wsgd-c1 $DNSTOOL q 10.8.0.1:5353 short.test A | tail -1)
check "the answer comes from up1's resolver" "A $SRV_A4 5" "$answer"
t0=$SECONDS
check "learned: the element is in alice's set" 1 "$(learned)"
for at in 2 10 20 30; do
    while [ $((SECONDS - t0)) -lt $at ]; do sleep 0.2; done
    check "t=${at}s: server A through up1 (asked once, TTL 5 s)" $UP1_EXIT4 "$(whoami wsgd-c1 $SRV_A4 8080)"
done
left=$(expires_s)
check "a connection set the element's life to the hold (${HOLD}s; left: ${left}s)" yes \
    "$([ "$left" != - ] && [ "$left" -gt $((HOLD - 4)) ] && [ "$left" -le $HOLD ] && echo yes)"
check "the resolver was asked once" 1 "$(grep -c 'short.test' "$WSE_DIR/up1.log")"
check "an address never resolved (server B) goes by alice's default" $WAN4 "$(whoami wsgd-c1 $SRV_B4 8080)"
check "server B was not added to the set" 0 "$(in_ns $R nft list set inet wgsplit alice_r0_dns4 | grep -c "$SRV_B4")"

echo "--- no traffic for the hold: the element is gone, the address goes direct"
sleep $((HOLD + 1))
check "after ${HOLD}s unused the element is gone" 0 "$(learned)"
check "server A now goes by alice's default" $WAN4 "$(whoami wsgd-c1 $SRV_A4 8080)"

echo
if [ $fails -eq 0 ]; then echo "learned: all checks passed"; else echo "learned: $fails checks failed"; fi
[ $fails -eq 0 ]
