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

. "$ROOT/tests/lib/size_build.sh"
size_workdir wsz-size

ROWS=()
for rev in "$@"; do
    sha=$(git -C "$ROOT" rev-parse --short "$rev")
    size_worktree "$WORK/$sha" "$sha"
    sx=$(size_cross "$WORK/$sha" "$sha" "$TARGET")
    read -r s x <<<"$sx"
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
