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
