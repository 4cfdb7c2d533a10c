//! Desired kernel state, computed from a valid config and a few observed inputs
//! (upstream health, resolved endpoints, CIDR list contents).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
};

use ipnet::IpNet;

use super::nft::{self, NftState};
use crate::{
    config::{
        Backend, Config,
        types::{parse_cidr, parse_interface_address, parse_key},
    },
    policy::{self, Marks, Policy, Target, UpstreamRoute},
    util::keys,
};

/// One WireGuard interface: the server or an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgIface {
    pub name: String,
    /// `server`, or `upstream <name>`: for messages.
    pub role: String,
    pub private_key: [u8; 32],
    pub listen_port: Option<u16>,
    pub mtu: u16,
    pub addresses: Vec<IpNet>,
    pub peers: Vec<WgPeer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgPeer {
    pub public_key: [u8; 32],
    pub preshared_key: Option<[u8; 32]>,
    pub endpoint: Option<SocketAddr>,
    /// Sorted.
    pub allowed_ips: Vec<IpNet>,
    pub keepalive: Option<u16>,
    /// Who this peer is (client name or upstream name), for messages.
    pub label: String,
}

/// `ip rule fwmark MARK/MASK lookup TABLE priority PRIO` (v4 or v6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpRule {
    pub v6: bool,
    pub priority: u32,
    pub mark: u32,
    pub mask: u32,
    pub table: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteKind {
    /// `default dev IF`.
    Dev(String),
    /// `unreachable default`: the kill switch.
    Unreachable,
}

/// A default route in one of our tables.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    pub v6: bool,
    pub table: u32,
    pub metric: u32,
    pub kind: RouteKind,
}

/// Metric of the `dev` default route and of the unreachable fallback behind it.
pub const METRIC_DEV: u32 = 10;
pub const METRIC_UNREACHABLE: u32 = 4_000_000_000;
/// The main routing table (what `on_down direct` looks up).
pub const TABLE_MAIN: u32 = 254;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub backend: Backend,
    pub wg: Vec<WgIface>,
    pub nft: NftState,
    pub rules: BTreeSet<IpRule>,
    pub routes: BTreeSet<Route>,
}

/// What the planner needs besides the config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    /// Upstream name → is it up? Missing means "up when its interface exists"
    /// (the caller fills that in from the observed links).
    pub health: BTreeMap<String, bool>,
    /// Upstream endpoints resolved to socket addresses (host names need DNS,
    /// which is not pure). Missing: the peer gets no endpoint.
    pub endpoints: BTreeMap<String, SocketAddr>,
    /// Entries of `format cidr` lists, by list name.
    pub list_cidrs: BTreeMap<String, Vec<IpNet>>,
}

impl Inputs {
    pub fn is_up(&self, upstream: &str) -> bool {
        self.health.get(upstream).copied().unwrap_or(true)
    }
}

/// The routing table of upstream `i`.
pub fn upstream_table(config: &Config, i: usize) -> u32 {
    config.upstreams[i]
        .table
        .unwrap_or(config.server.table_base_or_default() + i as u32)
}

/// Computes the whole desired state. The config must have passed validation.
pub fn desired(config: &Config, policy: &Policy, inputs: &Inputs) -> Desired {
    let server = &config.server;
    let mut server_addrs = Vec::new();
    for a in server.address.iter().chain(server.address6.iter()) {
        if let Ok(net) = parse_interface_address(a) {
            server_addrs.push(net);
        }
    }
    let mut peers = Vec::new();
    for (c, cp) in config.clients.iter().zip(&policy.clients) {
        if !cp.active {
            continue;
        }
        let public_key = match (&c.public_key, &c.private_key) {
            (Some(k), _) => parse_key(k).ok(),
            (None, Some(k)) => parse_key(k).ok().map(|p| keys::public_from_private(&p)),
            _ => None,
        };
        let Some(public_key) = public_key else {
            continue;
        };
        let mut allowed_ips: Vec<IpNet> = cp.addresses.iter().map(IpNet::trunc).collect();
        allowed_ips.sort();
        peers.push(WgPeer {
            public_key,
            preshared_key: c.preshared_key.as_deref().and_then(|k| parse_key(k).ok()),
            endpoint: None,
            allowed_ips,
            keepalive: None,
            label: c.name.clone(),
        });
    }
    peers.sort_by_key(|p| p.public_key);
    let mut wg = vec![WgIface {
        name: server.interface_or_default().to_string(),
        role: "server".into(),
        private_key: server
            .private_key
            .as_deref()
            .and_then(|k| parse_key(k).ok())
            .unwrap_or_default(),
        listen_port: Some(server.listen_port_or_default()),
        mtu: server.mtu_or_default(),
        addresses: server_addrs,
        peers,
    }];

    let marks = policy.marks;
    let mut rules = BTreeSet::new();
    let mut routes = BTreeSet::new();
    let priority = server.rule_priority_or_default();
    for (i, u) in config.upstreams.iter().enumerate() {
        let ifname = u.interface_or_default();
        let table = upstream_table(config, i);
        let enabled = u.enabled_or_default();
        if enabled {
            let mut allowed_ips: Vec<IpNet> = u
                .allowed_ips_or_default()
                .iter()
                .filter_map(|a| parse_cidr(a).ok())
                .map(|n| n.trunc())
                .collect();
            allowed_ips.sort();
            let keepalive = u.keepalive_or_default();
            wg.push(WgIface {
                name: ifname.clone(),
                role: format!("upstream {}", u.name),
                private_key: u
                    .private_key
                    .as_deref()
                    .and_then(|k| parse_key(k).ok())
                    .unwrap_or_default(),
                listen_port: None,
                mtu: u.mtu_or_default(),
                addresses: u
                    .address
                    .iter()
                    .filter_map(|a| parse_interface_address(a).ok())
                    .collect(),
                peers: vec![WgPeer {
                    public_key: u
                        .public_key
                        .as_deref()
                        .and_then(|k| parse_key(k).ok())
                        .unwrap_or_default(),
                    preshared_key: u.preshared_key.as_deref().and_then(|k| parse_key(k).ok()),
                    endpoint: inputs.endpoints.get(&u.name).copied(),
                    allowed_ips,
                    keepalive: (keepalive != 0).then_some(keepalive),
                    label: u.name.clone(),
                }],
            });
        }
        // The table: default via the tunnel, the unreachable fallback behind it.
        for v6 in [false, true] {
            if enabled {
                routes.insert(Route {
                    v6,
                    table,
                    metric: METRIC_DEV,
                    kind: RouteKind::Dev(ifname.clone()),
                });
            }
            routes.insert(Route {
                v6,
                table,
                metric: METRIC_UNREACHABLE,
                kind: RouteKind::Unreachable,
            });
        }
        let is_up = |j: usize| {
            let x = &config.upstreams[j];
            x.enabled_or_default() && inputs.is_up(&x.name)
        };
        let lookup = match policy::upstream_route(config, i, &is_up) {
            UpstreamRoute::Own | UpstreamRoute::Block => table,
            UpstreamRoute::Direct => TABLE_MAIN,
            UpstreamRoute::Failover(f) => upstream_table(config, f),
        };
        for v6 in [false, true] {
            rules.insert(IpRule {
                v6,
                priority,
                mark: marks.of(Target::Upstream(i)),
                mask: marks.mask,
                table: lookup,
            });
        }
    }
    Desired {
        backend: server.backend.unwrap_or_default(),
        wg,
        nft: nft::desired(config, policy, inputs),
        rules,
        routes,
    }
}

/// Compiles and plans in one go, for callers that hold only a config.
pub fn desired_from_config(config: &Config, inputs: &Inputs) -> (Policy, Desired) {
    let policy = policy::compile(config, crate::util::time::now_unix());
    let d = desired(config, &policy, inputs);
    (policy, d)
}

/// Marks used by a policy, for messages.
pub fn mark_name(marks: &Marks, config: &Config, mark: u32) -> String {
    if mark == marks.of(Target::Direct) {
        return "direct".into();
    }
    if mark == marks.of(Target::Block) {
        return "block".into();
    }
    (0..config.upstreams.len())
        .find(|&i| marks.of(Target::Upstream(i)) == mark)
        .map_or_else(
            || format!("{mark:#x}"),
            |i| config.upstreams[i].name.clone(),
        )
}
