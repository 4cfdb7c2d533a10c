//! Unit tests of the encoder and the acknowledgement parser (no kernel).

use std::net::Ipv4Addr;

use super::*;

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_ne_bytes(b[i..i + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_ne_bytes(b[i..i + 4].try_into().unwrap())
}

/// Walks the batch: (type, flags, seq, family, payload) per message.
fn messages(b: &[u8]) -> Vec<(u16, u16, u32, u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let len = u32_at(b, i) as usize;
        assert!(len >= 20 && len.is_multiple_of(4), "bad length {len}");
        out.push((
            u16_at(b, i + 4),
            u16_at(b, i + 6),
            u32_at(b, i + 8),
            b[i + 16],
            b[i + 20..i + len].to_vec(),
        ));
        i += len;
    }
    assert_eq!(i, b.len());
    out
}

/// Attributes of a payload: (type without flags, value).
fn attrs(mut p: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    while p.len() >= 4 {
        let l = u16_at(p, 0) as usize;
        out.push((u16_at(p, 2) & 0x3fff, p[4..l].to_vec()));
        p = &p[align4(l).min(p.len())..];
    }
    out
}

#[test]
fn encodes_one_element_with_timeout() {
    let e = [Elem::with_timeout("1.2.3.4".parse().unwrap(), 60_000)];
    let b = encode(
        NFPROTO_INET,
        "wgsplit",
        &[Op::Add {
            set: "alice_r0_dns4",
            elems: &e,
        }],
        7,
    );
    let m = messages(b.bytes());
    assert_eq!(m.len(), 3);
    // Batch begin: subsystem nftables in res_id, big-endian.
    assert_eq!(m[0].0, NFNL_MSG_BATCH_BEGIN);
    assert_eq!(m[0].2, 7);
    assert_eq!(&b.bytes()[18..20], &[0, 10]);
    assert_eq!(m[1].0, (10 << 8) | 12);
    assert_eq!(m[1].1, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE);
    assert_eq!(m[1].2, 8);
    assert_eq!(m[1].3, NFPROTO_INET);
    assert_eq!(m[2].0, NFNL_MSG_BATCH_END);
    assert_eq!(m[2].2, 9);
    // A refresh is three messages; only the last asks for an ack.
    let r = encode(
        NFPROTO_INET,
        "wgsplit",
        &[Op::Refresh {
            set: "alice_r0_dns4",
            elems: &e,
        }],
        7,
    );
    let flags: Vec<u16> = messages(r.bytes()).iter().map(|m| m.1).collect();
    assert_eq!(
        flags,
        [
            NLM_F_REQUEST,
            NLM_F_REQUEST | NLM_F_CREATE,
            NLM_F_REQUEST,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE,
            NLM_F_REQUEST
        ]
    );
    let a = attrs(&m[1].4);
    assert_eq!(a[0], (1, b"wgsplit\0".to_vec()));
    assert_eq!(a[1], (2, b"alice_r0_dns4\0".to_vec()));
    assert_eq!(a[2].0, 3);
    let list = attrs(&a[2].1);
    assert_eq!(list.len(), 1);
    let el = attrs(&list[0].1);
    assert_eq!(el[0].0, NFTA_SET_ELEM_KEY);
    assert_eq!(attrs(&el[0].1), vec![(1, vec![1, 2, 3, 4])]);
    assert_eq!(
        el[1],
        (NFTA_SET_ELEM_TIMEOUT, 60_000u64.to_be_bytes().to_vec())
    );
    assert_eq!(b.msgs[0].elems.len(), 1);
}

#[test]
fn refresh_is_add_delete_add_and_delete_has_no_timeout() {
    let e = [Elem {
        expiration_ms: Some(5000),
        ..Elem::with_timeout("2001:db8::1".parse().unwrap(), 9000)
    }];
    let b = encode(
        NFPROTO_INET,
        "t",
        &[Op::Refresh {
            set: "s",
            elems: &e,
        }],
        1,
    );
    let m = messages(b.bytes());
    let kinds: Vec<u16> = m.iter().map(|x| x.0 & 0xff).collect();
    assert_eq!(kinds, vec![0x10, 12, 14, 12, 0x11]);
    for (i, msg) in m[1..4].iter().enumerate() {
        let list = attrs(&attrs(&msg.4)[2].1);
        let el = attrs(&list[0].1);
        assert_eq!(attrs(&el[0].1)[0].1.len(), 16);
        let has_timeout = el.iter().any(|x| x.0 == NFTA_SET_ELEM_TIMEOUT);
        let has_exp = el.iter().any(|x| x.0 == NFTA_SET_ELEM_EXPIRATION);
        assert_eq!(has_timeout, i != 1, "message {i}");
        assert_eq!(has_exp, i != 1, "message {i}");
    }
    assert_eq!(m[2].1 & NLM_F_CREATE, 0);
}

#[test]
fn flush_has_no_element_list() {
    let b = encode(NFPROTO_INET, "t", &[Op::Flush { set: "s" }], 1);
    let m = messages(b.bytes());
    assert_eq!(m[1].0 & 0xff, NFT_MSG_DELSETELEM);
    assert_eq!(attrs(&m[1].4).len(), 2);
}

#[test]
fn big_lists_split_under_the_attribute_limit() {
    let elems: Vec<Elem> = (0..100_000u32)
        .map(|i| Elem::with_timeout(IpAddr::V4(Ipv4Addr::from(i)), 1000))
        .collect();
    let b = encode(
        NFPROTO_INET,
        "t",
        &[Op::Add {
            set: "s",
            elems: &elems,
        }],
        1,
    );
    let m = messages(b.bytes());
    assert!(m.len() > 3);
    let mut total = 0;
    for (i, msg) in m[1..m.len() - 1].iter().enumerate() {
        let a = attrs(&msg.4);
        assert!(a[2].1.len() + 4 <= MAX_NEST);
        let n = attrs(&a[2].1).len();
        assert_eq!(b.msgs[i].first_elem, total);
        assert_eq!(b.msgs[i].elems.len(), n);
        total += n;
    }
    assert_eq!(total, elems.len());
    // Sequence numbers are consecutive.
    for w in m.windows(2) {
        assert_eq!(w[1].2, w[0].2 + 1);
    }
}

#[test]
fn intervals_merge_and_close() {
    let nets: Vec<IpNet> = [
        "10.0.0.0/24",
        "10.0.1.0/24",
        "10.0.0.128/25",
        "192.168.0.0/16",
        "255.255.255.0/24",
        "2001:db8::/32",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let e = intervals(&nets);
    let show: Vec<String> = e
        .iter()
        .map(|x| format!("{}{}", x.key, if x.interval_end { "!" } else { "" }))
        .collect();
    assert_eq!(
        show,
        vec![
            "10.0.0.0",
            "10.0.2.0!",
            "192.168.0.0",
            "192.169.0.0!",
            "255.255.255.0",
            "2001:db8::",
            "2001:db9::!"
        ]
    );
    let flags = attrs(&{
        let mut buf = Vec::new();
        encode_elem(&mut buf, &e[1], true, None);
        attrs(&buf)[0].1.clone()
    });
    assert_eq!(flags[1], (NFTA_SET_ELEM_FLAGS, 1u32.to_be_bytes().to_vec()));
}

#[test]
fn a_map_element_carries_a_goto_verdict() {
    let e = [MapElem {
        elem: Elem::addr("10.0.0.0".parse().unwrap()),
        goto: Some("mark_up_a"),
    }];
    let b = encode(
        NFPROTO_INET,
        "wgsplit",
        &[Op::AddMap {
            set: "c_r0_map4",
            elems: &e,
        }],
        1,
    );
    let m = messages(b.bytes());
    let list = attrs(&attrs(&m[1].4)[2].1);
    let el = attrs(&list[0].1);
    assert_eq!(el[1].0, NFTA_SET_ELEM_DATA);
    let verdict = attrs(&attrs(&el[1].1)[0].1);
    assert_eq!(
        verdict[0],
        (NFTA_VERDICT_CODE, NFT_GOTO.to_be_bytes().to_vec())
    );
    assert_eq!(verdict[1], (NFTA_VERDICT_CHAIN, b"mark_up_a\0".to_vec()));
}

#[test]
fn parses_error_acks_with_offsets() {
    // An NLMSG_ERROR for seq 42, ENOENT, capped, with a message and an offset.
    let mut b = Vec::new();
    let at = b.len();
    put_u32(&mut b, 0);
    put_u16(&mut b, NLMSG_ERROR);
    put_u16(&mut b, NLM_F_CAPPED | NLM_F_ACK_TLVS);
    put_u32(&mut b, 42);
    put_u32(&mut b, 0);
    b.extend_from_slice(&(-2i32).to_ne_bytes());
    // The original header (capped).
    put_u32(&mut b, 100);
    put_u16(&mut b, 0x0a0c);
    put_u16(&mut b, 5);
    put_u32(&mut b, 42);
    put_u32(&mut b, 0);
    put_attr_str(&mut b, NLMSGERR_ATTR_MSG, "no such set");
    put_attr(&mut b, NLMSGERR_ATTR_OFFS, &64u32.to_ne_bytes());
    msg_end(&mut b, at);
    // And a plain success ack for seq 43.
    let at = b.len();
    put_u32(&mut b, 0);
    put_u16(&mut b, NLMSG_ERROR);
    put_u16(&mut b, NLM_F_CAPPED);
    put_u32(&mut b, 43);
    put_u32(&mut b, 0);
    put_u32(&mut b, 0);
    put_u32(&mut b, 20);
    put_u16(&mut b, 0x0a0c);
    put_u16(&mut b, 5);
    put_u32(&mut b, 43);
    put_u32(&mut b, 0);
    msg_end(&mut b, at);
    let acks = parse_acks(&b);
    assert_eq!(
        acks,
        vec![
            Ack {
                seq: 42,
                errno: 2,
                offset: Some(64),
                message: Some("no such set".into())
            },
            Ack {
                seq: 43,
                errno: 0,
                offset: None,
                message: None
            }
        ]
    );
}
