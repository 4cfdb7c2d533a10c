# The engine's network-namespace topology, shared by tests/suites/engine.sh and
# tests/demo.sh. Source it, then call topo_up; topo_down cleans everything up
# (namespaces, links, processes started inside them, control sockets).
#
#   wse-c1 (alice) ─┐                       ┌─ wse-up1: WireGuard server, NAT → 198.51.100.11
#   wse-c2 (bob)   ─┼─ WireGuard ─ wse-router ─ WAN 198.51.100.2 ─ wse-net ("internet": whoami
#   wse-c3 (carol) ─┘   wse-wg0    wse-u1/u2  ┘                    servers .100 and .101)
#                                           └─ wse-up2: WireGuard server, NAT → 198.51.100.12
#
# Every address lives inside these namespaces: 10.x, 198.51.100.0/24, fd00:5e::/64, fd42/fd64.

WSE_NS="wse-net wse-router wse-up1 wse-up2 wse-c1 wse-c2 wse-c3"
WSE_DIR="${WSE_DIR:-/tmp/wse-topology}"
WSE_BIN="${WSE_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/debug/wgsplit}"
export WG_SUDO=true
# State files of wgsplit (per netns) live with the topology and go with it.
export WGSPLIT_STATE_DIR="$WSE_DIR/state"
export PATH="$HOME/.cargo/bin:$PATH"
export WG_USERSPACE_IMPLEMENTATION="${WG_USERSPACE_IMPLEMENTATION:-boringtun-cli}"
# (guard_topology.sh sources a rewritten copy of this file, so it loads netns.sh first.)
# shellcheck source=tests/lib/netns.sh
declare -F netns_wait_listen >/dev/null || . "$(dirname "${BASH_SOURCE[0]}")/../lib/netns.sh"

# Addresses the harness asserts on.
WAN4=198.51.100.2
UP1_EXIT4=198.51.100.11
UP2_EXIT4=198.51.100.12
SRV_A4=198.51.100.100
SRV_B4=198.51.100.101
WAN6=fd00:5e::2
UP1_EXIT6=fd00:5e::11
UP2_EXIT6=fd00:5e::12
SRV_A6=fd00:5e::100
# socat reports IPv6 peers written out in full.
WAN6_SEEN=fd00:005e:0000:0000:0000:0000:0000:0002
UP1_EXIT6_SEEN=fd00:005e:0000:0000:0000:0000:0000:0011
UP2_EXIT6_SEEN=fd00:005e:0000:0000:0000:0000:0000:0012

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
wgsplit_r() { in_ns wse-router "$WSE_BIN" --config "$WSE_DIR/wgsplit.conf" "$@"; }

topo_down() {
    local ns pid
    for ns in $WSE_NS; do
        [ -e "/var/run/netns/$ns" ] || continue
        # Everything running inside our namespaces was started by this harness.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    done
    sleep 0.3
    for ns in $WSE_NS; do
        [ -e "/var/run/netns/$ns" ] || continue
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -f /var/run/wireguard/wse-*.sock /var/run/wireguard/wse-*.name
    rm -rf "$WSE_DIR"
}

# A userspace WireGuard interface inside a namespace (boringtun daemonises itself).
wg_iface() {
    local ns=$1 name=$2
    in_ns "$ns" "$WG_USERSPACE_IMPLEMENTATION" "$name" >/dev/null 2>&1
    local i
    for i in $(seq 50); do [ -S "/var/run/wireguard/$name.sock" ] && return 0; sleep 0.05; done
    echo "topology: $name did not start" >&2; return 1
}

veth() { # ns1 if1 ns2 if2
    ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"
    in_ns "$1" ip link set "$2" up
    in_ns "$3" ip link set "$4" up
}

key() { "$WSE_BIN" genkey; }
pub() { echo "$1" | "$WSE_BIN" pubkey; }

topo_up() {
    topo_down
    mkdir -p "$WSE_DIR"
    local ns
    for ns in $WSE_NS; do
        ip netns add "$ns"
        in_ns "$ns" ip link set lo up
        in_ns "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    done
    # The internet: one bridge, the whoami servers, the WANs of router and upstreams.
    in_ns wse-net ip link add wse-br type bridge
    in_ns wse-net ip link set wse-br up
    in_ns wse-net ip addr add 198.51.100.1/24 dev wse-br
    in_ns wse-net ip addr add $SRV_A4/24 dev wse-br
    in_ns wse-net ip addr add $SRV_B4/24 dev wse-br
    in_ns wse-net ip addr add fd00:5e::1/64 dev wse-br nodad
    in_ns wse-net ip addr add $SRV_A6/64 dev wse-br nodad
    local pair
    for pair in "wse-router wse-rwan $WAN4 $WAN6" "wse-up1 wse-up1v $UP1_EXIT4 $UP1_EXIT6" \
                "wse-up2 wse-up2v $UP2_EXIT4 $UP2_EXIT6"; do
        set -- $pair
        veth "$1" "$2" wse-net "$2-n"
        in_ns wse-net ip link set "$2-n" master wse-br
        in_ns "$1" ip addr add "$3/24" dev "$2"
        in_ns "$1" ip addr add "$4/64" dev "$2" nodad
        in_ns "$1" ip route add default via 198.51.100.1
        in_ns "$1" ip -6 route add default via fd00:5e::1
        in_ns "$1" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    done
    # whoami: answers each TCP connection with the source address it saw.
    local port
    for port in 8080 8081; do
        in_ns wse-net socat TCP4-LISTEN:$port,fork,reuseaddr 'SYSTEM:echo $SOCAT_PEERADDR' \
            >/dev/null 2>&1 &
        in_ns wse-net socat TCP6-LISTEN:$port,fork,reuseaddr,ipv6only=1 'SYSTEM:echo $SOCAT_PEERADDR' \
            >/dev/null 2>&1 &
    done
    for port in 8080 8081; do netns_wait_listen wse-net $port; done

    # Keys.
    RK=$(key); U1K=$(key); U2K=$(key); S1K=$(key); S2K=$(key)
    C1K=$(key); C2K=$(key); C3K=$(key)

    # The two upstream WireGuard servers, each NATting its tunnel out to the internet.
    local n k rk addr6
    for n in 1 2; do
        k=S${n}K; rk=U${n}K
        wg_iface wse-up$n wse-u${n}s
        printf '%s' "${!k}" > "$WSE_DIR/s$n.key"
        in_ns wse-up$n wg set wse-u${n}s private-key "$WSE_DIR/s$n.key" listen-port 51820 \
            peer "$(pub "${!rk}")" allowed-ips 10.6$((3 + n)).0.2/32,fd64:$n::2/128
        in_ns wse-up$n ip addr add 10.6$((3 + n)).0.1/24 dev wse-u${n}s
        in_ns wse-up$n ip addr add fd64:$n::1/64 dev wse-u${n}s nodad
        in_ns wse-up$n ip link set wse-u${n}s up
        in_ns wse-up$n nft -f - <<EOF
table inet wse_nat {
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "wse-up${n}v" masquerade
    }
}
EOF
    done

    # The router: its WAN NAT (what fw4 does on OpenWrt) in a table of the harness.
    in_ns wse-router nft -f - <<'EOF'
table inet wse_wan {
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "wse-rwan" masquerade
    }
}
EOF
    # Clients: an underlay link to the router each, and a WireGuard tunnel over it.
    local c
    for c in 1 2 3; do
        veth wse-c$c wse-c${c}v wse-router wse-c${c}v-r
        in_ns wse-router ip addr add 10.99.$c.1/24 dev wse-c${c}v-r
        in_ns wse-c$c ip addr add 10.99.$c.2/24 dev wse-c${c}v
        k=C${c}K
        wg_iface wse-c$c wse-c${c}w
        printf '%s' "${!k}" > "$WSE_DIR/c$c.key"
        in_ns wse-c$c wg set wse-c${c}w private-key "$WSE_DIR/c$c.key" \
            peer "$(pub "$RK")" endpoint 10.99.$c.1:51820 allowed-ips 0.0.0.0/0,::/0 \
            persistent-keepalive 5
        in_ns wse-c$c ip addr add 10.8.0.$((c + 1))/32 dev wse-c${c}w
        in_ns wse-c$c ip addr add fd42:8::$((c + 1))/128 dev wse-c${c}w nodad
        in_ns wse-c$c ip link set wse-c${c}w up
        # Only the test destinations go through the tunnel.
        in_ns wse-c$c ip route add 198.51.100.0/24 dev wse-c${c}w
        in_ns wse-c$c ip route add 10.8.0.0/24 dev wse-c${c}w
        in_ns wse-c$c ip -6 route add fd00:5e::/64 dev wse-c${c}w
    done
    write_config
}

# The wgsplit config of the router. $1: alice's action for server A (default
# proxy); $2: the file written (default the daemon's config).
write_config() {
    local alice_a=${1:-proxy}
    cat > "${2:-$WSE_DIR/wgsplit.conf}" <<EOF
config server 'server'
	option interface 'wse-wg0'
	option listen_port '51820'
	option address '10.8.0.1/24'
	option address6 'fd42:8::1/64'
	option private_key '$RK'
	option backend 'userspace'
	option dns_port '5353'

config upstream 'up1'
	option interface 'wse-u1'
	option private_key '$U1K'
	list address '10.64.0.2/32'
	list address 'fd64:1::2/128'
	option public_key '$(pub "$S1K")'
	option endpoint '$UP1_EXIT4:51820'
	option keepalive '5'

config upstream 'up2'
	option interface 'wse-u2'
	option private_key '$U2K'
	list address '10.65.0.2/32'
	list address 'fd64:2::2/128'
	option public_key '$(pub "$S2K")'
	option endpoint '$UP2_EXIT4:51820'
	option keepalive '5'

# alice: server A through up1, port 8081 through up2, the rest direct.
config client 'alice'
	option private_key '$C1K'
	list address '10.8.0.2/32'
	list address 'fd42:8::2/128'
	option upstream 'up1'
	option default 'direct'

config rule
	option client 'alice'
	option action '$alice_a'
	list cidr '$SRV_A4'
	list cidr '$SRV_A6'

config rule
	option client 'alice'
	option action 'proxy'
	option upstream 'up2'
	list port 'tcp:8081'

# bob: everything through up2 but server B.
config client 'bob'
	option private_key '$C2K'
	list address '10.8.0.3/32'
	list address 'fd42:8::3/128'
	option upstream 'up2'
	option default 'proxy'

config rule
	option client 'bob'
	option action 'direct'
	list cidr '$SRV_B4/32'

# carol: no upstream at all.
config client 'carol'
	option private_key '$C3K'
	list address '10.8.0.4/32'
	list address 'fd42:8::4/128'
EOF
}

# whoami CLIENT_NS HOST PORT → the source address the server saw ("-" if nothing).
whoami() {
    local host=$2
    case $host in *:*) host="[$host]" ;; esac
    local out
    out=$(in_ns "$1" timeout 4 socat -T 3 - "TCP:$host:$3,connect-timeout=3" </dev/null 2>/dev/null | tr -d '\r\n[]')
    echo "${out:--}"
}

# Waits until a client's tunnel carries traffic (the first handshake).
wait_tunnel() {
    local i
    for i in $(seq 40); do
        [ "$(whoami "$1" $SRV_B4 8080)" != "-" ] && return 0
        sleep 0.25
    done
    return 1
}
