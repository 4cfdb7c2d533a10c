# shellcheck shell=bash
# A router namespace whose resolver is silent, for the host-name endpoint checks
# (tests/suites/lookup.sh) and their bench (tests/bench/lookup_stall.sh).
# /etc/netns/NS/resolv.conf names 198.51.100.53, reached through a peer namespace
# that does not forward (and so sends no ICMP): getaddrinfo waits its 10 s.
# /etc/netns/NS/hosts knows fast.wslk.test (192.0.2.77). Needs tests/lib/netns.sh.
#
# lk_up BIN: namespaces (unique names), config (upstream up1 at slow1.wslk.test),
#   the daemon started; sets LK_API_MS (start → the API answers 200, max 15 s).
# lk_import TAG HOST: `upstream import` of one with endpoint HOST:51820 through the
#   running daemon; sets LK_APPLY_MS (command → the upstream's link exists, max
#   15 s) and LK_LAST_IF (its link).
# lk_down: everything removed (namespaces, /etc/netns/NS, sockets, files).

lk_ms() { date +%s%3N; }

lk_up() {
    LK_BIN=$1
    LK_S=$(printf %04x $((RANDOM)))
    LK_NS=wslk-$LK_S-r LK_PEER=wslk-$LK_S-p LK_IF=wlk$LK_S
    LK_TMP=$(mktemp -d /tmp/wslk.XXXXXX)
    LK_N=0
    netns_fresh "$LK_NS" "$LK_PEER"
    netns_link "$LK_NS" "${LK_IF}v" "$LK_PEER" "${LK_IF}w"
    ip -n "$LK_NS" addr add 192.0.2.2/24 dev "${LK_IF}v"
    ip -n "$LK_PEER" addr add 192.0.2.1/24 dev "${LK_IF}w"
    ip -n "$LK_NS" route add default via 192.0.2.1
    mkdir -p "/etc/netns/$LK_NS"
    echo "nameserver 198.51.100.53" > "/etc/netns/$LK_NS/resolv.conf"
    printf '127.0.0.1 localhost\n192.0.2.77 fast.wslk.test\n' > "/etc/netns/$LK_NS/hosts"
    LK_KEY=$("$LK_BIN" genkey); LK_PUB=$("$LK_BIN" genkey | "$LK_BIN" pubkey)
    cat > "$LK_TMP/wgsplit" <<CONF
config server 'server'
	option interface '${LK_IF}s'
	option address '10.8.0.1/24'
	option private_key '$LK_KEY'
	option backend 'userspace'
	option dns_port '5353'
	option api_listen '127.0.0.1:8274'

config upstream 'up1'
	option interface '${LK_IF}a'
	option private_key '$LK_KEY'
	list address '10.64.0.2/32'
	option public_key '$LK_PUB'
	option endpoint 'slow1.wslk.test:51820'
	list dns '10.64.0.1'
CONF
    local t0 code _
    t0=$(lk_ms)
    WGSPLIT_RUN_DIR=$LK_TMP/run WGSPLIT_API_TOKEN_FILE=$LK_TMP/api.token WGSPLIT_LIST_ROOTS=$LK_TMP \
        WGSPLIT_LOG=info WGSPLIT_HEALTH_EVERY=0.5 \
        ip netns exec "$LK_NS" "$LK_BIN" --config "$LK_TMP/wgsplit" daemon >"$LK_TMP/daemon.log" 2>&1 &
    for _ in $(seq 300); do
        code=$(lk_api)
        [ "$code" = 200 ] && break
        sleep 0.05
    done
    LK_API_MS=$(( $(lk_ms) - t0 ))
    [ "$code" = 200 ]
}

# The daemon's /api/status: prints the HTTP code.
lk_api() {
    ip netns exec "$LK_NS" curl -s -m 2 -o /dev/null -w '%{http_code}' \
        -H "Authorization: Bearer $(cat "$LK_TMP/api.token" 2>/dev/null)" http://127.0.0.1:8274/api/status
}

# The CLI on the namespace's config, as the daemon's neighbour.
lk_w() {
    WGSPLIT_RUN_DIR=$LK_TMP/run WGSPLIT_API_TOKEN_FILE=$LK_TMP/api.token WGSPLIT_LIST_ROOTS=$LK_TMP \
        ip netns exec "$LK_NS" "$LK_BIN" --config "$LK_TMP/wgsplit" "$@"
}

lk_has_link() { ip -n "$LK_NS" link show "$1" >/dev/null 2>&1; }

lk_import() { # TAG HOST: upstream k<suffix><TAG>, its link wgs_k<suffix><TAG>
    LK_N=$((LK_N + 1))
    LK_LAST_IF=wgs_k$LK_S$1
    printf '[Interface]\nPrivateKey = %s\nAddress = 10.65.0.%d/32\n\n[Peer]\nPublicKey = %s\nAllowedIPs = 0.0.0.0/0\nEndpoint = %s:51820\n' \
        "$LK_KEY" "$((LK_N + 1))" "$LK_PUB" "$2" > "$LK_TMP/$1.conf"
    local t0 _
    t0=$(lk_ms)
    lk_w upstream import "k$LK_S$1" "$LK_TMP/$1.conf" >/dev/null 2>&1 || return 1
    for _ in $(seq 300); do lk_has_link "$LK_LAST_IF" && break; sleep 0.05; done
    LK_APPLY_MS=$(( $(lk_ms) - t0 ))
    lk_has_link "$LK_LAST_IF"
}

# The endpoint of the one peer of a userspace device (its UAPI socket).
lk_endpoint_of() {
    printf 'get=1\n\n' | socat - "UNIX-CONNECT:/var/run/wireguard/$1.sock" 2>/dev/null | sed -n 's/^endpoint=//p'
}

lk_down() {
    [ -n "${LK_NS:-}" ] || return 0
    netns_remove "$LK_NS" "$LK_PEER"
    rm -rf "/etc/netns/$LK_NS"
    rm -f /var/run/wireguard/"$LK_IF"?.sock /var/run/wireguard/"$LK_IF"?.name \
        /var/run/wireguard/wgs_k"$LK_S"*.sock /var/run/wireguard/wgs_k"$LK_S"*.name
    [ -n "${KEEP:-}" ] || rm -rf "$LK_TMP"
    LK_NS=
}
