#!/usr/bin/env bash
# Well-kept libraries as oracles of the hand-written readers, over the real data
# the sources suite pins (DB-IP lite country, domain-list-community, the
# geosite.dat and geoip.dat built from them): daemon/tests/oracles_data.rs.
# The DNS wire oracle (hickory-proto) needs no data and runs with the unit tests.
# Needs no root. Cost: ~45 s on 2 cores (most of it geosite.dat read once per
# category and per attribute filter).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/deps.sh
. tests/sources/lib.sh
wsl_data || { echo "FAIL test data"; exit 1; }
# The oracles are dev-dependencies only: the router binary must not link them.
in_binary=$(cargo tree -q -e normal -p wgsplit --prefix none 2>/dev/null |
    grep -E '^(hickory-proto|maxminddb|prost|regex|regex-lite|tiny_http|netlink-packet-[a-z]+) ' | sort -u)
if [ -n "$in_binary" ]; then
    echo "FAIL oracle crates in the router binary's dependencies: $in_binary"
    exit 1
fi
LOG=$(mktemp /tmp/wgsplit-oracles.XXXXXX)
trap 'rm -f "$LOG"' EXIT
WSL_DBIP_DIR=$WSL_DBIP_DIR WSL_GEOSITE_DAT=$WSL_GEOSITE_DAT WSL_DLC_DATA=$WSL_DLC_DATA WSL_GEOIP_DAT=$WSL_GEOIP_DAT \
    cargo test -p wgsplit --test oracles_data -- --nocapture >"$LOG" 2>&1
rc=$?
# Each test prints what it compared; a test whose data is missing says "skipped".
grep -E "agree|^refused|ours .*maxminddb" "$LOG" | sed 's/^/     /'
if [ $rc -eq 0 ] && grep -q "test result: ok. 4 passed" "$LOG" && ! grep -q "^skipped" "$LOG"; then
    echo "ok   oracles: maxminddb, regex, prost (geosite.dat, geoip.dat) agree with ours"
    echo "oracles: all ok"
    exit 0
fi
cat "$LOG"
echo "FAIL oracles"
echo "oracles: 1 failed"
exit 1
