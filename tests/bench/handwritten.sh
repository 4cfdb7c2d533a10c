#!/usr/bin/env bash
# The hand-written parts that stand in for a library, and their size in code
# lines (each file up to its `#[cfg(test)]` module; test-only files left out),
# for the README's table "Hand-written parts". Sizes in the binary against the
# libraries: tests/bench/deps_size.sh (regex, mmdb, DNS), size.sh (netlink),
# http_size.sh (HTTP); the oracles: tests/suites/oracles.sh and the unit tests.
#
#   tests/bench/handwritten.sh [REV]     (default: the work tree)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REV=${1:-}

src() { # the file's text at REV, or in the work tree
    if [ -n "$REV" ]; then git -C "$ROOT" show "$REV:daemon/src/$1"; else cat "$ROOT/daemon/src/$1"; fi
}
code_lines() {
    local n=0 f
    for f in "$@"; do
        n=$((n + $(src "$f" | awk '/^#\[cfg\(test\)\]/ { exit } { n++ } END { print n + 0 }')))
    done
    echo "$n"
}

echo "| part | files (daemon/src) | code lines | instead of |"
echo "|---|---|---|---|"
row() { # part, library, files...
    local part=$1 lib=$2; shift 2
    echo "| $part | ${*} | $(code_lines "$@") | $lib |"
}
row "DNS wire format" hickory-proto dns/wire.rs
row "DNS server (sockets, cache, limits)" hickory-server dns/resolver.rs dns/cache.rs dns/limit.rs dns/forward_guard.rs dns/upstream.rs dns/batch.rs dns/access.rs
row "regex engine" "regex-lite / regex" dns/regex.rs
row "mmdb reader" maxminddb sources/mmdb.rs
row "protobuf walker (geosite.dat, geoip.dat)" prost sources/protobuf.rs sources/geosite.rs sources/geoipdat.rs
row "rtnetlink (links, addresses, routes, rules)" rtnetlink sys/net.rs sys/net/nl.rs
row "WireGuard netlink and UAPI" wireguard-control sys/wg.rs sys/wg/kernel.rs sys/wg/peers.rs
row "nf_tables messages" "nftables (nft JSON)" sys/nft.rs sys/nft_consts.rs sys/nftdump.rs sys/nftlist.rs sys/nftnl/mod.rs sys/nftnl/socket.rs
row "HTTP server" tiny_http api/http.rs api/server.rs
row "UCI parser and writer" "libuci (C)" config/uci.rs
