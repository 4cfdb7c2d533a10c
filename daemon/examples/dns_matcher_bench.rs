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

/// CPU time of this thread (the machine may be shared: wall time lies).
fn cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a live timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
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
    let c0 = cpu_s();
    for _ in 0..rounds {
        for q in &queries {
            // What the resolver does per name: hash the suffixes, probe.
            // (Names arrive lowercase from the wire reader.)
            let h = NameHashes::from_lower(q.as_bytes()).unwrap();
            hits += set.matches(&h) as usize;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_s() - c0;
    // The two halves apart: hashing alone, probing alone.
    let t = Instant::now();
    let mut labels = 0usize;
    for q in &queries {
        labels += NameHashes::from_lower(q.as_bytes()).unwrap().labels();
    }
    let hash_ns = t.elapsed().as_nanos() as f64 / queries.len() as f64;
    let hashed: Vec<NameHashes> = queries[..100_000]
        .iter()
        .map(|q| NameHashes::from_lower(q.as_bytes()).unwrap())
        .collect();
    let t = Instant::now();
    for h in &hashed {
        hits += set.matches(h) as usize;
    }
    let probe_ns = t.elapsed().as_nanos() as f64 / hashed.len() as f64;
    eprintln!("hash {hash_ns:.0} ns/name ({labels} labels), probe {probe_ns:.0} ns/name");
    let lookups = (rounds * queries.len()) as f64;
    println!(
        "{{\"names\":{n},\"build_ms\":{},\"table_bytes_per_name\":{:.1},\"rss_bytes_per_name\":{:.1},\"lookups_per_s\":{:.0},\"lookups_per_cpu_s\":{:.0},\"hit_ratio\":{:.3}}}",
        build.as_millis(),
        set.memory() as f64 / n as f64,
        (after.saturating_sub(before) * 1024) as f64 / n as f64,
        lookups / secs,
        lookups / cpu,
        hits as f64 / lookups
    );
}
