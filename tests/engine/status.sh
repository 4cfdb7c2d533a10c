#!/usr/bin/env bash
# `status` tells the truth (issue #19): two daemons in two network namespaces on
# one host, with the default runtime paths, each show their own upstream's
# health (down by its check, while its link is up) and only the lists they
# configure; `down` removes the runtime files wgsplit created there. Root only. ~20 s.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then echo "status: needs root (network namespaces)"; exit 1; fi
cargo build --quiet -p wgsplit || exit 1
. tests/lib/netns.sh
BIN=$PWD/target/debug/wgsplit
export PATH="$HOME/.cargo/bin:$PATH" WG_SUDO=true
export WG_USERSPACE_IMPLEMENTATION="${WG_USERSPACE_IMPLEMENTATION:-boringtun-cli}"
TMP=$(mktemp -d /tmp/wsgd-status.XXXXXX)
export WGSPLIT_LIST_ROOTS=$TMP
unset WGSPLIT_RUN_DIR WGSPLIT_API_TOKEN_FILE
fails=0
check() { # name expected actual
    if [ "$2" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: expected '$2', got '$3'"; fails=$((fails + 1)); fi
}
cleanup() {
    netns_remove wsgd-sa wsgd-sb
    rm -f /var/run/wireguard/wsgd-[ab]*.sock /var/run/wireguard/wsgd-[ab]*.name
    [ -n "${KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
netns_fresh wsgd-sa wsgd-sb
KEY=$("$BIN" genkey); PEER=$(echo "$("$BIN" genkey)" | "$BIN" pubkey)
for n in a b; do
    cat > "$TMP/$n.conf" <<CONF
config server 'server'
	option interface 'wsgd-${n}0'
	option address '10.8.0.1/24'
	option private_key '$KEY'
	option backend 'userspace'
	option dns_port '5353'
	option api_listen '127.0.0.1:8274'

config upstream 'up_$n'
	option interface 'wsgd-${n}u'
	option private_key '$KEY'
	list address '10.64.0.2/32'
	option public_key '$PEER'
	option endpoint '192.0.2.1:51820'
	list dns '10.64.0.1'
CONF
done
# Only b has rule lists (a GeoIP source).
mkdir -p "$TMP/geo"; echo 198.51.100.0/24 > "$TMP/geo/us.txt"
cat >> "$TMP/b.conf" <<CONF

config geoip 'geoip'
	option format 'dir'
	option path '$TMP/geo'
	option dir '$TMP/geo-out'
	option update_hours '0'
CONF
for n in a b; do
    WGSPLIT_LOG=info WGSPLIT_HEALTH_EVERY=0.5 ip netns exec wsgd-s$n "$BIN" --config "$TMP/$n.conf" daemon >"$TMP/$n.log" 2>&1 &
done
status() { ip netns exec "wsgd-s$1" "$BIN" --config "$TMP/$1.conf" status --json; }
field() { python3 -c "import json,sys; v=json.load(sys.stdin); print($1)"; }
for i in $(seq 60); do
    [ "$(status a | field "v['upstreams'][0]['state']")" = down ] && [ "$(status b | field "v['upstreams'][0]['state']")" = down ] && break
    sleep 0.5
done
for n in a b; do
    check "$n: its own upstream only" "up_$n" "$(status $n | field "','.join(u['name'] for u in v['upstreams'])")"
    check "$n: up_$n down by its health check" down "$(status $n | field "v['upstreams'][0]['state']")"
    check "$n: while its link is up" True "$(status $n | field "[i['up'] for i in v['interfaces'] if i['interface']=='wsgd-${n}u'][0]")"
    check "$n: its traffic blocked (on_down block)" "blocked (kill switch)" "$(status $n | field "v['upstreams'][0]['traffic_goes']")"
done
check "a: no list state (it configures none)" None "$(status a | field "v['lists']")"
check "b: its list state (it configures a GeoIP source)" yes "$(status b | field "'yes' if v['lists'] is not None else 'no'")"
text=$(ip netns exec wsgd-sa "$BIN" --config "$TMP/a.conf" status)
check "the text status says the health ($(echo "$text" | grep "^upstream"))" yes "$(echo "$text" | grep -q "^upstream up_a *health down" && echo yes)"
ino() { stat -L -c %i "/var/run/netns/wsgd-s$1"; }
for n in a b; do
    check "$n: its runtime files in a folder of its own" yes "$([ -f "/var/run/wgsplit/ns-$(ino $n)/health.json" ] && echo yes)"
done

echo "--- one change, logged once"
ip netns exec wsgd-sa "$BIN" --config "$TMP/a.conf" client add zed >/dev/null 2>&1
sleep 2.5  # past the daemon's config poll (1 s)
check "a CLI change reloads the resolver's config once" 1 "$(grep -c 'dns: config reloaded' "$TMP/a.log")"
check "log lines in one format (no raw Unix time)" 0 "$(grep -c '^\[' "$TMP/a.log")"

echo "--- down removes what wgsplit created"
for p in $(ip netns pids wsgd-sa); do
    [ "$(tr '\0' ' ' < /proc/$p/cmdline)" = "$BIN --config $TMP/a.conf daemon " ] && kill "$p" && sleep 0.5
done
ip netns exec wsgd-sa "$BIN" --config "$TMP/a.conf" down >/dev/null
check "a: its run folder is gone" absent "$([ -e "/var/run/wgsplit/ns-$(ino a)" ] && echo present || echo absent)"
check "a: its apply lock is gone" 0 "$(ls /run/wgsplit/nft-"$(ino a)".lock 2>/dev/null | wc -l)"
check "b: its files are untouched" yes "$([ -f "/var/run/wgsplit/ns-$(ino b)/health.json" ] && echo yes)"
for p in $(ip netns pids wsgd-sb); do kill "$p" 2>/dev/null; done; sleep 0.5
ip netns exec wsgd-sb "$BIN" --config "$TMP/b.conf" down >/dev/null

echo
if [ $fails -eq 0 ]; then echo "status: all checks passed"; else echo "status: $fails checks failed"; fi
[ $fails -eq 0 ]
