#!/usr/bin/env bash
# Attack: the resolver's upstream side (prefix wshf-).
#
#   wshf-c (clients 10.8.0.2, 10.8.0.3) ── wshf-r (router: wgsplit dns-serve on 10.8.0.1:53)
#                                            └── wshf-w "WAN": the genuine resolver 10.99.0.53
#                                                  (answers after DELAY_MS, or once the
#                                                  round's spray is over, within HOLD_MS),
#                                                  and the forger
#
# 1. Cache poisoning, off path: each round a client asks a fresh name; while the
#    slow upstream sits on it, the forger in the upstream's namespace sprays
#    SPRAY forged answers (6.6.6.6) from the resolver's address and port at the
#    router: every ID, at the source port the upstream saw on the query before
#    (what a forger learns from a query to its own domain; today's forwarder
#    keeps one port for its life). 0 poisoned answers, and 0 poisoned names in
#    the cache asked again by another client.
# 2. In-flight cap: FLOOD queries for unique names that the upstream never
#    answers, from one client, as fast as a raw socket sends them. Meanwhile
#    another client's cached and blocked names answer within 1 s, the excess is
#    counted (forwards_over_cap), and the resolver answers after.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=$(realpath "${1:-target/debug/wgsplit}")
ROUNDS=${FORGERY_ROUNDS:-100}
SPRAY=${FORGERY_SPRAY:-65536}
DELAY_MS=${FORGERY_DELAY_MS:-300}
# Longest the upstream sits on an answer waiting for the spray to end: within
# the resolver's 2 s budget (a spray longer than its 800 ms try meets the retry too).
HOLD_MS=1800
FLOOD=${FORGERY_FLOOD:-20000}
if [ "$(id -u)" != 0 ]; then echo "  skipped: needs root"; exit 0; fi
TOOL="python3 $PWD/tests/hostile/dns_forgery_tool.py"
DNSTOOL="python3 $PWD/tests/dns/dnstool.py"
TMP=$(mktemp -d /tmp/wshf.XXXXXX)
. tests/lib/hostile_dns.sh
trap hostile_cleanup EXIT
fail=0
ok() { echo "  ok   $1"; }
bad() { echo "  FAIL $1"; fail=1; }
stat() { # stat FIELD → the resolver's counter (after SIGUSR1), or "missing"
    kill -USR1 "$RPID"; sleep 0.3
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], "missing"))' "$TMP/stats.json" "$1"
}

cc -O2 -o "$TMP/spray" tests/hostile/dns_forgery_spray.c
mkdir "$TMP/release"

hostile_dns_topology wshf 10.99.0.2/24 10.8.0.2/24 10.8.0.3/24
ip -n wshf-w addr add 10.99.0.53/32 dev lo
ip -n wshf-w route add default via 10.99.0.1
ip -n wshf-r route add default via 10.99.0.2

ip netns exec wshf-w $TOOL upstream --listen 10.99.0.53:53 --delay "$DELAY_MS" --hold "$HOLD_MS" --release "$TMP/release" --log "$TMP/up.log" > "$TMP/up.out" 2>&1 &
PIDS+=($!)
hostile_config 2 > "$TMP/wgsplit"
cat >> "$TMP/wgsplit" <<CONF
config rule
	option client 'bob'
	option action 'block'
	list domain 'blocked.example'
CONF
"$BIN" -c "$TMP/wgsplit" config check > /dev/null 2>&1 || { bad "config check: $("$BIN" -c "$TMP/wgsplit" config check 2>&1)"; exit 1; }
ip netns exec wshf-r "$BIN" -c "$TMP/wgsplit" dns-serve --client-rate 1000000 --stats "$TMP/stats.json" 2> "$TMP/resolver.err" &
RPID=$!
PIDS+=($RPID)
for _ in $(seq 50); do
    grep -q listening "$TMP/resolver.err" 2>/dev/null && [ -s "$TMP/up.out" ] && break
    sleep 0.1
done
q() { # q SRC NAME → the answer's lines joined by |
    ip netns exec wshf-c $DNSTOOL q --src "$1" 10.8.0.1 "$2" A | paste -sd'|'
}

echo "- a forged-answer spray at the upstream side ($ROUNDS queries, $SPRAY forgeries each)"
first=$(q 10.8.0.2 first.example)
[ "$first" = "NOERROR|A 192.0.2.7 300" ] && ok "the slow upstream answers ($DELAY_MS ms)" || bad "first answer: $first"
t0=$(date +%s%N)
ip netns exec wshf-c timeout 150 $TOOL attack --resolver 10.8.0.1 --src 10.8.0.2 --rounds "$ROUNDS" \
    --hold "$HOLD_MS" --release "$TMP/release" --count "$SPRAY" --uplog "$TMP/up.log" \
    --spray ip netns exec wshf-w "$TMP/spray" 10.99.0.53 53 10.99.0.1 > "$TMP/attack.out" || true
secs=$(( ($(date +%s%N) - t0) / 1000000000 ))
summary=$(tail -n1 "$TMP/attack.out")
echo "  ($summary; ${secs} s)"
read -r _ rounds _ answered _ poisoned _ p50 _ _ _ late _ failed <<< "$summary" || true
[ "${rounds:-0}" = "$ROUNDS" ] || bad "the attack did not finish: $(tail -n3 "$TMP/attack.out" | paste -sd' ')"
[ "${failed:-1}" = 0 ] || bad "sprays failed: $(grep -m1 'spray failed' "$TMP/attack.out")"
[ "${poisoned:-x}" = 0 ] && ok "0 poisoned answers over $ROUNDS queries" \
    || bad "poisoned answers: ${poisoned:-?} of ${answered:-?} ($(grep -m3 POISONED "$TMP/attack.out" | paste -sd' '))"
[ "${answered:-0}" -ge $((ROUNDS * 9 / 10)) ] && ok "answered under attack: $answered of $ROUNDS" || bad "answered only ${answered:-0} of $ROUNDS"
[ "${late:-$ROUNDS}" -le $((ROUNDS / 10)) ] && ok "the whole spray came before the genuine answer in $((ROUNDS - late)) of $ROUNDS rounds (p50 ${p50} ms)" \
    || bad "the spray was too slow to test anything: late in $late of $ROUNDS rounds (p50 ${p50} ms)"
re=$(ip netns exec wshf-c $TOOL recheck --resolver 10.8.0.1 --src 10.8.0.3 --rounds "$ROUNDS")
[ "$re" = "poisoned 0 of $ROUNDS" ] && ok "another client asking the same names: $re (from the cache)" || bad "cache: $re"

echo "- a flood of $FLOOD unique names at a silent upstream"
q 10.8.0.3 cached.example > /dev/null
ip netns exec wshf-c "$TMP/spray" 10.8.0.2 40053 10.8.0.1 53 53 "$FLOOD" \
    "$($TOOL hex-query f00000000.silent.example)" 14 > "$TMP/flood.out" &
FPID=$!
PIDS+=($FPID)
sleep 0.1
# The flood overruns the listening socket's receive queue, so the kernel drops
# some of bob's datagrams as it would on a lossy link; bob asks as a stub
# resolver does, again after 250 ms, and must be answered within 1 s in all.
for name in cached.example blocked.example; do
    out=$(DNSTOOL_TIME=1 DNSTOOL_TRIES=4 DNSTOOL_TRY_MS=250 \
        ip netns exec wshf-c $DNSTOOL q --src 10.8.0.3 10.8.0.1 "$name" A 2> "$TMP/time" | paste -sd'|')
    ms=$(tail -n1 "$TMP/time" 2>/dev/null | grep -E '^[0-9]+$' || echo 9999)
    tries=$(sed -n 's/^tries //p' "$TMP/time" 2>/dev/null)
    case $name in cached*) want="NOERROR|A 192.0.2.7";; *) want="NXDOMAIN";; esac
    [[ $out == "$want"* ]] && [ "$ms" -lt 1000 ] && ok "during the flood, $name answered in $ms ms (try ${tries:-?})" \
        || bad "during the flood, $name: [$out] in $ms ms"
done
wait "$FPID" || true
echo "  (flood: $(cat "$TMP/flood.out"))"
sleep 2.5   # the budget of the last forwards
over=$(stat forwards_over_cap)
[ "$over" != missing ] && [ "$over" -gt 0 ] && ok "the excess was refused and counted: forwards_over_cap $over" \
    || bad "forwards_over_cap: $over"
out=$(q 10.8.0.2 after-flood.example)
[ "$out" = "NOERROR|A 192.0.2.7 300" ] && ok "answers after the flood" || bad "after the flood: [$out]"
kill -TERM "$RPID"
for _ in $(seq 20); do kill -0 "$RPID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$RPID" 2>/dev/null && bad "SIGTERM not obeyed within 2 s" || ok "SIGTERM obeyed"
if [ $fail != 0 ]; then echo "--- resolver log"; tail -n 20 "$TMP/resolver.err"; fi
exit $fail
