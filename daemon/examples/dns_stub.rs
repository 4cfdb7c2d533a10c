//! A fast stub DNS server for the resolver benchmark (tests/bench/dns.sh): answers
//! every A query with one address derived from the name (so each distinct name
//! gives a distinct set element), TTL 300; AAAA and others get no records.
//!
//! `cargo run --release --example dns_stub -- 10.99.0.53:53 [threads]`

use std::{net::UdpSocket, thread};

use wgsplit::dns::wire;

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().expect("usage: dns_stub ADDR:PORT [threads]");
    let threads: usize = args.next().and_then(|t| t.parse().ok()).unwrap_or(2);
    let sock = UdpSocket::bind(&addr).expect("bind");
    println!("ready");
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let sock = sock.try_clone().unwrap();
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    let Ok((n, src)) = sock.recv_from(&mut buf) else {
                        continue;
                    };
                    let req = &buf[..n];
                    let Ok(q) = wire::parse_query(req) else {
                        continue;
                    };
                    let mut out = wire::null_answer(req, &q, 300);
                    if q.qtype == wire::TYPE_A && out.len() >= 4 {
                        // FNV-1a of the name → 10.128.0.0/9.
                        let h = q.name().bytes().fold(0x811c_9dc5u32, |h, b| {
                            (h ^ b as u32).wrapping_mul(0x0100_0193)
                        });
                        let a = 0x0a80_0000 | (h & 0x007f_ffff);
                        let l = out.len();
                        out[l - 4..].copy_from_slice(&a.to_be_bytes());
                    }
                    let _ = sock.send_to(&out, src);
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}
