//! The matcher against a large list: lookups per second and bytes per name.
//!
//! `cargo run --release --example dns_matcher_bench -- [names]`

use std::time::Instant;

use wgsplit::dns::matcher::{Kind, NameHashes, NameSet};

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let tlds = ["com", "net", "org", "io", "de", "ru", "cn", "co.uk"];
    let name = |i: usize| {
        format!(
            "site{}-{}.example{}.{}",
            i,
            i % 977,
            i % 13,
            tlds[i % tlds.len()]
        )
    };
    let before = rss_kb();
    let t = Instant::now();
    let mut set = NameSet::with_capacity(n);
    for i in 0..n {
        set.insert(
            &name(i),
            if i % 10 == 0 {
                Kind::Exact
            } else {
                Kind::Suffix
            },
        );
    }
    let build = t.elapsed();
    let after = rss_kb();
    // Queries: a quarter listed names, a quarter subdomains of them, half misses.
    let queries: Vec<String> = (0..1_000_000usize)
        .map(|i| {
            let k = (i.wrapping_mul(2_654_435_761)) % n;
            match i % 4 {
                0 => name(k),
                1 => format!("www.cdn.{}", name(k)),
                _ => format!("host{i}.unlisted{}.{}", i % 101, tlds[i % tlds.len()]),
            }
        })
        .collect();
    let mut hits = 0usize;
    let rounds = 3;
    let t = Instant::now();
    for _ in 0..rounds {
        for q in &queries {
            // What the resolver does per name: hash the suffixes, probe.
            let h = NameHashes::new(q).unwrap();
            hits += set.matches(&h) as usize;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let lookups = (rounds * queries.len()) as f64;
    println!(
        "{{\"names\":{n},\"build_ms\":{},\"table_bytes_per_name\":{:.1},\"rss_bytes_per_name\":{:.1},\"lookups_per_s\":{:.0},\"hit_ratio\":{:.3}}}",
        build.as_millis(),
        set.memory() as f64 / n as f64,
        (after.saturating_sub(before) * 1024) as f64 / n as f64,
        lookups / secs,
        hits as f64 / lookups
    );
}
