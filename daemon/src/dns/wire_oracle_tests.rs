//! `hickory-proto`, the DNS library a reviewer would have used, as the oracle of
//! our wire format (`wire.rs`). It is a dev-dependency only: the router binary
//! carries none of it (`cargo tree -e normal` shows it absent).
//!
//! Both directions, over a seeded corpus of packets hickory builds (names with
//! plain and odd labels in mixed case, the root, every section, name
//! compression, EDNS, CNAME chains, SOA, records of other types and classes):
//! - what hickory encodes, ours reads to the same question, flags, addresses,
//!   CNAME targets, TTL positions and cache TTL;
//! - what ours builds (SERVFAIL, NXDOMAIN, REFUSED, NODATA, truncation, the
//!   null block answer, header-only FORMERR/NOTIMP, a cached answer rewritten
//!   for another client and aged) hickory reads to what we meant.
//!
//! Queries ours refuses by design (not exactly one question, an opcode other
//! than QUERY, a response) are part of the corpus with the refusal expected.

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, Query as HQuery, ResponseCode},
    rr::{
        DNSClass, Name, RData, Record, RecordType,
        rdata::{A, AAAA, CNAME, MX, SOA, TXT},
    },
};

use super::{
    wire::{self, Query, WireError},
    wire_oracle::{lower_dotted, same_answer, same_query},
};

/// Packets of each kind the corpus holds; the seeds make it the same every run.
const CORPUS_SIZE: usize = 3_000;
/// Longest label the generator makes (the wire format's bound is 63).
const MAX_LABEL: usize = 63;
/// The name's wire bound: hickory refuses longer names, so the generator stays under it.
const MAX_NAME_WIRE: usize = 255;

/// A small deterministic generator (xorshift64*): no extra dependency, and a
/// failing case is reproduced by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
    fn pick_name(&mut self, names: &[Name]) -> Name {
        names[self.below(names.len() as u64) as usize].clone()
    }
}

/// Label bytes: mostly host-label bytes in both cases, sometimes bytes that
/// make a name not plain (a dot inside a label, a space, a high byte).
fn label(rng: &mut Rng) -> Vec<u8> {
    const PLAIN: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
    const ODD: &[u8] = b". *\\\x00\x7f\xc3\xff@";
    let len = match rng.below(10) {
        0 => MAX_LABEL,
        1..=3 => 1 + rng.below(3) as usize,
        _ => 1 + rng.below(20) as usize,
    };
    let odd = rng.chance(8);
    (0..len)
        .map(|_| {
            if odd && rng.chance(20) {
                rng.pick(ODD)
            } else {
                rng.pick(PLAIN)
            }
        })
        .collect()
}

fn name(rng: &mut Rng) -> Name {
    if rng.chance(2) {
        return Name::root();
    }
    let mut labels: Vec<Vec<u8>> = Vec::new();
    let mut wire = 1;
    for _ in 0..1 + rng.below(6) {
        let l = label(rng);
        if wire + 1 + l.len() > MAX_NAME_WIRE {
            break;
        }
        wire += 1 + l.len();
        labels.push(l);
    }
    Name::from_labels(labels.iter().map(|l| l.as_slice())).expect("labels within bounds")
}

const QTYPES: &[u16] = &[1, 28, 5, 15, 16, 33, 65, 255, 6, 12];

/// A query as a client sends it, and the EDNS payload size it carries.
fn hickory_query(rng: &mut Rng) -> (Message, Option<u16>) {
    let mut m = Message::new(rng.next() as u16, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = rng.chance(80);
    m.metadata.checking_disabled = rng.chance(10);
    let mut q = HQuery::query(name(rng), RecordType::from(rng.pick(QTYPES)));
    if rng.chance(5) {
        q.set_query_class(rng.pick(&[DNSClass::CH, DNSClass::ANY, DNSClass::HS]));
    }
    m.add_query(q);
    let edns = rng
        .chance(50)
        .then(|| rng.pick(&[512u16, 1232, 1452, 4096, 8192, 65535]));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        e.set_dnssec_ok(rng.chance(30));
        m.set_edns(e);
    }
    (m, edns)
}

fn record(rng: &mut Rng, owner: &Name, names: &[Name]) -> Record {
    let ttl = match rng.below(5) {
        0 => 0,
        1 => u32::MAX,
        _ => rng.below(100_000) as u32,
    };
    let owner = if rng.chance(70) {
        owner.clone()
    } else {
        rng.pick_name(names)
    };
    let data = match rng.below(10) {
        0..=2 => RData::A(A(Ipv4Addr::from(rng.next() as u32))),
        3..=4 => RData::AAAA(AAAA(Ipv6Addr::from(
            (u128::from(rng.next()) << 64) | u128::from(rng.next()),
        ))),
        5..=7 => RData::CNAME(CNAME(rng.pick_name(names))),
        8 => RData::MX(MX::new(rng.below(100) as u16, rng.pick_name(names))),
        _ => RData::TXT(TXT::new(vec!["v=spf1 -all".into()])),
    };
    let mut r = Record::from_rdata(owner, ttl, data);
    if rng.chance(3) {
        r.dns_class = DNSClass::CH;
    }
    r
}

fn soa(rng: &mut Rng, owner: &Name, names: &[Name]) -> (Record, u32, u32) {
    let ttl = rng.below(7_200) as u32;
    let minimum = rng.below(7_200) as u32;
    let data = SOA::new(
        rng.pick_name(names),
        rng.pick_name(names),
        rng.next() as u32,
        3_600,
        600,
        86_400,
        minimum,
    );
    (
        Record::from_rdata(owner.clone(), ttl, RData::SOA(data)),
        ttl,
        minimum,
    )
}

/// An upstream's answer to `query`, and the negative TTL its last SOA in the
/// authority section gives (what ours caches an empty answer for).
fn hickory_answer(rng: &mut Rng, query: &Message) -> (Message, Option<u32>) {
    let mut m = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = query.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.metadata.authoritative = rng.chance(20);
    m.metadata.truncation = rng.chance(10);
    m.metadata.response_code = ResponseCode::from_low(rng.pick(&[0u8, 0, 0, 2, 3, 5]));
    let q = query.queries[0].clone();
    let owner = q.name().clone();
    m.add_query(q);
    let names: Vec<Name> = (0..4).map(|_| name(rng)).chain([owner.clone()]).collect();
    for _ in 0..rng.below(8) {
        m.add_answer(record(rng, &owner, &names));
    }
    let mut negative = None;
    for _ in 0..rng.below(3) {
        if rng.chance(60) {
            let (r, ttl, minimum) = soa(rng, &owner, &names);
            negative = Some(ttl.min(minimum));
            m.add_authority(r);
        } else {
            m.add_authority(record(rng, &owner, &names));
        }
    }
    for _ in 0..rng.below(3) {
        m.add_additional(record(rng, &owner, &names));
    }
    if rng.chance(50) {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    (m, negative)
}

fn encode(m: &Message) -> Vec<u8> {
    m.to_vec().expect("hickory encodes its own message")
}

fn decode(b: &[u8]) -> Message {
    Message::from_vec(b).unwrap_or_else(|e| panic!("hickory cannot read ours: {e}: {b:02x?}"))
}

/// What ours must read from a query hickory built.
fn check_query(m: &Message, edns: Option<u16>, b: &[u8]) -> Query {
    let ours = wire::parse_query(b).unwrap_or_else(|e| panic!("ours refused {e:?}: {b:02x?}"));
    same_query(&ours, m);
    let hq = &m.queries[0];
    assert_eq!(
        ours.q_end,
        b.len() - edns.map_or(0, |_| 11),
        "end of the question"
    );
    assert_eq!(ours.edns, edns, "EDNS payload");
    // hickory's reading of the payload (at least 512) within ours (at most 4096).
    let theirs = decode(b).edns.map_or(512, |e| usize::from(e.max_payload()));
    assert_eq!(ours.udp_limit(), theirs.clamp(512, 4096), "UDP limit");
    if ours.plain {
        assert_eq!(ours.name(), lower_dotted(hq.name()), "dotted name");
    }
    ours
}

/// What ours must read from an answer hickory built.
fn check_answer(m: &Message, negative: Option<u32>, b: &[u8], q: &Query) -> wire::Answer {
    let ours = wire::parse_answer(b, q).unwrap_or_else(|e| panic!("ours refused {e:?}: {m:?}"));
    same_answer(&ours, m);
    // Every record but OPT has its TTL where ours will age it.
    let ttls: Vec<u32> = m
        .answers
        .iter()
        .chain(&m.authorities)
        .chain(&m.additionals)
        .map(|r| r.ttl)
        .collect();
    let at: Vec<u32> = ours
        .ttl_offsets
        .iter()
        .map(|&o| u32::from_be_bytes(b[o..o + 4].try_into().unwrap()))
        .collect();
    assert_eq!(at, ttls, "TTL positions");
    let expected_cache_ttl = if m.answers.is_empty() {
        negative
    } else {
        m.answers.iter().map(|r| r.ttl).min()
    };
    assert_eq!(ours.cache_ttl, expected_cache_ttl, "cache TTL");
    ours
}

/// What hickory must read from an answer ours built with no records.
fn check_built_empty(built: &[u8], request: &Message, q: &Query, rcode: u8, tc: bool) {
    let h = decode(built);
    assert_eq!(h.metadata.id, q.id, "id");
    assert_eq!(h.metadata.message_type, MessageType::Response, "QR");
    assert_eq!(h.metadata.op_code, OpCode::Query, "opcode");
    assert_eq!(h.metadata.recursion_desired, q.rd, "RD echoed");
    assert!(h.metadata.recursion_available, "RA");
    assert_eq!(h.metadata.truncation, tc, "TC");
    assert_eq!(h.metadata.response_code.low(), rcode, "rcode");
    assert_eq!(h.queries.len(), 1, "one question");
    same_question(&h.queries[0], &request.queries[0]);
    assert!(h.answers.is_empty() && h.authorities.is_empty() && h.additionals.is_empty());
    assert!(h.edns.is_none(), "no OPT in our own answers");
}

/// The question echoed byte for byte, letter case included (hickory's `Name`
/// equality ignores case, so the labels are compared).
fn same_question(got: &HQuery, sent: &HQuery) {
    let labels = |n: &Name| n.iter().map(<[u8]>::to_vec).collect::<Vec<_>>();
    assert_eq!(labels(got.name()), labels(sent.name()), "question name");
    assert_eq!(got.query_type(), sent.query_type(), "question type");
    assert_eq!(got.query_class(), sent.query_class(), "question class");
}

#[test]
fn hickory_queries_read_the_same_in_ours_and_our_answers_read_as_meant_in_hickory() {
    let mut rng = Rng(0x5eed_0001);
    let mut plain = 0;
    for _ in 0..CORPUS_SIZE {
        let (m, edns) = hickory_query(&mut rng);
        let b = encode(&m);
        let q = check_query(&m, edns, &b);
        plain += usize::from(q.plain);
        for rcode in [
            wire::RCODE_SERVFAIL,
            wire::RCODE_NXDOMAIN,
            wire::RCODE_REFUSED,
            wire::RCODE_NOERROR,
        ] {
            check_built_empty(&wire::error_answer(&b, &q, rcode), &m, &q, rcode, false);
            check_built_empty(&wire::truncated(&b, &q, rcode), &m, &q, rcode, true);
        }
        let ttl = rng.below(3_600) as u32;
        let null = wire::null_answer(&b, &q, ttl);
        let want = match (q.qtype, q.qclass) {
            (wire::TYPE_A, wire::CLASS_IN) => Some(RData::A(A(Ipv4Addr::UNSPECIFIED))),
            (wire::TYPE_AAAA, wire::CLASS_IN) => Some(RData::AAAA(AAAA(Ipv6Addr::UNSPECIFIED))),
            _ => None,
        };
        match want {
            None => check_built_empty(&null, &m, &q, wire::RCODE_NOERROR, false),
            Some(data) => {
                let h = decode(&null);
                assert_eq!(h.metadata.response_code, ResponseCode::NoError);
                same_question(&h.queries[0], &m.queries[0]);
                assert_eq!(h.answers.len(), 1, "one null record");
                let r = &h.answers[0];
                assert_eq!((&r.data, r.ttl, r.dns_class), (&data, ttl, DNSClass::IN));
                assert_eq!(&r.name, m.queries[0].name(), "owner is the question");
            }
        }
        for rcode in [wire::RCODE_FORMERR, wire::RCODE_NOTIMP] {
            let h = decode(&wire::bare_error(&b, rcode).expect("a query gets a bare error"));
            assert_eq!(
                (h.metadata.id, h.metadata.response_code.low()),
                (q.id, rcode)
            );
            assert_eq!(h.metadata.message_type, MessageType::Response);
            assert!(h.queries.is_empty() && h.answers.is_empty());
        }
    }
    // The corpus really holds both kinds of names.
    assert!(
        plain > CORPUS_SIZE / 2 && plain < CORPUS_SIZE,
        "{plain} plain names"
    );
}

#[test]
fn hickory_answers_read_the_same_in_ours_and_rewritten_answers_read_as_meant() {
    let mut rng = Rng(0x5eed_0002);
    let (mut addrs, mut cnames, mut negatives) = (0, 0, 0);
    for _ in 0..CORPUS_SIZE {
        let (query, _) = hickory_query(&mut rng);
        let req = encode(&query);
        let q = wire::parse_query(&req).expect("hickory query");
        let (answer, negative) = hickory_answer(&mut rng, &query);
        let stored = encode(&answer);
        let ours = check_answer(&answer, negative, &stored, &q);
        addrs += ours.addrs.len();
        cnames += ours.cnames.len();
        negatives += usize::from(answer.answers.is_empty() && ours.cache_ttl.is_some());

        // The same question from another client: other ID, RD and letter case.
        let mut again = query.clone();
        again.metadata.id = rng.next() as u16;
        again.metadata.recursion_desired = rng.chance(50);
        let flipped: Vec<Vec<u8>> = query.queries[0]
            .name()
            .iter()
            .map(|l| {
                l.iter()
                    .map(|&c| {
                        if rng.chance(50) {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        }
                    })
                    .collect()
            })
            .collect();
        again.queries[0].set_name(Name::from_labels(flipped.iter().map(|l| l.as_slice())).unwrap());
        let req2 = encode(&again);
        let q2 = wire::parse_query(&req2).expect("hickory query");
        let age = rng.pick(&[0u32, 1, 59, 3_600, u32::MAX]);
        let out = wire::rewrite(&stored, &req2, &q2, &ours.ttl_offsets, age);
        let h = decode(&out);
        assert_eq!(h.metadata.id, q2.id, "id of the second client");
        assert_eq!(
            h.metadata.recursion_desired, q2.rd,
            "RD of the second client"
        );
        same_question(&h.queries[0], &again.queries[0]);
        let aged = |m: &Message| -> Vec<(Name, RecordType, u32)> {
            m.answers
                .iter()
                .chain(&m.authorities)
                .chain(&m.additionals)
                .map(|r| (r.name.clone(), r.record_type(), r.ttl))
                .collect()
        };
        let want: Vec<_> = aged(&answer)
            .into_iter()
            .map(|(n, t, ttl)| (n, t, ttl.saturating_sub(age)))
            .collect();
        assert_eq!(aged(&h), want, "records aged by {age}");
        assert_eq!(h.metadata.response_code, answer.metadata.response_code);
        assert_eq!(h.metadata.truncation, answer.metadata.truncation);
        let data = |m: &Message| m.answers.iter().map(|r| r.data.clone()).collect::<Vec<_>>();
        assert_eq!(data(&h), data(&answer), "record data untouched");
    }
    // The corpus really exercises what the resolver uses.
    assert!(addrs > CORPUS_SIZE && cnames > CORPUS_SIZE / 4 && negatives > 50);
}

#[test]
fn queries_ours_refuses_by_design_are_refused_for_the_documented_reason() {
    let mut rng = Rng(0x5eed_0003);
    for _ in 0..200 {
        let (m, _) = hickory_query(&mut rng);
        // Two questions, or none.
        let mut two = m.clone();
        two.add_query(m.queries[0].clone());
        assert_eq!(wire::parse_query(&encode(&two)), Err(WireError::Questions));
        let mut none = m.clone();
        none.queries.clear();
        assert_eq!(wire::parse_query(&encode(&none)), Err(WireError::Questions));
        // Another opcode: answered NOTIMP, the opcode echoed.
        let mut notify = m.clone();
        notify.metadata.op_code = OpCode::Notify;
        let b = encode(&notify);
        assert_eq!(wire::parse_query(&b), Err(WireError::Opcode));
        let h = decode(&wire::bare_error(&b, wire::RCODE_NOTIMP).unwrap());
        assert_eq!(h.metadata.op_code, OpCode::Notify);
        assert_eq!(h.metadata.response_code, ResponseCode::NotImp);
        // A response is not a query, and gets no answer.
        let mut resp = m.clone();
        resp.metadata.message_type = MessageType::Response;
        let b = encode(&resp);
        assert_eq!(wire::parse_query(&b), Err(WireError::NotQuery));
        assert_eq!(wire::bare_error(&b, wire::RCODE_FORMERR), None);
    }
}

/// Where both parse a byte string, they agree; the fuzz target
/// `dns_oracle` runs the same comparison on mutated packets.
fn compare_where_both_parse(b: &[u8]) {
    let Ok(h) = Message::from_vec(b) else { return };
    let Ok(ours) = wire::parse_query(b) else {
        return;
    };
    same_query(&ours, &h);
}

#[test]
fn mutated_packets_read_the_same_where_both_parse() {
    let mut rng = Rng(0x5eed_0004);
    let mut both = 0;
    for _ in 0..CORPUS_SIZE {
        let (m, _) = hickory_query(&mut rng);
        let mut b = encode(&m);
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(b.len() as u64) as usize;
            b[i] = rng.next() as u8;
        }
        if Message::from_vec(&b).is_ok() && wire::parse_query(&b).is_ok() {
            both += 1;
        }
        compare_where_both_parse(&b);
    }
    assert!(
        both > CORPUS_SIZE / 4,
        "{both} mutated packets read by both"
    );
}
