#!/usr/bin/env bash
# What the resolver's source-port rotation (issue #18's defence against cache
# poisoning, dns/upstream.rs) costs per cache miss: compare.sh with, as its base,
# the current tree changed in one place only: one socket per route and family
# for the resolver's life (PORT_POOL 1, no retirement), as b6ad7db had.
#
# The variant is a throw-away commit made in a temporary worktree (removed on
# exit; the commit is on no branch; its one port is retired every 1,024
# queries), so compare.sh builds it as it builds any base. "current/base" in its
# table is then the price of the rotation; compare.sh against b6ad7db gives the
# rest.
#
# Usage: sudo tests/bench/port_cost.sh   (environment as compare.sh; its daemon
# part runs WSHC_ROUNDS=3 changes here, as only the resolver rows matter)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "port_cost: run as root"; exit 1; }
WT=$(mktemp -d /tmp/wgsplit-portcost.XXXXXX)
trap 'git worktree remove --force "$WT" 2>/dev/null || rm -rf "$WT"' EXIT
git worktree add -q --detach "$WT" HEAD
F=daemon/src/dns/upstream.rs
sed -i -e 's/^pub const PORT_POOL: usize = [0-9]*;/pub const PORT_POOL: usize = 1;/' \
    -e 's/^pub const USES_PER_PORT: usize = [0-9]*;/pub const USES_PER_PORT: usize = 1024;/' \
    -e 's/^pub const PORT_MAX_AGE: Duration = .*;/pub const PORT_MAX_AGE: Duration = Duration::from_secs(1 << 30);/' \
    "$WT/$F"
changed=$(git -C "$WT" diff --numstat -- "$F" | awk '{print $1}')
[ "$changed" = 3 ] || { echo "port_cost: expected to change 3 constants in $F, changed ${changed:-0} lines"; exit 1; }
# A fixed author and date: the same tree gives the same commit, so compare.sh's
# cache of built bases (by commit id) serves a second run.
GIT_AUTHOR_DATE="2000-01-01T00:00:00Z" GIT_COMMITTER_DATE="2000-01-01T00:00:00Z" \
    git -C "$WT" -c user.name=bench -c user.email=bench@localhost commit -q -am "bench: one source port per route (port_cost.sh)"
variant=$(git -C "$WT" rev-parse HEAD)
echo "port_cost: base = the current tree with one source port per route ($variant, on no branch)"
WSHC_ROUNDS=${WSHC_ROUNDS:-3} WSHC_BASE_DNS_ARGS="--client-rate 1000000" bash tests/bench/compare.sh "$variant"
