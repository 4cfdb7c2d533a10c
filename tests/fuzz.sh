#!/usr/bin/env bash
# Fuzzes every target `cargo fuzz list` names (daemon/fuzz/fuzz_targets/) for a
# bounded time each, starting from its committed seed corpus
# daemon/fuzz/corpus/<target>/ (written by daemon/fuzz/corpus/generate.py). The
# seeds are copied to a scratch folder first: what a run discovers is thrown away,
# so the committed corpus only changes when someone regenerates it.
#
# Usage: tests/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
# Exit status 0: every target built and ran its time with no crash (panic, failed
# assertion, sanitizer report), no hang and no memory blow-up. 1 otherwise; each
# failing input is printed (path, size, hex, base64) with the command that replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib/deps.sh
. tests/lib/deps.sh
install_deps_fuzz
cd daemon

seconds=${1:-60}
# libFuzzer's bounds, named so the report can quote them.
MAX_LEN=4096        # bytes per input: every parser is reached well below this
UNIT_TIMEOUT_S=10   # one input running longer is a hang (inputs are at most MAX_LEN)
RSS_LIMIT_MB=2048   # more is an unbounded allocation (also caps a single malloc)
HEX_SHOWN=256       # bytes of a failing input printed in hex (all of it in base64)

# Scratch (corpus copies, logs, the targets' temporary files) on tmpfs if there is one.
scratch=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && scratch=/dev/shm
work=$(mktemp -d "$scratch/wgsplit-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Overflow checks and debug_assert!s on: the router's release build wraps on
# overflow instead of panicking, and on its 32-bit targets a wrapped length is a
# wrong bound. `run` needs the same flags as `build` or it rebuilds everything.
BUILD_FLAGS=(--debug-assertions)

# The fuzz crate is its own workspace with its own (ignored) lock file. Starting it
# from the product's lock fuzzes the dependency versions the product ships.
[ -e fuzz/Cargo.lock ] || cp ../Cargo.lock fuzz/Cargo.lock

echo "fuzz: building the targets (nightly, cargo-fuzz, address sanitizer, debug assertions)"
start=$SECONDS
if ! cargo +nightly fuzz build "${BUILD_FLAGS[@]}" >"$work/build.log" 2>&1; then
    # The compiler's errors if there are any, else the end of the log.
    if grep -qE '^error' "$work/build.log"; then
        grep -E -A12 '^error' "$work/build.log" | head -80
    else
        tail -40 "$work/build.log"
    fi
    echo "FAIL fuzz targets do not build"
    exit 1
fi
echo "fuzz: built in $((SECONDS - start)) s"
targets=$(cargo +nightly fuzz list)
if [ -z "$targets" ]; then
    echo "FAIL cargo fuzz list names no target"
    exit 1
fi

# The input libFuzzer saved for a failure ("Test unit written to PATH"), shown so a
# CI log alone is enough to reproduce it.
show_failure() {
    local target=$1 log=$2 unit size
    # The panic and its message (up to the backtrace), then libFuzzer's and the
    # sanitizer's verdicts (crash, timeout, out of memory, leak).
    awk '/panicked at/ { n = 8 } /^stack backtrace|^note: / { n = 0 } n-- > 0' "$log"
    grep -E 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|^SUMMARY' "$log" | head -6 || true
    unit=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    if [ -z "$unit" ] || [ ! -e "$unit" ]; then
        echo "  no failing input was saved; the log's end:"
        tail -30 "$log"
        return
    fi
    unit=$(realpath "$unit")
    size=$(stat -c %s "$unit")
    echo "  failing input: $unit ($size bytes)"
    od -A x -t x1z -v -N "$HEX_SHOWN" "$unit" | sed 's/^/    /'
    [ "$size" -le "$HEX_SHOWN" ] || echo "    ... (first $HEX_SHOWN of $size bytes)"
    # All of it (at most MAX_LEN bytes), so a CI log alone reproduces the failure.
    echo "  as base64 (base64 -d > input):"
    base64 -w 76 "$unit" | sed 's/^/    /'
    echo "  replay: (cd daemon && cargo +nightly fuzz run ${BUILD_FLAGS[*]} $target $unit)"
}

# One target: its seeds copied, libFuzzer for $seconds, a report in $work/$target.out
# and an empty $work/$target.ok when it passed. The target's own scratch files go
# to its TMPDIR (source_readers writes each input to a file: on tmpfs it runs
# about 3.7 times as many inputs as on disk).
fuzz_one() {
    local target=$1 corpus=$work/corpus/$1 log=$work/$1.log seeds=0 last
    mkdir -p "$corpus" "$work/tmp/$target"
    if [ -d "fuzz/corpus/$target" ]; then
        cp -r "fuzz/corpus/$target/." "$corpus/"
        seeds=$(find "$corpus" -type f | wc -l)
    fi
    if [ "$seeds" -eq 0 ]; then
        echo "--- $target: ${seconds} s, no committed corpus (daemon/fuzz/corpus/$target/): started empty"
    else
        echo "--- $target: ${seconds} s from $seeds committed seeds"
    fi
    if TMPDIR=$work/tmp/$target cargo +nightly fuzz run "${BUILD_FLAGS[@]}" "$target" "$corpus" -- \
        -max_total_time="$seconds" -max_len="$MAX_LEN" -timeout="$UNIT_TIMEOUT_S" \
        -rss_limit_mb="$RSS_LIMIT_MB" >"$log" 2>&1; then
        # "#N DONE cov: C ft: F corp: K/S exec/s: E ..." is libFuzzer's last status line.
        last=$(grep -E '^#[0-9]+' "$log" | tail -1)
        echo "  ok   $target: $(grep -E '^Done ' "$log" | tail -1)," \
            "cov $(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")," \
            "corpus $seeds -> $(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")," \
            "$(sed -n 's/.* exec\/s: \([0-9]*\).*/\1/p' <<<"$last") exec/s"
        : >"$work/$target.ok"
    else
        echo "  FAIL $target"
        show_failure "$target" "$log"
    fi
}

# libFuzzer runs one process per target: as many targets at a time as there are
# cores (CI has two), each target's report printed whole once all are done.
jobs=$(nproc)
echo "fuzz: $(wc -w <<<"$targets") targets, ${seconds} s each, $jobs at a time"
running=0
for target in $targets; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
    fuzz_one "$target" >"$work/$target.out" 2>&1 &
    running=$((running + 1))
done
wait

failed=()
for target in $targets; do
    cat "$work/$target.out"
    [ -e "$work/$target.ok" ] || failed+=("$target")
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAIL in ${failed[*]}"
    exit 1
fi
echo "fuzz: $(wc -w <<<"$targets") targets, ${seconds} s each, no failure"
