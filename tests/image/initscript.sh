#!/usr/bin/env bash
# The Buildroot package's busybox init script (board/package/wgsplit/S95wgsplit)
# run by busybox sh with busybox's start-stop-daemon, against the real debug
# binary, in a network namespace of its own (wsbr-r; userspace WireGuard):
# it must behave like the OpenWrt service. A bad config starts nothing and
# says why; start brings the daemon and its kernel state up; reload re-applies
# a changed config without a restart, and keeps the running one when the new
# one is bad; stop removes everything wgsplit created. Root only; ~15 s.
#   tests/image/initscript.sh        prints ok/FAIL lines and 'N passed, M failed'
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 2
[ "$(id -u)" = 0 ] || { echo "initscript: needs root (network namespaces)"; exit 1; }
# shellcheck source=tests/lib/netns.sh
. tests/lib/netns.sh

NS=wsbr-r
D=$(mktemp -d /tmp/wsbr-init.XXXXXX)
BIN=$ROOT/target/debug/wgsplit
# WGSPLIT_INIT_SCRIPT: another script to hold to the same checks (e.g. an older one)
INIT=${WGSPLIT_INIT_SCRIPT:-$ROOT/board/package/wgsplit/S95wgsplit}
PASS=0 FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   $*"; }
fail() { FAIL=$((FAIL + 1)); echo "FAIL $*"; }
check() { # NAME CMD...: CMD's success is the check
    local name=$1; shift
    if "$@" >"$D/last" 2>&1; then ok "$name"; else fail "$name"; sed 's/^/    | /' "$D/last" | head -20; fi
}

cleanup() {
    # The daemon and boringtun live in the namespace: netns_remove ends them.
    in_r "$BIN" --config "$D/wgsplit.conf" down >/dev/null 2>&1
    netns_remove "$NS"
    rm -f /var/run/wireguard/wsbr-*.sock
    rm -rf "$D"
}
trap cleanup EXIT

cargo build --quiet -p wgsplit || exit 1
command -v busybox >/dev/null || { echo "initscript: needs busybox"; exit 1; }
PATH="$HOME/.cargo/bin:$PATH" command -v "${WG_USERSPACE_IMPLEMENTATION:-boringtun-cli}" >/dev/null ||
    { echo "initscript: needs boringtun-cli (tests/lib/deps.sh install_deps)"; exit 1; }
# busybox's applets first, as on the image (start-stop-daemon, usleep, sh).
mkdir -p "$D/bb"
for a in sh start-stop-daemon usleep sleep kill cat grep sed tail mkdir dirname rm; do
    ln -s "$(command -v busybox)" "$D/bb/$a"
done
netns_fresh "$NS"
in_r() {
    ip netns exec "$NS" env PATH="$D/bb:$HOME/.cargo/bin:$PATH" \
        WGSPLIT_BIN="$BIN" WGSPLIT_CONFIG="$D/wgsplit.conf" WGSPLIT_PIDFILE="$D/wgsplit.pid" \
        WGSPLIT_LOGFILE="$D/wgsplit.log" WGSPLIT_RUN_DIR="$D/run" WGSPLIT_STATE_DIR="$D/state" \
        WGSPLIT_API_TOKEN_FILE="$D/api.token" WGSPLIT_UI_PASSWORD_FILE="$D/ui.password" WG_SUDO=true \
        WG_USERSPACE_IMPLEMENTATION="${WG_USERSPACE_IMPLEMENTATION:-boringtun-cli}" "$@"
}
init() { in_r busybox sh "$INIT" "$@"; }

key() { "$BIN" genkey; }
pub() { echo "$1" | "$BIN" pubkey; }
RK=$(key) UK=$(key) SK=$(key) AK=$(key) BK=$(key)
# write_config [extra client]: a server, one upstream (its endpoint on the
# namespace's own loopback: nothing leaves), alice, and optionally bob.
write_config() {
    cat >"$D/wgsplit.conf" <<CONF
config server 'server'
	option interface 'wsbr-wg0'
	option listen_port '51820'
	option address '10.8.0.1/24'
	option private_key '$RK'
	option backend 'userspace'
	option dns_port '5353'
	list dns_server '127.0.0.1:5399'

config upstream 'up1'
	option interface 'wsbr-u1'
	option private_key '$UK'
	list address '10.64.0.2/32'
	option public_key '$(pub "$SK")'
	option endpoint '127.0.0.1:51999'

config client 'alice'
	option public_key '$(pub "$AK")'
	list address '10.8.0.2/32'
	option upstream 'up1'
	option default 'proxy'
CONF
    if [ "${1:-}" = bob ]; then
        printf "\nconfig client 'bob'\n\toption public_key '%s'\n\tlist address '10.8.0.3/32'\n" "$(pub "$BK")" >>"$D/wgsplit.conf"
    fi
}
# says OUTPUT TEXT...: OUTPUT has a line with each TEXT
says() { local o=$1 w; shift; for w in "$@"; do grep -qF -- "$w" <<<"$o" || return 1; done; }
daemon_pid() { cat "$D/wgsplit.pid" 2>/dev/null; }
daemon_alive() { local p; p=$(daemon_pid) && [ -n "$p" ] && grep -q '^Name:.*wgsplit' "/proc/$p/status" 2>/dev/null; }
has_table() { in_r nft list table inet wgsplit >/dev/null 2>&1; }
our_rules() { { in_r ip rule; in_r ip -6 rule; } | grep -c "proto 87\|fwmark"; }
has_link() { in_r ip link show "$1" >/dev/null 2>&1; }
# wait_for CMD...: up to 10 s for CMD to succeed (the daemon applies in the background)
wait_for() { local _; for _ in $(seq 100); do "$@" && return 0; sleep 0.1; done; return 1; }
nothing_of_wgsplit() {
    ! has_table && [ "$(our_rules)" = 0 ] && ! has_link wsbr-wg0 && ! has_link wsbr-u1
}

echo "--- no config"
out=$(init start 2>&1); rc=$?
check "start without a config: exit 0, says SKIP" grep -q "SKIP (no $D/wgsplit.conf)" <<<"$out"
[ "$rc" = 0 ] || fail "start without a config exited $rc"

echo "--- a bad config starts nothing and says why"
write_config
sed -i "s|option address '10.8.0.1/24'|option address '10.8.0.1/33'|" "$D/wgsplit.conf"
out=$(init start 2>&1); rc=$?
check "start on a bad config fails (exit $rc)" [ "$rc" != 0 ]
check "it says FAIL and names the bad field" says "$out" "FAIL (bad config" "server.address"
echo "$out" | sed 's/^/    > /' | head -4
check "no daemon was started" sh -c "! test -s '$D/wgsplit.pid'"
check "nothing of wgsplit in the kernel" nothing_of_wgsplit

echo "--- start"
write_config
out=$(init start 2>&1); rc=$?
check "start: exit 0, OK ($(tr '\n' ' ' <<<"$out"))" [ "$rc" = 0 ]
check "start said OK" says "$out" "Starting wgsplit: OK"
check "the pid file names the running wgsplit" daemon_alive
check "the daemon made table inet wgsplit, its rules and links" wait_for sh -c \
    "ip netns exec $NS nft list table inet wgsplit >/dev/null 2>&1 && ip netns exec $NS ip link show wsbr-wg0 >/dev/null 2>&1 && ip netns exec $NS ip rule | grep -q 'proto 87'"
pid=$(daemon_pid)
out=$(init start 2>&1)
check "start again: already running, same pid" says "$out" "already running, pid $pid"
check "status: running" init status

echo "--- reload"
check "bob is not in the ruleset yet" sh -c "! ip netns exec $NS nft list table inet wgsplit | grep -q 10.8.0.3"
write_config bob
check "reload: exit 0" init reload
check "reload re-applied: bob (10.8.0.3) is in the ruleset" wait_for sh -c "ip netns exec $NS nft list table inet wgsplit | grep -q 10.8.0.3"
check "reload did not restart the daemon (pid $pid)" sh -c "[ '$(daemon_pid)' = '$pid' ] && kill -0 $pid"
cp "$D/wgsplit.conf" "$D/good.conf"
sed -i "s|option default 'proxy'|option default 'sideways'|" "$D/wgsplit.conf"
out=$(init reload 2>&1); rc=$?
check "reload on a bad config fails (exit $rc)" [ "$rc" != 0 ]
echo "$out" | sed "s/^/    > /" | head -4
check "it says FAIL and names the bad field" says "$out" "FAIL (bad config" "alice.default"
sleep 0.5
check "the daemon keeps running the old config (pid $pid, bob still there)" sh -c \
    "kill -0 $pid && ip netns exec $NS nft list table inet wgsplit | grep -q 10.8.0.3"
cp "$D/good.conf" "$D/wgsplit.conf"

echo "--- stop"
out=$(init stop 2>&1); rc=$?
check "stop: exit 0 ($(tr '\n' ' ' <<<"$out"))" [ "$rc" = 0 ]
check "stop said OK" says "$out" "Stopping wgsplit: OK"
check "the daemon is gone" sh -c "! kill -0 $pid 2>/dev/null"
check "stop removed what wgsplit created: table, rules, links" nothing_of_wgsplit
{ in_r ip rule; in_r ip -6 rule; } | sed "s/^/    rule> /"
init status >/dev/null 2>&1; rc=$?
check "status: not running (exit $rc, 3 wanted)" [ "$rc" = 3 ]

echo "--- restart from stopped, then stop again"
check "restart: exit 0" init restart
check "restart brought the state back" wait_for has_table
check "stop" init stop
check "nothing of wgsplit left" nothing_of_wgsplit

echo "--- first boot, as the firmware ships the config: a key made here, the pages on the LAN"
# The image's /etc/config/wgsplit, with this namespace's names and addresses.
in_r ip link add wsbr-lan type veth peer name wsbr-lanp
in_r ip addr add 192.168.77.1/24 dev wsbr-lan
in_r ip link set wsbr-lan up && in_r ip link set wsbr-lanp up
write_config
sed -i "s|option private_key '$RK'|option private_key 'FIRSTBOOT'|" "$D/wgsplit.conf"
printf "\toption ui_listen '192.168.77.1:8080'\n" >"$D/ui.line"
sed -i "/option address '10.8.0.1\/24'/r $D/ui.line" "$D/wgsplit.conf"
chmod 0644 "$D/wgsplit.conf"
out=$(init start 2>&1); rc=$?
check "first start: exit 0, OK ($(tr '\n' ' ' <<<"$out"))" says "$out" "Starting wgsplit: OK"
check "FIRSTBOOT replaced by a key of this router's own" sh -c \
    "! grep -q FIRSTBOOT '$D/wgsplit.conf' && grep -Eq \"option private_key '[A-Za-z0-9+/]{43}='\" '$D/wgsplit.conf'"
check "the config is private now (0600)" sh -c "[ \$(stat -c %a '$D/wgsplit.conf') = 600 ]"
check "the pages answer on the LAN address: setup due (first run)" wait_for sh -c \
    "ip netns exec $NS curl -s -m 2 http://192.168.77.1:8080/api/ui/state | grep -q '\"setup_needed\": *true'"
check "the guard keeps the pages' port to the interface holding the address" sh -c \
    "ip netns exec $NS nft list table inet wgsplit_ui | grep -q 'ip daddr 192.168.77.1 tcp dport 8080 iif != \"lo\" fib daddr . iif type != local drop'"
key_now=$(grep "option private_key" "$D/wgsplit.conf" | head -1)
check "stop" init stop
check "stop removed the guard too" sh -c "! ip netns exec $NS nft list table inet wgsplit_ui 2>/dev/null"
check "a second start" init start
check "the key is the same after a second start" sh -c "[ \"\$(grep 'option private_key' '$D/wgsplit.conf' | head -1)\" = \"$key_now\" ]"
check "stop" init stop
check "nothing of wgsplit left" nothing_of_wgsplit
in_r ip link del wsbr-lan

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
