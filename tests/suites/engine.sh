#!/usr/bin/env bash
# The kernel engine, end to end, on the real kernel: clients, router, two upstream
# WireGuard servers and an "internet" in network namespaces (tests/engine/topology.sh).
# Proves the exit path by the source address whoami servers see. Root only.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/engine/topology.sh

if [ "$(id -u)" != 0 ]; then echo "engine: needs root (network namespaces)"; exit 1; fi
# The topology has fixed names (wse-*): two runs at once (two checkouts on one
# machine) would tear down each other's namespaces. Take turns.
exec 8>/run/wgsplit-engine-suite.lock
flock 8
cargo build --quiet -p wgsplit || exit 1

fails=0
check() { # name expected actual
    if [ "$2" = "$3" ]; then
        echo "ok   $1"
    else
        echo "FAIL $1: expected '$2', got '$3'"
        fails=$((fails + 1))
    fi
}
# Retries a whoami until it answers what we expect (tunnels need a handshake).
eventually() { # name expected client host port
    local got i
    for i in $(seq 24); do
        got=$(whoami "$3" "$4" "$5")
        [ "$got" = "$2" ] && break
        sleep 0.25
    done
    check "$1" "$2" "$got"
}
counter() { # ns table name → packets
    in_ns "$1" nft -j list counter inet "$2" "$3" | grep -o '"packets": [0-9]*' | grep -o '[0-9]*$'
}
our_rules() { in_ns wse-router ip rule | grep -c 'proto 87'; in_ns wse-router ip -6 rule | grep -c 'proto 87'; }
nft_rules() { in_ns wse-router nft -a list table inet wgsplit 2>/dev/null | grep -c '# handle'; }
router_pid_of() { # exact command line → pid in the router namespace
    local p
    for p in $(ip netns pids wse-router); do
        [ "$(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)" = "$1 " ] && echo "$p"
    done
}

trap topo_down EXIT
topo_up || exit 1
# Counters the harness reads: carol's (and, as a control, alice's) packets into
# any tunnel, and packets leaving the WAN for server A.
in_ns wse-router nft -f - <<'EOF'
table inet wse_count {
    counter carol_tunnel {}
    counter alice_tunnel {}
    counter wan_to_a {}
    chain count_fwd {
        type filter hook forward priority 10; policy accept;
        oifname { "wse-u1", "wse-u2" } ip saddr 10.8.0.4 counter name carol_tunnel
        oifname { "wse-u1", "wse-u2" } ip6 saddr fd42:8::4 counter name carol_tunnel
        oifname { "wse-u1", "wse-u2" } ip saddr 10.8.0.2 counter name alice_tunnel
    }
    chain count_post {
        type filter hook postrouting priority 300; policy accept;
        oifname "wse-rwan" ip daddr 198.51.100.100 counter name wan_to_a
        oifname "wse-rwan" ip6 daddr fd00:5e::100 counter name wan_to_a
    }
}
EOF
# Something of someone else's that `down` must leave alone.
in_ns wse-router ip rule add fwmark 0x10 lookup 100 priority 7000

echo "--- plan and apply"
plan=$(wgsplit_r apply --dry-run)
check "dry-run plans changes" "yes" "$(echo "$plan" | grep -q '^nft: one transaction' && echo yes)"
check "dry-run changes nothing" "absent" "$(in_ns wse-router nft list table inet wgsplit >/dev/null 2>&1 && echo present || echo absent)"
wgsplit_r apply >/dev/null
check "second apply changes nothing" "applied: 0 changes" "$(wgsplit_r apply | grep -o 'applied: [0-9]* changes')"
for c in 1 2 3; do wait_tunnel wse-c$c || echo "tunnel of wse-c$c not up"; done

echo "--- split routing (source address seen by the servers)"
eventually "alice → A goes through up1" $UP1_EXIT4 wse-c1 $SRV_A4 8080
eventually "alice → A (IPv6) goes through up1" $UP1_EXIT6_SEEN wse-c1 $SRV_A6 8080
check "alice → B goes direct" $WAN4 "$(whoami wse-c1 $SRV_B4 8080)"
eventually "alice → B:8081 goes through up2 (port rule)" $UP2_EXIT4 wse-c1 $SRV_B4 8081
eventually "bob → A goes through up2 (same destination, other upstream)" $UP2_EXIT4 wse-c2 $SRV_A4 8080
eventually "bob → A (IPv6) goes through up2" $UP2_EXIT6_SEEN wse-c2 $SRV_A6 8080
check "bob → B goes direct (his rule)" $WAN4 "$(whoami wse-c2 $SRV_B4 8080)"
check "carol → A goes direct" $WAN4 "$(whoami wse-c3 $SRV_A4 8080)"
check "carol → A (IPv6) goes direct" $WAN6_SEEN "$(whoami wse-c3 $SRV_A6 8080)"
check "carol → B:8081 goes direct" $WAN4 "$(whoami wse-c3 $SRV_B4 8081)"
check "carol never enters a tunnel (packets)" 0 "$(counter wse-router wse_count carol_tunnel)"
check "the tunnel counter does count (alice > 0)" yes "$([ "$(counter wse-router wse_count alice_tunnel)" -gt 0 ] && echo yes)"

echo "--- explain agrees with what the servers saw"
goes() { wgsplit_r explain "$1" "$2" | sed -n '1s/.*: //p'; }
check "explain alice A:8080/tcp" "upstream up1" "$(goes alice $SRV_A4:8080/tcp)"
check "explain alice B:8081/tcp" "upstream up2" "$(goes alice $SRV_B4:8081/tcp)"
check "explain bob [A6]:8080" "upstream up2" "$(goes bob "[$SRV_A6]:8080")"
check "explain bob B" "direct" "$(goes bob $SRV_B4)"
check "explain carol A" "direct" "$(goes carol $SRV_A4)"

echo "--- one client's rule changes: only that client is touched"
write_config direct
plan=$(wgsplit_r apply --dry-run)
others=$(echo "$plan" | grep -E '^    (add|delete|flush)' | grep -vc 'alice')
check "the plan touches only alice's objects" 0 "$others"
wgsplit_r apply >/dev/null
check "alice → A now direct" $WAN4 "$(whoami wse-c1 $SRV_A4 8080)"
check "bob → A still through up2" $UP2_EXIT4 "$(whoami wse-c2 $SRV_A4 8080)"
write_config proxy
wgsplit_r apply >/dev/null
eventually "alice → A through up1 again" $UP1_EXIT4 wse-c1 $SRV_A4 8080

echo "--- block: alice's traffic to A goes nowhere"
write_config block
wgsplit_r apply >/dev/null
in_ns wse-router nft reset counter inet wse_count wan_to_a >/dev/null
check "alice → A blocked: no answer" "-" "$(whoami wse-c1 $SRV_A4 8080)"
check "alice → A (IPv6) blocked: no answer" "-" "$(whoami wse-c1 $SRV_A6 8080)"
check "blocked: no packet to A on the WAN" 0 "$(counter wse-router wse_count wan_to_a)"
check "blocked: bob → A still through up2" $UP2_EXIT4 "$(whoami wse-c2 $SRV_A4 8080)"
check "blocked: alice → B still direct" $WAN4 "$(whoami wse-c1 $SRV_B4 8080)"
write_config proxy
wgsplit_r apply >/dev/null
eventually "alice → A through up1 after the block" $UP1_EXIT4 wse-c1 $SRV_A4 8080

echo "--- kill switch: up1 down, its traffic reaches nothing"
pid=$(router_pid_of "boringtun-cli wse-u1")
[ -n "$pid" ] && kill "$pid"
for i in $(seq 40); do in_ns wse-router ip link show wse-u1 >/dev/null 2>&1 || break; sleep 0.1; done
in_ns wse-router nft reset counter inet wse_count wan_to_a >/dev/null
check "alice → A with up1 down: no answer" "-" "$(whoami wse-c1 $SRV_A4 8080)"
check "alice → A (IPv6) with up1 down: no answer" "-" "$(whoami wse-c1 $SRV_A6 8080)"
check "packets to A on the WAN while up1 is down" 0 "$(counter wse-router wse_count wan_to_a)"
check "bob (up2) unaffected" $UP2_EXIT4 "$(whoami wse-c2 $SRV_A4 8080)"
wgsplit_r apply >/dev/null
eventually "apply brings up1 back" $UP1_EXIT4 wse-c1 $SRV_A4 8080

echo "--- the daemon keeps it true"
WGSPLIT_HEALTH_EVERY=3600 ip netns exec wse-router "$WSE_BIN" --config "$WSE_DIR/wgsplit.conf" daemon >"$WSE_DIR/daemon.log" 2>&1 &
dpid=$!
sleep 1
check "daemon adopts the applied state (no changes at start)" 0 "$(grep -c 'applied' "$WSE_DIR/daemon.log")"
in_ns wse-router nft delete table inet wgsplit
for i in $(seq 40); do in_ns wse-router nft list table inet wgsplit >/dev/null 2>&1 && break; sleep 0.1; done
check "deleted table repaired" present "$(in_ns wse-router nft list table inet wgsplit >/dev/null 2>&1 && echo present)"
eventually "alice → A through up1 after repair" $UP1_EXIT4 wse-c1 $SRV_A4 8080
before=$(in_ns wse-router nft -t -j list table inet wgsplit | md5sum)
in_ns wse-router nft -f - <<'EOF'
table inet fw4 {
    chain forward { type filter hook forward priority filter; policy accept; }
}
EOF
in_ns wse-router nft delete table inet fw4
sleep 0.3
check "fw4 deleted: our table untouched" "$before" "$(in_ns wse-router nft -t -j list table inet wgsplit | md5sum)"
check "fw4 deleted: alice → A still through up1" $UP1_EXIT4 "$(whoami wse-c1 $SRV_A4 8080)"
write_config direct
sleep 1.5
eventually "config change picked up (alice → A direct)" $WAN4 wse-c1 $SRV_A4 8080
# Same mtime as before: only the signal can tell the daemon. Written beside it
# with the old mtime, then renamed in: the daemon's 500 ms poll never sees a
# new mtime (writing in place raced it under load).
cp -p "$WSE_DIR/wgsplit.conf" "$WSE_DIR/mtime.ref"
write_config proxy "$WSE_DIR/wgsplit.conf.new"
touch -r "$WSE_DIR/mtime.ref" "$WSE_DIR/wgsplit.conf.new"
mv "$WSE_DIR/wgsplit.conf.new" "$WSE_DIR/wgsplit.conf"
sleep 1
check "unchanged mtime: no re-apply without a signal" $WAN4 "$(whoami wse-c1 $SRV_A4 8080)"
kill -HUP $dpid
eventually "SIGHUP re-applies (alice → A through up1)" $UP1_EXIT4 wse-c1 $SRV_A4 8080
rules_before=$(our_rules | tr '\n' ' '); nft_before=$(nft_rules)
kill -9 $dpid; wait $dpid 2>/dev/null
check "kill -9: routing stays (alice → A through up1)" $UP1_EXIT4 "$(whoami wse-c1 $SRV_A4 8080)"
WGSPLIT_HEALTH_EVERY=3600 ip netns exec wse-router "$WSE_BIN" --config "$WSE_DIR/wgsplit.conf" daemon >"$WSE_DIR/daemon2.log" 2>&1 &
dpid=$!
sleep 1.5
check "restart adopts the state (no changes)" 0 "$(grep -c 'applied' "$WSE_DIR/daemon2.log")"
check "restart duplicates no ip rules" "$rules_before" "$(our_rules | tr '\n' ' ')"
check "restart duplicates no nft rules" "$nft_before" "$(nft_rules)"
check "after restart alice → A through up1" $UP1_EXIT4 "$(whoami wse-c1 $SRV_A4 8080)"
kill -TERM $dpid; wait $dpid; rc=$?
check "SIGTERM: clean exit" 0 $rc
check "SIGTERM leaves routing in place" $UP1_EXIT4 "$(whoami wse-c1 $SRV_A4 8080)"

echo "--- down removes exactly what wgsplit created"
wgsplit_r down >/dev/null
check "table gone" absent "$(in_ns wse-router nft list table inet wgsplit >/dev/null 2>&1 && echo present || echo absent)"
check "our ip rules gone" "0 0" "$(our_rules | tr '\n' ' ' | sed 's/ $//')"
check "our routes gone" 0 "$(in_ns wse-router ip route show table all | grep -c 'proto 87')"
check "our interfaces gone" "" "$(in_ns wse-router ip -br link | grep -Eo '^wse-(wg0|u1|u2)\b' | tr '\n' ' ')"
check "someone else's ip rule kept" 1 "$(in_ns wse-router ip rule | grep -c 'lookup 100')"
check "someone else's nft tables kept" "wse_count wse_wan" "$(in_ns wse-router nft list tables | awk '{print $3}' | sort | tr '\n' ' ' | sed 's/ $//')"
check "underlay links kept" 3 "$(in_ns wse-router ip -br link | grep -c '^wse-c.v-r')"

echo "--- refusals and rollback"
in_ns wse-router ip link add wse-u2 type veth peer name wse-u2p
out=$(wgsplit_r apply 2>&1); rc=$?
check "foreign interface refused" "1 yes" "$rc $(echo "$out" | grep -q "'wse-u2' (upstream up2) already exists" && echo yes)"
check "refusal changed nothing" absent "$(in_ns wse-router nft list table inet wgsplit >/dev/null 2>&1 && echo present || echo absent)"
check "refusal created no links" "" "$(in_ns wse-router ip -br link | grep -Eo '^wse-(wg0|u1)\b' | tr '\n' ' ')"
in_ns wse-router ip link del wse-u2
# An nft that lists but rejects every transaction: the netlink steps done before it
# must be undone.
cat > "$WSE_DIR/nft-fail" <<'EOF'
#!/bin/sh
[ "$1" = "-f" ] && { cat >/dev/null; echo "Error: injected failure" >&2; exit 1; }
exec nft "$@"
EOF
chmod +x "$WSE_DIR/nft-fail"
out=$(WGSPLIT_NFT="$WSE_DIR/nft-fail" wgsplit_r apply 2>&1); rc=$?
check "failed apply reports the step" "1 yes" "$rc $(echo "$out" | grep -q 'step failed: nft' && echo yes)"
check "failed apply says it rolled back" yes "$(echo "$out" | grep -q 'rolled back' && echo yes)"
check "rollback: no ip rules left" "0 0" "$(our_rules | tr '\n' ' ' | sed 's/ $//')"
check "rollback: no routes left" 0 "$(in_ns wse-router ip route show table all | grep -c 'proto 87')"
check "rollback: no interfaces left" "" "$(in_ns wse-router ip -br link | grep -Eo '^wse-(wg0|u1|u2)\b' | tr '\n' ' ')"

echo
if [ $fails -eq 0 ]; then echo "engine: all checks passed"; else echo "engine: $fails checks failed"; fi
[ $fails -eq 0 ]
