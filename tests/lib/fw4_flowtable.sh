# shellcheck shell=sh
# fw4's "software flow offloading" as the tests build it on a router: a
# flowtable over the given devices and `flow add` for every TCP and UDP flow in
# the forward hook (what fw4 writes when offloading is on), with a counter
# ahead of it that counts the packets of MATCH still taking the slow path.
# POSIX sh: sourced by tests/engine/offload.sh (netns) and, copied into the
# image, by tests/image/vm/offload.sh (busybox, in QEMU).
#
#   fw4_flowtable TABLE COUNTER MATCH DEVICE...    prints the nft script
fw4_flowtable() {
    _ft_table=$1 _ft_counter=$2 _ft_match=$3
    shift 3
    _ft_devs=$(printf '"%s", ' "$@")
    _ft_devs=${_ft_devs%, }
    cat <<NFT
table inet $_ft_table {
    counter $_ft_counter {}
    flowtable ft { hook ingress priority 0; devices = { $_ft_devs }; }
    chain forward {
        type filter hook forward priority filter; policy accept;
        $_ft_match counter name $_ft_counter
        meta l4proto { tcp, udp } flow add @ft
    }
}
NFT
}
