# shellcheck shell=bash
# netns_remove NS...: ends every process inside the named network namespaces (TERM,
# then KILL what is left) and deletes them. Namespaces that don't exist are skipped.
# Only processes inside namespaces the caller made are touched.
netns_remove() {
    local ns p
    for ns in "$@"; do
        [ -e "/var/run/netns/$ns" ] || continue
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
    done
    sleep 0.2
    for ns in "$@"; do
        [ -e "/var/run/netns/$ns" ] || continue
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
}

# netns_fresh NS...: each namespace anew (a leftover of an interrupted run is
# deleted first), with its loopback up.
netns_fresh() {
    local ns
    for ns in "$@"; do
        ip netns del "$ns" 2>/dev/null || true
        ip netns add "$ns"
        ip -n "$ns" link set lo up
    done
}

# netns_link NS-A IF-A NS-B IF-B: a veth pair between two namespaces, both ends up.
netns_link() {
    ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"
    ip -n "$1" link set "$2" up
    ip -n "$3" link set "$4" up
}

# netns_wait_listen NS PORT [udp]: waits (up to 10 s) until a socket in NS listens
# on PORT (TCP, or UDP with `udp`): a server started in the background a moment
# ago may not have bound yet when the first client connects (a slow CI machine).
netns_wait_listen() {
    local i flags=-Hltn
    [ "${3:-}" = udp ] && flags=-Hlun
    for i in $(seq 100); do
        [ -n "$(ip netns exec "$1" ss $flags "sport = :$2" 2>/dev/null)" ] && return 0
        sleep 0.1
    done
    echo "nothing listens on port $2 in $1 after 10 s" >&2
    return 1
}
