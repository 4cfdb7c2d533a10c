#!/usr/bin/env bash
# Hostile input: each tests/hostile/*.sh is one attack, run as an attacker would
# (in namespaces of its own, or on loopback), against a freshly built wgsplit.
# An attack script exits non-zero when the daemon fell over or a bound did not hold.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --quiet
BIN=target/debug/wgsplit
# The DNS floods measure throughput and answer times under load (a flood of
# >= 30,000 q/s from a Python generator on the same 2 cores; answers within 1 s
# during a flood): bounds on the product, not on a test build. When the test
# command measures coverage (tests/bench/coverage.sh env), target/debug is
# instrumented; there the generator reached only 24.6k q/s and an answer during
# the forgery flood came late (tests/bench/RESULTS.md, "branch cover, #17").
# So these two run an uninstrumented debug build, the same build a plain run
# uses, with their bounds unchanged; every other attack runs the instrumented one.
TIMED=(dns_flood dns_forgery)
TIMED_BIN=$BIN
flags_var=CARGO_TARGET_$(rustc -vV | sed -n 's/^host: //p' | tr 'a-z-' 'A-Z_')_RUSTFLAGS
if [[ "${!flags_var:-} ${RUSTFLAGS:-}" == *instrument-coverage* ]]; then
    env -u "$flags_var" -u RUSTFLAGS -u LLVM_PROFILE_FILE CARGO_TARGET_DIR=target/uninstrumented \
        cargo build --quiet -p wgsplit
    TIMED_BIN=target/uninstrumented/debug/wgsplit
fi
fail=0 ran=0
for attack in tests/hostile/*.sh; do
    [ -e "$attack" ] || continue
    ran=$((ran + 1))
    name=$(basename "$attack" .sh) bin=$BIN
    [[ " ${TIMED[*]} " == *" $name "* ]] && bin=$TIMED_BIN
    echo "--- $name$([ "$bin" = "$BIN" ] || echo " (uninstrumented build)")"
    bash "$attack" "$bin" || { echo "  FAIL $name"; fail=1; }
done
echo "hostile: $ran attacks run"
exit $fail
