//! Links, addresses, ip rules and routes over rtnetlink, written with the small
//! netlink module `nl` (the rtnetlink crate's full message model cost ~0.5 MB
//! of the mipsel binary; see README "Numbers").

pub(crate) mod nl;
#[cfg(test)]
mod oracle_tests;

use std::{
    collections::{BTreeMap, BTreeSet},
    ffi::CString,
    io,
    net::IpAddr,
    sync::Mutex,
};

use ipnet::IpNet;

use crate::plan::{IpRule, LINK_ALIAS, ObservedLink, RT_PROTO, Route, RouteKind};
use nl::{Msg, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST};

pub struct Net {
    sock: Mutex<nl::Socket>,
}

const EEXIST: i32 = 17;
const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const ENODEV: i32 = 19;
const EADDRNOTAVAIL: i32 = 99;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
const RTM_NEWRULE: u16 = 32;
const RTM_DELRULE: u16 = 33;
const RTM_GETRULE: u16 = 34;

const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_IFALIAS: u16 = 20;
const IFF_UP: u32 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const RTA_OIF: u16 = 4;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
const FRA_PRIORITY: u16 = 6;
const FRA_FWMARK: u16 = 10;
const FRA_TABLE: u16 = 15;
const FRA_FWMASK: u16 = 16;
const FRA_OIFNAME: u16 = 17;
const FRA_PROTOCOL: u16 = 21;
const FR_ACT_TO_TBL: u8 = 1;
const RTN_UNICAST: u8 = 1;
const RTN_UNREACHABLE: u8 = 7;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

fn family_of(v6: bool) -> u8 {
    if v6 { AF_INET6 } else { AF_INET }
}

/// `ifinfomsg`: family, type, index, flags, change.
fn ifinfo(index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

/// "already exists" / "not there" are both success for us.
fn ok_if(r: io::Result<()>, codes: &[i32]) -> Result<(), String> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error().is_some_and(|c| codes.contains(&c)) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

fn ip_from(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

fn ip_bytes(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The index of a link by name (`None`: no such link).
pub fn link_index(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: if_nametoindex reads a NUL-terminated string we own.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// Creates a link of `kind` (e.g. `wireguard`); one that exists already is fine.
pub fn create_link(name: &str, kind: &str) -> Result<(), String> {
    let mut s = nl::Socket::open(nl::NETLINK_ROUTE).map_err(|e| format!("rtnetlink: {e}"))?;
    let mut m = Msg::new(
        RTM_NEWLINK,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
    );
    m.push(&ifinfo(0, 0, 0)).str(IFLA_IFNAME, name);
    let at = m.nest(IFLA_LINKINFO);
    m.str(IFLA_INFO_KIND, kind);
    m.end(at);
    ok_if(s.request(m), &[EEXIST])
}

impl Net {
    pub fn new() -> Result<Self, String> {
        let sock = nl::Socket::open(nl::NETLINK_ROUTE).map_err(|e| format!("rtnetlink: {e}"))?;
        Ok(Self {
            sock: Mutex::new(sock),
        })
    }

    fn sock(&self) -> std::sync::MutexGuard<'_, nl::Socket> {
        self.sock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn request(&self, m: Msg) -> io::Result<()> {
        self.sock().request(m)
    }

    /// A dump: every answer's payload, after its netlink header.
    fn dump(&self, m: Msg, what: &str) -> Result<Vec<Vec<u8>>, String> {
        let mut out = Vec::new();
        self.sock()
            .exchange(m, |_, p| out.push(p.to_vec()))
            .map_err(|e| format!("{what} dump: {e}"))?;
        Ok(out)
    }

    /// Every link by name, with its addresses.
    pub async fn links(&self) -> Result<BTreeMap<String, ObservedLink>, String> {
        let mut out = BTreeMap::new();
        let mut by_index = BTreeMap::new();
        let mut m = Msg::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP);
        m.push(&ifinfo(0, 0, 0));
        for p in self.dump(m, "link")? {
            if p.len() < 16 {
                continue;
            }
            let index = nl::get_u32(&p[4..]).unwrap_or(0);
            let flags = nl::get_u32(&p[8..]).unwrap_or(0);
            let (mut name, mut alias, mut mtu) = (None, None, 0);
            for (k, v) in nl::attrs(&p[16..]) {
                match k {
                    IFLA_IFNAME => name = Some(nl::get_str(v)),
                    IFLA_IFALIAS => alias = Some(nl::get_str(v)),
                    IFLA_MTU => mtu = nl::get_u32(v).unwrap_or(0),
                    _ => {}
                }
            }
            if let Some(name) = name {
                by_index.insert(index, name.clone());
                out.insert(
                    name,
                    ObservedLink {
                        index,
                        ours: alias.as_deref() == Some(LINK_ALIAS),
                        mtu,
                        up: flags & IFF_UP != 0,
                        addresses: BTreeSet::new(),
                    },
                );
            }
        }
        let mut m = Msg::new(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP);
        m.push(&[0u8; 8]);
        for p in self.dump(m, "address")? {
            if p.len() < 8 {
                continue;
            }
            let prefix_len = p[1];
            let index = nl::get_u32(&p[4..]).unwrap_or(0);
            let Some(name) = by_index.get(&index) else {
                continue;
            };
            let mut addr = None;
            for (k, v) in nl::attrs(&p[8..]) {
                match k {
                    IFA_LOCAL => addr = ip_from(v),
                    IFA_ADDRESS if addr.is_none() => addr = ip_from(v),
                    _ => {}
                }
            }
            if let Some(ip) = addr
                && let Ok(net) = IpNet::new(ip, prefix_len)
                && let Some(l) = out.get_mut(name)
            {
                l.addresses.insert(net);
            }
        }
        Ok(out)
    }

    pub async fn rules(&self) -> Result<BTreeSet<IpRule>, String> {
        let mut out = BTreeSet::new();
        for v6 in [false, true] {
            let mut m = Msg::new(RTM_GETRULE, NLM_F_REQUEST | NLM_F_DUMP);
            m.push(&[family_of(v6), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            for p in self.dump(m, "rule")? {
                if p.len() < 12 {
                    continue;
                }
                let mut proto = None;
                let mut oif = None;
                // The kernel reports no mask for a rule without a mark (an oif rule).
                let (mut prio, mut mark, mut mask, mut table) = (0, 0, 0, u32::from(p[4]));
                for (k, v) in nl::attrs(&p[12..]) {
                    match k {
                        FRA_PROTOCOL => proto = v.first().copied(),
                        FRA_PRIORITY => prio = nl::get_u32(v).unwrap_or(0),
                        FRA_FWMARK => mark = nl::get_u32(v).unwrap_or(0),
                        FRA_FWMASK => mask = nl::get_u32(v).unwrap_or(u32::MAX),
                        FRA_TABLE => table = nl::get_u32(v).unwrap_or(table),
                        FRA_OIFNAME => {
                            let name = v.split(|b| *b == 0).next().unwrap_or_default();
                            oif = Some(String::from_utf8_lossy(name).into_owned());
                        }
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
                        oif,
                    });
                }
            }
        }
        Ok(out)
    }

    pub async fn routes(&self, names: &BTreeMap<u32, String>) -> Result<BTreeSet<Route>, String> {
        let mut out = BTreeSet::new();
        for v6 in [false, true] {
            let mut m = Msg::new(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP);
            m.push(&[family_of(v6), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            for p in self.dump(m, "route")? {
                // rtmsg: family, dst_len, src_len, tos, table, protocol, scope,
                // type, then u32 flags.
                if p.len() < 12 || p[5] != RT_PROTO || p[1] != 0 {
                    continue;
                }
                let mut table = u32::from(p[4]);
                let mut metric = 0;
                let mut oif = None;
                for (k, v) in nl::attrs(&p[12..]) {
                    match k {
                        RTA_TABLE => table = nl::get_u32(v).unwrap_or(table),
                        RTA_PRIORITY => metric = nl::get_u32(v).unwrap_or(0),
                        RTA_OIF => oif = nl::get_u32(v),
                        _ => {}
                    }
                }
                let kind = match p[7] {
                    RTN_UNREACHABLE => RouteKind::Unreachable,
                    RTN_UNICAST => match oif.and_then(|i| names.get(&i)) {
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
        link_index(name).ok_or_else(|| format!("no interface {name}"))
    }

    pub async fn set_alias(&self, name: &str) -> Result<(), String> {
        let idx = self.index(name).await?;
        let mut m = Msg::new(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK);
        m.push(&ifinfo(idx, 0, 0)).str(IFLA_IFALIAS, LINK_ALIAS);
        self.request(m).map_err(|e| e.to_string())
    }

    pub async fn set_mtu(&self, name: &str, mtu: u32) -> Result<(), String> {
        let idx = self.index(name).await?;
        let mut m = Msg::new(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK);
        m.push(&ifinfo(idx, 0, 0)).u32(IFLA_MTU, mtu);
        self.request(m).map_err(|e| e.to_string())
    }

    pub async fn set_up(&self, name: &str) -> Result<(), String> {
        let idx = self.index(name).await?;
        let mut m = Msg::new(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK);
        m.push(&ifinfo(idx, IFF_UP, IFF_UP));
        self.request(m).map_err(|e| e.to_string())
    }

    pub async fn delete_link(&self, name: &str) -> Result<(), String> {
        let Ok(idx) = self.index(name).await else {
            return Ok(());
        };
        let mut m = Msg::new(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK);
        m.push(&ifinfo(idx, 0, 0));
        ok_if(self.request(m), &[ENODEV, ENOENT])
    }

    fn address_message(kind: u16, flags: u16, idx: u32, net: IpNet) -> Msg {
        let ip = net.addr();
        let mut m = Msg::new(kind, NLM_F_REQUEST | NLM_F_ACK | flags);
        let mut h = [0u8; 8];
        h[0] = family_of(ip.is_ipv6());
        h[1] = net.prefix_len();
        h[4..8].copy_from_slice(&idx.to_ne_bytes());
        m.push(&h)
            .attr(IFA_LOCAL, &ip_bytes(&ip))
            .attr(IFA_ADDRESS, &ip_bytes(&ip));
        if let IpNet::V4(n) = net
            && kind == RTM_NEWADDR
            && n.prefix_len() < 31
        {
            m.attr(
                IFA_BROADCAST,
                &(u32::from(n.addr()) | !u32::from(n.netmask())).to_be_bytes(),
            );
        }
        m
    }

    pub async fn add_address(&self, name: &str, net: IpNet) -> Result<(), String> {
        let idx = self.index(name).await?;
        let m = Self::address_message(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, idx, net);
        ok_if(self.request(m), &[EEXIST])
    }

    pub async fn del_address(&self, name: &str, net: IpNet) -> Result<(), String> {
        let idx = self.index(name).await?;
        let m = Self::address_message(RTM_DELADDR, 0, idx, net);
        ok_if(self.request(m), &[EADDRNOTAVAIL, ENOENT])
    }

    async fn route_message(&self, kind: u16, flags: u16, r: &Route) -> Result<Msg, String> {
        let (rtype, oif) = match &r.kind {
            RouteKind::Dev(d) => (RTN_UNICAST, Some(self.index(d).await?)),
            RouteKind::Unreachable => (RTN_UNREACHABLE, None),
        };
        // rtmsg: family, dst_len 0, src_len, tos, table, protocol, scope universe,
        // type, flags.
        let table = if r.table > 255 { 0 } else { r.table as u8 };
        let mut m = Msg::new(kind, NLM_F_REQUEST | NLM_F_ACK | flags);
        m.push(&[
            family_of(r.v6),
            0,
            0,
            0,
            table,
            RT_PROTO,
            0,
            rtype,
            0,
            0,
            0,
            0,
        ])
        .u32(RTA_TABLE, r.table)
        .u32(RTA_PRIORITY, r.metric);
        if let Some(i) = oif {
            m.u32(RTA_OIF, i);
        }
        Ok(m)
    }

    pub async fn add_route(&self, r: &Route) -> Result<(), String> {
        let m = self
            .route_message(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, r)
            .await?;
        ok_if(self.request(m), &[EEXIST])
    }

    pub async fn del_route(&self, r: &Route) -> Result<(), String> {
        let m = match self.route_message(RTM_DELROUTE, 0, r).await {
            Ok(m) => m,
            // A dev route whose link is gone is gone too.
            Err(_) => return Ok(()),
        };
        ok_if(self.request(m), &[ESRCH, ENOENT])
    }

    fn rule_message(kind: u16, flags: u16, r: &IpRule) -> Msg {
        let table = if r.table > 255 { 0 } else { r.table as u8 };
        let mut m = Msg::new(kind, NLM_F_REQUEST | NLM_F_ACK | flags);
        // fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action, flags.
        m.push(&[
            family_of(r.v6),
            0,
            0,
            0,
            table,
            0,
            0,
            FR_ACT_TO_TBL,
            0,
            0,
            0,
            0,
        ])
        .u32(FRA_TABLE, r.table)
        .u32(FRA_PRIORITY, r.priority)
        .u8(FRA_PROTOCOL, RT_PROTO);
        if r.mark != 0 || r.mask != 0 {
            m.u32(FRA_FWMARK, r.mark).u32(FRA_FWMASK, r.mask);
        }
        if let Some(oif) = &r.oif {
            m.str(FRA_OIFNAME, oif);
        }
        m
    }

    pub async fn add_rule(&self, r: &IpRule) -> Result<(), String> {
        let m = Self::rule_message(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, r);
        ok_if(self.request(m), &[EEXIST])
    }

    pub async fn del_rule(&self, r: &IpRule) -> Result<(), String> {
        let m = Self::rule_message(RTM_DELRULE, 0, r);
        ok_if(self.request(m), &[ENOENT, ESRCH])
    }
}

const RTA_DST: u16 = 1;
const RTN_LOCAL: u8 = 2;

/// Is `peer` on the side of the interface that holds `local`: would the
/// router's answer to it leave by that interface (or is it the router itself)?
/// For the web UI bound to a LAN address: a WAN neighbour that routes that
/// address to the router reaches the socket too, and its answers would go out
/// the WAN. `false` when no interface holds `local` (fails closed).
pub fn peer_on_side_of(peer: IpAddr, local: IpAddr) -> Result<bool, String> {
    let mut s = nl::Socket::open(nl::NETLINK_ROUTE).map_err(|e| format!("rtnetlink: {e}"))?;
    // The route to the peer: rtmsg (family, dst_len, …), RTA_DST.
    let v6 = peer.is_ipv6();
    let mut m = Msg::new(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_ACK);
    let len = if v6 { 128 } else { 32 };
    m.push(&[family_of(v6), len, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        .attr(RTA_DST, &ip_bytes(&peer));
    let (mut kind, mut oif) = (None, None);
    s.exchange(m, |_, p| {
        if p.len() >= 12 {
            kind = Some(p[7]);
            oif = nl::attrs(&p[12..])
                .find(|(k, _)| *k == RTA_OIF)
                .and_then(|(_, v)| nl::get_u32(v));
        }
    })
    .map_err(|e| format!("route to {peer}: {e}"))?;
    if kind == Some(RTN_LOCAL) {
        return Ok(true);
    }
    // The interface holding `local`: ifaddrmsg (family, prefixlen, flags,
    // scope, index), IFA_LOCAL (IPv4) or IFA_ADDRESS.
    let mut m = Msg::new(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP);
    m.push(&[family_of(local.is_ipv6()), 0, 0, 0, 0, 0, 0, 0]);
    let want = ip_bytes(&local);
    let mut holder = None;
    s.exchange(m, |_, p| {
        if p.len() >= 8
            && nl::attrs(&p[8..])
                .any(|(k, v)| (k == IFA_LOCAL || k == IFA_ADDRESS) && v == want.as_slice())
        {
            holder = Some(u32::from_ne_bytes([p[4], p[5], p[6], p[7]]));
        }
    })
    .map_err(|e| format!("addresses: {e}"))?;
    Ok(holder.is_some() && holder == oif)
}

/// For messages: the address family word.
pub fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// Against the kernel, in a network namespace of a thread's own (root only).
#[cfg(test)]
mod kernel_tests {
    use super::*;

    fn in_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        crate::sys::in_new_netns(f)
    }

    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// The web UI's guard: a LAN host, the router itself and a host out the
    /// WAN, from route lookups only (no packet is sent).
    #[test]
    #[ignore = "kernel: needs root, run by tests/run.sh with --ignored"]
    fn which_side_a_peer_is_on() {
        in_netns(|| {
            let ip = |args: &str| {
                let st = std::process::Command::new("ip")
                    .args(args.split(' '))
                    .status()
                    .unwrap();
                assert!(st.success(), "ip {args}");
            };
            ip("link set lo up");
            // veth pairs (carrier up once both ends are), addresses without DAD.
            for side in ["lan", "wan"] {
                ip(&format!("link add ws{side}0 type veth peer name ws{side}1"));
                ip(&format!("link set ws{side}0 up"));
                ip(&format!("link set ws{side}1 up"));
            }
            ip("addr add 192.168.1.1/24 dev wslan0");
            ip("addr add fd10::1/64 dev wslan0 nodad");
            ip("addr add 203.0.113.2/24 dev wswan0");
            ip("addr add 2001:db8::2/64 dev wswan0 nodad");
            ip("route add default via 203.0.113.1 dev wswan0");
            ip("-6 route add default via 2001:db8::1 dev wswan0");
            let side = |peer: &str, local: &str| {
                peer_on_side_of(peer.parse().unwrap(), local.parse().unwrap()).unwrap()
            };
            for (peer, local, want) in [
                ("192.168.1.50", "192.168.1.1", true),
                ("192.168.1.1", "192.168.1.1", true),
                ("127.0.0.1", "192.168.1.1", true),
                ("203.0.113.7", "192.168.1.1", false),
                ("198.51.100.9", "192.168.1.1", false),
                ("192.168.1.50", "192.168.9.9", false),
                ("fd10::50", "fd10::1", true),
                ("2001:db8::7", "fd10::1", false),
                ("2001:db8:1::7", "fd10::1", false),
            ] {
                assert_eq!(side(peer, local), want, "{peer} to {local}");
            }
        })
        .unwrap();
    }

    #[test]
    #[ignore = "kernel: needs root, run by tests/run.sh with --ignored"]
    fn links_addresses_routes_rules_round_trip() {
        in_netns(|| {
            block(async {
                let net = Net::new().unwrap();
                create_link("wsz0", "bridge").unwrap();
                create_link("wsz0", "bridge").unwrap(); // exists: fine
                net.set_alias("wsz0").await.unwrap();
                net.set_mtu("wsz0", 1380).await.unwrap();
                net.set_up("wsz0").await.unwrap();
                let a4: IpNet = "10.9.0.1/24".parse().unwrap();
                let a6: IpNet = "fd09::1/64".parse().unwrap();
                for a in [a4, a6] {
                    net.add_address("wsz0", a).await.unwrap();
                    net.add_address("wsz0", a).await.unwrap();
                }
                let links = net.links().await.unwrap();
                let l = &links["wsz0"];
                assert!(l.ours && l.up && l.mtu == 1380, "{l:?}");
                assert!(
                    l.addresses.contains(&a4) && l.addresses.contains(&a6),
                    "{l:?}"
                );
                assert!(!links["lo"].ours);

                let mut want = BTreeSet::new();
                let mut want_rules = BTreeSet::new();
                for v6 in [false, true] {
                    for (table, kind) in [
                        (20000, RouteKind::Dev("wsz0".into())),
                        (20000, RouteKind::Unreachable),
                        (200, RouteKind::Dev("wsz0".into())),
                    ] {
                        let metric = if kind == RouteKind::Unreachable {
                            100
                        } else {
                            10
                        };
                        let r = Route {
                            v6,
                            table,
                            metric,
                            kind,
                        };
                        net.add_route(&r).await.unwrap();
                        net.add_route(&r).await.unwrap();
                        want.insert(r);
                    }
                    let rule = IpRule {
                        v6,
                        priority: 1234,
                        mark: 0x10000,
                        mask: 0xff0000,
                        table: 20000,
                        oif: None,
                    };
                    net.add_rule(&rule).await.unwrap();
                    net.add_rule(&rule).await.unwrap();
                    // An oif rule (plan/offload.rs): no mark, read back as written.
                    let oif = IpRule {
                        v6,
                        priority: 1233,
                        mark: 0,
                        mask: 0,
                        table: 20000,
                        oif: Some("wsz0".into()),
                    };
                    net.add_rule(&oif).await.unwrap();
                    net.add_rule(&oif).await.unwrap();
                    want_rules.insert(rule);
                    want_rules.insert(oif);
                }
                let names: BTreeMap<u32, String> = [(l.index, "wsz0".to_string())].into();
                assert_eq!(net.routes(&names).await.unwrap(), want);
                let rules = net.rules().await.unwrap();
                assert_eq!(rules, want_rules);

                for r in &want {
                    net.del_route(r).await.unwrap();
                    net.del_route(r).await.unwrap();
                }
                assert!(net.routes(&names).await.unwrap().is_empty());
                for r in rules {
                    net.del_rule(&r).await.unwrap();
                    net.del_rule(&r).await.unwrap();
                }
                assert!(net.rules().await.unwrap().is_empty());
                for a in [a4, a6] {
                    net.del_address("wsz0", a).await.unwrap();
                    net.del_address("wsz0", a).await.unwrap();
                }
                assert!(
                    net.links().await.unwrap()["wsz0"]
                        .addresses
                        .iter()
                        .all(|a| a.addr().is_ipv6()
                            && a.prefix_len() == 64
                            && a.addr() != a6.addr())
                );
                net.delete_link("wsz0").await.unwrap();
                net.delete_link("wsz0").await.unwrap();
                assert!(!net.links().await.unwrap().contains_key("wsz0"));
                assert!(
                    net.add_address("wsz0", a4)
                        .await
                        .unwrap_err()
                        .contains("no interface")
                );
            })
        });
    }
}
