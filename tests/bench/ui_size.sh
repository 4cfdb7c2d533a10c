#!/usr/bin/env bash
# What the built-in web pages (issue #15) cost: the files (daemon/ui/), plain
# and gzipped (only the gzip is embedded and sent), and the release binary
# (x86_64 host, the workspace's release profile: opt-level z, LTO, stripped)
# at BASE and at REV, each built in a temporary worktree sharing this tree's
# target dir. The router's (mipsel) growth: tests/bench/size.sh BASE REV.
#
#   tests/bench/ui_size.sh [--assets-only] [BASE [REV]]   (defaults: where REV left main, HEAD)
#
# Prints two tables (one with --assets-only). The issue's budget: all assets
# <= 64 KB compressed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ASSETS_ONLY=0
if [ "${1:-}" = --assets-only ]; then ASSETS_ONLY=1; shift; fi
REV=${2:-HEAD}
BASE=${1:-$(git -C "$ROOT" merge-base main "$REV")}
BUDGET=$((64 * 1024))

echo "| file | plain (B) | gzip -9n, embedded and sent (B) |"
echo "|---|---|---|"
plain=0 gz=0
for f in index.html ui.js ui.css; do
    p=$(git -C "$ROOT" show "$REV:daemon/ui/$f" | wc -c)
    g=$(git -C "$ROOT" show "$REV:daemon/ui/$f.gz" | wc -c)
    plain=$((plain + p)) gz=$((gz + g))
    echo "| $f | $p | $g |"
done
echo "| all | $plain | $gz ($(awk "BEGIN{printf \"%.1f\", 100*$gz/$BUDGET}")% of the 64 KB budget) |"
echo
[ "$ASSETS_ONLY" = 0 ] || exit 0

. "$ROOT/tests/lib/size_build.sh"
size_workdir wsui-size

size_at() { # REV -> bytes of the stripped release binary
    local sha tree
    sha=$(git -C "$ROOT" rev-parse --short "$1")
    tree=$WORK/$sha
    size_worktree "$tree" "$sha"
    (cd "$tree" && CARGO_TARGET_DIR=$ROOT/target cargo build --release --quiet -p wgsplit >&2)
    stat -c %s "$ROOT/target/release/wgsplit"
}
before=$(size_at "$BASE")
after=$(size_at "$REV")
echo "| x86_64 release, stripped | $(git -C "$ROOT" rev-parse --short "$BASE") (before) | $(git -C "$ROOT" rev-parse --short "$REV") (after) | growth |"
echo "|---|---|---|---|"
echo "| bytes | $before | $after | $((after - before)) ($(awk "BEGIN{printf \"%+.2f\", 100*($after-$before)/$before}")%) |"
