#!/usr/bin/env bash
# End to end in network namespaces: a client made with the CLI, its rendered
# config loaded into a userspace WireGuard peer, traffic leaving the way its
# rules say; disable and expiry cut it off; a provider-style upstream import;
# killing an upstream turns its health down and fails over; switch-back.
#
#   wsa-c1 (alice, boringtun) ─┐
#                              ├─ wsa-net ("internet" bridge 198.51.100.0/24,
#   wsa-router: wgsplit daemon ┘    whoami on .100 and .101:8080)
#     wsa-wg0 (server), wsa-u1 / wsa-u2 (upstreams) ─── wsa-up1 / wsa-up2:
#                                    WireGuard servers that NAT to .11 / .12
#                                    and answer DNS (dnsmasq) on their tunnel address
#
# Usage: e2e.sh WGSPLIT_BINARY   (root; boringtun-cli, wg, dnsmasq, socat)
set -uo pipefail
BIN=$(readlink -f "$1")
DIR=$(mktemp -d /tmp/wsa-e2e.XXXXXX)
NS="wsa-net wsa-router wsa-up1 wsa-up2 wsa-c1"
export WG_SUDO=true WG_USERSPACE_IMPLEMENTATION=boringtun-cli
export PATH="$HOME/.cargo/bin:$PATH"
fail=0 checks=0
ok() { checks=$((checks + 1)); echo "  ok   $1"; }
bad() { checks=$((checks + 1)); echo "  FAIL $1"; fail=$((fail + 1)); }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
DAEMON_ENV=(env WGSPLIT_RUN_DIR="$DIR/run" WGSPLIT_API_TOKEN_FILE="$DIR/api.token"
            WGSPLIT_HEALTH_EVERY=1 WGSPLIT_STATS_EVERY=1)
w() { in_ns wsa-router "${DAEMON_ENV[@]}" "$BIN" --config "$DIR/wgsplit" "$@"; }

cleanup() {
    local ns pid
    for ns in $NS; do
        [ -e "/var/run/netns/$ns" ] || continue
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null; done
    done
    sleep 0.3
    for ns in $NS; do
        [ -e "/var/run/netns/$ns" ] || continue
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    rm -f /var/run/wireguard/wsa-*.sock /var/run/wireguard/wsa-*.name
    rm -rf /etc/netns/wsa-router "$DIR"
}
[ -n "${E2E_KEEP:-}" ] || trap cleanup EXIT

wg_iface() { # ns name
    in_ns "$1" boringtun-cli "$2" >/dev/null 2>&1
    local i
    for i in $(seq 60); do [ -S "/var/run/wireguard/$2.sock" ] && return 0; sleep 0.05; done
    echo "e2e: $2 did not start" >&2; return 1
}
veth() { # ns1 if1 ns2 if2
    ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"
    in_ns "$1" ip link set "$2" up
    in_ns "$3" ip link set "$4" up
}
key() { "$BIN" genkey; }
pub() { echo "$1" | "$BIN" pubkey; }
# whoami through the client: prints the source address the server saw, or nothing.
whoami() { in_ns wsa-c1 timeout 3 socat -T2 - "TCP4:$1:8080,connect-timeout=2" </dev/null 2>/dev/null | tr -d '\r\n'; }
api() { # METHOD PATH [BODY]
    local t; t=$(cat "$DIR/api.token")
    in_ns wsa-router curl -s -X "$1" -H "Authorization: Bearer $t" -H 'Content-Type: application/json' \
        ${3:+--data "$3"} "http://127.0.0.1:8274$2"
}
wait_for() { # seconds description command...
    local secs=$1 what=$2; shift 2
    local end=$((SECONDS + secs))
    while [ $SECONDS -lt $end ]; do "$@" && { ok "$what"; return 0; }; sleep 0.3; done
    bad "$what (waited ${secs}s)"; return 1
}
is() { [ "$($1 "$2")" = "$3" ]; } # is whoami DEST EXPECTED

cleanup; mkdir -p "$DIR"
for ns in $NS; do
    ip netns add "$ns"; in_ns "$ns" ip link set lo up
    in_ns "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
done
in_ns wsa-net ip link add wsa-br type bridge
in_ns wsa-net ip link set wsa-br up
in_ns wsa-net ip addr add 198.51.100.1/24 dev wsa-br
in_ns wsa-net ip addr add 198.51.100.100/24 dev wsa-br
in_ns wsa-net ip addr add 198.51.100.101/24 dev wsa-br
for pair in "wsa-router wsa-rwan 198.51.100.2" "wsa-up1 wsa-up1v 198.51.100.11" \
            "wsa-up2 wsa-up2v 198.51.100.12" "wsa-c1 wsa-c1v 198.51.100.50"; do
    set -- $pair
    veth "$1" "$2" wsa-net "$2-n"
    in_ns wsa-net ip link set "$2-n" master wsa-br
    in_ns "$1" ip addr add "$3/24" dev "$2"
    in_ns "$1" ip route add default via 198.51.100.1
    in_ns "$1" sysctl -qw net.ipv4.ip_forward=1
done
for port in 8080; do
    in_ns wsa-net socat TCP4-LISTEN:$port,fork,reuseaddr 'SYSTEM:echo $SOCAT_PEERADDR' &
done
# The router masquerades what leaves its WAN, as fw4 does.
in_ns wsa-router nft -f - <<'EOF'
table ip wsa_fw {
    chain post {
        type nat hook postrouting priority srcnat;
        oifname "wsa-rwan" masquerade
    }
}
EOF
# A provider host name for upstream 1, resolved inside the router namespace.
mkdir -p /etc/netns/wsa-router
echo "198.51.100.11 up1.vpn.test" > /etc/netns/wsa-router/hosts

RK=$(key); U1K=$(key); U2K=$(key); S1K=$(key); S2K=$(key)
for n in 1 2; do
    k=S${n}K; rk=U${n}K
    wg_iface wsa-up$n wsa-u${n}s
    printf '%s' "${!k}" > "$DIR/s$n.key"
    in_ns wsa-up$n wg set wsa-u${n}s private-key "$DIR/s$n.key" listen-port 51820 \
        peer "$(pub "${!rk}")" allowed-ips 10.6$((3 + n)).0.2/32
    in_ns wsa-up$n ip addr add 10.6$((3 + n)).0.1/24 dev wsa-u${n}s
    in_ns wsa-up$n ip link set wsa-u${n}s up
    in_ns wsa-up$n nft -f - <<EOF
table ip wsa_nat {
    chain post {
        type nat hook postrouting priority srcnat;
        oifname "wsa-up${n}v" masquerade
    }
}
EOF
    in_ns wsa-up$n dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
        --listen-address=10.6$((3 + n)).0.1 --address=/#/198.51.100.100 \
        --pid-file="$DIR/dnsmasq$n.pid" --user=root >/dev/null 2>&1 &
done

cat > "$DIR/wgsplit" <<EOF
config server 'server'
	option interface 'wsa-wg0'
	option address '10.8.0.1/24'
	option private_key '$RK'
	option endpoint '198.51.100.2'
	option backend 'userspace'
	option dns_port '5353'
EOF
chmod 600 "$DIR/wgsplit"
# Upstream 2 by hand; upstream 1 as a provider's wg-quick file (host name, PostUp).
cat > "$DIR/up1.conf" <<EOF
[Interface]
PrivateKey = $U1K
Address = 10.64.0.2/32
DNS = 10.64.0.1
PostUp = echo hi
[Peer]
PublicKey = $(pub "$S1K")
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = up1.vpn.test:51820
PersistentKeepalive = 5
EOF
cat >> "$DIR/wgsplit" <<EOF

config upstream 'up2'
	option interface 'wsa-u2'
	option private_key '$U2K'
	list address '10.65.0.2/32'
	option public_key '$(pub "$S2K")'
	option endpoint '198.51.100.12:51820'
	list dns '10.65.0.1'
	option keepalive '5'
EOF

echo "- import, client add, daemon"
out=$(w upstream import up1 "$DIR/up1.conf" --on-down failover --failover up2 2>&1)
[[ $out == *"PostUp script ignored"* ]] && ok "provider file imported (PostUp noted)" || bad "import: $out"
sed -i "s/option interface 'wgs_up1'//" "$DIR/wgsplit"
w upstream set up1 --endpoint up1.vpn.test:51820 >/dev/null 2>&1
# Upstream interfaces must be unique across namespaces (boringtun's socket folder).
python3 - "$DIR/wgsplit" <<'EOF'
import sys, re
p = sys.argv[1]; s = open(p).read()
s = s.replace("config upstream 'up1'\n", "config upstream 'up1'\n\toption interface 'wsa-u1'\n", 1)
open(p, "w").write(s)
EOF
w config check >/dev/null 2>&1 && ok "config valid" || bad "config: $(w config check 2>&1)"

# ip netns exec and env exec: $! is the daemon itself.
ip netns exec wsa-router "${DAEMON_ENV[@]}" "$BIN" --config "$DIR/wgsplit" daemon >"$DIR/daemon.log" 2>&1 &
DAEMON_PID=$!
wait_for 15 "daemon API up" test -s "$DIR/api.token"
api_ok() { [ "$(api GET /api/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["clients"]["total"])' 2>/dev/null)" = 0 ]; }
wait_for 15 "API answers with the token" api_ok

out=$(w client add alice --upstream up1 --default direct 2>&1)
[[ $out == *"daemon applies"* ]] && ok "client add told the daemon" || bad "client add: $out"
api POST /api/rules '{"client":"alice","action":"proxy","cidr":["198.51.100.100/32"]}' >/dev/null

# The client: its rendered config, wg-quick parts stripped, into boringtun.
w client conf alice > "$DIR/wsa-c1.conf"
grep -q "^Endpoint = 198.51.100.2:51820$" "$DIR/wsa-c1.conf" && ok "endpoint from server.endpoint + listen_port" || bad "conf: $(cat "$DIR/wsa-c1.conf")"
wg_iface wsa-c1 wsa-c1
in_ns wsa-c1 wg setconf wsa-c1 <(wg-quick strip "$DIR/wsa-c1.conf" 2>/dev/null)
addr=$(sed -n 's/^Address = \([^,]*\).*/\1/p' "$DIR/wsa-c1.conf")
in_ns wsa-c1 ip addr add "$addr" dev wsa-c1
in_ns wsa-c1 ip link set wsa-c1 up
# Only the test servers go through the tunnel (the endpoint stays on the LAN route).
in_ns wsa-c1 ip route add 198.51.100.100/32 dev wsa-c1
in_ns wsa-c1 ip route add 198.51.100.101/32 dev wsa-c1

echo "- traffic goes the way the rules say"
wait_for 20 "rule: 198.51.100.100 leaves through up1" is whoami 198.51.100.100 198.51.100.11
wait_for 5 "default: 198.51.100.101 leaves direct" is whoami 198.51.100.101 198.51.100.2
upstate() { api GET "/api/upstreams/$1" | python3 -c "import json,sys; print((json.load(sys.stdin).get('health') or {}).get('state'))" 2>/dev/null; }
state_is() { [ "$(upstate "$1")" = "$2" ]; }
peer() { # FIELD of alice's live peer data
    api GET /api/clients/alice | python3 -c "import json,sys; p=json.load(sys.stdin)['peer'] or {}; print(p.get('$1'))" 2>/dev/null
}
alice_online() { [ "$(peer online)" = True ] && [ "$(peer rx)" -gt 0 ] 2>/dev/null; }
cut_off() { [ -z "$(whoami 198.51.100.101)" ]; }

echo "- stats and health"
wait_for 15 "up1 health is up (handshake + DNS probe through the tunnel)" state_is up1 up
wait_for 15 "up2 health is up" state_is up2 up
wait_for 5 "alice online, with traffic counters" alice_online
m=$(api GET /metrics)
[[ $m == *'wgsplit_client_receive_bytes_total{client="alice"}'* && $m == *'wgsplit_upstream_state{upstream="up1",state="up"} 1'* ]] \
    && ok "metrics: client bytes and upstream health" || bad "metrics: $m"
# The resolver's counters reach /metrics through the daemon's wiring (one query, from the router).
in_ns wsa-router timeout 5 python3 "$(dirname "$0")/../dns/dnstool.py" q 10.8.0.1:5353 metrics.example A >/dev/null 2>&1
m=$(api GET /metrics)
q=$(sed -n 's/^wgsplit_dns_queries_total //p' <<<"$m")
[[ ${q:-0} -ge 1 && $m == *'wgsplit_dns_rate_limited_total '* && $m == *'wgsplit_dns_forwards_over_cap_total '* ]] \
    && ok "metrics: the resolver's counters ($q queries)" || bad "metrics: no resolver counters ($(grep -c '^wgsplit_dns' <<<"$m") lines)"
hist() { whoami 198.51.100.101 >/dev/null; api GET /api/clients/alice/history | python3 -c "import json,sys; h=json.load(sys.stdin); sys.exit(0 if len(h['rx'])==2016 and sum(h['rx'])>0 else 1)"; }
wait_for 20 "history: 2016 five-minute buckets with alice's traffic" hist

echo "- another client added and removed; alice's session untouched"
rx0=$(peer rx); hs0=$(peer handshake_age)
t0=$(date +%s%N)
w client add bob >/dev/null 2>&1
w client remove bob >/dev/null 2>&1
t1=$(date +%s%N)
echo "    add+remove of bob through the CLI and the daemon: $(( (t1 - t0) / 1000000 )) ms"
sleep 2.5
rx1=$(peer rx); hs1=$(peer handshake_age)
if [ "$rx1" -ge "$rx0" ] 2>/dev/null && [ "$hs1" != None ]; then
    ok "alice's peer kept its counters and handshake ($rx0 -> $rx1 bytes, handshake ${hs0}s -> ${hs1}s ago)"
else
    bad "alice's peer was re-created ($rx0 -> $rx1, $hs0 -> $hs1)"
fi
is whoami 198.51.100.100 198.51.100.11 && ok "alice still reaches through up1" || bad "alice lost her route"

echo "- an upstream dies: health down, failover, switch back"
in_ns wsa-up1 nft -f - <<'EOF'
table ip wsa_cut {
    chain drop_wg {
        type filter hook input priority -10;
        udp dport 51820 drop
    }
}
EOF
wait_for 25 "up1 is down" state_is up1 down
wait_for 10 "failover: 198.51.100.100 now leaves through up2" is whoami 198.51.100.100 198.51.100.12
grep -q "upstream up1: .*-> down.*fails over to up2" "$DIR/daemon.log" && ok "the switch is logged" || bad "no switch in the log"
in_ns wsa-up1 nft delete table ip wsa_cut
wait_for 40 "up1 is up again" state_is up1 up
wait_for 10 "switch back: 198.51.100.100 leaves through up1 again" is whoami 198.51.100.100 198.51.100.11
grep -q "upstream up1: down -> up" "$DIR/daemon.log" && ok "the switch back is logged" || bad "no switch back in the log"

echo "- disable, enable, expiry"
alice_pub=$(pub "$(sed -n 's/^PrivateKey = //p' "$DIR/wsa-c1.conf")")
w client disable alice >/dev/null 2>&1
wait_for 10 "disabled: alice is cut off" cut_off
if in_ns wsa-router wg show wsa-wg0 peers | grep -q "$alice_pub"; then bad "disabled peer still on wsa-wg0"; else ok "disabled peer is off wsa-wg0"; fi
w client enable alice >/dev/null 2>&1
wait_for 45 "enabled: alice is back" is whoami 198.51.100.101 198.51.100.2
w client set alice --expires 2020-01-01 >/dev/null 2>&1
wait_for 10 "expired: alice is cut off" cut_off
w client list 2>/dev/null | grep "^alice .*expired" >/dev/null && ok "list shows expired" || bad "list: $(w client list 2>&1)"
w client set alice --expires never >/dev/null 2>&1
wait_for 45 "expiry removed: alice is back" is whoami 198.51.100.101 198.51.100.2

echo "- a monthly quota, spent"
w client set alice --quota 4K >/dev/null 2>&1
spend() { whoami 198.51.100.101 >/dev/null; grep -A12 "^config client 'alice'" "$DIR/wgsplit" | grep -q "option enabled '0'"; }
wait_for 30 "quota spent: alice is disabled in the config" spend
grep -q "client alice: monthly quota spent" "$DIR/daemon.log" && ok "the quota switch is logged" || bad "no quota line in the log"
wait_for 10 "quota spent: alice is cut off" cut_off
q=$(api GET /api/clients/alice/history | python3 -c "import json,sys; m=json.load(sys.stdin)['month']; print(m['quota'], m['disabled_by_quota'], m['bytes'] >= 4096)")
[ "$q" = "4096 True True" ] && ok "history shows the month's use and the quota" || bad "history month: $q"
w client set alice --quota none >/dev/null 2>&1
w client enable alice >/dev/null 2>&1
wait_for 45 "quota removed and enabled: alice is back" is whoami 198.51.100.101 198.51.100.2

echo "- the daemon stops"
kill "$DAEMON_PID"
stopped() { ! kill -0 "$DAEMON_PID" 2>/dev/null; }
wait_for 10 "daemon stopped on SIGTERM" stopped
grep -q "stopping" "$DIR/daemon.log" && ok "it said so" || bad "no 'stopping' in the log"
[ -s "$DIR/run/stats.bin" ] && ok "traffic history flushed to the run directory" || bad "no $DIR/run/stats.bin"

echo "e2e: $((checks - fail))/$checks checks passed"
if [ $fail -gt 0 ]; then echo "--- daemon log (tail)"; grep -v "got unsupported info" "$DIR/daemon.log" | tail -60; fi
[ $fail -eq 0 ]
