# shellcheck shell=bash
# The resolver benches' one-host router (tests/bench/compare.sh, miss_allocs.sh):
# in network namespace NS (already made), the router's address 10.8.0.1, the
# client alice 10.8.0.2 and the stub upstream 10.99.0.53 all on lo; the nft
# sets alice's list rule fills; in DIR the list (bench.example, so every
# *.bench.example answer goes into the set) and the config DIR/dns.conf.
bench_dns_router() {
    local ns=$1 dir=$2
    ip netns exec "$ns" ip link set lo up
    for a in 10.8.0.1/32 10.8.0.2/32 10.99.0.53/32; do ip netns exec "$ns" ip addr add $a dev lo; done
    ip netns exec "$ns" nft -f - <<'NFT'
table inet wgsplit {
    set alice_r0_dns4 { type ipv4_addr; flags timeout; }
    set alice_r0_dns6 { type ipv6_addr; flags timeout; }
}
NFT
    echo bench.example > "$dir/list.txt"
    cat > "$dir/dns.conf" <<CONF
config server 'server'
	option address '10.8.0.1/24'
	option private_key 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='
	list dns_server '10.99.0.53'
config client 'alice'
	option public_key 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='
	list address '10.8.0.2/32'
config rule
	option client 'alice'
	option action 'direct'
	list list 'bench'
config list 'bench'
	option path '$dir/list.txt'
CONF
}
