//! Address arithmetic: a network as a range of integers (interval sets, merges).

use std::net::Ipv4Addr;

use ipnet::IpNet;

/// First and last address of a network, as u128 (IPv4 mapped into the low bits).
pub fn net_range(net: &IpNet) -> (u128, u128) {
    match net {
        IpNet::V4(n) => (
            u32::from(n.network()) as u128,
            u32::from(n.broadcast()) as u128,
        ),
        IpNet::V6(n) => (u128::from(n.network()), u128::from(n.broadcast())),
    }
}

pub fn ipv4_of(v: u128) -> Ipv4Addr {
    Ipv4Addr::from(v as u32)
}
