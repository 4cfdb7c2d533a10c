//! Address allocation: the lowest free host address of the server's pools, so
//! freed addresses are reused and two clients never share one.

use std::{
    collections::HashSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use ipnet::IpNet;

use crate::config::{
    Config, Problem,
    types::{net_range, parse_cidr, parse_interface_address},
};

/// Addresses in use in one family: single hosts in a set, wider client
/// networks as ranges.
struct Used {
    hosts: HashSet<u128>,
    ranges: Vec<(u128, u128)>,
}

impl Used {
    fn of(config: &Config, v6: bool, server: Option<IpNet>) -> Self {
        let mut used = Self {
            hosts: HashSet::new(),
            ranges: Vec::new(),
        };
        let nets = config
            .clients
            .iter()
            .flat_map(|c| c.address.iter())
            .filter_map(|a| parse_cidr(a).ok())
            .chain(server.map(|s| IpNet::from(s.addr())));
        for net in nets.filter(|n| n.addr().is_ipv6() == v6) {
            let (a, b) = net_range(&net);
            if a == b {
                used.hosts.insert(a);
            } else {
                used.ranges.push((a, b));
            }
        }
        used
    }

    fn contains(&self, v: u128) -> bool {
        self.hosts.contains(&v) || self.ranges.iter().any(|&(a, b)| (a..=b).contains(&v))
    }
}

/// The lowest free host address of `pool` (IPv4 skips the network and broadcast
/// addresses), trying `prefer` first.
fn next_free(pool: IpNet, used: &Used, prefer: Option<u128>) -> Option<u128> {
    let (first, last) = net_range(&pool.trunc());
    let (first, last) = match pool {
        IpNet::V4(_) if last - first >= 2 => (first + 1, last - 1),
        IpNet::V4(_) => return None,
        IpNet::V6(_) => (first + 1, last),
    };
    if let Some(p) = prefer.filter(|p| (first..=last).contains(p) && !used.contains(*p)) {
        return Some(p);
    }
    // A scan, bounded by the pool and by the number of used addresses + 1 per
    // range: the first gap is found after at most |used| steps.
    let mut v = first;
    while v <= last {
        if !used.contains(v) {
            return Some(v);
        }
        v += 1;
    }
    None
}

/// The next client's addresses: one IPv4 `/32` from `server.address`, and one
/// IPv6 `/128` from `server.address6` when set (the same host number when free,
/// so `10.8.0.7` pairs with `fd42:8::7`).
pub fn allocate(config: &Config) -> Result<Vec<String>, Problem> {
    let s = &config.server;
    let pool4 = s
        .address
        .as_deref()
        .and_then(|a| parse_interface_address(a).ok())
        .ok_or_else(|| Problem::new("server.address", "required to allocate client addresses"))?;
    let v4 = next_free(pool4, &Used::of(config, false, Some(pool4)), None).ok_or_else(|| {
        Problem::new(
            "server.address",
            format!(
                "the pool {} is full; widen its prefix or give --address",
                pool4.trunc()
            ),
        )
    })?;
    let mut out = vec![format!("{}/32", Ipv4Addr::from(v4 as u32))];
    if let Some(pool6) = s
        .address6
        .as_deref()
        .and_then(|a| parse_interface_address(a).ok())
    {
        let host = v4 - net_range(&pool4.trunc()).0;
        let prefer = net_range(&pool6.trunc()).0 + host;
        let v6 = next_free(pool6, &Used::of(config, true, Some(pool6)), Some(prefer))
            .ok_or_else(|| Problem::new("server.address6", "the IPv6 pool is full"))?;
        out.push(format!("{}/128", Ipv6Addr::from(v6)));
    }
    Ok(out)
}

/// Is `addr` one of the server's own or a client's?
pub fn in_use(config: &Config, addr: IpAddr) -> bool {
    let v6 = addr.is_ipv6();
    let server = if v6 {
        config.server.address6.as_deref()
    } else {
        config.server.address.as_deref()
    }
    .and_then(|a| parse_interface_address(a).ok());
    let v = net_range(&IpNet::from(addr)).0;
    Used::of(config, v6, server).contains(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Client;

    fn server(addr: &str, addr6: Option<&str>) -> Config {
        let mut c = Config::default();
        c.server.address = Some(addr.into());
        c.server.address6 = addr6.map(Into::into);
        c
    }

    fn client(c: &mut Config, addrs: &[&str]) {
        c.clients.push(Client {
            name: format!("c{}", c.clients.len()),
            address: addrs.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        });
    }

    #[test]
    fn lowest_free_and_skips_server_and_ranges() {
        let mut c = server("10.8.0.1/24", None);
        assert_eq!(allocate(&c).unwrap(), vec!["10.8.0.2/32"]);
        client(&mut c, &["10.8.0.2/32"]);
        client(&mut c, &["10.8.0.4/30"]); // .4-.7
        client(&mut c, &["10.8.0.3"]);
        assert_eq!(allocate(&c).unwrap(), vec!["10.8.0.8/32"]);
        assert!(in_use(&c, "10.8.0.6".parse().unwrap()));
        assert!(in_use(&c, "10.8.0.1".parse().unwrap()));
        assert!(!in_use(&c, "10.8.0.9".parse().unwrap()));
        // The server need not be .1.
        let c = server("10.8.0.2/24", None);
        assert_eq!(allocate(&c).unwrap(), vec!["10.8.0.1/32"]);
    }

    #[test]
    fn full_pool_names_the_server_address() {
        let mut c = server("10.8.0.1/30", None); // hosts .1 .2
        client(&mut c, &["10.8.0.2/32"]);
        let p = allocate(&c).unwrap_err();
        assert_eq!(p.path, "server.address");
        assert!(p.message.contains("full"));
        assert!(allocate(&server("10.8.0.1/32", None)).is_err());
    }

    #[test]
    fn ipv6_follows_the_host_number() {
        let mut c = server("10.8.0.1/24", Some("fd42:8::1/64"));
        client(&mut c, &["10.8.0.2/32", "fd42:8::9/128"]);
        assert_eq!(allocate(&c).unwrap(), vec!["10.8.0.3/32", "fd42:8::3/128"]);
        client(&mut c, &["10.8.0.3/32", "fd42:8::4/128"]);
        // .4's twin is taken: the lowest free IPv6 instead.
        assert_eq!(allocate(&c).unwrap(), vec!["10.8.0.4/32", "fd42:8::2/128"]);
    }

    #[test]
    fn thousand_clients_never_collide() {
        let mut c = server("10.8.0.1/16", Some("fd42:8::1/64"));
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let a = allocate(&c).unwrap();
            for x in &a {
                assert!(seen.insert(x.clone()), "{x} twice");
            }
            let refs: Vec<&str> = a.iter().map(String::as_str).collect();
            client(&mut c, &refs);
        }
    }
}
