#!/usr/bin/env bash
# Fuzzing in CI: every fuzz target (daemon/fuzz, whatever `cargo fuzz list` names)
# for a bounded time from its committed seed corpus. A target that fails to build,
# crashes, hangs or blows its memory bound fails the suite, and the failing input
# is printed (tests/fuzz.sh). Needs nightly and cargo-fuzz, installed here; if they
# cannot be installed the suite fails: fuzzing is part of the test, not optional.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/deps.sh

# Per target. tests/fuzz.sh runs one target per core: on CI's 2 cores, six
# targets take about 70 s of fuzzing, plus the build (about 1.5 min when the
# wgsplit crate changed, 5-8 min from an empty cache).
SECONDS_PER_TARGET=${WGSPLIT_FUZZ_SECONDS:-20}

if ! install_deps_fuzz; then
    echo "FAIL fuzz: the nightly toolchain or cargo-fuzz could not be installed"
    exit 1
fi
start=$SECONDS
bash tests/fuzz.sh "$SECONDS_PER_TARGET"
status=$?
echo "fuzz suite: $((SECONDS - start)) s"
exit $status
