//! Kernel WireGuard over generic netlink (`include/uapi/linux/wireguard.h`):
//! WG_CMD_GET_DEVICE (a dump, possibly split over several messages) and
//! WG_CMD_SET_DEVICE (peers packed into messages of at most `CHUNK` bytes).

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6},
    sync::OnceLock,
    time::{Duration, UNIX_EPOCH},
};

use ipnet::IpNet;

use super::{DeviceState, PeerState, Update};
use crate::{plan::WgPeer, sys::net::nl};
use nl::{Msg, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};

const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;

const WG_CMD_GET_DEVICE: u8 = 0;
const WG_CMD_SET_DEVICE: u8 = 1;
const WG_GENL_VERSION: u8 = 1;

const WGDEVICE_A_IFNAME: u16 = 2;
const WGDEVICE_A_PRIVATE_KEY: u16 = 3;
const WGDEVICE_A_PUBLIC_KEY: u16 = 4;
const WGDEVICE_A_LISTEN_PORT: u16 = 6;
const WGDEVICE_A_PEERS: u16 = 8;

const WGPEER_A_PUBLIC_KEY: u16 = 1;
const WGPEER_A_PRESHARED_KEY: u16 = 2;
const WGPEER_A_FLAGS: u16 = 3;
const WGPEER_A_ENDPOINT: u16 = 4;
const WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL: u16 = 5;
const WGPEER_A_LAST_HANDSHAKE_TIME: u16 = 6;
const WGPEER_A_RX_BYTES: u16 = 7;
const WGPEER_A_TX_BYTES: u16 = 8;
const WGPEER_A_ALLOWEDIPS: u16 = 9;
const WGPEER_F_REMOVE_ME: u32 = 1;
const WGPEER_F_REPLACE_ALLOWEDIPS: u32 = 2;

const WGALLOWEDIP_A_FAMILY: u16 = 1;
const WGALLOWEDIP_A_IPADDR: u16 = 2;
const WGALLOWEDIP_A_CIDR_MASK: u16 = 3;

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// A SET_DEVICE message is sent once it grows past this (nests hold at most 64 KB).
const CHUNK: usize = 8192;

fn socket() -> io::Result<nl::Socket> {
    nl::Socket::open(nl::NETLINK_GENERIC)
}

/// The `wireguard` generic netlink family's id (the same in every namespace).
fn family(s: &mut nl::Socket) -> io::Result<u16> {
    static ID: OnceLock<u16> = OnceLock::new();
    if let Some(id) = ID.get() {
        return Ok(*id);
    }
    let mut m = Msg::new(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK);
    m.push(&[CTRL_CMD_GETFAMILY, 1, 0, 0])
        .str(CTRL_ATTR_FAMILY_NAME, "wireguard");
    let mut id = None;
    s.exchange(m, |_, p| {
        for (k, v) in nl::attrs(p.get(4..).unwrap_or(&[])) {
            if k == CTRL_ATTR_FAMILY_ID {
                id = nl::get_u16(v);
            }
        }
    })
    .map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOENT) {
            io::Error::other("no wireguard support in the kernel (module not loaded?)")
        } else {
            e
        }
    })?;
    let id = id.ok_or_else(|| io::Error::other("wireguard family: no id in the answer"))?;
    Ok(*ID.get_or_init(|| id))
}

fn genl(family: u16, cmd: u8, flags: u16) -> Msg {
    let mut m = Msg::new(family, flags);
    m.push(&[cmd, WG_GENL_VERSION, 0, 0]);
    m
}

fn endpoint_from(b: &[u8]) -> Option<SocketAddr> {
    let fam = nl::get_u16(b)?;
    let port = u16::from_be_bytes(b.get(2..4)?.try_into().ok()?);
    match fam {
        AF_INET => {
            let a: [u8; 4] = b.get(4..8)?.try_into().ok()?;
            Some(SocketAddrV4::new(Ipv4Addr::from(a), port).into())
        }
        AF_INET6 => {
            let a: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            let scope = nl::get_u32(b.get(24..)?)?;
            Some(SocketAddrV6::new(Ipv6Addr::from(a), port, 0, scope).into())
        }
        _ => None,
    }
}

fn endpoint_bytes(e: &SocketAddr) -> Vec<u8> {
    let mut b = Vec::with_capacity(28);
    match e {
        SocketAddr::V4(a) => {
            b.extend_from_slice(&AF_INET.to_ne_bytes());
            b.extend_from_slice(&a.port().to_be_bytes());
            b.extend_from_slice(&a.ip().octets());
            b.extend_from_slice(&[0; 8]);
        }
        SocketAddr::V6(a) => {
            b.extend_from_slice(&AF_INET6.to_ne_bytes());
            b.extend_from_slice(&a.port().to_be_bytes());
            b.extend_from_slice(&a.flowinfo().to_be_bytes());
            b.extend_from_slice(&a.ip().octets());
            b.extend_from_slice(&a.scope_id().to_ne_bytes());
        }
    }
    b
}

fn allowed_ip_from(b: &[u8]) -> Option<IpNet> {
    let (mut ip, mut cidr) = (None, None);
    for (k, v) in nl::attrs(b) {
        match k {
            WGALLOWEDIP_A_IPADDR => {
                ip = match v.len() {
                    4 => Some(IpAddr::from(<[u8; 4]>::try_from(v).ok()?)),
                    16 => Some(IpAddr::from(<[u8; 16]>::try_from(v).ok()?)),
                    _ => None,
                }
            }
            WGALLOWEDIP_A_CIDR_MASK => cidr = v.first().copied(),
            _ => {}
        }
    }
    IpNet::new(ip?, cidr?).ok()
}

fn peer_from(b: &[u8]) -> Option<PeerState> {
    let mut p = PeerState::default();
    let mut key = None;
    for (k, v) in nl::attrs(b) {
        match k {
            WGPEER_A_PUBLIC_KEY => key = nl::get_key(v),
            WGPEER_A_PRESHARED_KEY => p.preshared_key = nl::get_key(v),
            WGPEER_A_ENDPOINT => p.endpoint = endpoint_from(v),
            WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL => p.keepalive = nl::get_u16(v),
            WGPEER_A_LAST_HANDSHAKE_TIME => {
                // struct __kernel_timespec (two i64); 32-bit kernels before 5.6
                // sent struct timespec (two longs).
                let (sec, nsec) = if v.len() >= 16 {
                    (nl::get_i64(v)?, nl::get_i64(&v[8..])?)
                } else {
                    (
                        i64::from(nl::get_u32(v)? as i32),
                        i64::from(nl::get_u32(v.get(4..)?)? as i32),
                    )
                };
                p.last_handshake = (sec > 0 || nsec > 0).then(|| {
                    UNIX_EPOCH
                        + Duration::from_secs(sec.max(0) as u64)
                        + Duration::from_nanos(nsec.max(0) as u64)
                });
            }
            WGPEER_A_RX_BYTES => p.rx_bytes = nl::get_u64(v)?,
            WGPEER_A_TX_BYTES => p.tx_bytes = nl::get_u64(v)?,
            WGPEER_A_ALLOWEDIPS => {
                p.allowed_ips
                    .extend(nl::attrs(v).filter_map(|(_, a)| allowed_ip_from(a)));
            }
            _ => {}
        }
    }
    p.public_key = key?;
    Some(p)
}

/// Adds one GET_DEVICE answer to `dev`. A peer whose allowed IPs did not fit
/// one message continues, under the same public key, at the top of the next.
fn add_answer(dev: &mut DeviceState, private: &mut Option<[u8; 32]>, payload: &[u8]) {
    for (k, v) in nl::attrs(payload.get(4..).unwrap_or(&[])) {
        match k {
            WGDEVICE_A_PRIVATE_KEY => *private = nl::get_key(v),
            WGDEVICE_A_PUBLIC_KEY => dev.public_key = nl::get_key(v),
            WGDEVICE_A_LISTEN_PORT => dev.listen_port = nl::get_u16(v),
            WGDEVICE_A_PEERS => {
                for (_, pb) in nl::attrs(v) {
                    let Some(p) = peer_from(pb) else { continue };
                    match dev.peers.last_mut() {
                        Some(last) if last.public_key == p.public_key => {
                            last.allowed_ips.extend(p.allowed_ips)
                        }
                        _ => dev.peers.push(p),
                    }
                }
            }
            _ => {}
        }
    }
}

pub fn get(name: &str) -> io::Result<DeviceState> {
    let mut s = socket()?;
    let fam = family(&mut s)?;
    let mut m = genl(
        fam,
        WG_CMD_GET_DEVICE,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP,
    );
    m.str(WGDEVICE_A_IFNAME, name);
    let mut dev = DeviceState::default();
    let mut private = None;
    s.exchange(m, |_, p| add_answer(&mut dev, &mut private, p))?;
    if dev.public_key.is_none() {
        dev.public_key = private
            .filter(|k| k != &[0u8; 32])
            .map(|k| crate::util::keys::public_from_private(&k));
    }
    Ok(dev)
}

fn put_peer(m: &mut Msg, p: &WgPeer) {
    let at = m.nest(0);
    m.attr(WGPEER_A_PUBLIC_KEY, &p.public_key)
        .u32(WGPEER_A_FLAGS, WGPEER_F_REPLACE_ALLOWEDIPS)
        .attr(WGPEER_A_PRESHARED_KEY, &p.preshared_key.unwrap_or([0; 32]))
        .u16(
            WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
            p.keepalive.unwrap_or(0),
        );
    if let Some(e) = &p.endpoint {
        m.attr(WGPEER_A_ENDPOINT, &endpoint_bytes(e));
    }
    let ips = m.nest(WGPEER_A_ALLOWEDIPS);
    for n in &p.allowed_ips {
        let a = m.nest(0);
        match n.addr() {
            IpAddr::V4(ip) => m
                .u16(WGALLOWEDIP_A_FAMILY, AF_INET)
                .attr(WGALLOWEDIP_A_IPADDR, &ip.octets()),
            IpAddr::V6(ip) => m
                .u16(WGALLOWEDIP_A_FAMILY, AF_INET6)
                .attr(WGALLOWEDIP_A_IPADDR, &ip.octets()),
        };
        m.u8(WGALLOWEDIP_A_CIDR_MASK, n.prefix_len());
        m.end(a);
    }
    m.end(ips);
    m.end(at);
}

/// The SET_DEVICE messages for an update: device attributes in the first,
/// peers packed into as many as they need.
fn set_messages(fam: u16, name: &str, u: &Update) -> Vec<Msg> {
    let start = || {
        let mut m = genl(fam, WG_CMD_SET_DEVICE, NLM_F_REQUEST | NLM_F_ACK);
        m.str(WGDEVICE_A_IFNAME, name);
        m
    };
    let mut out = Vec::new();
    let mut m = start();
    if let Some(k) = &u.private_key {
        m.attr(WGDEVICE_A_PRIVATE_KEY, k);
    }
    if let Some(p) = u.listen_port {
        m.u16(WGDEVICE_A_LISTEN_PORT, p);
    }
    let mut peers = m.nest(WGDEVICE_A_PEERS);
    for p in u.peers {
        if m.len() > CHUNK {
            m.end(peers);
            out.push(std::mem::replace(&mut m, start()));
            peers = m.nest(WGDEVICE_A_PEERS);
        }
        put_peer(&mut m, p);
    }
    if let Some(k) = &u.remove {
        let at = m.nest(0);
        m.attr(WGPEER_A_PUBLIC_KEY, k)
            .u32(WGPEER_A_FLAGS, WGPEER_F_REMOVE_ME);
        m.end(at);
    }
    m.end(peers);
    out.push(m);
    out
}

pub fn set(name: &str, u: &Update) -> io::Result<()> {
    let mut s = socket()?;
    let fam = family(&mut s)?;
    for m in set_messages(fam, name, u) {
        s.request(m)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(k: u8, ips: usize) -> WgPeer {
        WgPeer {
            public_key: [k; 32],
            preshared_key: Some([7; 32]),
            endpoint: Some("192.0.2.1:51820".parse().unwrap()),
            allowed_ips: (0..ips)
                .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256).parse().unwrap())
                .collect(),
            keepalive: Some(25),
            label: String::new(),
        }
    }

    /// What the kernel would read back: the SET messages' peers, parsed with
    /// the GET parser (the attribute layout is the same both ways).
    fn read_back(msgs: &[Msg]) -> DeviceState {
        let mut dev = DeviceState::default();
        let mut private = None;
        for m in msgs {
            add_answer(&mut dev, &mut private, &m.bytes()[16..]);
        }
        dev.public_key = private;
        dev
    }

    #[test]
    fn set_round_trips_through_the_get_parser() {
        let (a, b) = (peer(1, 2), peer(2, 1));
        let mut v6 = peer(3, 0);
        v6.endpoint = Some("[2001:db8::1%3]:443".parse().unwrap());
        v6.allowed_ips = vec!["fd00::/64".parse().unwrap()];
        v6.preshared_key = None;
        let peers = [&a, &b, &v6];
        let u = Update {
            private_key: Some([9; 32]),
            listen_port: Some(51820),
            peers: &peers,
            remove: None,
        };
        let msgs = set_messages(0x1b, "wg0", &u);
        assert_eq!(msgs.len(), 1);
        let dev = read_back(&msgs);
        assert_eq!(dev.public_key, Some([9; 32]));
        assert_eq!(dev.listen_port, Some(51820));
        assert_eq!(dev.peers.len(), 3);
        assert_eq!(dev.peers[0].allowed_ips, a.allowed_ips);
        assert_eq!(dev.peers[0].preshared_key, Some([7; 32]));
        assert_eq!(dev.peers[0].endpoint, a.endpoint);
        assert_eq!(dev.peers[0].keepalive, Some(25));
        assert_eq!(dev.peers[2].endpoint, v6.endpoint);
        assert_eq!(dev.peers[2].preshared_key, Some([0; 32]), "cleared");
        assert_eq!(dev.peers[2].allowed_ips, v6.allowed_ips);
    }

    #[test]
    fn many_peers_are_split_and_removal_is_flagged() {
        let many: Vec<WgPeer> = (0..200).map(|i| peer(i as u8, 3)).collect();
        let refs: Vec<&WgPeer> = many.iter().collect();
        let u = Update {
            peers: &refs,
            remove: Some([0xee; 32]),
            ..Default::default()
        };
        let msgs = set_messages(0x1b, "wg0", &u);
        assert!(msgs.len() > 2, "{} messages", msgs.len());
        assert!(msgs.iter().all(|m| m.len() < CHUNK + 1024));
        let dev = read_back(&msgs);
        assert_eq!(dev.peers.len(), 201);
        assert!(dev.peers[..200].iter().all(|p| p.allowed_ips.len() == 3));
        // The removal: public key and REMOVE_ME, nothing else.
        let last = &msgs.last().unwrap().bytes()[20..];
        let peers = nl::attrs(last)
            .find(|(k, _)| *k == WGDEVICE_A_PEERS)
            .unwrap()
            .1;
        let removal = nl::attrs(peers).last().unwrap().1;
        let attrs: Vec<(u16, &[u8])> = nl::attrs(removal).collect();
        assert_eq!(attrs.len(), 2);
        assert_eq!(attrs[0], (WGPEER_A_PUBLIC_KEY, &[0xee; 32][..]));
        assert_eq!(nl::get_u32(attrs[1].1), Some(WGPEER_F_REMOVE_ME));
    }

    #[test]
    fn a_peer_split_over_two_answers_is_one_peer() {
        let first = peer(5, 2);
        let mut rest = peer(5, 0);
        rest.allowed_ips = vec!["192.168.0.0/16".parse().unwrap()];
        let (p1, p2) = ([&first], [&rest]);
        let mut msgs = set_messages(
            0x1b,
            "wg0",
            &Update {
                peers: &p1,
                ..Default::default()
            },
        );
        msgs.extend(set_messages(
            0x1b,
            "wg0",
            &Update {
                peers: &p2,
                ..Default::default()
            },
        ));
        let dev = read_back(&msgs);
        assert_eq!(dev.peers.len(), 1);
        assert_eq!(dev.peers[0].allowed_ips.len(), 3);
    }
}

#[cfg(test)]
mod oracle_tests;
