# shellcheck shell=bash
# The start every guard script (tests/engine/{bypass,explain,learned,offload}.sh)
# shares, sourced from the repository's root as `. tests/lib/guard_test.sh NAME`:
# the guard topology (tests/engine/guard_topology.sh: topo_up, in_ns, wgsplit_r…),
# root or exit 1, a fresh debug build, and `check NAME EXPECTED ACTUAL`, which
# counts each mismatch in `fails` (the script exits with it).
. tests/engine/guard_topology.sh
if [ "$(id -u)" != 0 ]; then echo "${1:?guard_test.sh NAME}: needs root (network namespaces)"; exit 1; fi
cargo build --quiet -p wgsplit || exit 1
fails=0
check() { # name expected actual
    if [ "$2" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: expected '$2', got '$3'"; fails=$((fails + 1)); fi
}
# The router's namespace, and the DNS test client and stub (tests/dns/dnstool.py).
R=wsgd-router
DNSTOOL="python3 tests/dns/dnstool.py"
