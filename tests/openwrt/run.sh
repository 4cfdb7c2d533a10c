#!/bin/bash
# OpenWrt package tests: lint the feed's scripts, build the .ipk packages
# with openwrt-feed/build-ipk.sh from a host (x86_64) wgsplit binary and
# check them, run the init/hotplug/uci-defaults scripts against stand-in
# procd/uci, and the rpcd plugin against a stand-in CLI.
#
#   tests/openwrt/run.sh            # uses target/{release,debug}/wgsplit, builds debug if neither
#   WGSPLIT_BIN=path tests/openwrt/run.sh
#
# Ends with 'N passed, M failed'; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib/deps.sh
. tests/lib/deps.sh
install_deps_openwrt

BIN=${WGSPLIT_BIN:-}
if [ -z "$BIN" ]; then
	# the newer build: a release binary left from an older tree lacks today's commands
	# (one of the two may be missing: ls then fails, and so would the pipeline)
	BIN=$(ls -t target/release/wgsplit target/debug/wgsplit 2>/dev/null | head -n 1 || true)
fi
if [ -z "$BIN" ]; then
	# a debug build shares its cache with cargo test/clippy; any binary packages the same
	cargo build -p wgsplit >&2
	BIN=target/debug/wgsplit
fi
echo "openwrt tests: packaging $BIN" >&2
mkdir -p tests/out/openwrt
exec python3 tests/openwrt/test_openwrt.py "$BIN"
