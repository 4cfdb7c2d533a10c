#!/usr/bin/env bash
# Issue #19's guards, each in network namespaces of its own (wsgd-*) on the real
# kernel: tests/engine/offload.sh (flow offloading; skipped on a kernel without
# flowtables) and the other tests/engine/*.sh scripts listed here. Root only.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then echo "guard: needs root (network namespaces)"; exit 1; fi
cargo build --quiet -p wgsplit || exit 1
fail=0
for t in offload learned bypass explain; do
    echo "--- $t"
    bash "tests/engine/$t.sh" || { echo "  FAIL $t"; fail=1; }
done
exit $fail
