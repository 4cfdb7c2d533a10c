#!/usr/bin/env bash
# make-fixture.sh DIR: the files the in-image tests read from /test: test-only
# WireGuard keys (made here with `wg genkey`), the wgsplit config of the
# scenario, and the scripts of tests/image/vm/.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
D=$1
mkdir -p "$D/keys"
for k in router routerup upstream client innerc inners; do
    [ -s "$D/keys/$k.key" ] || (umask 077 && wg genkey >"$D/keys/$k.key")
    wg pubkey <"$D/keys/$k.key" >"$D/keys/$k.pub"
done
key() { cat "$D/keys/$1"; }
# The scenario's router config (README "Config reference").  Addresses:
#   client ns --(192.168.50.0/24)-- router --(172.30.0.0/24)-- upstream ns
#   router --(172.31.0.0/24, WAN)-- internet ns --(172.31.1.0/24)-- upstream ns
cat >"$D/wgsplit.conf" <<CONF
config server 'server'
	option interface 'wg0'
	option listen_port '51820'
	option address '10.8.0.1/24'
	option private_key '$(key router.key)'
	option backend 'kernel'
	option dns_port '53'
	list dns_server '172.31.0.2'
	option api_listen '127.0.0.1:8274'

config upstream 'up1'
	option interface 'wgs_up1'
	option private_key '$(key routerup.key)'
	list address '10.64.0.2/32'
	option public_key '$(key upstream.pub)'
	option endpoint '172.30.0.2:51821'
	option keepalive '5'
	option on_down 'block'

config client 'alice'
	option public_key '$(key client.pub)'
	list address '10.8.0.2/32'
	option upstream 'up1'
	option default 'direct'
	option description 'proxies 198.51.100.0/24 through up1, the rest direct'

config rule 'alice_proxy'
	option client 'alice'
	option action 'proxy'
	list cidr '198.51.100.0/24'
CONF
# offload.sh's router: the same, in both families (the oif rules and the
# flowtable cases need IPv6 too), no DNS.
cat >"$D/offload.conf" <<CONF
config server 'server'
	option interface 'wg0'
	option listen_port '51820'
	option address '10.8.0.1/24'
	option address6 'fd42:8::1/64'
	option private_key '$(key router.key)'
	option backend 'kernel'
	option dns_port '53'
	list dns_server '172.31.0.2'

config upstream 'up1'
	option interface 'wgs_up1'
	option private_key '$(key routerup.key)'
	list address '10.64.0.2/32'
	list address 'fd64:1::2/128'
	option public_key '$(key upstream.pub)'
	option endpoint '172.30.0.2:51821'
	option keepalive '5'
	option on_down 'block'

config client 'alice'
	option public_key '$(key client.pub)'
	list address '10.8.0.2/32'
	list address 'fd42:8::2/128'
	option upstream 'up1'
	option default 'direct'

config rule 'alice_proxy'
	option client 'alice'
	option action 'proxy'
	list cidr '198.51.100.0/24'
	list cidr '2001:db8:100::/64'
CONF
cp "$HERE/../lib/fw4_flowtable.sh" "$D/"
# The firmware's own config, as the image ships it (scenario.sh starts it).
cp "$HERE/../../board/common/rootfs-overlay/etc/config/wgsplit" "$D/firmware.conf"
cp "$HERE"/vm/*.sh "$D/"
