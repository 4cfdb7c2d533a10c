#!/bin/sh
# Post-build for the GnuBee GB-PC1: the LAN port (ethblack, switch port 0 in
# the mainline device tree) gets the LAN address the firmware's
# /etc/config/wgsplit serves the web pages on; BR2_SYSTEM_DHCP made eth1 the
# WAN. The switch's conduit (eth0) comes up with its port (Linux >= 5.12).
set -e
TARGET_DIR=$1
IF=$TARGET_DIR/etc/network/interfaces
test -f "$IF" || { echo "post-build: no $IF (BR2_SYSTEM_DHCP unset?)" >&2; exit 1; }
grep -q '^iface ethblack ' "$IF" || cat >>"$IF" <<'LAN'

auto ethblack
iface ethblack inet static
	address 192.168.1.1
	netmask 255.255.255.0
LAN
