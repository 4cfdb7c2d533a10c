//! `netlink-packet-wireguard`, the message model wireguard-control and the
//! rtnetlink family of crates use, as the oracle of our WireGuard SET_DEVICE
//! messages: the device's name, private key and port, each peer's key, flags,
//! preshared key, keepalive, endpoint (IPv4 and IPv6) and allowed IPs, a
//! removal, and peers split over several messages all read there as meant.
//! A dev-dependency only: not in the router binary.

use ipnet::IpNet;
use netlink_packet_core::ParseableParametrized;
use netlink_packet_generic::GenlHeader;
use netlink_packet_wireguard::{
    WireguardAddressFamily, WireguardAllowedIpAttr, WireguardAttribute, WireguardCmd,
    WireguardMessage, WireguardPeer, WireguardPeerAttribute, WireguardPeerFlags,
};

use super::{CHUNK, Msg, Update, set_messages};
use crate::plan::WgPeer;

/// The family id the kernel would have given WireGuard (any will do here).
const FAMILY: u16 = 0x1d;
const NLMSG_HEADER: usize = 16;
const GENL_HEADER: usize = 4;

fn decode(m: &Msg) -> WireguardMessage {
    let b = m.bytes();
    assert_eq!(u16::from_ne_bytes([b[4], b[5]]), FAMILY, "message type");
    let header = GenlHeader::parse(&b[NLMSG_HEADER..]).expect("genl header");
    WireguardMessage::parse_with_param(&b[NLMSG_HEADER + GENL_HEADER..], header)
        .unwrap_or_else(|e| panic!("netlink-packet-wireguard cannot read ours: {e}"))
}

fn peer(k: u8, ips: usize, endpoint: Option<&str>) -> WgPeer {
    WgPeer {
        public_key: [k; 32],
        preshared_key: k.is_multiple_of(2).then_some([k ^ 0x5a; 32]),
        endpoint: endpoint.map(|e| e.parse().unwrap()),
        allowed_ips: (0..ips)
            .map(|i| {
                if i % 3 == 2 {
                    format!("fd42:{k:x}::{i:x}/128").parse().unwrap()
                } else {
                    format!("10.{k}.{}.0/24", i % 256).parse().unwrap()
                }
            })
            .collect(),
        keepalive: (!k.is_multiple_of(3)).then_some(25),
        label: String::new(),
    }
}

/// A peer as we meant it: the attributes netlink-packet-wireguard must read.
fn check_peer(got: &WireguardPeer, want: &WgPeer) {
    let mut endpoint = None;
    let mut ips = Vec::new();
    let mut seen = (false, false, false, false);
    for a in &got.0 {
        match a {
            WireguardPeerAttribute::PublicKey(k) => {
                assert_eq!(k, &want.public_key);
                seen.0 = true;
            }
            WireguardPeerAttribute::Flags(f) => {
                assert_eq!(*f, WireguardPeerFlags::ReplaceAllowedIps, "peer flags");
                seen.1 = true;
            }
            WireguardPeerAttribute::PresharedKey(k) => {
                assert_eq!(
                    k,
                    &want.preshared_key.unwrap_or([0; 32]),
                    "PSK (zero clears it)"
                );
                seen.2 = true;
            }
            WireguardPeerAttribute::PersistentKeepalive(s) => {
                assert_eq!(
                    *s,
                    want.keepalive.unwrap_or(0),
                    "keepalive (0 turns it off)"
                );
                seen.3 = true;
            }
            WireguardPeerAttribute::Endpoint(e) => endpoint = Some(*e),
            WireguardPeerAttribute::AllowedIps(list) => {
                for ip in list {
                    let (mut family, mut addr, mut cidr) = (None, None, None);
                    for x in &ip.0 {
                        match x {
                            WireguardAllowedIpAttr::Family(f) => family = Some(*f),
                            WireguardAllowedIpAttr::IpAddr(a) => addr = Some(*a),
                            WireguardAllowedIpAttr::Cidr(c) => cidr = Some(*c),
                            other => panic!("allowed IP attribute {other:?}"),
                        }
                    }
                    let addr = addr.expect("an address");
                    let want_family = if addr.is_ipv4() {
                        WireguardAddressFamily::Ipv4
                    } else {
                        WireguardAddressFamily::Ipv6
                    };
                    assert_eq!(family, Some(want_family), "{addr}: family");
                    ips.push(IpNet::new(addr, cidr.expect("a prefix")).unwrap());
                }
            }
            other => panic!("peer attribute we never send: {other:?}"),
        }
    }
    assert_eq!(
        seen,
        (true, true, true, true),
        "key, flags, PSK and keepalive all sent"
    );
    assert_eq!(endpoint, want.endpoint, "endpoint");
    assert_eq!(ips, want.allowed_ips, "allowed IPs, in order");
}

fn ifname(m: &WireguardMessage) -> Option<&str> {
    m.attributes.iter().find_map(|a| match a {
        WireguardAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

fn peers(m: &WireguardMessage) -> &[WireguardPeer] {
    m.attributes
        .iter()
        .find_map(|a| match a {
            WireguardAttribute::Peers(p) => Some(p.as_slice()),
            _ => None,
        })
        .expect("a peers attribute")
}

#[test]
fn set_device_reads_as_meant_in_netlink_packet_wireguard() {
    let endpoints = [Some("192.0.2.1:51820"), Some("[2001:db8::7]:443"), None];
    let all: Vec<WgPeer> = (1..=6u8)
        .map(|k| peer(k, usize::from(k) * 2, endpoints[usize::from(k) % 3]))
        .collect();
    let refs: Vec<&WgPeer> = all.iter().collect();
    let u = Update {
        private_key: Some([0x42; 32]),
        listen_port: Some(51820),
        peers: &refs,
        remove: Some([0x99; 32]),
    };
    let msgs = set_messages(FAMILY, "wg0", &u);
    assert_eq!(msgs.len(), 1);
    let m = decode(&msgs[0]);
    assert_eq!(m.cmd, WireguardCmd::SetDevice);
    assert_eq!(ifname(&m), Some("wg0"));
    assert!(
        m.attributes
            .contains(&WireguardAttribute::PrivateKey([0x42; 32]))
    );
    assert!(
        m.attributes
            .contains(&WireguardAttribute::ListenPort(51820))
    );
    let got = peers(&m);
    assert_eq!(got.len(), all.len() + 1, "every peer and the removal");
    for (g, w) in got.iter().zip(&all) {
        check_peer(g, w);
    }
    assert_eq!(
        got.last().unwrap().0,
        vec![
            WireguardPeerAttribute::PublicKey([0x99; 32]),
            WireguardPeerAttribute::Flags(WireguardPeerFlags::RemoveMe),
        ],
        "the removal"
    );
}

#[test]
fn peers_split_over_messages_read_as_meant_in_netlink_packet_wireguard() {
    // Enough peers with enough allowed IPs to pass CHUNK several times.
    let all: Vec<WgPeer> = (0..200u8)
        .map(|k| peer(k, 8, Some("198.51.100.2:51820")))
        .collect();
    let refs: Vec<&WgPeer> = all.iter().collect();
    let u = Update {
        private_key: None,
        listen_port: None,
        peers: &refs,
        remove: None,
    };
    let msgs = set_messages(FAMILY, "wgs_us1", &u);
    assert!(msgs.len() > 2, "{} messages", msgs.len());
    let mut got = Vec::new();
    for m in &msgs {
        // Bounded: a message closes once it passes CHUNK, so one peer at most over.
        assert!(m.len() < CHUNK + 1024, "message of {} bytes", m.len());
        let m = decode(m);
        assert_eq!(ifname(&m), Some("wgs_us1"), "each message names the device");
        assert!(
            !m.attributes.iter().any(|a| matches!(
                a,
                WireguardAttribute::PrivateKey(_) | WireguardAttribute::ListenPort(_)
            )),
            "nothing but peers when nothing else changes"
        );
        got.extend(peers(&m).to_vec());
    }
    assert_eq!(got.len(), all.len());
    for (g, w) in got.iter().zip(&all) {
        check_peer(g, w);
    }
}
