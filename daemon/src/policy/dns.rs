//! What the resolver reads besides the clients' rules: where it listens, whom
//! it asks each way, how it answers a block, the bounds of the TTLs it gives
//! the kernel's sets, and which domain lists it loads. Compiled once with the
//! rest of the policy, so the resolver never reads (or re-parses) the config.

use std::net::{IpAddr, SocketAddr};

pub use crate::config::{BlockAnswer, List as DomainListSource, types::DomainPattern};
use crate::config::{
    Config, ListFormat,
    types::{parse_interface_address, parse_resolver},
};

#[derive(Debug, Clone, PartialEq)]
pub struct DnsPolicy {
    /// `server.dns_server`: the resolvers direct names are asked of (empty:
    /// the system's, which the resolver reads from resolv.conf at run time).
    pub direct_servers: Vec<SocketAddr>,
    /// Upstream `i`'s own `dns` resolvers, by upstream index (empty: the
    /// direct ones, asked through its tunnel all the same).
    pub upstream_servers: Vec<Vec<SocketAddr>>,
    /// Where the resolver listens: every server address, then every
    /// `dns_listen` address, at `dns_port` (consecutive repeats dropped).
    pub listen: Vec<SocketAddr>,
    /// The `dns_listen` addresses: hosts on their networks may ask too.
    pub listen_networks: Vec<IpAddr>,
    /// Bounds of the timeouts the resolver gives set elements, seconds
    /// (`ttl_max` is at least `ttl_min`).
    pub ttl_min: u32,
    pub ttl_max: u32,
    pub block_answer: BlockAnswer,
    /// The domain lists (every format but `cidr`) some rule names, in config
    /// order: the ones the resolver loads.
    pub lists: Vec<DomainListSource>,
    /// `server.doh_list`'s domain lists: the DoH names the bypass guard
    /// refuses (empty, or none readable: the shipped ones, `dns/bypass.rs`).
    pub doh_lists: Vec<DomainListSource>,
}

/// The resolver's part of a config that passed validation (every address
/// parses: an entry that does not is left out).
pub fn compile(config: &Config) -> DnsPolicy {
    let s = &config.server;
    let servers = |texts: &[String]| -> Vec<SocketAddr> {
        texts
            .iter()
            .filter_map(|t| parse_resolver(t).ok())
            .collect()
    };
    let port = s.dns_port_or_default();
    let listen_networks: Vec<IpAddr> = s
        .dns_listen
        .iter()
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .collect();
    let mut listen: Vec<SocketAddr> = [s.address.as_deref(), s.address6.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(|a| parse_interface_address(a).ok())
        .map(|n| SocketAddr::new(n.addr(), port))
        .chain(listen_networks.iter().map(|&ip| SocketAddr::new(ip, port)))
        .collect();
    listen.dedup();
    DnsPolicy {
        direct_servers: servers(&s.dns_server),
        upstream_servers: config.upstreams.iter().map(|u| servers(&u.dns)).collect(),
        listen,
        listen_networks,
        ttl_min: s.ttl_min_or_default(),
        ttl_max: s.ttl_max_or_default().max(s.ttl_min_or_default()),
        block_answer: s.block_answer.unwrap_or_default(),
        // Named by any rule, enabled or not (as the resolver always loaded them).
        lists: config
            .lists
            .iter()
            .filter(|l| {
                l.format.unwrap_or_default() != ListFormat::Cidr
                    && config.rules.iter().any(|r| r.list.contains(&l.name))
            })
            .cloned()
            .collect(),
        doh_lists: doh_lists(config, false).into_iter().cloned().collect(),
    }
}

/// The lists `server.doh_list` names, of the domain formats (`cidr`: false)
/// or the `cidr` format (true), in the order named.
pub fn doh_lists(config: &Config, cidr: bool) -> Vec<&DomainListSource> {
    config
        .server
        .doh_list
        .iter()
        .filter_map(|n| config.lists.iter().find(|l| &l.name == n))
        .filter(|l| (l.format.unwrap_or_default() == ListFormat::Cidr) == cidr)
        .collect()
}

/// A policy from config text, for the tests of the modules that read only
/// the policy (the resolver's).
#[cfg(test)]
pub fn from_text(text: &str) -> super::Policy {
    let config = crate::config::parse_valid(text).unwrap_or_else(|e| panic!("{e}"));
    super::compile(&config, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resolvers_inputs_compiled() {
        let text = "config server 'server'
	option address '10.8.0.1/24'
	option address6 'fd00::1/64'
	option private_key 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='
	option dns_port '5353'
	list dns_listen '192.168.1.1'
	list dns_server '10.99.0.53'
	list dns_server '[::1]:54'
	option ttl_min '30'
	option ttl_max '300'
	option block_answer 'null'
config upstream 'us'
	option private_key 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='
	list address '10.64.0.2/32'
	option public_key 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='
	option endpoint '192.0.2.1:51820'
	list dns '10.64.0.1:5300'
config upstream 'eu'
	option private_key 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='
	list address '10.65.0.2/32'
	option public_key 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='
	option endpoint '192.0.2.2:51820'
config client 'alice'
	option public_key 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='
	list address '10.8.0.2/32'
config rule
	option client 'alice'
	option action 'direct'
	option enabled '0'
	list list 'named'
config list 'named'
	option path '/tmp/wgsplit/named.txt'
config list 'unnamed'
	option path '/tmp/wgsplit/unnamed.txt'
config list 'nets'
	option path '/tmp/wgsplit/nets.txt'
	option format 'cidr'
";
        let config = crate::config::parse_valid(text).unwrap_or_else(|e| panic!("{e}"));
        let d = compile(&config);
        let addrs =
            |v: &[&str]| -> Vec<SocketAddr> { v.iter().map(|a| a.parse().unwrap()).collect() };
        assert_eq!(d.direct_servers, addrs(&["10.99.0.53:53", "[::1]:54"]));
        assert_eq!(d.upstream_servers, vec![addrs(&["10.64.0.1:5300"]), vec![]]);
        assert_eq!(
            d.listen,
            addrs(&["10.8.0.1:5353", "[fd00::1]:5353", "192.168.1.1:5353"])
        );
        assert_eq!(
            d.listen_networks,
            vec!["192.168.1.1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!((d.ttl_min, d.ttl_max), (30, 300));
        assert_eq!(d.block_answer, BlockAnswer::Null);
        let names: Vec<&str> = d.lists.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["named"], "named by a rule, not cidr");
    }
}
