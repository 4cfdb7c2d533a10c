# shellcheck shell=bash
# The engine's topology (tests/engine/topology.sh) under the names of the guard
# scripts (wsgd-*: namespaces, links, the WireGuard sockets, /tmp/wsgd-topology),
# so they run beside the engine suite without tearing down each other's
# namespaces. Source it instead of topology.sh; every function and address is
# the same, with `wsgd-` for `wse-` in every name.
WSE_DIR="${WSE_DIR:-/tmp/wsgd-topology}"
WSE_BIN="${WSE_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/debug/wgsplit}"
# shellcheck source=tests/lib/netns.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/netns.sh"
# shellcheck disable=SC1090
. <(sed -e 's/wse-/wsgd-/g' -e 's/wse_/wsgd_/g' "$(dirname "${BASH_SOURCE[0]}")/topology.sh")
