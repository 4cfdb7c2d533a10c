#!/usr/bin/env bash
# What dropping tiny_http saves in the router binary, in one run: REV built as
# it is (our own HTTP server, api/server.rs + api/http.rs) and REV with a
# throw-away patch that links tiny_http back in (a normal dependency again, and
# a tiny_http server answering requests in `Api::start` behind a branch that is
# never taken at run time but that the compiler cannot remove). Both trees keep
# our server, so the difference is tiny_http's own cost: its request parsing,
# response writing, and thread pool, as the old API used them.
#
#   tests/bench/http_size.sh [--target TRIPLE] [REV]
#
# Default target x86_64-unknown-linux-musl (stable, quick); mipsel-unknown-linux-musl
# is the router's. REV defaults to HEAD. Builds with image/cross-build.sh (run it
# once first for what it installs). Prints one table: bytes stripped and xz -9e.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=x86_64-unknown-linux-musl
if [ "${1:-}" = --target ]; then TARGET=$2; shift 2; fi
REV=${1:-HEAD}
sha=$(git -C "$ROOT" rev-parse --short "$REV")

. "$ROOT/tests/lib/size_build.sh"
size_workdir wsz-http

# The probe: must reference Server::http, incoming_requests and respond so that
# LTO keeps the same tiny_http machinery the old API linked.
patch_in_tiny_http() {
    local tree=$1
    python3 - "$tree" <<'PY'
import sys, re
tree = sys.argv[1]
cargo = tree + "/daemon/Cargo.toml"
s = open(cargo).read()
s = re.sub(r'\n\[dev-dependencies\]\n(?:#[^\n]*\n)*tiny_http = "0\.12"\n', '\n[dev-dependencies]\n', s)
s = s.replace("[dependencies]\n", '[dependencies]\ntiny_http = "0.12"\n', 1)
open(cargo, "w").write(s)
api = tree + "/daemon/src/api/mod.rs"
s = open(api).read()
anchor = "    pub fn start(self: Arc<Self>, listen: SocketAddr) -> Result<Handle, String> {\n"
assert anchor in s, "Api::start not found: update the probe"
probe = anchor + """        if std::env::var_os("WGSPLIT_SIZE_PROBE_NEVER_SET").is_some() {
            if let Ok(s) = tiny_http::Server::http(listen) {
                for rq in s.incoming_requests() {
                    let answer = format!("{} {} {}", rq.method(), rq.url(), rq.headers().len());
                    let _ = rq.respond(tiny_http::Response::from_string(answer).with_status_code(200));
                }
            }
        }
"""
s = s.replace(anchor, probe, 1)
open(api, "w").write(s)
PY
}

ROWS=()
for variant in ours with-tiny_http; do
    tree=$WORK/$variant
    size_worktree "$tree" "$sha"
    [ "$variant" = ours ] || patch_in_tiny_http "$tree"
    if [ "$variant" = ours ] && grep -q '^tiny_http' <(sed -n '/^\[dependencies\]/,/^\[/p' "$tree/daemon/Cargo.toml"); then
        echo "$sha still has tiny_http in [dependencies]: nothing to compare" >&2
        exit 1
    fi
    sx=$(size_cross "$tree" "$variant" "$TARGET")
    read -r s x <<<"$sx"
    ROWS+=("$variant"$'\t'"$s"$'\t'"$x")
done

IFS=$'\t' read -r _ s0 x0 <<<"${ROWS[0]}"
IFS=$'\t' read -r _ s1 x1 <<<"${ROWS[1]}"
echo
echo "| $TARGET at $sha | stripped (B) | xz -9e (B) |"
echo "|---|---|---|"
echo "| our server only (as shipped) | $s0 | $x0 |"
echo "| + tiny_http linked back in | $s1 | $x1 |"
awk -v s0="$s0" -v s1="$s1" -v x0="$x0" -v x1="$x1" 'BEGIN {
    printf "| saved by dropping tiny_http | %d (%.1f KB) | %d (%.1f KB) |\n", s1-s0, (s1-s0)/1024, x1-x0, (x1-x0)/1024
    printf "| ratio ours / with tiny_http | %.3f | %.3f |\n", s0/s1, x0/x1 }'
