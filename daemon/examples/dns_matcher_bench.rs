//! The matcher against a large list: lookups per second and bytes per name,
//! printed against the goals (≥ 5 M lookups/s, ≤ 64 bytes/name).
//!
//! `cargo run --release --example dns_matcher_bench -- [names] [queries] [rounds]`
//!
//! The lookups run in `lookups` (not inlined), so an instruction count that does
//! not depend on the machine's load can be taken with
//! `valgrind --tool=callgrind --toggle-collect='*lookups*' <bench> 1000000 200000 1`
//! (instructions per lookup = Ir / (queries × rounds)).

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

/// What the resolver does per name: hash the suffixes (into the same value
/// each time, as the resolver does), probe. (Names arrive lowercase from the
/// wire reader.)
#[inline(never)]
fn lookups(set: &NameSet, queries: &[String], rounds: usize) -> usize {
    let mut hits = 0;
    let mut h = NameHashes::default();
    for _ in 0..rounds {
        for q in queries {
            if h.set_lower(q.as_bytes()) {
                hits += set.matches(&h) as usize;
            }
        }
    }
    hits
}

/// The same from the query's wire form (what the resolver hashes).
#[inline(never)]
fn lookups_wire(set: &NameSet, queries: &[Vec<u8>]) -> usize {
    let mut hits = 0;
    let mut h = NameHashes::default();
    for q in queries {
        if h.set_wire(q) {
            hits += set.matches(&h) as usize;
        }
    }
    hits
}

#[inline(never)]
fn hash_only(queries: &[String]) -> usize {
    let mut labels = 0;
    let mut h = NameHashes::default();
    for q in queries {
        if h.set_lower(q.as_bytes()) {
            labels += h.labels();
        }
    }
    labels
}

#[inline(never)]
fn probe_only(set: &NameSet, hashed: &[NameHashes]) -> usize {
    hashed.iter().filter(|h| set.matches(h)).count()
}

fn wire(name: &str) -> Vec<u8> {
    let mut w = Vec::with_capacity(name.len() + 2);
    for l in name.split('.') {
        w.push(l.len() as u8);
        w.extend_from_slice(l.as_bytes());
    }
    w.push(0);
    w
}

fn main() {
    let arg = |i: usize, d: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(d)
    };
    let n = arg(1, 1_000_000);
    let nq = arg(2, 1_000_000);
    let rounds = arg(3, 3);
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
    let queries: Vec<String> = (0..nq)
        .map(|i| {
            let k = (i.wrapping_mul(2_654_435_761)) % n;
            match i % 4 {
                0 => name(k),
                1 => format!("www.cdn.{}", name(k)),
                _ => format!("host{i}.unlisted{}.{}", i % 101, tlds[i % tlds.len()]),
            }
        })
        .collect();
    let t = Instant::now();
    let c0 = cpu_s();
    let hits = lookups(&set, &queries, rounds);
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_s() - c0;
    // The halves apart: hashing alone, probing alone, and the wire form.
    let c0 = cpu_s();
    let labels = hash_only(&queries);
    let hash_ns = (cpu_s() - c0) * 1e9 / nq as f64;
    let hashed: Vec<NameHashes> = queries[..nq.min(100_000)]
        .iter()
        .map(|q| NameHashes::from_lower(q.as_bytes()).unwrap())
        .collect();
    let c0 = cpu_s();
    let probe_hits = probe_only(&set, &hashed);
    let probe_ns = (cpu_s() - c0) * 1e9 / hashed.len() as f64;
    let wires: Vec<Vec<u8>> = queries.iter().map(|q| wire(q)).collect();
    let c0 = cpu_s();
    let wire_hits = lookups_wire(&set, &wires);
    let wire_cpu = cpu_s() - c0;
    assert_eq!(wire_hits * rounds, hits, "wire and dotted forms disagree");
    assert!(probe_hits <= hashed.len());
    eprintln!(
        "hash {hash_ns:.0} ns/name ({:.2} labels/name), probe {probe_ns:.0} ns/name (CPU time)",
        labels as f64 / nq as f64
    );
    let lookups = (rounds * nq) as f64;
    let per_cpu = lookups / cpu;
    let per_wall = lookups / secs;
    let bytes = set.memory() as f64 / n as f64;
    println!(
        "{{\"names\":{n},\"build_ms\":{},\"table_bytes_per_name\":{bytes:.1},\"rss_bytes_per_name\":{:.1},\"lookups_per_s\":{per_wall:.0},\"lookups_per_cpu_s\":{per_cpu:.0},\"wire_lookups_per_cpu_s\":{:.0},\"hit_ratio\":{:.3}}}",
        build.as_millis(),
        (after.saturating_sub(before) * 1024) as f64 / n as f64,
        nq as f64 / wire_cpu,
        hits as f64 / lookups
    );
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    eprintln!(
        "goal ≥ 5,000,000 lookups/s: {:.2} M per CPU-second, {:.2} M per wall second: {}; goal ≤ 64 bytes/name: {bytes:.1}: {}",
        per_cpu / 1e6,
        per_wall / 1e6,
        verdict(per_cpu >= 5e6),
        verdict(bytes <= 64.0)
    );
}
