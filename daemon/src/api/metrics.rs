//! `/metrics` in the Prometheus text format: per-client traffic and handshake
//! age, upstream health, the API's own request counts; other parts of the
//! daemon (the DNS resolver) add theirs through `Hooks::metrics`.

use std::{collections::HashMap, fmt::Write as _, sync::Mutex, time::Duration};

use crate::{
    clients::live::{self, PeerStats},
    config::Config,
    health::{State, UpstreamHealth},
};

/// A label value with `\`, `"` and newlines escaped.
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

pub fn clients(out: &mut String, c: &Config, stats: &PeerStats) {
    let now = crate::util::time::now_unix();
    let peers: Vec<_> = c
        .clients
        .iter()
        .map(|x| (x, live::client_peer(c, x, stats)))
        .collect();
    head(
        out,
        "wgsplit_client_active",
        "gauge",
        "1 if the client is enabled and not expired",
    );
    for (x, _) in &peers {
        let _ = writeln!(
            out,
            "wgsplit_client_active{{client=\"{}\"}} {}",
            label(&x.name),
            u8::from(live::client_state(x, now) == "enabled")
        );
    }
    head(
        out,
        "wgsplit_client_online",
        "gauge",
        "1 if the last handshake is under 180 s old",
    );
    for (x, p) in &peers {
        let _ = writeln!(
            out,
            "wgsplit_client_online{{client=\"{}\"}} {}",
            label(&x.name),
            u8::from(p.is_some_and(|p| p.online))
        );
    }
    for (metric, help, get) in [
        (
            "wgsplit_client_receive_bytes_total",
            "bytes received from the client (kernel peer counter)",
            (|p: &live::PeerInfo| p.rx) as fn(&live::PeerInfo) -> u64,
        ),
        (
            "wgsplit_client_transmit_bytes_total",
            "bytes sent to the client (kernel peer counter)",
            |p: &live::PeerInfo| p.tx,
        ),
    ] {
        head(out, metric, "counter", help);
        for (x, p) in &peers {
            if let Some(p) = p {
                let _ = writeln!(out, "{metric}{{client=\"{}\"}} {}", label(&x.name), get(p));
            }
        }
    }
    head(
        out,
        "wgsplit_client_handshake_age_seconds",
        "gauge",
        "seconds since the client's last handshake (absent: never)",
    );
    for (x, p) in &peers {
        if let Some(age) = p.and_then(|p| p.handshake_age) {
            let _ = writeln!(
                out,
                "wgsplit_client_handshake_age_seconds{{client=\"{}\"}} {age}",
                label(&x.name)
            );
        }
    }
}

pub fn upstreams(out: &mut String, c: &Config, health: &HashMap<String, UpstreamHealth>) {
    head(
        out,
        "wgsplit_upstream_state",
        "gauge",
        "1 for the upstream's current health state",
    );
    for u in &c.upstreams {
        let cur = health.get(&u.name).map(|h| h.state).unwrap_or_default();
        for (s, name) in [
            (State::Up, "up"),
            (State::Degraded, "degraded"),
            (State::Down, "down"),
            (State::Unknown, "unknown"),
        ] {
            let _ = writeln!(
                out,
                "wgsplit_upstream_state{{upstream=\"{}\",state=\"{name}\"}} {}",
                label(&u.name),
                u8::from(cur == s)
            );
        }
    }
    head(
        out,
        "wgsplit_upstream_handshake_age_seconds",
        "gauge",
        "seconds since the upstream's last handshake",
    );
    for u in &c.upstreams {
        if let Some(age) = health.get(&u.name).and_then(|h| h.handshake_age) {
            let _ = writeln!(
                out,
                "wgsplit_upstream_handshake_age_seconds{{upstream=\"{}\"}} {age}",
                label(&u.name)
            );
        }
    }
    head(
        out,
        "wgsplit_upstream_probe_seconds",
        "gauge",
        "round trip of the last successful probe through the tunnel",
    );
    for u in &c.upstreams {
        if let Some(ms) = health.get(&u.name).and_then(|h| h.probe_ms) {
            let _ = writeln!(
                out,
                "wgsplit_upstream_probe_seconds{{upstream=\"{}\"}} {:.3}",
                label(&u.name),
                ms as f64 / 1000.0
            );
        }
    }
}

/// The resolver's counters and gauges (the daemon adds them through
/// `Hooks::metrics` once its DNS service runs). Every field of the snapshot
/// is exported: `wgsplit_dns_<field>_total` for a counter,
/// `wgsplit_dns_<field>` for a gauge (a test holds each new field to it).
pub fn dns(out: &mut String, s: &crate::dns::StatsSnapshot) {
    for (name, help, v) in [
        ("queries", "DNS queries received", s.queries),
        ("cache_hits", "answers from the cache", s.cache_hits),
        (
            "cache_misses",
            "answers that needed an upstream resolver",
            s.cache_misses,
        ),
        ("malformed", "malformed queries", s.malformed),
        ("servfail", "SERVFAIL answers", s.servfail),
        (
            "upstream_failures",
            "failed upstream resolutions",
            s.upstream_failures,
        ),
        ("blocked", "names answered as blocked", s.blocked),
        (
            "rerouted",
            "answers asked again the way their CNAME chain's rule sends traffic",
            s.rerouted,
        ),
        (
            "set_elements",
            "addresses put into nft sets",
            s.set_elements,
        ),
        ("set_errors", "failed nft set inserts", s.set_errors),
        (
            "set_skipped",
            "addresses not rewritten: the kernel already held them long enough",
            s.set_skipped,
        ),
        (
            "rate_limited",
            "queries dropped: their client was over its rate",
            s.rate_limited,
        ),
        (
            "refused",
            "queries from senders that get no answers (REFUSED, or dropped over the refusal rate)",
            s.refused,
        ),
        (
            "tcp_rejected",
            "TCP connections closed at once: the connection cap was reached",
            s.tcp_rejected,
        ),
        (
            "cache_invalidated",
            "cache entries dropped by config changes",
            s.cache_invalidated,
        ),
        (
            "forwards_over_cap",
            "queries answered SERVFAIL at once: their route's in-flight table was full",
            s.forwards_over_cap,
        ),
    ] {
        let metric = format!("wgsplit_dns_{name}_total");
        head(out, &metric, "counter", help);
        let _ = writeln!(out, "{metric} {v}");
    }
    for (name, help, v) in [
        (
            "rate_sources",
            "senders with a rate-limit bucket now",
            s.rate_sources,
        ),
        ("cache_entries", "names in the DNS cache", s.cache_entries),
        ("cache_bytes", "bytes the DNS cache holds", s.cache_bytes),
        (
            "insert_samples",
            "recent set inserts the insert-time quantiles are taken over",
            s.insert_samples,
        ),
    ] {
        let metric = format!("wgsplit_dns_{name}");
        head(out, &metric, "gauge", help);
        let _ = writeln!(out, "{metric} {v}");
    }
    head(
        out,
        "wgsplit_dns_set_insert_seconds",
        "gauge",
        "answer received to addresses in the kernel, recent samples",
    );
    for (quantile, us) in [("0.5", s.insert_p50_us), ("0.99", s.insert_p99_us)] {
        let _ = writeln!(
            out,
            "wgsplit_dns_set_insert_seconds{{quantile=\"{quantile}\"}} {:.6}",
            us as f64 / 1e6
        );
    }
}

/// Requests served by status code, and their total time.
#[derive(Default)]
pub struct Counters {
    inner: Mutex<(HashMap<u16, u64>, Duration)>,
}

impl Counters {
    pub fn record(&self, status: u16, took: Duration) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *g.0.entry(status).or_default() += 1;
        g.1 += took;
    }

    pub fn write(&self, out: &mut String) {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        head(
            out,
            "wgsplit_api_requests_total",
            "counter",
            "API requests by status code",
        );
        let mut codes: Vec<_> = g.0.iter().collect();
        codes.sort();
        for (code, n) in codes {
            let _ = writeln!(out, "wgsplit_api_requests_total{{code=\"{code}\"}} {n}");
        }
        head(
            out,
            "wgsplit_api_request_seconds_total",
            "counter",
            "time spent answering API requests",
        );
        let _ = writeln!(
            out,
            "wgsplit_api_request_seconds_total {:.6}",
            g.1.as_secs_f64()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each field of the resolver's snapshot is in `/metrics` with its own
    /// value (all values differ, so a field exported as another fails too).
    #[test]
    fn every_dns_field_is_exported() {
        let mut json = serde_json::to_value(crate::dns::StatsSnapshot::default()).unwrap();
        let fields = json.as_object_mut().unwrap();
        for (i, v) in fields.values_mut().enumerate() {
            *v = serde_json::json!(1_000_001 + i as u64);
        }
        let snapshot: crate::dns::StatsSnapshot = serde_json::from_value(json.clone()).unwrap();
        let mut out = String::new();
        dns(&mut out, &snapshot);
        let quantile = |q: &str, us: u64| {
            format!(
                "wgsplit_dns_set_insert_seconds{{quantile=\"{q}\"}} {:.6}\n",
                us as f64 / 1e6
            )
        };
        for (field, v) in json.as_object().unwrap() {
            let v = v.as_u64().unwrap();
            let line = match field.as_str() {
                "insert_p50_us" => quantile("0.5", v),
                "insert_p99_us" => quantile("0.99", v),
                _ if out.contains(&format!("wgsplit_dns_{field}_total ")) => {
                    format!("wgsplit_dns_{field}_total {v}\n")
                }
                _ => format!("wgsplit_dns_{field} {v}\n"),
            };
            assert!(
                out.contains(&line),
                "{field}: no '{}' in\n{out}",
                line.trim()
            );
        }
        assert!(json.as_object().unwrap().len() >= 22, "{json}");
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            value.parse::<f64>().unwrap();
        }
    }

    #[test]
    fn text_format() {
        let c = crate::config::parse_valid(include_str!("../../../examples/wgsplit.conf")).unwrap();
        let mut stats = PeerStats::default();
        let alice = live::client_public_key(&c.clients[0]).unwrap();
        stats.peers.insert(
            alice,
            live::PeerInfo {
                online: true,
                handshake_age: Some(7),
                rx: 10,
                tx: 20,
                endpoint: None,
            },
        );
        let mut out = String::new();
        clients(&mut out, &c, &stats);
        assert!(out.contains("wgsplit_client_receive_bytes_total{client=\"alice\"} 10\n"));
        assert!(out.contains("wgsplit_client_handshake_age_seconds{client=\"alice\"} 7\n"));
        assert!(out.contains("wgsplit_client_online{client=\"bob\"} 0\n"));
        upstreams(&mut out, &c, &HashMap::new());
        assert!(out.contains("wgsplit_upstream_state{upstream=\"us1\",state=\"unknown\"} 1\n"));
        assert_eq!(label("a\"b\\c"), "a\\\"b\\\\c");
        // Every sample line is `name{labels} value`.
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            value.parse::<f64>().unwrap();
        }
    }
}
