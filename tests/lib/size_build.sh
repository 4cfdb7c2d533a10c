# shellcheck shell=bash
# What the size benchmarks (tests/bench/*size*.sh) share: each build happens in a
# temporary worktree of the commit under test, and the router binary comes from
# that tree's own image/cross-build.sh (so its flags count), all trees sharing
# one cargo target dir. Source it once ROOT (the repository) is set.

# size_workdir PREFIX: WORK, a fresh folder under /tmp; it and every worktree
# inside it are removed on exit (found by path: a worktree made inside $(...)
# is not in any variable of the script's).
size_workdir() {
    WORK=$(mktemp -d "/tmp/$1.XXXXXX")
    trap size_cleanup EXIT
}
size_cleanup() {
    local t
    git -C "$ROOT" worktree list --porcelain | sed -n "s#^worktree \($WORK/.*\)#\1#p" |
        while read -r t; do git -C "$ROOT" worktree remove --force "$t" >/dev/null 2>&1 || true; done
    rm -rf "$WORK"
}

# size_worktree DIR REV: a detached worktree of REV at DIR (inside $WORK).
size_worktree() {
    git -C "$ROOT" worktree add --detach "$1" "$2" >/dev/null 2>&1
}

# size_cross TREE NAME TARGET [LINES]: TREE's wgsplit cross-built for TARGET into
# $WORK/out-NAME (log: $WORK/build-NAME.log; on failure its last LINES, 20 by
# default, go to stderr and the build fails); prints "STRIPPED_BYTES XZ_BYTES".
size_cross() {
    local tree=$1 name=$2 target=$3 bin
    echo "[size] building $target at $(git -C "$tree" rev-parse --short HEAD) ($name)" >&2
    (cd "$tree" && WGSPLIT_CROSS_TARGET_DIR=$ROOT/target/cross-build \
        image/cross-build.sh --no-install --no-readme --out "$WORK/out-$name" "$target") \
        >"$WORK/build-$name.log" 2>&1 || { tail -"${4:-20}" "$WORK/build-$name.log" >&2; return 1; }
    bin=$WORK/out-$name/wgsplit-$target
    echo "$(stat -c %s "$bin") $(xz -9e -T1 -c "$bin" | wc -c)"
}
