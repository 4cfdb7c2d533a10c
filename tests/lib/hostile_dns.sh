# shellcheck shell=bash
# What the resolver attacks (tests/hostile/dns_*.sh) share. Source it from the
# repository's root once TMP (a temporary folder) is set; processes to end on
# exit go into the array PIDS. The topology, prefix PFX:
#
#   PFX-c (clients, on PFX-cli) ── PFX-r (router: 10.8.0.1/24 on PFX-srv,
#                                   10.99.0.1/24 on PFX-wan) ── PFX-w (WAN, on PFX-wr)
. tests/lib/netns.sh
PIDS=()
HOSTILE_NS=()

# hostile_dns_topology PFX WAN_CIDR CLIENT_CIDR...: the three namespaces anew and
# linked, WAN_CIDR on the WAN's end, each CLIENT_CIDR on the clients' end.
hostile_dns_topology() {
    local p=$1 wan=$2 a
    shift 2
    HOSTILE_NS=("$p-c" "$p-r" "$p-w")
    netns_fresh "${HOSTILE_NS[@]}"
    netns_link "$p-r" "$p-srv" "$p-c" "$p-cli"
    ip -n "$p-r" addr add 10.8.0.1/24 dev "$p-srv"
    for a in "$@"; do ip -n "$p-c" addr add "$a" dev "$p-cli"; done
    netns_link "$p-r" "$p-wan" "$p-w" "$p-wr"
    ip -n "$p-r" addr add 10.99.0.1/24 dev "$p-wan"
    ip -n "$p-w" addr add "$wan" dev "$p-wr"
}

# hostile_cleanup: for the EXIT trap. Ends every process in PIDS (TERM, then
# KILL) and reaps it, deletes the namespaces and TMP.
hostile_cleanup() {
    local p n
    for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done
    sleep 0.2
    for p in "${PIDS[@]}"; do kill -9 "$p" 2> /dev/null || true; wait "$p" 2> /dev/null || true; done
    for n in "${HOSTILE_NS[@]}"; do ip netns del "$n" 2> /dev/null || true; done
    rm -rf "$TMP"
}

# hostile_config CLIENTS [SERVER_LINE...]: a wgsplit config on stdout: the server
# on 10.8.0.1/24 asking 10.99.0.53 upstream (each SERVER_LINE, such as
# "list dns_listen '192.168.77.1'", added to its section), then the first CLIENTS
# (1 or 2) of alice (10.8.0.2) and bob (10.8.0.3).
hostile_config() {
    local clients=$1 line
    shift
    printf "config server 'server'\n\toption address '10.8.0.1/24'\n"
    printf "\toption private_key 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='\n"
    printf "\tlist dns_server '10.99.0.53'\n"
    for line in "$@"; do printf '\t%s\n' "$line"; done
    printf "config client 'alice'\n\toption public_key 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='\n"
    printf "\tlist address '10.8.0.2/32'\n"
    [ "$clients" -ge 2 ] || return 0
    printf "config client 'bob'\n\toption public_key 'TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0='\n"
    printf "\tlist address '10.8.0.3/32'\n"
}
