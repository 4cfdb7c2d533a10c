#!/usr/bin/env bash
# The web UI bound to a LAN address serves the LAN side only (api/ui/mod.rs,
# `same_side`): a WAN neighbour that routes the LAN address to the router
# reaches the listening socket (it takes any interface's packets), so the daemon
# itself refuses hosts whose route back leaves by another interface. Before,
# only the firmware's init script guarded this (an nft table); a daemon started
# by hand was open to the WAN. Real kernel, three namespaces, no firewall rules:
#
#   wsus-lan 192.168.77.2 ── 192.168.77.1 wsus-router 203.0.113.2 ── 203.0.113.7 wsus-wan
#                                (ui_listen 192.168.77.1:8080)   (route 192.168.77.0/24 via .2)
#
# Root only. ~5 s. Prints 'N passed, M failed'.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/lib/netns.sh
. tests/lib/netns.sh
BIN=$PWD/target/debug/wgsplit
export PATH="$HOME/.cargo/bin:$PATH" WG_USERSPACE_IMPLEMENTATION=boringtun-cli WG_SUDO=true
NS=(wsus-router wsus-lan wsus-wan)
DIR=$(mktemp -d /tmp/wsus.XXXXXX)
cleanup() {
    netns_remove "${NS[@]}"
    rm -f /var/run/wireguard/wsus-*.sock /var/run/wireguard/wsus-*.name
    rm -rf "$DIR"
}
trap cleanup EXIT
cargo build --quiet -p wgsplit || { echo "0 passed, 1 failed"; exit 1; }
passed=0 failed=0
check() { # name expected actual
    if [ "$2" = "$3" ]; then echo "ok   $1"; passed=$((passed + 1)); else echo "FAIL $1: expected '$2', got '$3'"; failed=$((failed + 1)); fi
}

netns_remove "${NS[@]}"
netns_fresh "${NS[@]}"
netns_link wsus-router wsus-rl wsus-lan wsus-l
netns_link wsus-router wsus-rw wsus-wan wsus-w
ip -n wsus-router addr add 192.168.77.1/24 dev wsus-rl
ip -n wsus-lan addr add 192.168.77.2/24 dev wsus-l
ip -n wsus-router addr add 203.0.113.2/24 dev wsus-rw
ip -n wsus-wan addr add 203.0.113.7/24 dev wsus-w
# The attacker's side sends the LAN address to the router, as an ISP neighbour can.
ip -n wsus-wan route add 192.168.77.0/24 via 203.0.113.2

cat > "$DIR/wgsplit" <<EOF
config server 'server'
	option interface 'wsus-wg0'
	option address '10.8.0.1/24'
	option private_key '$("$BIN" genkey)'
	option endpoint '203.0.113.2'
	option backend 'userspace'
	option dns_port '5353'
	option ui_listen '192.168.77.1:8080'
EOF
chmod 600 "$DIR/wgsplit"
ip netns exec wsus-router env WGSPLIT_RUN_DIR="$DIR/run" WGSPLIT_API_TOKEN_FILE="$DIR/etc/api.token" \
    WGSPLIT_UI_PASSWORD_FILE="$DIR/etc/ui.password" \
    "$BIN" --config "$DIR/wgsplit" daemon >"$DIR/daemon.log" 2>&1 &
status() { # ns → the HTTP status of the pages' state, or the curl error
    local code
    code=$(ip netns exec "$1" curl -s -o /dev/null -w '%{http_code}' --max-time 3 \
        http://192.168.77.1:8080/api/ui/state)
    echo "${code:-none}"
}
for _ in $(seq 100); do [ "$(status wsus-lan)" = 200 ] && break; sleep 0.1; done

check "a LAN host gets the pages" 200 "$(status wsus-lan)"
check "the router itself gets the pages" 200 "$(status wsus-router)"
# Refused at accept: the connection closes before any answer (curl: 000).
check "a WAN neighbour routing the LAN address to the router gets nothing" 000 "$(status wsus-wan)"
check "the WAN neighbour's connection was counted as refused" 1 \
    "$(ip netns exec wsus-router curl -s -H "Authorization: Bearer $(cat "$DIR/etc/api.token" 2>/dev/null)" \
        http://127.0.0.1:8274/metrics 2>/dev/null | grep -c '^wgsplit_api_requests_total{code="403"} [1-9]')"
[ $failed -eq 0 ] || { echo "--- daemon log"; tail -20 "$DIR/daemon.log"; }
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
