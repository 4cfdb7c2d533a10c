#!/usr/bin/env bash
# Router binary size at several commits, side by side, in one run: each commit
# is checked out in a temporary worktree and built with *its own*
# image/cross-build.sh (so flag changes count), sharing one cargo target dir.
#
#   tests/bench/size.sh [--target TRIPLE] REV [REV...]
#
# Default target mipsel-unknown-linux-musl (issue #6's goal: <= 2.0 MB stripped,
# <= 800 KB xz -9e). Prints one table: bytes stripped and xz, and the ratio to
# the first REV. Needs what image/cross-build.sh installs (run it once first).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=mipsel-unknown-linux-musl
if [ "${1:-}" = --target ]; then TARGET=$2; shift 2; fi
[ $# -gt 0 ] || { sed -n '2,10p' "$0"; exit 2; }

WORK=$(mktemp -d /tmp/wsz-size.XXXXXX)
TREES=()
cleanup() {
    local t
    for t in "${TREES[@]}"; do git -C "$ROOT" worktree remove --force "$t" >/dev/null 2>&1 || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

ROWS=()
for rev in "$@"; do
    sha=$(git -C "$ROOT" rev-parse --short "$rev")
    tree=$WORK/$sha
    git -C "$ROOT" worktree add --detach "$tree" "$sha" >/dev/null 2>&1
    TREES+=("$tree")
    echo "[size] building $TARGET at $sha" >&2
    # cross-build.sh runs cargo in the current directory: build from the tree.
    (cd "$tree" && WGSPLIT_CROSS_TARGET_DIR=$ROOT/target/cross-build \
        image/cross-build.sh --no-install --no-readme --out "$WORK/out-$sha" "$TARGET") \
        >"$WORK/build-$sha.log" 2>&1 || { tail -20 "$WORK/build-$sha.log" >&2; exit 1; }
    bin=$WORK/out-$sha/wgsplit-$TARGET
    s=$(stat -c %s "$bin")
    x=$(xz -9e -T1 -c "$bin" | wc -c)
    ROWS+=("$sha"$'\t'"$s"$'\t'"$x"$'\t'"$(git -C "$ROOT" log -1 --format=%s "$sha" | cut -c1-60)")
done

echo
echo "| $TARGET at | stripped (B) | xz -9e (B) | stripped ratio | xz ratio | commit |"
echo "|---|---|---|---|---|---|"
base_s='' base_x=''
for r in "${ROWS[@]}"; do
    IFS=$'\t' read -r sha s x subj <<<"$r"
    [ -n "$base_s" ] || { base_s=$s; base_x=$x; }
    awk -v sha="$sha" -v s="$s" -v x="$x" -v bs="$base_s" -v bx="$base_x" -v subj="$subj" \
        'BEGIN { printf "| %s | %d (%.2f MB) | %d (%d KB) | %.2f | %.2f | %s |\n", sha, s, s/1048576, x, x/1024, s/bs, x/bx, subj }'
done
echo
echo "goal for mipsel: <= 2.00 MB (2097152 B) stripped, <= 800 KB (819200 B) xz -9e"
