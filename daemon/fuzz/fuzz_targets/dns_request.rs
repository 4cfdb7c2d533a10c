//! The resolver's request path on any bytes: reading the query, matching it for a
//! client, the answers we make ourselves, and reading/rewriting an upstream answer
//! to it never panic, and what we write reads back with the same question.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wgsplit::dns::{Resolver, matcher::NameHashes, wire};

const CONFIG: &str = "config server 'server'
	option address '10.8.0.1/24'
	option private_key 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='
	option block_answer 'null'
config client 'alice'
	option public_key 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='
	list address '10.8.0.2/32'
config rule
	option client 'alice'
	option action 'block'
	list domain 'ads.example'
	list domain '*.a'
	list domain '=b'
";

fn resolver() -> &'static std::sync::Arc<Resolver> {
    static R: OnceLock<std::sync::Arc<Resolver>> = OnceLock::new();
    R.get_or_init(|| {
        let config = wgsplit::config::parse_valid(CONFIG).unwrap();
        let policy = wgsplit::policy::compile(&config, 0);
        Resolver::new(std::sync::Arc::new(policy))
    })
}

fuzz_target!(|data: &[u8]| {
    // The whole local path as a client would hit it (no upstream is configured:
    // nothing leaves the process).
    let _ = resolver().answer_locally(data, "10.8.0.2:5353".parse().unwrap());
    // Split: the first part is a query, the rest an upstream's answer to it.
    let cut = data.first().map_or(0, |&b| b as usize).min(data.len());
    let (req, resp) = data.split_at(cut);
    for req in [data, req] {
        let Ok(q) = wire::parse_query(req) else { continue };
        let name = q.name();
        if q.plain && !name.is_empty() {
            assert!(NameHashes::new(&name).is_some() || name.len() > 253);
        }
        for rcode in [wire::RCODE_SERVFAIL, wire::RCODE_NXDOMAIN] {
            let a = wire::parse_answer(&wire::error_answer(req, &q, rcode), &q).unwrap();
            assert_eq!(a.rcode, rcode);
        }
        wire::parse_answer(&wire::null_answer(req, &q, 60), &q).unwrap();
        assert!(wire::parse_answer(&wire::truncated(req, &q, 0), &q).unwrap().truncated);
        if let Ok(a) = wire::parse_answer(resp, &q) {
            let out = wire::rewrite(resp, req, &q, &a.ttl_offsets, 7);
            let b = wire::parse_answer(&out, &q).expect("a rewritten answer reads back");
            assert_eq!(a.addrs.len(), b.addrs.len());
            assert_eq!(a.cnames, b.cnames);
        }
    }
});
