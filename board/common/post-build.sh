#!/bin/sh
# Post-build for every wgsplit board: $1 is the target directory.
set -e
TARGET_DIR=$1
# The config lives where OpenWrt users expect it; keep it private.
mkdir -p "$TARGET_DIR/etc/config"
chmod 0700 "$TARGET_DIR/etc/config"
# WireGuard UAPI sockets (userspace backend) and the daemon's pid file.
mkdir -p "$TARGET_DIR/var/run/wireguard"
test -x "$TARGET_DIR/usr/bin/wgsplit" || { echo "post-build: wgsplit is missing from the target" >&2; exit 1; }
