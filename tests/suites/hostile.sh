#!/usr/bin/env bash
# Hostile input: each tests/hostile/*.sh is one attack, run as an attacker would
# (in namespaces of its own, or on loopback), against a freshly built wgsplit.
# An attack script exits non-zero when the daemon fell over or a bound did not hold.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --quiet
fail=0 ran=0
for attack in tests/hostile/*.sh; do
    [ -e "$attack" ] || continue
    ran=$((ran + 1))
    echo "--- $(basename "$attack" .sh)"
    bash "$attack" target/debug/wgsplit || { echo "  FAIL $(basename "$attack")"; fail=1; }
done
echo "hostile: $ran attacks run"
exit $fail
