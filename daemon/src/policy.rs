//! The compiled policy: a valid config turned into typed, per-client ordered rules
//! with their targets, marks and kernel object names. The planner, the resolver
//! and `explain` all read this one form, so they can never disagree.

pub mod dns;

use std::collections::BTreeSet;

use ipnet::IpNet;

use crate::{
    config::{
        Action, Backend, Client, Config, ListFormat, OnDown,
        types::{
            DomainPattern, PortSpec, parse_cidr, parse_expiry, parse_geoip,
            parse_interface_address, parse_key,
        },
    },
    util::keys,
};

/// Where a rule or default sends traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// Through `config.upstreams[i]`.
    Upstream(usize),
    Direct,
    Block,
}

impl Target {
    /// The one numbering of targets: direct 0, block 1, upstream `i` at `2 + i`
    /// (marks, the mark chains and their names are laid out by it).
    pub fn index(self) -> usize {
        match self {
            Target::Direct => 0,
            Target::Block => 1,
            Target::Upstream(i) => 2 + i,
        }
    }

    /// Every target of a config with `upstreams` upstreams, in index order.
    pub fn all(upstreams: usize) -> impl Iterator<Item = Target> {
        [Target::Direct, Target::Block]
            .into_iter()
            .chain((0..upstreams).map(Target::Upstream))
    }

    /// The resolver's routes (the ways a name can be resolved): direct 0,
    /// upstream `i` at `1 + i`; a block is resolved nowhere.
    pub fn route(self) -> Option<usize> {
        match self {
            Target::Direct => Some(0),
            Target::Upstream(i) => Some(1 + i),
            Target::Block => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CompiledRule {
    /// Position among the client's enabled rules (0-based): the evaluation order.
    pub pos: usize,
    /// Index in `config.rules`.
    pub index: usize,
    /// The rule's UCI section (`name`, or `@rule[index]`), for messages.
    pub section: String,
    pub action: Action,
    pub target: Target,
    pub domains: Vec<DomainPattern>,
    /// Names of `config list` sections (their entries are loaded by the resolver
    /// for domain lists and by the planner for CIDR lists).
    pub lists: Vec<String>,
    pub cidrs: Vec<IpNet>,
    pub ports: Vec<PortSpec>,
    /// (negated, lowercase country code).
    pub geoip: Vec<(bool, String)>,
}

impl CompiledRule {
    /// Does this rule learn destinations from DNS answers (domains or domain
    /// lists, as `domain_lists` names them)?
    pub fn has_dns(&self, domain_lists: &BTreeSet<String>) -> bool {
        !self.domains.is_empty() || self.lists.iter().any(|l| domain_lists.contains(l))
    }

    /// Does the rule have any destination match (otherwise only ports match)?
    pub fn has_destination(&self) -> bool {
        !(self.domains.is_empty()
            && self.lists.is_empty()
            && self.cidrs.is_empty()
            && self.geoip.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClientPolicy {
    pub name: String,
    /// Index in `config.clients`.
    pub index: usize,
    /// The WireGuard key (derived when the config holds the private key).
    pub public_key: Option<[u8; 32]>,
    pub preshared_key: Option<[u8; 32]>,
    pub addresses: Vec<IpNet>,
    /// Enabled and not expired: only active clients are peers and get routing.
    pub active: bool,
    pub expired: bool,
    pub default: Target,
    pub rules: Vec<CompiledRule>,
    /// The DNS bypass guard is on: it has domain rules and `dns_guard` is not 0.
    pub dns_guard: bool,
}

/// The server interface, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerPolicy {
    pub interface: String,
    pub private_key: [u8; 32],
    pub listen_port: u16,
    pub mtu: u16,
    /// Interface addresses (v4 and v6), with their prefixes.
    pub addresses: Vec<IpNet>,
    pub backend: Backend,
    pub rule_priority: u32,
    pub dns_port: u16,
}

/// One upstream tunnel, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamPolicy {
    pub name: String,
    pub interface: String,
    pub enabled: bool,
    /// Its routing table.
    pub table: u32,
    pub private_key: [u8; 32],
    pub public_key: [u8; 32],
    pub preshared_key: Option<[u8; 32]>,
    /// `host:port` as configured (host names are resolved at run time).
    pub endpoint: Option<String>,
    pub mtu: u16,
    pub addresses: Vec<IpNet>,
    /// Networks routed into the tunnel (truncated, sorted).
    pub allowed_ips: Vec<IpNet>,
    /// Persistent keepalive, seconds (`None`: off).
    pub keepalive: Option<u16>,
    pub on_down: OnDown,
    /// The failover upstream, by index.
    pub failover: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub server: ServerPolicy,
    pub upstreams: Vec<UpstreamPolicy>,
    pub clients: Vec<ClientPolicy>,
    /// Domain-carrying lists (every format but `cidr`), by name: a rule naming
    /// one learns destinations from DNS.
    pub domain_lists: BTreeSet<String>,
    pub marks: Marks,
    /// What the resolver reads besides the rules (`dns.rs`).
    pub dns: dns::DnsPolicy,
    /// `server.doh_list`'s `cidr` lists, by name: the DoH addresses the bypass
    /// guard drops (none, or none readable: the shipped ones, `plan/guard.rs`).
    pub doh_cidr_lists: Vec<String>,
}

/// The firewall marks wgsplit owns, inside `mask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marks {
    pub mask: u32,
}

impl Marks {
    pub fn new(mask: u32) -> Self {
        Self { mask }
    }

    fn value(&self, n: u32) -> u32 {
        (n << self.mask.trailing_zeros()) & self.mask
    }

    /// The mark a target's connections carry. Direct and block are marked too, so
    /// a connection's decision is kept in conntrack whatever it was.
    pub fn of(&self, target: Target) -> u32 {
        // Mark 0 is "no decision yet": every target's mark is its index + 1.
        self.value(target.index() as u32 + 1)
    }
}

impl Policy {
    pub fn client(&self, name: &str) -> Option<&ClientPolicy> {
        self.clients.iter().find(|c| c.name == name)
    }

    /// The active client that owns a source address.
    pub fn client_by_addr(&self, addr: std::net::IpAddr) -> Option<&ClientPolicy> {
        self.clients
            .iter()
            .find(|c| c.active && c.addresses.iter().any(|n| n.contains(&addr)))
    }
}

/// Compiles a config that passed validation. `now` is Unix seconds (for expiry).
pub fn compile(config: &Config, now: i64) -> Policy {
    let upstream_index = |name: &str| config.upstreams.iter().position(|u| u.name == name);
    // Each client's enabled rules, in config order: one pass over the rules
    // instead of one per client.
    let mut rules_of: std::collections::HashMap<&str, Vec<usize>> = Default::default();
    for (i, r) in config.rules.iter().enumerate() {
        if r.enabled_or_default() {
            rules_of.entry(r.client.as_str()).or_default().push(i);
        }
    }
    let clients = config
        .clients
        .iter()
        .enumerate()
        .map(|(index, c)| {
            let client_upstream = c.upstream.as_deref().and_then(upstream_index);
            let target = |action: Action, upstream: Option<usize>| match action {
                Action::Direct => Target::Direct,
                Action::Block => Target::Block,
                // Validation guarantees a proxy rule has an upstream.
                Action::Proxy => upstream.map_or(Target::Block, Target::Upstream),
            };
            let rules: Vec<CompiledRule> = rules_of
                .get(c.name.as_str())
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .map(|&index| (index, &config.rules[index]))
                .enumerate()
                .map(|(pos, (index, r))| CompiledRule {
                    pos,
                    index,
                    section: r.name.clone().unwrap_or_else(|| format!("@rule[{index}]")),
                    action: r.action,
                    target: target(
                        r.action,
                        r.upstream
                            .as_deref()
                            .and_then(upstream_index)
                            .or(client_upstream),
                    ),
                    domains: r
                        .domain
                        .iter()
                        .filter_map(|d| DomainPattern::parse(d).ok())
                        .collect(),
                    lists: r.list.clone(),
                    cidrs: r.cidr.iter().filter_map(|x| parse_cidr(x).ok()).collect(),
                    ports: r
                        .port
                        .iter()
                        .filter_map(|p| PortSpec::parse(p).ok())
                        .collect(),
                    geoip: r.geoip.iter().filter_map(|g| parse_geoip(g).ok()).collect(),
                })
                .collect();
            let expired = client_expired(c, now);
            ClientPolicy {
                name: c.name.clone(),
                index,
                public_key: match (&c.public_key, &c.private_key) {
                    (Some(k), _) => key(Some(k)),
                    (None, Some(k)) => key(Some(k)).map(|p| keys::public_from_private(&p)),
                    _ => None,
                },
                preshared_key: key(c.preshared_key.as_deref()),
                addresses: c
                    .address
                    .iter()
                    .filter_map(|a| parse_cidr(a).ok())
                    .collect(),
                active: client_active(c, now),
                expired,
                default: target(c.default_or_default(), client_upstream),
                dns_guard: c.dns_guard != Some(false)
                    && rules.iter().any(|r| {
                        !r.domains.is_empty()
                            || r.lists.iter().any(|l| {
                                config.lists.iter().any(|x| {
                                    &x.name == l && x.format.unwrap_or_default() != ListFormat::Cidr
                                })
                            })
                    }),
                rules,
            }
        })
        .collect();
    Policy {
        server: server(config),
        upstreams: upstreams(config),
        clients,
        domain_lists: config
            .lists
            .iter()
            .filter(|l| l.format.unwrap_or_default() != ListFormat::Cidr)
            .map(|l| l.name.clone())
            .collect(),
        marks: Marks::new(config.server.fwmark_mask_or_default()),
        dns: dns::compile(config),
        doh_cidr_lists: dns::doh_lists(config, true)
            .into_iter()
            .map(|l| l.name.clone())
            .collect(),
    }
}

fn key(k: Option<&str>) -> Option<[u8; 32]> {
    k.and_then(|k| parse_key(k).ok())
}

/// The server, typed (a valid config: every field parses).
fn server(config: &Config) -> ServerPolicy {
    let s = &config.server;
    ServerPolicy {
        interface: s.interface_or_default().to_string(),
        private_key: key(s.private_key.as_deref()).unwrap_or_default(),
        listen_port: s.listen_port_or_default(),
        mtu: s.mtu_or_default(),
        addresses: s
            .address
            .iter()
            .chain(&s.address6)
            .filter_map(|a| parse_interface_address(a).ok())
            .collect(),
        backend: s.backend.unwrap_or_default(),
        rule_priority: s.rule_priority_or_default(),
        dns_port: s.dns_port_or_default(),
    }
}

/// The upstreams, typed, in config order (an upstream's index is its place).
/// Health needs only these, not the whole policy.
pub fn upstreams(config: &Config) -> Vec<UpstreamPolicy> {
    let base = config.server.table_base_or_default();
    config
        .upstreams
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let mut allowed_ips: Vec<IpNet> = u
                .allowed_ips_or_default()
                .iter()
                .filter_map(|a| parse_cidr(a).ok())
                .map(|n| n.trunc())
                .collect();
            allowed_ips.sort();
            let keepalive = u.keepalive_or_default();
            UpstreamPolicy {
                name: u.name.clone(),
                interface: u.interface_or_default(),
                enabled: u.enabled_or_default(),
                table: u.table.unwrap_or(base + i as u32),
                private_key: key(u.private_key.as_deref()).unwrap_or_default(),
                public_key: key(u.public_key.as_deref()).unwrap_or_default(),
                preshared_key: key(u.preshared_key.as_deref()),
                endpoint: u.endpoint.clone(),
                mtu: u.mtu_or_default(),
                addresses: u
                    .address
                    .iter()
                    .filter_map(|a| parse_interface_address(a).ok())
                    .collect(),
                allowed_ips,
                keepalive: (keepalive != 0).then_some(keepalive),
                on_down: u.on_down_or_default(),
                failover: u
                    .failover
                    .as_deref()
                    .and_then(|f| config.upstreams.iter().position(|x| x.name == f)),
            }
        })
        .collect()
}

/// Name of the nft set that holds the addresses DNS answered for a client's rule
/// (`v6` picks the IPv6 twin). The resolver inserts into it; the planner creates it.
pub fn dns_set_name(client: &str, pos: usize, v6: bool) -> String {
    format!("{client}_r{pos}_dns{}", if v6 { 6 } else { 4 })
}

/// The shared interval set of a country, `geo_<cc>_4` / `geo_<cc>_6`: created by
/// the planner, filled by the rule-sources loader.
pub fn geo_set_name(cc: &str, v6: bool) -> String {
    format!("geo_{cc}_{}", if v6 { 6 } else { 4 })
}

/// Has the client's `expires` passed at `now`? (An unreadable date never
/// expires: validation refuses it before it gets here.)
pub fn client_expired(c: &Client, now: i64) -> bool {
    c.expires
        .as_deref()
        .and_then(|e| parse_expiry(e).ok())
        .is_some_and(|t| t < now)
}

/// Is the client active at `now`: enabled and not expired? The one place this
/// is decided (the policy, the daemon's rebuild check, the CLI and the API).
pub fn client_active(c: &Client, now: i64) -> bool {
    c.enabled_or_default() && !client_expired(c, now)
}

/// Where an upstream's traffic goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamRoute {
    /// Through its own tunnel.
    Own,
    /// Nowhere: the kill switch (its own table, whose tunnel is dead or absent).
    Block,
    /// Out the WAN (`on_down direct`).
    Direct,
    /// Through the failover upstream, by index.
    Failover(usize),
}

/// Where upstream `i`'s traffic goes, given which upstreams are up: its own
/// tunnel while up; when down (or disabled), its `on_down`. A failover that is
/// itself down, disabled or missing holds the kill switch: never the WAN. The
/// one place this is decided: the planner's ip rules and the health monitor's
/// report both ask it.
pub fn upstream_route(
    upstreams: &[UpstreamPolicy],
    i: usize,
    up: &dyn Fn(usize) -> bool,
) -> UpstreamRoute {
    let Some(u) = upstreams.get(i) else {
        return UpstreamRoute::Block;
    };
    if up(i) {
        return UpstreamRoute::Own;
    }
    match u.on_down {
        OnDown::Block => UpstreamRoute::Block,
        OnDown::Direct => UpstreamRoute::Direct,
        OnDown::Failover => match u.failover {
            Some(f) if f != i && up(f) => UpstreamRoute::Failover(f),
            _ => UpstreamRoute::Block,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_the_example() {
        let text = include_str!("../../examples/wgsplit.conf");
        let config = crate::config::parse_valid(text).unwrap();
        let p = compile(&config, 0);
        let alice = p.client("alice").unwrap();
        assert_eq!(alice.rules.len(), 2);
        assert_eq!(alice.rules[0].target, Target::Upstream(0));
        assert_eq!(alice.rules[1].target, Target::Block);
        assert_eq!(alice.default, Target::Direct);
        assert!(alice.rules[0].has_dns(&p.domain_lists));
        let bob = p.client("bob").unwrap();
        assert_eq!(bob.default, Target::Upstream(1));
        assert_eq!(bob.rules[0].pos, 0);
        let carol = p.client("carol").unwrap();
        assert!(carol.active);
        assert!(
            !compile(&config, 2_000_000_000)
                .client("carol")
                .unwrap()
                .active
        );
        assert_eq!(
            p.client_by_addr("10.8.0.3".parse().unwrap()).unwrap().name,
            "bob"
        );
        let m = Marks::new(0xff00_0000);
        assert_eq!(m.of(Target::Direct), 0x0100_0000);
        assert_eq!(m.of(Target::Upstream(0)), 0x0300_0000);
        assert_eq!(dns_set_name("alice", 0, true), "alice_r0_dns6");
    }

    #[test]
    fn one_numbering_of_targets() {
        for (k, t) in Target::all(3).enumerate() {
            assert_eq!(t.index(), k, "{t:?}");
            assert_eq!(t.route(), (t != Target::Block).then(|| k.saturating_sub(1)));
        }
        let m = Marks::new(0xff00_0000);
        let marks: Vec<u32> = Target::all(3).map(|t| m.of(t)).collect();
        assert_eq!(marks[0], 0x0100_0000);
        assert!(marks.windows(2).all(|w| w[0] < w[1]), "distinct, in order");
    }
}
