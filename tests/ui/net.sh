#!/usr/bin/env bash
# The network side of the pages' test (tests/ui/run.sh builds the topology;
# ui.test.js calls this for what a browser cannot do):
#
#   net.sh client-up CONF      load a downloaded .conf into the client (wsui-c1)
#   net.sh whoami IP           the source address the "internet" server saw
#                              from the client (through the tunnel), or nothing
#   net.sh lookup NAME         the client asks the router's resolver (through
#                              the tunnel); prints the first A answer
#   net.sh peer PUBKEY         exits 0 while the server (wsui-wg0) has that peer
#   net.sh handshake PUBKEY    prints the peer's latest handshake (unix s, 0: none)
set -uo pipefail
export WG_SUDO=true PATH="$HOME/.cargo/bin:$PATH"
HERE=$(cd "$(dirname "$0")" && pwd)
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

case "${1:-}" in
client-up)
    conf=$2
    if [ ! -S /var/run/wireguard/wsui-c1.sock ]; then
        in_ns wsui-c1 boringtun-cli wsui-c1 >/dev/null 2>&1
        for _ in $(seq 60); do [ -S /var/run/wireguard/wsui-c1.sock ] && break; sleep 0.05; done
    fi
    in_ns wsui-c1 wg setconf wsui-c1 <(wg-quick strip "$conf" 2>/dev/null) || exit 1
    addr=$(sed -n 's/^Address = \([^,]*\).*/\1/p' "$conf")
    in_ns wsui-c1 ip addr replace "$addr" dev wsui-c1
    in_ns wsui-c1 ip link set wsui-c1 up
    # Only the test servers and the router's resolver go through the tunnel
    # (the endpoint stays on the LAN route).
    for dst in 198.51.100.100/32 198.51.100.101/32 10.8.0.1/32; do
        in_ns wsui-c1 ip route replace "$dst" dev wsui-c1
    done
    ;;
whoami)
    in_ns wsui-c1 timeout 3 socat -T2 - "TCP4:$2:8080,connect-timeout=2" </dev/null 2>/dev/null | tr -d '\r\n'
    ;;
lookup)
    in_ns wsui-c1 timeout 5 python3 "$HERE/../dns/dnstool.py" q 10.8.0.1:5353 "$2" A 2>/dev/null \
        | awk '$1 == "A" { print $2; exit }'
    ;;
peer)
    in_ns wsui-router wg show wsui-wg0 peers 2>/dev/null | grep -qx "$2"
    ;;
handshake)
    in_ns wsui-router wg show wsui-wg0 latest-handshakes 2>/dev/null | awk -v k="$2" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }'
    ;;
*)
    sed -n '2,12p' "$0"; exit 2
    ;;
esac
