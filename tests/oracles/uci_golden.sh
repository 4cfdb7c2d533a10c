#!/usr/bin/env bash
# Records what OpenWrt's own `uci` reads from each file of the UCI corpus, as
# the golden data daemon/tests/uci_oracle.rs holds our parser to.
#
#   tests/oracles/uci_golden.sh PATH/TO/uci
#
# The corpus: the paths in daemon/tests/fixtures/uci/corpus.list (relative to
# the repository; the examples, the tests' configs and the hand-made tricky and
# hostile cases in daemon/tests/fixtures/uci/cases/). For each, golden/NAME (NAME:
# the path with '/' as '__') gets `uci export`'s output, or, when uci refuses
# the file, "error" and uci's message. uci is not built here: any build of
# github:openwrt/uci will do (the goldens name the version it reports, if any).
# Each file is read as package `t` from a scratch config dir, with a scratch
# delta dir (-t), so nothing in /etc/config or /tmp/.uci leaks in; the flags are
# uci's defaults (strict), as rpcd, procd and LuCI use them.
set -euo pipefail
UCI=${1:?usage: $0 PATH/TO/uci}
[ -x "$UCI" ] || { echo "$UCI: not executable" >&2; exit 1; }
UCI=$(cd "$(dirname "$UCI")" && pwd)/$(basename "$UCI")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=$ROOT/daemon/tests/fixtures/uci
TMP=$(mktemp -d /tmp/wgsplit-uci-golden.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/conf" "$TMP/delta"
rm -f "$DIR"/golden/*
n=0 refused=0
while read -r path; do
    case $path in '' | '#'*) continue ;; esac
    [ -f "$ROOT/$path" ] || { echo "$path: listed in corpus.list but missing" >&2; exit 1; }
    cp "$ROOT/$path" "$TMP/conf/t"
    out=$DIR/golden/${path//\//__}
    if "$UCI" -c "$TMP/conf" -t "$TMP/delta" export t >"$TMP/out" 2>"$TMP/err"; then
        cp "$TMP/out" "$out"
    else
        # uci's message names its own path; keep only the part after it.
        { echo "error"; sed 's/^[^:]*: //' "$TMP/err"; } >"$out"
        refused=$((refused + 1))
    fi
    n=$((n + 1))
done <"$DIR/corpus.list"
echo "uci_golden: $n files, $refused refused by uci, goldens in ${DIR#"$ROOT"/}/golden"
