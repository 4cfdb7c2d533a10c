//! Observed state, operations, and the plan: desired − observed.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use ipnet::IpNet;

use super::{
    Desired, IpRule, Route, RouteKind, WgIface, WgPeer,
    nft::{self, NftBatch, ObservedNft},
};
use crate::util::keys;

/// A link as the kernel shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedLink {
    pub index: u32,
    /// Carries our alias: created by wgsplit.
    pub ours: bool,
    pub mtu: u32,
    pub up: bool,
    pub addresses: BTreeSet<IpNet>,
}

/// A WireGuard device's configuration as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedWg {
    /// The device's own public key (userspace devices don't tell the private one).
    pub public_key: Option<[u8; 32]>,
    pub listen_port: Option<u16>,
    pub peers: Vec<WgPeer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    pub links: BTreeMap<String, ObservedLink>,
    /// WireGuard devices we could read (by interface name).
    pub wg: BTreeMap<String, ObservedWg>,
    /// Our ip rules (protocol RT_PROTO).
    pub rules: BTreeSet<IpRule>,
    /// Our routes (protocol RT_PROTO) in any table.
    pub routes: BTreeSet<Route>,
    /// `None`: no `table inet wgsplit`.
    pub nft: Option<ObservedNft>,
}

/// One step of a plan. Each prints as one line of `apply --dry-run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create (or start, for userspace) a WireGuard interface and mark it ours.
    CreateLink {
        name: String,
    },
    /// Set private key and listen port (peers are separate ops).
    WgDevice {
        name: String,
        private_key: [u8; 32],
        listen_port: Option<u16>,
    },
    WgPeerSet {
        dev: String,
        peer: WgPeer,
    },
    WgPeerRemove {
        dev: String,
        public_key: [u8; 32],
        label: String,
    },
    SetMtu {
        name: String,
        mtu: u32,
    },
    AddAddress {
        name: String,
        net: IpNet,
    },
    DelAddress {
        name: String,
        net: IpNet,
    },
    SetUp {
        name: String,
    },
    AddRoute(Route),
    DelRoute(Route),
    AddRule(IpRule),
    DelRule(IpRule),
    Nft(NftBatch),
    DeleteLink {
        name: String,
    },
}

fn fam(v6: bool) -> &'static str {
    if v6 { "-6" } else { "-4" }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::CreateLink { name } => write!(f, "link {name}: create WireGuard interface"),
            Op::WgDevice {
                name,
                private_key,
                listen_port,
            } => {
                write!(
                    f,
                    "wg {name}: private key (public {})",
                    keys::encode(&keys::public_from_private(private_key))
                )?;
                if let Some(p) = listen_port {
                    write!(f, ", listen port {p}")?;
                }
                Ok(())
            }
            Op::WgPeerSet { dev, peer } => {
                write!(
                    f,
                    "wg {dev}: peer {} ({}) allowed-ips {}",
                    keys::encode(&peer.public_key),
                    peer.label,
                    peer.allowed_ips
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                )?;
                if let Some(e) = peer.endpoint {
                    write!(f, " endpoint {e}")?;
                }
                if let Some(k) = peer.keepalive {
                    write!(f, " keepalive {k}")?;
                }
                Ok(())
            }
            Op::WgPeerRemove {
                dev,
                public_key,
                label,
            } => write!(
                f,
                "wg {dev}: remove peer {} ({label})",
                keys::encode(public_key)
            ),
            Op::SetMtu { name, mtu } => write!(f, "link {name}: mtu {mtu}"),
            Op::AddAddress { name, net } => write!(f, "link {name}: add address {net}"),
            Op::DelAddress { name, net } => write!(f, "link {name}: delete address {net}"),
            Op::SetUp { name } => write!(f, "link {name}: up"),
            Op::AddRoute(r) => write!(f, "route {} add {}", fam(r.v6), route_text(r)),
            Op::DelRoute(r) => write!(f, "route {} delete {}", fam(r.v6), route_text(r)),
            Op::AddRule(r) => write!(f, "rule {} add {}", fam(r.v6), rule_text(r)),
            Op::DelRule(r) => write!(f, "rule {} delete {}", fam(r.v6), rule_text(r)),
            Op::Nft(b) => {
                write!(
                    f,
                    "nft: one transaction, {} commands (+{} / -{} elements)",
                    b.script_lines(),
                    b.elements_added,
                    b.elements_deleted
                )?;
                for l in &b.summary {
                    write!(f, "\n    {l}")?;
                }
                Ok(())
            }
            Op::DeleteLink { name } => write!(f, "link {name}: delete"),
        }
    }
}

pub fn route_text(r: &Route) -> String {
    match &r.kind {
        RouteKind::Dev(d) => format!("default dev {d} table {} metric {}", r.table, r.metric),
        RouteKind::Unreachable => {
            format!("unreachable default table {} metric {}", r.table, r.metric)
        }
    }
}

pub fn rule_text(r: &IpRule) -> String {
    if let Some(oif) = &r.oif {
        return format!("oif {oif} lookup {} priority {}", r.table, r.priority);
    }
    format!(
        "fwmark {:#x}/{:#x} lookup {} priority {}",
        r.mark, r.mask, r.table, r.priority
    )
}

/// Why a config can't be applied, found before anything changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn plan_iface(w: &WgIface, obs: &Observed, ops: &mut Vec<Op>) {
    let link = obs.links.get(&w.name);
    let dev = obs.wg.get(&w.name);
    if link.is_none() || dev.is_none() {
        ops.push(Op::CreateLink {
            name: w.name.clone(),
        });
    }
    let empty_peers = Vec::new();
    let have_peers = dev.map_or(&empty_peers, |d| &d.peers);
    if dev.is_none_or(|d| {
        d.public_key != Some(keys::public_from_private(&w.private_key))
            || d.listen_port != w.listen_port && w.listen_port.is_some()
    }) {
        ops.push(Op::WgDevice {
            name: w.name.clone(),
            private_key: w.private_key,
            listen_port: w.listen_port,
        });
    }
    // By key: a server has up to thousands of peers.
    let want_keys: BTreeSet<&[u8; 32]> = w.peers.iter().map(|p| &p.public_key).collect();
    let have_by_key: BTreeMap<&[u8; 32], &WgPeer> =
        have_peers.iter().map(|p| (&p.public_key, p)).collect();
    for p in have_peers {
        if !want_keys.contains(&p.public_key) {
            ops.push(Op::WgPeerRemove {
                dev: w.name.clone(),
                public_key: p.public_key,
                label: p.label.clone(),
            });
        }
    }
    for p in &w.peers {
        let same = have_by_key.get(&p.public_key).is_some_and(|h| {
            h.preshared_key == p.preshared_key
                && h.allowed_ips == p.allowed_ips
                && h.keepalive == p.keepalive
                && (p.endpoint.is_none() || h.endpoint == p.endpoint)
        });
        if !same {
            ops.push(Op::WgPeerSet {
                dev: w.name.clone(),
                peer: p.clone(),
            });
        }
    }
    if link.is_none_or(|l| l.mtu != u32::from(w.mtu)) {
        ops.push(Op::SetMtu {
            name: w.name.clone(),
            mtu: u32::from(w.mtu),
        });
    }
    let have: BTreeSet<IpNet> = link.map(|l| l.addresses.clone()).unwrap_or_default();
    let want: BTreeSet<IpNet> = w.addresses.iter().copied().collect();
    for a in have.difference(&want) {
        // IPv6 link-local addresses are the kernel's, not ours.
        if let IpNet::V6(v6) = a
            && v6.addr().segments()[0] & 0xffc0 == 0xfe80
        {
            continue;
        }
        ops.push(Op::DelAddress {
            name: w.name.clone(),
            net: *a,
        });
    }
    for a in want.difference(&have) {
        ops.push(Op::AddAddress {
            name: w.name.clone(),
            net: *a,
        });
    }
    if link.is_none_or(|l| !l.up) {
        ops.push(Op::SetUp {
            name: w.name.clone(),
        });
    }
}

/// Checks that nothing the config wants is held by someone else.
pub fn refusals(desired: &Desired, obs: &Observed) -> Vec<Refusal> {
    let mut out = Vec::new();
    for w in &desired.wg {
        if let Some(l) = obs.links.get(&w.name)
            && !l.ours
        {
            out.push(Refusal(format!(
                "interface '{}' ({}) already exists and was not created by wgsplit; \
                 pick another name or remove it",
                w.name, w.role
            )));
        }
    }
    out
}

/// Names of the interfaces wgsplit owns that the desired state no longer has.
fn stale_links(desired: &Desired, obs: &Observed) -> Vec<String> {
    obs.links
        .iter()
        .filter(|(n, l)| l.ours && !desired.wg.iter().any(|w| &w.name == *n))
        .map(|(n, _)| n.clone())
        .collect()
}

/// The plan: every operation that turns `observed` into `desired`, in apply order.
/// An empty list means the kernel already matches.
pub fn plan(desired: &Desired, obs: &Observed) -> Result<Vec<Op>, Vec<Refusal>> {
    let refused = refusals(desired, obs);
    if !refused.is_empty() {
        return Err(refused);
    }
    let mut ops = Vec::new();
    // Links first: routes name them.
    for w in &desired.wg {
        plan_iface(w, obs, &mut ops);
    }
    // Routes and rules: adds before the nft change starts marking, so marked
    // traffic always finds its table; the unreachable fallback goes in first.
    let mut route_adds: Vec<&Route> = desired.routes.difference(&obs.routes).collect();
    route_adds.sort_by_key(|r| std::cmp::Reverse(r.metric));
    for r in route_adds {
        ops.push(Op::AddRoute(r.clone()));
    }
    for r in desired.rules.difference(&obs.rules) {
        ops.push(Op::AddRule(r.clone()));
    }
    let batch = nft::diff(&desired.nft, obs.nft.as_ref());
    if !batch.is_empty() {
        ops.push(Op::Nft(batch));
    }
    for r in obs.rules.difference(&desired.rules) {
        ops.push(Op::DelRule(r.clone()));
    }
    for r in obs.routes.difference(&desired.routes) {
        // Dev routes vanish with their link; delete only what still stands.
        ops.push(Op::DelRoute(r.clone()));
    }
    for name in stale_links(desired, obs) {
        ops.push(Op::DeleteLink { name });
    }
    Ok(ops)
}

/// The plan of `wgsplit down`: everything wgsplit created, nothing else.
pub fn plan_down(obs: &Observed) -> Vec<Op> {
    let mut ops = Vec::new();
    if obs.nft.is_some() {
        ops.push(Op::Nft(NftBatch::delete_table()));
    }
    for r in &obs.rules {
        ops.push(Op::DelRule(r.clone()));
    }
    for r in &obs.routes {
        ops.push(Op::DelRoute(r.clone()));
    }
    for (n, l) in &obs.links {
        if l.ours {
            ops.push(Op::DeleteLink { name: n.clone() });
        }
    }
    ops
}

/// The observed state right after `desired` was applied over `obs`: what the
/// daemon keeps in memory to plan the next change without reading the kernel.
pub fn assume_applied(desired: &Desired, obs: &Observed) -> Observed {
    let mut o = Observed::default();
    for w in &desired.wg {
        o.links.insert(
            w.name.clone(),
            ObservedLink {
                index: obs.links.get(&w.name).map_or(0, |l| l.index),
                ours: true,
                mtu: u32::from(w.mtu),
                up: true,
                addresses: w.addresses.iter().copied().collect(),
            },
        );
        let mut peers = w.peers.clone();
        let endpoints: BTreeMap<&[u8; 32], _> = obs
            .wg
            .get(&w.name)
            .map(|d| {
                d.peers
                    .iter()
                    .map(|x| (&x.public_key, x.endpoint))
                    .collect()
            })
            .unwrap_or_default();
        for p in peers.iter_mut().filter(|p| p.endpoint.is_none()) {
            // Roaming clients' endpoints are whatever the device learned.
            p.endpoint = endpoints.get(&p.public_key).copied().flatten();
        }
        o.wg.insert(
            w.name.clone(),
            ObservedWg {
                public_key: Some(keys::public_from_private(&w.private_key)),
                listen_port: w.listen_port,
                peers,
            },
        );
    }
    o.rules = desired.rules.clone();
    o.routes = desired.routes.clone();
    o.nft = Some(nft::as_observed(&desired.nft));
    o
}
