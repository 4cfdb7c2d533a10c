//! What "ours reads a packet as hickory-proto does" means, in one place for
//! both users: the oracle unit tests (`wire_oracle_tests.rs`, a `#[cfg(test)]`
//! module of the crate) and the `dns_oracle` fuzz target, which includes this
//! file by `#[path]` (hickory-proto is a dev-dependency: the library cannot
//! export it). Both name our wire module `wire` where they include this one.

use std::net::IpAddr;

use hickory_proto::{
    op::{Message, MessageType, OpCode},
    rr::{DNSClass, Name, RData},
};

use super::wire;

/// The lowercase wire form of a name, as ours keeps it (`Query::wire_name`).
pub fn lower_wire(n: &Name) -> Vec<u8> {
    let mut out = Vec::new();
    for l in n.iter() {
        out.push(l.len() as u8);
        out.extend(l.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out
}

/// Whether ours calls the name plain (host-label bytes only).
pub fn is_plain(n: &Name) -> bool {
    n.iter().all(|l| {
        l.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    })
}

/// The lowercase dotted text ours gives a plain name.
pub fn lower_dotted(n: &Name) -> String {
    n.iter()
        .map(|l| String::from_utf8_lossy(&l.to_ascii_lowercase()).into_owned())
        .collect::<Vec<_>>()
        .join(".")
}

/// Ours read `h`, a query hickory also reads, to the same question and flags.
pub fn same_query(ours: &wire::Query, h: &Message) {
    assert_eq!(h.metadata.message_type, MessageType::Query, "QR");
    assert_eq!(h.metadata.op_code, OpCode::Query, "opcode");
    assert_eq!(h.queries.len(), 1, "one question");
    let hq = &h.queries[0];
    assert_eq!(ours.id, h.metadata.id, "id");
    assert_eq!(ours.rd, h.metadata.recursion_desired, "rd");
    assert_eq!(
        ours.wire_name,
        lower_wire(hq.name()),
        "name of {}",
        hq.name()
    );
    assert_eq!(ours.plain, is_plain(hq.name()), "plain of {}", hq.name());
    assert_eq!(ours.qtype, u16::from(hq.query_type()), "qtype");
    assert_eq!(ours.qclass, u16::from(hq.query_class()), "qclass");
}

/// Ours read `h`, an answer hickory also reads, to the same rcode, TC flag,
/// addresses (class IN, with their TTLs), plain CNAME targets and, where there
/// are answer records, a cache TTL of the shortest.
pub fn same_answer(ours: &wire::Answer, h: &Message) {
    assert_eq!(ours.rcode, h.metadata.response_code.low(), "rcode");
    assert_eq!(ours.truncated, h.metadata.truncation, "TC");
    let addrs: Vec<(IpAddr, u32)> = h
        .answers
        .iter()
        .filter(|r| r.dns_class == DNSClass::IN)
        .filter_map(|r| match &r.data {
            RData::A(a) => Some((IpAddr::V4(a.0), r.ttl)),
            RData::AAAA(a) => Some((IpAddr::V6(a.0), r.ttl)),
            _ => None,
        })
        .collect();
    assert_eq!(ours.addrs, addrs, "addresses");
    let cnames: Vec<String> = h
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::CNAME(c) if is_plain(&c.0) => Some(lower_dotted(&c.0)),
            _ => None,
        })
        .collect();
    assert_eq!(ours.cnames, cnames, "CNAME targets");
    if !h.answers.is_empty() {
        let shortest = h.answers.iter().map(|r| r.ttl).min();
        assert_eq!(ours.cache_ttl, shortest, "cache TTL");
    }
}
