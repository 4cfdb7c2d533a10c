//! Our DNS wire reader against hickory-proto's on any bytes (the oracle of
//! `src/dns/wire_oracle_tests.rs`, here on what the fuzzer makes): wherever both
//! read a packet, they read the same question, flags, addresses and CNAME
//! targets (`src/dns/wire_oracle.rs`, shared with those tests). Where only one
//! reads it, nothing is asserted: ours reads only the parts the resolver uses,
//! hickory checks every record.
//!
//! The layout is dns_request's: byte 0 is the split point, data[..cut] a query
//! and data[cut..] an upstream's answer to it (the seeds are the same).
#![no_main]

use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;
use wgsplit::dns::wire;

#[path = "../../src/dns/wire_oracle.rs"]
mod wire_oracle;

fuzz_target!(|data: &[u8]| {
    let cut = data.first().map_or(0, |&b| b as usize).min(data.len());
    let (req, resp) = data.split_at(cut);
    for req in [data, req] {
        let Ok(q) = wire::parse_query(req) else { continue };
        let Ok(h) = Message::from_vec(req) else { continue };
        wire_oracle::same_query(&q, &h);
        let (Ok(ours), Ok(theirs)) = (wire::parse_answer(resp, &q), Message::from_vec(resp))
        else {
            continue;
        };
        wire_oracle::same_answer(&ours, &theirs);
    }
});
