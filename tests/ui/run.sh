#!/usr/bin/env bash
# The daemon's own web pages (server.ui_listen) in headless Chromium, against
# the real daemon in the netns topology of the end-to-end suites:
#
#   wsui-c1 (the client, boringtun) ─┐
#                                    ├─ wsui-net ("internet" bridge 198.51.100.0/24,
#   wsui-router: wgsplit daemon ─────┘    whoami on .100 and .101:8080)
#     wsui-wg0 (server), wsui-u1 (upstream vpn1) ── wsui-up1: a WireGuard server
#                                    that NATs to .11 and answers every name
#                                    with .101 (dnsmasq) on its tunnel address
#
# The pages on 127.0.0.1:8080 inside wsui-router, where Chromium runs too.
# tests/ui/ui.test.js drives them; tests/ui/net.sh does what a browser can't
# (bring the client up with the downloaded .conf, connect and look up through
# its tunnel): setup, login, a client added with its .conf and QR, its traffic
# through its upstream, a domain rule, disable, a one-time link, upstream
# import, explain, settings and "update now", another origin's write; every
# page in three languages at desktop and phone sizes (screenshots in
# tests/out/ui/).
#
# Usage: tests/ui/run.sh   (root; boringtun-cli, wg, dnsmasq, socat, node, chromium)
# Ends with 'N passed, M failed'; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/deps.sh
install_deps_luci || { echo "0 passed, 1 failed"; exit 1; }
if [ ! -d tests/luci/node_modules/playwright-core ]; then
    (cd tests/luci && npm ci --no-audit --no-fund --loglevel=error) >&2 \
        || { echo "npm ci failed"; echo "0 passed, 1 failed"; exit 1; }
fi
# The embedded .gz must be the text beside it (the browser gets the .gz).
for f in index.html ui.js ui.css; do
    gzip -dc "daemon/ui/$f.gz" | cmp -s - "daemon/ui/$f" \
        || { echo "FAIL daemon/ui/$f.gz is stale: run daemon/ui/compress.sh"; echo "0 passed, 1 failed"; exit 1; }
done
cargo build --quiet || { echo "0 passed, 1 failed"; exit 1; }
BIN=$PWD/target/debug/wgsplit
export PATH="$HOME/.cargo/bin:$PATH" WG_USERSPACE_IMPLEMENTATION=boringtun-cli WG_SUDO=true
NS="wsui-net wsui-router wsui-up1 wsui-c1"
DIR=$(mktemp -d /tmp/wsui.XXXXXX)
# List files may live only under wgsplit's folders (config/confine.rs).
mkdir -p /tmp/wgsplit
LISTS=$(mktemp -d /tmp/wgsplit/wsui.XXXXXX)
OUT=$PWD/tests/out/ui
mkdir -p "$OUT"
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

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
    rm -f /var/run/wireguard/wsui-*.sock /var/run/wireguard/wsui-*.name
    rm -rf "$DIR" "$LISTS"
}
[ -n "${UI_KEEP:-}" ] || trap cleanup EXIT
cleanup
mkdir -p "$DIR" "$LISTS"
for ns in $NS; do
    ip netns add "$ns"
    in_ns "$ns" ip link set lo up
    in_ns "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
done
in_ns wsui-net ip link add wsui-br type bridge
in_ns wsui-net ip link set wsui-br up
for a in 1 100 101; do in_ns wsui-net ip addr add "198.51.100.$a/24" dev wsui-br; done
for pair in "wsui-router wsui-rwan 198.51.100.2" "wsui-up1 wsui-up1v 198.51.100.11" "wsui-c1 wsui-c1v 198.51.100.50"; do
    set -- $pair
    ip link add "$2" netns "$1" type veth peer name "$2-n" netns wsui-net
    in_ns "$1" ip link set "$2" up
    in_ns wsui-net ip link set "$2-n" up master wsui-br
    in_ns "$1" ip addr add "$3/24" dev "$2"
    in_ns "$1" ip route add default via 198.51.100.1
    in_ns "$1" sysctl -qw net.ipv4.ip_forward=1
done
# whoami: answers the source address it sees.
in_ns wsui-net socat TCP4-LISTEN:8080,fork,reuseaddr 'SYSTEM:echo $SOCAT_PEERADDR' &
# The router masquerades what leaves its WAN, as fw4 does; the upstream's
# server NATs what leaves it.
in_ns wsui-router nft -f - <<'NFT'
table ip wsui_fw {
    chain post {
        type nat hook postrouting priority srcnat;
        oifname "wsui-rwan" masquerade
    }
}
NFT
in_ns wsui-up1 nft -f - <<'NFT'
table ip wsui_nat {
    chain post {
        type nat hook postrouting priority srcnat;
        oifname "wsui-up1v" masquerade
    }
}
NFT

key() { "$BIN" genkey; }
pub() { echo "$1" | "$BIN" pubkey; }
UK=$(key)
SK=$(key)
in_ns wsui-up1 boringtun-cli wsui-u1s >/dev/null 2>&1
for _ in $(seq 60); do [ -S /var/run/wireguard/wsui-u1s.sock ] && break; sleep 0.05; done
printf '%s' "$SK" > "$DIR/s1.key"
in_ns wsui-up1 wg set wsui-u1s private-key "$DIR/s1.key" listen-port 51820 \
    peer "$(pub "$UK")" allowed-ips 10.64.0.2/32
in_ns wsui-up1 ip addr add 10.64.0.1/24 dev wsui-u1s
in_ns wsui-up1 ip link set wsui-u1s up
in_ns wsui-up1 dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
    --listen-address=10.64.0.1 --address=/#/198.51.100.101 --pid-file="$DIR/dnsmasq.pid" \
    --user=root >/dev/null 2>&1 &

# A rule list fetched from a file:// URL, and GeoIP ("update now" on the
# settings page).
mkdir -p "$LISTS/src" "$LISTS/lists" "$LISTS/geo"
printf 'streaming.test\nvideo.test\n' > "$LISTS/src/streaming.txt"
# A country database (the state of every source is kept in geoip's dir).
printf '%s\n' "203.0.113.0,203.0.113.255,NL" > "$LISTS/geo/countries.csv"
cat > "$DIR/wgsplit" <<EOF
config server 'server'
	option interface 'wsui-wg0'
	option address '10.8.0.1/24'
	option private_key '$(key)'
	option endpoint '198.51.100.2'
	option backend 'userspace'
	option dns_port '5353'
	option ui_listen '127.0.0.1:8080'

config upstream 'vpn1'
	option interface 'wsui-u1'
	option private_key '$UK'
	list address '10.64.0.2/32'
	option public_key '$(pub "$SK")'
	option endpoint '198.51.100.11:51820'
	list dns '10.64.0.1'
	option keepalive '5'

config list 'streaming'
	option path '$LISTS/lists/streaming.txt'
	option url 'file://$LISTS/src/streaming.txt'

config geoip 'geoip'
	option path '$LISTS/geo/countries.csv'
	option dir '$LISTS/geo/lists'
EOF
chmod 600 "$DIR/wgsplit"
"$BIN" --config "$DIR/wgsplit" config check >/dev/null || { echo "config: $("$BIN" --config "$DIR/wgsplit" config check 2>&1)"; echo "0 passed, 1 failed"; exit 1; }

# The password file lives beside the token, as on a router (/etc/wgsplit).
in_ns wsui-router env WGSPLIT_RUN_DIR="$DIR/run" WGSPLIT_API_TOKEN_FILE="$DIR/etc/api.token" \
    WGSPLIT_UI_PASSWORD_FILE="$DIR/etc/ui.password" WGSPLIT_HEALTH_EVERY=1 WGSPLIT_STATS_EVERY=1 \
    "$BIN" --config "$DIR/wgsplit" daemon >"$DIR/daemon.log" 2>&1 &
DAEMON_PID=$!
up=0
for _ in $(seq 100); do
    in_ns wsui-router curl -sf -o /dev/null http://127.0.0.1:8080/api/ui/state && { up=1; break; }
    sleep 0.2
done
if [ $up = 0 ]; then
    echo "FAIL the daemon's pages did not come up; its log:"; cat "$DIR/daemon.log"
    echo "0 passed, 1 failed"; exit 1
fi

in_ns wsui-router env NODE_PATH="$PWD/tests/luci/node_modules" UI_URL=http://127.0.0.1:8080 \
    UI_OUT="$OUT" UI_PASSWORD_FILE="$DIR/etc/ui.password" UI_CONFIG="$DIR/wgsplit" \
    UI_TOKEN_FILE="$DIR/etc/api.token" UI_NET="$PWD/tests/ui/net.sh" UI_DIR="$DIR" UI_LISTS="$LISTS" \
    node tests/ui/ui.test.js
rc=$?
if [ $rc -ne 0 ] || ! kill -0 "$DAEMON_PID" 2>/dev/null; then
    echo "--- daemon log"; grep -v "got unsupported info" "$DIR/daemon.log" | tail -n 30
fi
exit $rc
