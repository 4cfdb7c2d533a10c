//! Our DNS wire reader against hickory-proto's on any bytes (the oracle of
//! `src/dns/wire_oracle_tests.rs`, here on what the fuzzer makes): wherever both
//! read a packet, they read the same question, flags, addresses and CNAME
//! targets. Where only one reads it, nothing is asserted: ours reads only the
//! parts the resolver uses, hickory checks every record.
//!
//! The layout is dns_request's: byte 0 is the split point, data[..cut] a query
//! and data[cut..] an upstream's answer to it (the seeds are the same).
#![no_main]

use hickory_proto::{
    op::{Message, MessageType, OpCode},
    rr::{DNSClass, Name, RData},
};
use libfuzzer_sys::fuzz_target;
use wgsplit::dns::wire;

fn lower_wire(n: &Name) -> Vec<u8> {
    let mut out = Vec::new();
    for l in n.iter() {
        out.push(l.len() as u8);
        out.extend(l.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out
}

fn plain(n: &Name) -> bool {
    n.iter()
        .all(|l| l.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'))
}

fn lower_dotted(n: &Name) -> String {
    n.iter()
        .map(|l| String::from_utf8_lossy(&l.to_ascii_lowercase()).into_owned())
        .collect::<Vec<_>>()
        .join(".")
}

fuzz_target!(|data: &[u8]| {
    let cut = data.first().map_or(0, |&b| b as usize).min(data.len());
    let (req, resp) = data.split_at(cut);
    for req in [data, req] {
        let Ok(q) = wire::parse_query(req) else { continue };
        let Ok(h) = Message::from_vec(req) else { continue };
        assert_eq!(h.metadata.message_type, MessageType::Query);
        assert_eq!(h.metadata.op_code, OpCode::Query);
        assert_eq!(h.queries.len(), 1);
        assert_eq!(q.id, h.metadata.id);
        assert_eq!(q.rd, h.metadata.recursion_desired);
        let hq = &h.queries[0];
        assert_eq!(q.wire_name, lower_wire(hq.name()));
        assert_eq!(q.plain, plain(hq.name()));
        assert_eq!(q.qtype, u16::from(hq.query_type()));
        assert_eq!(q.qclass, u16::from(hq.query_class()));

        let (Ok(ours), Ok(theirs)) = (wire::parse_answer(resp, &q), Message::from_vec(resp))
        else {
            continue;
        };
        assert_eq!(ours.rcode, theirs.metadata.response_code.low());
        assert_eq!(ours.truncated, theirs.metadata.truncation);
        let addrs: Vec<_> = theirs
            .answers
            .iter()
            .filter(|r| r.dns_class == DNSClass::IN)
            .filter_map(|r| match &r.data {
                RData::A(a) => Some((std::net::IpAddr::V4(a.0), r.ttl)),
                RData::AAAA(a) => Some((std::net::IpAddr::V6(a.0), r.ttl)),
                _ => None,
            })
            .collect();
        assert_eq!(ours.addrs, addrs);
        let cnames: Vec<_> = theirs
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::CNAME(c) if plain(&c.0) => Some(lower_dotted(&c.0)),
                _ => None,
            })
            .collect();
        assert_eq!(ours.cnames, cnames);
        if !theirs.answers.is_empty() {
            assert_eq!(ours.cache_ttl, theirs.answers.iter().map(|r| r.ttl).min());
        }
    }
});
