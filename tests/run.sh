#!/usr/bin/env bash
# The test command: installs what it needs, then runs every suite.
# Usage: sudo tests/run.sh [--quick]   (--quick: unit tests and lints only)
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/lib/deps.sh
install_deps
# Line coverage of daemon/src across the unit tests and every suite, on by
# default for full runs as root (what CI runs; WGSPLIT_COVERAGE=0 turns it off):
# from here on every host build is instrumented, so `cargo test` and the suites'
# target/debug/wgsplit are one build, and each process writes its profile
# (tests/bench/coverage.sh); the last step prints the figure. The hostile
# suite's DNS floods, which measure rates, run an uninstrumented build of their
# own (tests/suites/hostile.sh says why). tests/bench/RESULTS.md has the figure
# and the seconds it costs.
coverage=${WGSPLIT_COVERAGE:-1}
[ "${1:-}" = "--quick" ] && coverage=0
[ "$(id -u)" -eq 0 ] || coverage=0
if [ "$coverage" = 1 ]; then coverage_env=$(bash tests/bench/coverage.sh env); eval "$coverage_env"; fi

passed=0 failed=0 failures=()
suite() {
    local name=$1; shift
    echo "=== $name"
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$name"); fi
}

suite "rustfmt" cargo fmt --all -- --check
suite "clippy" cargo clippy --all-targets --quiet -- -D warnings
suite "layers" python3 tests/lint/layers.py
suite "cargo test" cargo test --quiet
# Kernel tests inside the crate (their own netns each): root only, as the suites.
if [ "$(id -u)" -eq 0 ]; then
    suite "cargo test (kernel)" cargo test --quiet -- --ignored
else
    echo "=== cargo test (kernel): skipped, needs root"
fi
if [ "${1:-}" != "--quick" ]; then
    for s in tests/suites/*.sh; do
        [ -e "$s" ] || continue
        suite "$(basename "$s" .sh)" bash "$s"
    done
fi
if [ "$coverage" = 1 ]; then suite "coverage" bash tests/bench/coverage.sh report; fi

echo
[ ${#failures[@]} -eq 0 ] || echo "failed suites: ${failures[*]}"
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
