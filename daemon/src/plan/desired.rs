//! Desired kernel state, computed from the compiled policy and a few observed
//! inputs (upstream health, resolved endpoints, CIDR list contents).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
};

use ipnet::IpNet;

use super::nft::{self, NftState};
use crate::{
    config::Backend,
    policy::{self, Policy, Target, UpstreamRoute},
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

/// `ip rule fwmark MARK/MASK lookup TABLE priority PRIO` (v4 or v6), or with
/// `oif` set and mark and mask 0, `ip rule oif IF lookup TABLE` (plan/offload.rs).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpRule {
    pub v6: bool,
    pub priority: u32,
    pub mark: u32,
    pub mask: u32,
    pub table: u32,
    pub oif: Option<String>,
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
    /// Seconds a learned element lives after its last use (plan/guard.rs; 0: the default).
    pub learned_hold: u32,
}

impl Inputs {
    pub fn is_up(&self, upstream: &str) -> bool {
        self.health.get(upstream).copied().unwrap_or(true)
    }
}

/// The routing table of upstream `i`.
pub fn upstream_table(policy: &Policy, i: usize) -> u32 {
    policy.upstreams[i].table
}

/// Computes the whole desired state from the compiled policy and the runtime
/// inputs alone (never the config).
pub fn desired(policy: &Policy, inputs: &Inputs) -> Desired {
    let server = &policy.server;
    let mut peers = Vec::new();
    for cp in policy.clients.iter().filter(|c| c.active) {
        let Some(public_key) = cp.public_key else {
            continue;
        };
        let mut allowed_ips: Vec<IpNet> = cp.addresses.iter().map(IpNet::trunc).collect();
        allowed_ips.sort();
        peers.push(WgPeer {
            public_key,
            preshared_key: cp.preshared_key,
            endpoint: None,
            allowed_ips,
            keepalive: None,
            label: cp.name.clone(),
        });
    }
    peers.sort_by_key(|p| p.public_key);
    let mut wg = vec![WgIface {
        name: server.interface.clone(),
        role: "server".into(),
        private_key: server.private_key,
        listen_port: Some(server.listen_port),
        mtu: server.mtu,
        addresses: server.addresses.clone(),
        peers,
    }];

    let marks = policy.marks;
    let mut rules = BTreeSet::new();
    let mut routes = BTreeSet::new();
    let priority = server.rule_priority;
    for (i, u) in policy.upstreams.iter().enumerate() {
        let table = u.table;
        if u.enabled {
            wg.push(WgIface {
                name: u.interface.clone(),
                role: format!("upstream {}", u.name),
                private_key: u.private_key,
                listen_port: None,
                mtu: u.mtu,
                addresses: u.addresses.clone(),
                peers: vec![WgPeer {
                    public_key: u.public_key,
                    preshared_key: u.preshared_key,
                    endpoint: inputs.endpoints.get(&u.name).copied(),
                    allowed_ips: u.allowed_ips.clone(),
                    keepalive: u.keepalive,
                    label: u.name.clone(),
                }],
            });
        }
        // The table: default via the tunnel, the unreachable fallback behind it.
        for v6 in [false, true] {
            if u.enabled {
                routes.insert(Route {
                    v6,
                    table,
                    metric: METRIC_DEV,
                    kind: RouteKind::Dev(u.interface.clone()),
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
            let x = &policy.upstreams[j];
            x.enabled && inputs.is_up(&x.name)
        };
        let lookup = match policy::upstream_route(&policy.upstreams, i, &is_up) {
            UpstreamRoute::Own | UpstreamRoute::Block => table,
            UpstreamRoute::Direct => TABLE_MAIN,
            UpstreamRoute::Failover(f) => upstream_table(policy, f),
        };
        for v6 in [false, true] {
            rules.insert(IpRule {
                v6,
                priority,
                mark: marks.of(Target::Upstream(i)),
                mask: marks.mask,
                table: lookup,
                oif: None,
            });
        }
    }
    rules.extend(super::offload::oif_rules(policy));
    Desired {
        backend: server.backend,
        wg,
        nft: nft::desired(policy, inputs),
        rules,
        routes,
    }
}
