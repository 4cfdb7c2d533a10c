#!/usr/bin/env bash
# The daemon's own web pages (server.ui_listen) in headless Chromium, against
# the real daemon in a network namespace (wsui-router): its WireGuard server
# and one upstream are userspace (boringtun), the pages on 127.0.0.1:8080
# inside the namespace, where Chromium runs too. tests/ui/ui.test.js drives
# them: first-run setup, wrong password, login, add a client, its .conf and QR,
# disable, remove, log out, a write from another origin; screenshots in
# tests/out/ui/.
#
# Usage: tests/ui/run.sh   (root; boringtun-cli, node, chromium)
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
export PATH="$HOME/.cargo/bin:$PATH" WG_USERSPACE_IMPLEMENTATION=boringtun-cli
NS=wsui-router
DIR=$(mktemp -d /tmp/wsui.XXXXXX)
OUT=$PWD/tests/out/ui
mkdir -p "$OUT"

cleanup() {
    local pid
    if [ -e "/var/run/netns/$NS" ]; then
        for pid in $(ip netns pids "$NS" 2>/dev/null); do kill "$pid" 2>/dev/null; done
        sleep 0.3
        for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
        ip netns del "$NS" 2>/dev/null
    fi
    rm -f /var/run/wireguard/wsui-*.sock /var/run/wireguard/wsui-*.name
    rm -rf "$DIR"
}
[ -n "${UI_KEEP:-}" ] || trap cleanup EXIT
cleanup
mkdir -p "$DIR"
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up

key() { "$BIN" genkey; }
pub() { echo "$1" | "$BIN" pubkey; }
cat > "$DIR/wgsplit" <<EOF
config server 'server'
	option interface 'wsui-wg0'
	option address '10.8.0.1/24'
	option private_key '$(key)'
	option endpoint '192.0.2.1'
	option backend 'userspace'
	option dns_port '5353'
	option ui_listen '127.0.0.1:8080'

config upstream 'vpn1'
	option interface 'wsui-u1'
	option private_key '$(key)'
	list address '10.64.0.2/32'
	option public_key '$(pub "$(key)")'
	option endpoint '192.0.2.2:51820'
EOF
chmod 600 "$DIR/wgsplit"
"$BIN" --config "$DIR/wgsplit" config check >/dev/null || { echo "config: $("$BIN" --config "$DIR/wgsplit" config check 2>&1)"; echo "0 passed, 1 failed"; exit 1; }

# The password file lives beside the token, as on a router (/etc/wgsplit).
ip netns exec "$NS" env WGSPLIT_RUN_DIR="$DIR/run" WGSPLIT_API_TOKEN_FILE="$DIR/etc/api.token" \
    WGSPLIT_UI_PASSWORD_FILE="$DIR/etc/ui.password" \
    "$BIN" --config "$DIR/wgsplit" daemon >"$DIR/daemon.log" 2>&1 &
up=0
for _ in $(seq 100); do
    ip netns exec "$NS" curl -sf -o /dev/null http://127.0.0.1:8080/api/ui/state && { up=1; break; }
    sleep 0.2
done
if [ $up = 0 ]; then
    echo "FAIL the daemon's pages did not come up; its log:"; cat "$DIR/daemon.log"
    echo "0 passed, 1 failed"; exit 1
fi

ip netns exec "$NS" env NODE_PATH="$PWD/tests/luci/node_modules" UI_URL=http://127.0.0.1:8080 \
    UI_OUT="$OUT" UI_PASSWORD_FILE="$DIR/etc/ui.password" UI_CONFIG="$DIR/wgsplit" \
    UI_TOKEN_FILE="$DIR/etc/api.token" \
    node tests/ui/ui.test.js
rc=$?
if [ $rc -ne 0 ] || ! kill -0 "$(ip netns pids "$NS" | head -n 1)" 2>/dev/null; then
    echo "--- daemon log"; tail -n 30 "$DIR/daemon.log"
fi
exit $rc
