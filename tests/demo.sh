#!/usr/bin/env bash
# The live demo: a router with three WireGuard clients and two upstream tunnels, all
# in network namespaces on this machine. Shows, per client and destination, which
# source address the servers in the "internet" namespace saw — that is, which way
# the traffic left. Cleans everything up when done (or interrupted).
# Usage: sudo tests/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "demo: run as root (sudo tests/demo.sh)"; exit 1; fi
. tests/lib/deps.sh
install_deps
echo "demo: building wgsplit"
cargo build --quiet -p wgsplit
. tests/engine/topology.sh
trap topo_down EXIT

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
path_of() {
    case $1 in
        $WAN4 | $WAN6_SEEN) echo "direct (router WAN)" ;;
        $UP1_EXIT4 | $UP1_EXIT6_SEEN) echo "upstream up1" ;;
        $UP2_EXIT4 | $UP2_EXIT6_SEEN) echo "upstream up2" ;;
        -) echo "nothing (dropped)" ;;
        *) echo "?" ;;
    esac
}
show() { # client-ns name host port
    local seen
    seen=$(whoami "$1" "$3" "$4")
    printf '  %-6s → %-22s seen from %-40s %s\n' "$2" "$3:$4" "$seen" "$(path_of "$seen")"
}
matrix() {
    show wse-c1 alice $SRV_A4 8080; show wse-c1 alice $SRV_A6 8080
    show wse-c1 alice $SRV_B4 8080; show wse-c1 alice $SRV_B4 8081
    show wse-c2 bob $SRV_A4 8080;   show wse-c2 bob $SRV_A6 8080
    show wse-c2 bob $SRV_B4 8080
    show wse-c3 carol $SRV_A4 8080; show wse-c3 carol $SRV_B4 8081
}

bold "1. Topology: 3 clients, the router, 2 upstream WireGuard servers, an internet"
topo_up
cat <<EOF
  whoami servers in the internet: A = $SRV_A4 / $SRV_A6, B = $SRV_B4
  exits: router WAN $WAN4, upstream up1 $UP1_EXIT4, upstream up2 $UP2_EXIT4
  alice: A through up1, port 8081 through up2, the rest direct
  bob:   everything through up2 except B
  carol: no upstream
EOF

bold "2. wgsplit apply --dry-run (the plan, first lines)"
# head stops reading after 25 lines: the rest of the plan meets a closed pipe.
{ wgsplit_r apply --dry-run || true; } | head -25
echo "  ..."
bold "3. wgsplit apply"
wgsplit_r apply | tail -1
echo "  again:"
wgsplit_r apply | tail -1
for c in 1 2 3; do wait_tunnel wse-c$c || true; done
sleep 1

bold "4. Where each client's traffic leaves"
matrix

bold "5. Kill switch: upstream up1 goes down (its WireGuard process is stopped)"
for p in $(ip netns pids wse-router); do
    [ "$(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)" = "boringtun-cli wse-u1 " ] && kill "$p"
done
sleep 0.5
show wse-c1 alice $SRV_A4 8080
show wse-c1 alice $SRV_B4 8080
show wse-c2 bob $SRV_A4 8080

bold "6. wgsplit daemon repairs it (and anything else removed, e.g. the nft table)"
ip netns exec wse-router "$WSE_BIN" --config "$WSE_DIR/wgsplit.conf" daemon 2>&1 | sed -u 's/^/  daemon| /' &
sleep 1
ip netns exec wse-router nft delete table inet wgsplit
echo "  (nft delete table inet wgsplit)"
sleep 3
for i in $(seq 20); do [ "$(whoami wse-c1 $SRV_A4 8080)" = "$UP1_EXIT4" ] && break; sleep 0.25; done
show wse-c1 alice $SRV_A4 8080
show wse-c2 bob $SRV_A4 8080

bold "7. One rule changes (alice: A now direct); the daemon sees the file change"
write_config direct
sleep 1.5
show wse-c1 alice $SRV_A4 8080
show wse-c2 bob $SRV_A4 8080

bold "8. Status, then down"
wgsplit_r status
for p in $(ip netns pids wse-router); do
    [ "$(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null | cut -d' ' -f4)" = "daemon" ] && kill -TERM "$p"
done
sleep 0.5
wgsplit_r down | tail -1
bold "demo: done; cleaning up"
