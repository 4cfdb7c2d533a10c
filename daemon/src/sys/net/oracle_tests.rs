//! `netlink-packet-route`, the message model of the rtnetlink crate the engine
//! used before `nl.rs`, as the oracle of the policy-routing messages we write:
//! every address, route and rule request the engine sends for a plan (the
//! shapes the suites' configs produce: IPv4 and IPv6, tables below and above
//! 255, the kill switch's unreachable route, add and delete) decodes there to
//! the values we meant. A dev-dependency only: not in the router binary.

use ipnet::IpNet;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    address::{AddressAttribute, AddressHeaderFlags, AddressMessage, AddressScope},
    route::{RouteAttribute, RouteMessage, RouteProtocol, RouteType},
    rule::{RuleAction, RuleAttribute, RuleMessage},
};

use super::{
    Net, RTM_DELADDR, RTM_DELROUTE, RTM_DELRULE, RTM_NEWADDR, RTM_NEWROUTE, RTM_NEWRULE,
    nl::{Msg, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST},
};
use crate::plan::{IpRule, RT_PROTO, Route, RouteKind};

/// What the socket does before sending: the header's length field.
fn framed(m: &Msg) -> Vec<u8> {
    let mut b = m.bytes().to_vec();
    let len = b.len() as u32;
    b[0..4].copy_from_slice(&len.to_ne_bytes());
    b
}

/// Decodes one request; the flags are returned beside the message.
fn decode(m: &Msg) -> (u16, RouteNetlinkMessage) {
    let b = framed(m);
    let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&b)
        .unwrap_or_else(|e| panic!("netlink-packet-route cannot read ours: {e}: {b:02x?}"));
    assert_eq!(msg.header.length as usize, b.len(), "length");
    match msg.payload {
        NetlinkPayload::InnerMessage(inner) => (msg.header.flags, inner),
        other => panic!("not a route message: {other:?}"),
    }
}

const ADD: u16 = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
const DEL: u16 = NLM_F_REQUEST | NLM_F_ACK;

fn family(v6: bool) -> AddressFamily {
    if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    }
}

fn check_address(a: &AddressMessage, idx: u32, net: IpNet, add: bool) {
    assert_eq!(
        a.header.family,
        family(net.addr().is_ipv6()),
        "{net}: family"
    );
    assert_eq!(a.header.prefix_len, net.prefix_len(), "{net}: prefix");
    assert_eq!(a.header.index, idx, "{net}: link index");
    assert_eq!(
        a.header.flags,
        AddressHeaderFlags::empty(),
        "{net}: header flags"
    );
    assert_eq!(a.header.scope, AddressScope::Universe, "{net}: scope");
    let ip = net.addr();
    assert!(
        a.attributes.contains(&AddressAttribute::Local(ip)),
        "{net}: local"
    );
    assert!(
        a.attributes.contains(&AddressAttribute::Address(ip)),
        "{net}: address"
    );
    let broadcast = a.attributes.iter().find_map(|x| match x {
        AddressAttribute::Broadcast(b) => Some(*b),
        _ => None,
    });
    let want = match net {
        IpNet::V4(n) if add && n.prefix_len() < 31 => Some(n.broadcast()),
        _ => None,
    };
    assert_eq!(broadcast, want, "{net}: broadcast");
}

#[test]
fn address_requests_read_as_meant_in_netlink_packet_route() {
    let nets: [IpNet; 6] = [
        "10.8.0.1/24".parse().unwrap(),
        "10.64.0.2/32".parse().unwrap(),
        "10.9.0.1/31".parse().unwrap(),
        "192.168.7.1/16".parse().unwrap(),
        "fd42:8::1/64".parse().unwrap(),
        "fc00:bbbb::2/128".parse().unwrap(),
    ];
    for (i, net) in nets.into_iter().enumerate() {
        let idx = 3 + i as u32 * 1000;
        let (flags, m) = decode(&Net::address_message(
            RTM_NEWADDR,
            NLM_F_CREATE | NLM_F_EXCL,
            idx,
            net,
        ));
        assert_eq!(flags, ADD, "{net}: add flags");
        let RouteNetlinkMessage::NewAddress(a) = m else {
            panic!("{net}: {m:?}")
        };
        check_address(&a, idx, net, true);
        let (flags, m) = decode(&Net::address_message(RTM_DELADDR, 0, idx, net));
        assert_eq!(flags, DEL, "{net}: delete flags");
        let RouteNetlinkMessage::DelAddress(a) = m else {
            panic!("{net}: {m:?}")
        };
        check_address(&a, idx, net, false);
    }
}

fn check_rule(r: &RuleMessage, want: &IpRule) {
    assert_eq!(r.header.family, family(want.v6), "{want:?}: family");
    assert_eq!(r.header.action, RuleAction::ToTable, "{want:?}: action");
    let header_table = if want.table > 255 {
        0
    } else {
        want.table as u8
    };
    assert_eq!(r.header.table, header_table, "{want:?}: header table");
    let attrs = &r.attributes;
    let mut expected = vec![
        RuleAttribute::Table(want.table),
        RuleAttribute::Priority(want.priority),
        RuleAttribute::Protocol(RouteProtocol::from(RT_PROTO)),
    ];
    // A rule without a mark (an oif rule) carries neither mark nor mask.
    if want.mark != 0 || want.mask != 0 {
        expected.push(RuleAttribute::FwMark(want.mark));
        expected.push(RuleAttribute::FwMask(want.mask));
    }
    if let Some(oif) = &want.oif {
        expected.push(RuleAttribute::Oifname(oif.clone()));
    }
    for a in &expected {
        assert!(attrs.contains(a), "{want:?}: {a:?} missing from {attrs:?}");
    }
    assert_eq!(
        attrs.len(),
        expected.len(),
        "{want:?}: nothing else: {attrs:?}"
    );
}

#[test]
fn rule_requests_read_as_meant_in_netlink_packet_route() {
    let mut n = 0;
    for v6 in [false, true] {
        for (table, mark, oif) in [
            (20_001, 0x0100_0000, None),
            (254, 0x0200_0000, None),
            (100, 0xff00_0000, None),
            // The offload rules: by outgoing interface, no mark.
            (20_001, 0, Some("wg-up1")),
            (254, 0, Some("wgs0")),
        ] {
            let rule = IpRule {
                v6,
                priority: 6000 + n,
                mark,
                mask: if mark == 0 { 0 } else { 0xff00_0000 },
                table,
                oif: oif.map(String::from),
            };
            n += 1;
            let (flags, m) = decode(&Net::rule_message(
                RTM_NEWRULE,
                NLM_F_CREATE | NLM_F_EXCL,
                &rule,
            ));
            assert_eq!(flags, ADD);
            let RouteNetlinkMessage::NewRule(r) = m else {
                panic!("{m:?}")
            };
            check_rule(&r, &rule);
            let (flags, m) = decode(&Net::rule_message(RTM_DELRULE, 0, &rule));
            assert_eq!(flags, DEL);
            let RouteNetlinkMessage::DelRule(r) = m else {
                panic!("{m:?}")
            };
            check_rule(&r, &rule);
        }
    }
}

fn check_route(r: &RouteMessage, want: &Route, oif: Option<u32>) {
    let h = &r.header;
    assert_eq!(h.address_family, family(want.v6), "{want:?}: family");
    assert_eq!(h.destination_prefix_length, 0, "{want:?}: a default route");
    assert_eq!(
        h.protocol,
        RouteProtocol::from(RT_PROTO),
        "{want:?}: protocol"
    );
    let kind = match want.kind {
        RouteKind::Dev(_) => RouteType::Unicast,
        RouteKind::Unreachable => RouteType::Unreachable,
    };
    assert_eq!(h.kind, kind, "{want:?}: type");
    let header_table = if want.table > 255 {
        0
    } else {
        want.table as u8
    };
    assert_eq!(h.table, header_table, "{want:?}: header table");
    let mut attrs = vec![
        RouteAttribute::Table(want.table),
        RouteAttribute::Priority(want.metric),
    ];
    attrs.extend(oif.map(RouteAttribute::Oif));
    assert_eq!(r.attributes, attrs, "{want:?}: attributes");
}

#[test]
fn route_requests_read_as_meant_in_netlink_packet_route() {
    // Reading "lo"'s index needs a netlink socket, not root; lo is 1 in any netns.
    let net = Net::new().expect("a netlink socket");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for v6 in [false, true] {
        for table in [20_001, 200, 254] {
            for (kind, oif) in [
                (RouteKind::Dev("lo".into()), Some(1)),
                (RouteKind::Unreachable, None),
            ] {
                let metric = if oif.is_some() {
                    crate::plan::METRIC_DEV
                } else {
                    crate::plan::METRIC_UNREACHABLE
                };
                let route = Route {
                    v6,
                    table,
                    metric,
                    kind,
                };
                let m = rt
                    .block_on(net.route_message(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &route))
                    .unwrap();
                let (flags, m) = decode(&m);
                assert_eq!(flags, ADD);
                let RouteNetlinkMessage::NewRoute(r) = m else {
                    panic!("{m:?}")
                };
                check_route(&r, &route, oif);
                let m = rt
                    .block_on(net.route_message(RTM_DELROUTE, 0, &route))
                    .unwrap();
                let (flags, m) = decode(&m);
                assert_eq!(flags, DEL);
                let RouteNetlinkMessage::DelRoute(r) = m else {
                    panic!("{m:?}")
                };
                check_route(&r, &route, oif);
            }
        }
    }
}
