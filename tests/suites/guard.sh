#!/usr/bin/env bash
# Issue #19's guards, each in network namespaces of its own (wsgd-*) on the real
# kernel: tests/engine/offload.sh (flow offloading; skipped on a kernel without
# flowtables), learned.sh (learned routes fail closed, ~50 s), bypass.sh (the DNS
# bypass guard and its DoH list as a list source, ~55 s), explain.sh (explain from
# the live state, CLI and API) and status.sh (two daemons in two namespaces;
# down's clean-up). Root only. ~3 min.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then echo "guard: needs root (network namespaces)"; exit 1; fi
cargo build --quiet -p wgsplit || exit 1
fail=0
for t in offload learned bypass explain status; do
    echo "--- $t"
    bash "tests/engine/$t.sh" || { echo "  FAIL $t"; fail=1; }
done
exit $fail
