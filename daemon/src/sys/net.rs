//! Links, addresses, ip rules and routes over rtnetlink.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::{
    Handle, IpVersion, LinkUnspec, RouteMessageBuilder,
    packet_route::{
        AddressFamily,
        address::AddressAttribute,
        link::{LinkAttribute, LinkFlags},
        route::{RouteAttribute, RouteMessage, RouteProtocol, RouteType},
        rule::{RuleAction, RuleAttribute, RuleMessage},
    },
};

use crate::plan::{IpRule, LINK_ALIAS, ObservedLink, RT_PROTO, Route, RouteKind};

pub struct Net {
    pub handle: Handle,
}

/// Is this rtnetlink error "already exists" / "not there" (both success for us)?
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

const EEXIST: i32 = 17;
const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const ENODEV: i32 = 19;
const EADDRNOTAVAIL: i32 = 99;

fn ok_if(r: Result<(), rtnetlink::Error>, codes: &[i32]) -> Result<(), String> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if errno(&e).is_some_and(|c| codes.contains(&c)) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

impl Net {
    pub fn new() -> Result<Self, String> {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|e| format!("rtnetlink: {e}"))?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    /// Every link by name, with its addresses.
    pub async fn links(&self) -> Result<BTreeMap<String, ObservedLink>, String> {
        let mut out = BTreeMap::new();
        let mut by_index = BTreeMap::new();
        let mut s = self.handle.link().get().execute();
        while let Some(m) = s.try_next().await.map_err(|e| format!("link dump: {e}"))? {
            let mut name = None;
            let mut alias = None;
            let mut mtu = 0;
            for a in &m.attributes {
                match a {
                    LinkAttribute::IfName(n) => name = Some(n.clone()),
                    LinkAttribute::IfAlias(n) => alias = Some(n.clone()),
                    LinkAttribute::Mtu(v) => mtu = *v,
                    _ => {}
                }
            }
            if let Some(name) = name {
                by_index.insert(m.header.index, name.clone());
                out.insert(
                    name,
                    ObservedLink {
                        index: m.header.index,
                        ours: alias.as_deref() == Some(LINK_ALIAS),
                        mtu,
                        up: m.header.flags.contains(LinkFlags::Up),
                        addresses: BTreeSet::new(),
                    },
                );
            }
        }
        let mut s = self.handle.address().get().execute();
        while let Some(m) = s
            .try_next()
            .await
            .map_err(|e| format!("address dump: {e}"))?
        {
            let Some(name) = by_index.get(&m.header.index) else {
                continue;
            };
            let mut addr = None;
            for a in &m.attributes {
                match a {
                    AddressAttribute::Local(ip) => addr = Some(*ip),
                    AddressAttribute::Address(ip) if addr.is_none() => addr = Some(*ip),
                    _ => {}
                }
            }
            if let Some(ip) = addr
                && let Ok(net) = IpNet::new(ip, m.header.prefix_len)
                && let Some(l) = out.get_mut(name)
            {
                l.addresses.insert(net);
            }
        }
        Ok(out)
    }

    pub async fn rules(&self) -> Result<BTreeSet<IpRule>, String> {
        let mut out = BTreeSet::new();
        for (v, v6) in [(IpVersion::V4, false), (IpVersion::V6, true)] {
            let mut s = self.handle.rule().get(v).execute();
            while let Some(m) = s.try_next().await.map_err(|e| format!("rule dump: {e}"))? {
                let mut proto = None;
                let (mut prio, mut mark, mut mask, mut table) = (0, 0, u32::MAX, 0);
                table = u32::from(m.header.table).max(table);
                for a in &m.attributes {
                    match a {
                        RuleAttribute::Protocol(p) => proto = Some(u8::from(*p)),
                        RuleAttribute::Priority(p) => prio = *p,
                        RuleAttribute::FwMark(p) => mark = *p,
                        RuleAttribute::FwMask(p) => mask = *p,
                        RuleAttribute::Table(t) => table = *t,
                        _ => {}
                    }
                }
                if proto == Some(RT_PROTO) {
                    out.insert(IpRule {
                        v6,
                        priority: prio,
                        mark,
                        mask,
                        table,
                    });
                }
            }
        }
        Ok(out)
    }

    pub async fn routes(&self, names: &BTreeMap<u32, String>) -> Result<BTreeSet<Route>, String> {
        let mut out = BTreeSet::new();
        for (fam, v6) in [(AddressFamily::Inet, false), (AddressFamily::Inet6, true)] {
            let mut msg = RouteMessage::default();
            msg.header.address_family = fam;
            let mut s = self.handle.route().get(msg).execute();
            while let Some(m) = s.try_next().await.map_err(|e| format!("route dump: {e}"))? {
                if m.header.protocol != RouteProtocol::Other(RT_PROTO)
                    || m.header.destination_prefix_length != 0
                {
                    continue;
                }
                let mut table = u32::from(m.header.table);
                let mut metric = 0;
                let mut oif = None;
                for a in &m.attributes {
                    match a {
                        RouteAttribute::Table(t) => table = *t,
                        RouteAttribute::Priority(p) => metric = *p,
                        RouteAttribute::Oif(i) => oif = Some(*i),
                        _ => {}
                    }
                }
                let kind = match m.header.kind {
                    RouteType::Unreachable => RouteKind::Unreachable,
                    RouteType::Unicast => match oif.and_then(|i| names.get(&i)) {
                        Some(n) => RouteKind::Dev(n.clone()),
                        None => continue,
                    },
                    _ => continue,
                };
                out.insert(Route {
                    v6,
                    table,
                    metric,
                    kind,
                });
            }
        }
        Ok(out)
    }

    async fn index(&self, name: &str) -> Result<u32, String> {
        let mut s = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match s.try_next().await {
            Ok(Some(m)) => Ok(m.header.index),
            Ok(None) => Err(format!("no interface {name}")),
            Err(e) => Err(format!("interface {name}: {e}")),
        }
    }

    pub async fn set_alias(&self, name: &str) -> Result<(), String> {
        let idx = self.index(name).await?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(idx).alias(LINK_ALIAS).build())
            .execute()
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn set_mtu(&self, name: &str, mtu: u32) -> Result<(), String> {
        let idx = self.index(name).await?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(idx).mtu(mtu).build())
            .execute()
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn set_up(&self, name: &str) -> Result<(), String> {
        let idx = self.index(name).await?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(idx).up().build())
            .execute()
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn delete_link(&self, name: &str) -> Result<(), String> {
        let idx = match self.index(name).await {
            Ok(i) => i,
            Err(_) => return Ok(()),
        };
        ok_if(
            self.handle.link().del(idx).execute().await,
            &[ENODEV, ENOENT],
        )
    }

    pub async fn add_address(&self, name: &str, net: IpNet) -> Result<(), String> {
        let idx = self.index(name).await?;
        ok_if(
            self.handle
                .address()
                .add(idx, net.addr(), net.prefix_len())
                .execute()
                .await,
            &[EEXIST],
        )
    }

    pub async fn del_address(&self, name: &str, net: IpNet) -> Result<(), String> {
        let idx = self.index(name).await?;
        let mut s = self
            .handle
            .address()
            .get()
            .set_link_index_filter(idx)
            .set_address_filter(net.addr())
            .execute();
        while let Some(m) = s.try_next().await.map_err(|e| e.to_string())? {
            if m.header.prefix_len == net.prefix_len() {
                ok_if(
                    self.handle.address().del(m).execute().await,
                    &[EADDRNOTAVAIL, ENOENT],
                )?;
            }
        }
        Ok(())
    }

    async fn route_message(&self, r: &Route) -> Result<RouteMessage, String> {
        let mut msg = if r.v6 {
            RouteMessageBuilder::<Ipv6Addr>::new()
                .destination_prefix(Ipv6Addr::UNSPECIFIED, 0)
                .table_id(r.table)
                .protocol(RouteProtocol::Other(RT_PROTO))
                .priority(r.metric)
                .build()
        } else {
            RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(Ipv4Addr::UNSPECIFIED, 0)
                .table_id(r.table)
                .protocol(RouteProtocol::Other(RT_PROTO))
                .priority(r.metric)
                .build()
        };
        match &r.kind {
            RouteKind::Dev(d) => {
                let idx = self.index(d).await?;
                msg.attributes.push(RouteAttribute::Oif(idx));
                msg.header.kind = RouteType::Unicast;
            }
            RouteKind::Unreachable => msg.header.kind = RouteType::Unreachable,
        }
        Ok(msg)
    }

    pub async fn add_route(&self, r: &Route) -> Result<(), String> {
        let msg = self.route_message(r).await?;
        ok_if(self.handle.route().add(msg).execute().await, &[EEXIST])
    }

    pub async fn del_route(&self, r: &Route) -> Result<(), String> {
        let msg = match self.route_message(r).await {
            Ok(m) => m,
            // A dev route whose link is gone is gone too.
            Err(_) => return Ok(()),
        };
        ok_if(
            self.handle.route().del(msg).execute().await,
            &[ESRCH, ENOENT],
        )
    }

    fn rule_message(r: &IpRule) -> RuleMessage {
        let mut m = RuleMessage::default();
        m.header.family = if r.v6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        m.header.action = RuleAction::ToTable;
        m.header.table = if r.table > 255 { 0 } else { r.table as u8 };
        m.attributes.push(RuleAttribute::Table(r.table));
        m.attributes.push(RuleAttribute::Priority(r.priority));
        m.attributes.push(RuleAttribute::FwMark(r.mark));
        m.attributes.push(RuleAttribute::FwMask(r.mask));
        m.attributes
            .push(RuleAttribute::Protocol(RouteProtocol::Other(RT_PROTO)));
        m
    }

    pub async fn add_rule(&self, r: &IpRule) -> Result<(), String> {
        let mut req = self.handle.rule().add();
        *req.message_mut() = Self::rule_message(r);
        ok_if(req.execute().await, &[EEXIST])
    }

    pub async fn del_rule(&self, r: &IpRule) -> Result<(), String> {
        ok_if(
            self.handle
                .rule()
                .del(Self::rule_message(r))
                .execute()
                .await,
            &[ENOENT, ESRCH],
        )
    }
}

/// For messages: the address family word.
pub fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}
