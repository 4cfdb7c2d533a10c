#!/usr/bin/env bash
# Line coverage of daemon/src by the crate's own tests: the unit and integration
# tests, the kernel tests (as root, `--ignored`, each in its own netns) and the
# oracles over the real data (tests/sources/lib.sh fetches it). The namespace
# suites are not counted yet: they run target/debug/wgsplit, which this script
# leaves alone (it builds into target/coverage).
#
#   tests/bench/coverage.sh [LEAST]     (LEAST: how many least-covered files to list, 12)
#
# Tools: rustc's -Cinstrument-coverage and Debian's llvm-19 (llvm-profdata,
# llvm-cov), which read rustc 1.95's profiles (LLVM 22). Prints llvm-cov's
# total line for daemon/src and the least-covered files.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
LEAST=${1:-12}
# shellcheck source=tests/lib/deps.sh
. tests/lib/deps.sh
# shellcheck source=tests/sources/lib.sh
. tests/sources/lib.sh
LLVM_VERSION=19
_deps_apt "llvm-$LLVM_VERSION"
PROFDATA=llvm-profdata-$LLVM_VERSION
COV=llvm-cov-$LLVM_VERSION

WORK=$ROOT/target/coverage
rm -rf "$WORK/profraw"
mkdir -p "$WORK/profraw"
HOST=$(rustc -vV | sed -n 's/^host: //p')
HOST_ENV=$(echo "$HOST" | tr 'a-z-' 'A-Z_')
export CARGO_TARGET_DIR=$WORK/target
export "CARGO_TARGET_${HOST_ENV}_RUSTFLAGS=-Cinstrument-coverage"
# %p: one file per process; %4m: merged per binary into at most 4 files.
export LLVM_PROFILE_FILE=$WORK/profraw/%p-%4m.profraw

start=$SECONDS
# The test executables (the objects whose coverage maps llvm-cov reads).
mapfile -t OBJECTS < <(cargo test -p wgsplit --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])')
[ ${#OBJECTS[@]} -gt 0 ] || { echo "coverage: no test executable built" >&2; exit 1; }
echo "coverage: built in $((SECONDS - start)) s (${#OBJECTS[@]} test executables)" >&2

status=0
cargo test -p wgsplit --quiet --no-fail-fast >"$WORK/unit.log" 2>&1 || { status=1; tail -20 "$WORK/unit.log"; }
if [ "$(id -u)" -eq 0 ]; then
    cargo test -p wgsplit --quiet --no-fail-fast -- --ignored >"$WORK/kernel.log" 2>&1 || { status=1; tail -20 "$WORK/kernel.log"; }
else
    echo "coverage: kernel tests skipped (need root)" >&2
fi
if wsl_data; then
    WSL_DBIP_DIR=$WSL_DBIP_DIR WSL_GEOSITE_DAT=$WSL_GEOSITE_DAT WSL_DLC_DATA=$WSL_DLC_DATA \
        WSL_GEOIP_DAT=$WSL_GEOIP_DAT cargo test -p wgsplit --quiet --no-fail-fast --test oracles_data --test sources_data \
        >"$WORK/data.log" 2>&1 || { status=1; tail -20 "$WORK/data.log"; }
else
    echo "coverage: real-data tests skipped (no data)" >&2
fi
if [ $status -ne 0 ]; then
    echo "coverage: some tests failed; the figure counts what ran:" >&2
    grep -h -A3 '^failures:$' "$WORK"/*.log | grep -E '^    ' | sort -u >&2 || true
fi

"$PROFDATA" merge -sparse "$WORK"/profraw/*.profraw -o "$WORK/wgsplit.profdata"
args=(-instr-profile="$WORK/wgsplit.profdata" "${OBJECTS[0]}")
for o in "${OBJECTS[@]:1}"; do args+=(-object "$o"); done
# daemon/src only, without the test modules kept in their own files.
ignore='(/\.cargo/|/rustc/|/library/|/daemon/tests/|_tests\.rs$|/tests\.rs$|/fuzz/)'
"$COV" report "${args[@]}" --ignore-filename-regex="$ignore" >"$WORK/report.txt"
echo
echo "line coverage of daemon/src (unit, kernel and real-data tests; suites not counted):"
# Columns: file, regions, missed, cover, functions, missed, executed, lines, missed, cover, ...
awk '/^TOTAL/ { printf "  %s of %s lines (%s)\n", $8 - $9, $8, $10 }' "$WORK/report.txt"
echo "least covered (lines missed, cover):"
awk 'NR > 2 && /\.rs / { printf "  %-50s %6s %8s\n", $1, $9, $10 }' "$WORK/report.txt" |
    sed "s|$ROOT/daemon/src/||" | sort -k3 -n | awk -v n="$LEAST" 'NR <= n'
exit $status
