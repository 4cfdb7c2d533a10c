//! The forwarder's side of an upstream answer on any bytes: the verdict on an
//! arriving datagram (server, port, ID, question, letter case), 0x20 scrambling
//! of the question we send, and reading the answer once accepted. Never a
//! panic; an accepted answer carries our ID and our question; our own echo is
//! always accepted, and its lowercase copy only when the case was not scrambled
//! or had no capital to lose.
//!
//! Input: byte 0 = where the query ends (from byte 1); then the query, then the
//! datagram. The case bits and the ID come from the query's first bytes.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use wgsplit::dns::{
    forward_guard::{CASE_BITS_BYTES, Sent, Verdict, judge, scramble_case},
    wire,
};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else { return };
    let cut = (cut as usize).min(rest.len());
    let (req, datagram) = rest.split_at(cut);
    let server: SocketAddr = "10.64.0.1:53".parse().unwrap();
    let Ok(q) = wire::parse_query(req) else {
        // Not a query of ours: judging the bytes against any question is still safe.
        let sent = Sent {
            server,
            id: 0,
            question: req,
            exact_case: true,
        };
        let _ = judge(datagram, server, &sent);
        return;
    };
    let mut bits = [0u8; CASE_BITS_BYTES];
    for (b, x) in bits.iter_mut().zip(req.iter().cycle()) {
        *b = *x;
    }
    let mut out = req.to_vec();
    let name_end = q.q_end - 4;
    scramble_case(&mut out[12..name_end], &bits);
    assert!(out[12..name_end].eq_ignore_ascii_case(&req[12..name_end]));
    let id = u16::from_be_bytes([req[0], req[1]]) ^ 0x5a5a;
    out[0..2].copy_from_slice(&id.to_be_bytes());
    for exact_case in [true, false] {
        let sent = Sent {
            server,
            id,
            question: &out[12..q.q_end],
            exact_case,
        };
        // Whatever arrives, from the server or from anyone else.
        for from in [server, "10.64.0.1:54".parse().unwrap(), "[::ffff:10.64.0.1]:53".parse().unwrap()] {
            let v = judge(datagram, from, &sent);
            if v != Verdict::Reject {
                assert_eq!(from.port(), 53);
                assert_eq!(wire::id_of(datagram), Some(id));
                let echo = &datagram[12..q.q_end];
                assert!(echo.eq_ignore_ascii_case(sent.question));
                assert_eq!(&echo[echo.len() - 4..], &sent.question[echo.len() - 4..]);
            }
            if v == Verdict::Accept {
                if exact_case {
                    assert_eq!(&datagram[12..q.q_end], sent.question);
                }
                // The resolver reads it next: any bytes, no panic.
                if let Ok(a) = wire::parse_answer(datagram, &q) {
                    let back = wire::rewrite(datagram, req, &q, &a.ttl_offsets, 1);
                    assert_eq!(&back[12..q.q_end], &req[12..q.q_end]);
                }
            }
        }
        // Our own question echoed as an empty answer: always ours.
        let mut echo = out[..q.q_end].to_vec();
        echo[2] |= 0x80;
        echo[6..12].fill(0);
        assert_eq!(judge(&echo, server, &sent), Verdict::Accept);
        echo[12..name_end].make_ascii_lowercase();
        let lost_case = echo[12..name_end] != out[12..name_end];
        let want = if exact_case && lost_case {
            Verdict::CaseMismatch
        } else {
            Verdict::Accept
        };
        assert_eq!(judge(&echo, server, &sent), want);
    }
});
