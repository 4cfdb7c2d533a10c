#!/usr/bin/env bash
# ok never fails, so `test && ok || bad` is an if/else; cleanup runs from the trap.
# shellcheck disable=SC2015,SC2317
# Attack: one VPN client floods the resolver with unique names (~45,000 queries/s,
# `dnstool.py flood`: dnsperf crawls when nothing is answered) while the upstream resolver has gone silent — inside `wgsplit daemon`,
# so DNS, the config watcher and the signal handling are the daemon's own.
#
#   wshdf-c (alice 10.8.0.2: the flood; bob 10.8.0.3: a phone) ── wshdf-r (router:
#   wgsplit daemon, resolver on 10.8.0.1:53) ── wshdf-w (WAN resolver 10.99.0.53: a
#   stub that answers, then drops every query: silent)
#
# What must hold (each a line below):
#   - bob's cached names are answered, during the flood, at >= 90% of the rate
#     they were answered without it (bob asks at a fixed 150 q/s, under his own
#     rate limit: what a fair resolver owes a phone);
#   - a config change written during the flood is applied (a new block rule for
#     bob answers NXDOMAIN within 5 s of the write; the daemon polls every 500 ms);
#   - RSS after the flood is under RSS_BOUND_MB;
#   - SIGTERM during a flood ends the daemon within 2 s.
# The flood's send rate is printed and must reach FLOOD_MIN_QPS (else the attack
# did not happen and the run proves nothing).
#
# Usage: dns_flood.sh WGSPLIT_BINARY   (root; dnsperf for bob, nft, python3)
set -uo pipefail
BIN=$(readlink -f "${1:?usage: dns_flood.sh WGSPLIT_BINARY}")
cd "$(dirname "$0")/../.." || exit 1
if [ "$(id -u)" != 0 ]; then echo "  skip dns_flood: needs root"; exit 0; fi
for t in dnsperf nft python3; do
    command -v $t > /dev/null || { echo "  FAIL dns_flood: $t missing (tests/lib/deps.sh installs it)"; exit 1; }
done
FLOOD_QPS=45000
FLOOD_SECS=15
FLOOD_MIN_QPS=30000
PHONE_QPS=150
RSS_BOUND_MB=32
TOOL=(python3 "$PWD/tests/dns/dnstool.py")
TMP=$(mktemp -d /tmp/wshdf.XXXXXX)
DPID=
fail=0
ok() { echo "  ok   $1"; }
bad() { echo "  FAIL $1"; fail=1; }
. tests/lib/hostile_dns.sh
cleanup() { [ -z "$DPID" ] || PIDS+=("$DPID"); hostile_cleanup; }
trap cleanup EXIT
hostile_dns_topology wshdf 10.99.0.53/24 10.8.0.2/24 10.8.0.3/24

# bob's names (answered, then cached for an hour).
python3 - "$TMP" << 'EOF'
import sys
d = sys.argv[1]
with open(f"{d}/zone", "w") as z, open(f"{d}/phone.txt", "w") as p:
    for i in range(200):
        z.write(f"b{i}.cached.example A 198.51.100.{i % 250 + 1} 3600\n")
        p.write(f"b{i}.cached.example A\n")
    z.write("blockme.example A 198.51.100.254 3600\n")
EOF
ip netns exec wshdf-w "${TOOL[@]}" stub --listen 10.99.0.53:53 --zone "$TMP/zone" --log "$TMP/wan.log" > "$TMP/stub.out" 2>&1 &
PIDS+=($!)

hostile_config 2 > "$TMP/wgsplit"
"$BIN" -c "$TMP/wgsplit" config check > /dev/null 2>&1 || { echo "  FAIL dns_flood: config"; exit 1; }

start_daemon() {
    # No WireGuard here: the engine's applies fail (and say so); DNS, the config
    # watcher and the signals are what is under test.
    ip netns exec wshdf-r env WGSPLIT_RUN_DIR="$TMP/run" WGSPLIT_API_TOKEN_FILE="$TMP/api.token" \
        "$BIN" -c "$TMP/wgsplit" daemon > "$TMP/daemon.log" 2>&1 &
    DPID=$!
    for _ in $(seq 50); do
        [ "$(bob_asks b0.cached.example)" = "NOERROR" ] && return 0
        sleep 0.2
    done
    echo "  FAIL dns_flood: the daemon's resolver did not answer"; tail -5 "$TMP/daemon.log"; exit 1
}
bob_asks() { ip netns exec wshdf-c "${TOOL[@]}" q --src 10.8.0.3 10.8.0.1 "$1" A 2> /dev/null | head -1; }
perf() { # perf SRC FILE QPS SECS [extra] → dnsperf's output
    ip netns exec wshdf-c dnsperf -s 10.8.0.1 -a "$1" -d "$2" -Q "$3" -l "$4" -t 1 "${@:5}" 2>&1
}
field() { # field "Label:" < dnsperf output → the number after the label (0 if none)
    awk -v k="$1" 'index($0, k) {split(substr($0, index($0, k) + length(k)), w, " "); v = w[1]} END {print v + 0}'
}
rss_mb() { awk '/VmRSS/ {printf "%d", $2 / 1024}' "/proc/$1/status" 2> /dev/null || echo 0; }
flood() { # flood SUFFIX SECS OUT: alice, unique names under SUFFIX, in the background
    ip netns exec wshdf-c timeout $(($2 + 5)) "${TOOL[@]}" flood --src 10.8.0.2 --qps $FLOOD_QPS \
        --secs "$2" 10.8.0.1 "$1" > "$3" 2>&1 &
    FPID=$!
    PIDS+=("$FPID")
}

start_daemon
# Warm bob's names, then measure him unloaded.
perf 10.8.0.3 "$TMP/phone.txt" 1000 10 -n 1 > /dev/null
base=$(perf 10.8.0.3 "$TMP/phone.txt" $PHONE_QPS 6 | field "Queries completed:")
# The upstream goes silent: every query to it dropped, nothing answered.
ip netns exec wshdf-w nft -f - << 'EOF'
table inet wshdf {
    chain in {
        type filter hook input priority 0;
        meta l4proto { udp, tcp } th dport 53 drop
    }
}
EOF

echo "- a $FLOOD_SECS s flood of unique names at $FLOOD_QPS q/s from alice, upstream silent"
flood flood.example $FLOOD_SECS "$TMP/flood.out"
t0=$SECONDS
sleep 2
loaded=$(perf 10.8.0.3 "$TMP/phone.txt" $PHONE_QPS 6 | field "Queries completed:")
pct=$((base > 0 ? 100 * loaded / base : 0))
[ "$pct" -ge 90 ] && ok "bob's cached names answered at $pct% of his unloaded rate ($loaded vs $base in 6 s at $PHONE_QPS q/s)" ||
    bad "bob answered at $pct% of his unloaded rate ($loaded vs $base)"
# A config change during the flood: a block rule for bob.
cat >> "$TMP/wgsplit" << 'EOF'
config rule
	option client 'bob'
	option action 'block'
	list domain 'blockme.example'
EOF
changed=$(date +%s%N) got=
# The daemon polls the file's mtime every 500 ms; 5 s is slack for a loaded machine.
while [ $(($(date +%s%N) - changed)) -lt 5000000000 ]; do
    got=$(bob_asks blockme.example)
    [ "$got" = NXDOMAIN ] && break
    sleep 0.2
done
ms=$((($(date +%s%N) - changed) / 1000000))
[ "$got" = NXDOMAIN ] && ok "a config change written during the flood is applied (seen after $ms ms)" ||
    bad "the config change was not applied within 5 s (got '$got')"
peak=$(rss_mb $DPID)
wait $FPID 2> /dev/null
read -r _ sent secs < "$TMP/flood.out"
rate=$(python3 -c "print(int(${sent:-0} / max(${secs:-0}, 0.001)))")
[ "$rate" -ge $FLOOD_MIN_QPS ] && ok "the flood sent $sent queries in ${secs}s ($rate q/s)" ||
    { bad "the flood reached only $rate q/s ($sent in ${secs}s): the attack did not happen"; head -5 "$TMP/flood.out"; }
sleep 3 # what was forwarded times out (the 2 s budget)
rss=$(rss_mb $DPID)
kill -0 $DPID 2> /dev/null && ok "the daemon is alive after the flood" || bad "the daemon died"
[ "$rss" -gt 0 ] && [ "$rss" -le $RSS_BOUND_MB ] && ok "RSS after the flood $rss MB <= $RSS_BOUND_MB MB (during it: $peak MB)" ||
    bad "RSS after the flood $rss MB (bound $RSS_BOUND_MB MB; during it $peak MB)"
[ "$(bob_asks b1.cached.example)" = NOERROR ] && ok "bob still answered after the flood" || bad "bob not answered after the flood"

echo "- SIGTERM during a flood"
flood flood2.example 6 "$TMP/flood2.out"
sleep 2
t=$(date +%s%N)
kill -TERM $DPID
for _ in $(seq 40); do kill -0 $DPID 2> /dev/null || break; sleep 0.05; done
ms=$((($(date +%s%N) - t) / 1000000))
if kill -0 $DPID 2> /dev/null; then
    bad "SIGTERM not obeyed within 2 s during the flood"
else
    ok "SIGTERM obeyed in $ms ms during the flood"
    wait $DPID 2> /dev/null
    DPID=
fi
wait $FPID 2> /dev/null
[ $fail = 0 ] || { echo "--- daemon log (last lines)"; tail -15 "$TMP/daemon.log"; }
echo "  (time: $((SECONDS - t0)) s of flooding and checks)"
exit $fail
