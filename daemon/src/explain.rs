//! `wgsplit explain CLIENT DEST`: which way traffic goes and which rule decided.
//! A pure function over the compiled policy, evaluated the way the kernel does:
//! the client's rules in order, first match wins, then the client's default;
//! with the live state (`live::Live`: the kernel's sets, upstream health) it
//! names the element that matched and the way a down upstream's traffic takes.

pub mod live;

pub use live::{Live, SetHit};

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use crate::{
    config::types::{Proto, normalize_domain},
    policy::{self, CompiledRule, Policy, Target, UpstreamRoute},
};

/// What is being asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    Addr(IpAddr),
    Domain(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub dest: Dest,
    pub port: Option<u16>,
    /// `Any` when not given.
    pub proto: Proto,
}

/// Parses `1.2.3.4`, `1.2.3.4:443`, `1.2.3.4:443/tcp`, `[2001:db8::1]:443/udp`,
/// `2001:db8::1`, `[2001:db8::1]`, `example.com`, `example.com:443/tcp`.
pub fn parse_dest(text: &str) -> Result<Query, String> {
    let text = text.trim();
    let (main, proto) = match text.rsplit_once('/') {
        Some((m, p)) => (
            m,
            match p.to_ascii_lowercase().as_str() {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                _ => return Err(format!("'{p}': protocol must be tcp or udp")),
            },
        ),
        None => (text, Proto::Any),
    };
    let bare = main
        .strip_prefix('[')
        .and_then(|m| m.strip_suffix(']'))
        .unwrap_or(main);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(Query {
            dest: Dest::Addr(ip),
            port: None,
            proto,
        });
    }
    if let Ok(sa) = main.parse::<SocketAddr>() {
        return Ok(Query {
            dest: Dest::Addr(sa.ip()),
            port: Some(sa.port()),
            proto,
        });
    }
    let (host, port) = match main.rsplit_once(':') {
        Some((h, p)) => (
            h,
            Some(
                p.parse::<u16>()
                    .map_err(|_| format!("'{p}' is not a port number"))?,
            ),
        ),
        None => (main, None),
    };
    let name = normalize_domain(host).map_err(|e| format!("'{text}': {e}"))?;
    Ok(Query {
        dest: Dest::Domain(name),
        port,
        proto,
    })
}

/// One rule's verdict on the query.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Match {
    Yes(String),
    No,
    /// Can't be told from the config alone (DNS answers, GeoIP data, list files).
    Maybe(String),
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RuleRef {
    /// 1-based position among the client's enabled rules.
    pub position: usize,
    /// The uci section (`@rule[N]` for anonymous ones).
    pub section: String,
    pub action: String,
    pub matched: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Explanation {
    pub client: String,
    pub destination: String,
    /// `upstream <name>`, `direct` or `block`.
    pub goes: String,
    /// `None`: the client's default decided.
    pub rule: Option<RuleRef>,
    /// Earlier rules that might match instead, and why that can't be known here.
    pub caveats: Vec<String>,
    pub active: bool,
    /// Answered with the live state (kernel sets, health), not the config alone.
    pub live: bool,
}

/// Where traffic for `t` goes now: with an upstream down (by `live`), the way
/// its `on_down` sends it.
fn target_now(policy: &Policy, t: Target, live: Option<&Live>) -> String {
    let (Target::Upstream(i), Some(live)) = (t, live) else {
        return target_text(policy, t);
    };
    let up = |j: usize| {
        let u = &policy.upstreams[j];
        u.enabled && live.is_up(&u.name)
    };
    let name = &policy.upstreams[i].name;
    match policy::upstream_route(&policy.upstreams, i, &up) {
        UpstreamRoute::Own => target_text(policy, t),
        UpstreamRoute::Block => format!("block (upstream {name} is down: kill switch)"),
        UpstreamRoute::Direct => format!("direct (upstream {name} is down: on_down direct)"),
        UpstreamRoute::Failover(f) => format!(
            "upstream {} (failover: upstream {name} is down)",
            policy.upstreams[f].name
        ),
    }
}

fn target_text(policy: &Policy, t: Target) -> String {
    match t {
        Target::Direct => "direct".into(),
        Target::Block => "block".into(),
        Target::Upstream(i) => {
            let u = &policy.upstreams[i];
            if u.enabled {
                format!("upstream {}", u.name)
            } else {
                format!("upstream {} (disabled: treated as down)", u.name)
            }
        }
    }
}

fn ports_match(rule: &CompiledRule, q: &Query) -> Match {
    if rule.ports.is_empty() {
        return Match::Yes(String::new());
    }
    let list = rule
        .ports
        .iter()
        .map(|p| {
            let proto = match p.proto {
                Proto::Tcp => "tcp:",
                Proto::Udp => "udp:",
                Proto::Any => "",
            };
            if p.first == p.last {
                format!("{proto}{}", p.first)
            } else {
                format!("{proto}{}-{}", p.first, p.last)
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    match q.port {
        None => Match::Maybe(format!(
            "only on ports {list} (give DEST as addr:port/proto)"
        )),
        Some(port) => {
            let protos: &[Proto] = match q.proto {
                Proto::Any => &[Proto::Tcp, Proto::Udp],
                Proto::Tcp => &[Proto::Tcp],
                Proto::Udp => &[Proto::Udp],
            };
            let hit = protos
                .iter()
                .filter(|pr| rule.ports.iter().any(|p| p.matches(**pr, port)))
                .count();
            if hit == protos.len() {
                Match::Yes(format!(" port {port}"))
            } else if hit > 0 {
                Match::Maybe(format!("only for some protocols on port {port} ({list})"))
            } else {
                Match::No
            }
        }
    }
}

fn dest_match(
    policy: &Policy,
    client: &str,
    rule: &CompiledRule,
    q: &Query,
    live: Option<&Live>,
) -> Match {
    if !rule.has_destination() {
        return Match::Yes("any destination".into());
    }
    let mut maybe = Vec::new();
    // What the kernel's set says, when it was read: Some(Some(hit)), Some(None) (not in it).
    let in_set = |name: &str| live.and_then(|l| l.sets.get(name).cloned());
    let mut sets_known = false;
    match &q.dest {
        Dest::Addr(ip) => {
            if let Some(n) = rule.cidrs.iter().find(|n| n.contains(ip)) {
                return Match::Yes(format!("cidr {n}"));
            }
            let v6 = ip.is_ipv6();
            if rule.has_dns(&policy.domain_lists) {
                let set = policy::dns_set_name(client, rule.pos, v6);
                match in_set(&set) {
                    Some(Some(hit)) => {
                        let left = hit
                            .expires_in
                            .map(|s| format!(", {s} s left"))
                            .unwrap_or_default();
                        return Match::Yes(format!("learned from DNS (set {set}{left})"));
                    }
                    Some(None) => sets_known = true,
                    None => {}
                }
            }
            for (neg, cc) in &rule.geoip {
                let set = policy::geo_set_name(cc, v6);
                let cc = cc.to_uppercase();
                match (in_set(&set), neg) {
                    (Some(Some(hit)), false) => {
                        return Match::Yes(format!(
                            "geoip {cc} (set {set}, element {})",
                            hit.element
                        ));
                    }
                    (Some(None), true) => {
                        return Match::Yes(format!("geoip !{cc} (not in set {set})"));
                    }
                    (Some(_), _) => {}
                    (None, _) => maybe.push(format!(
                        "depends on GeoIP data (geoip {})",
                        if *neg {
                            format!("every country but {cc}")
                        } else {
                            cc.clone()
                        }
                    )),
                }
            }
            if !rule.domains.is_empty() && !sets_known {
                maybe.push(format!(
                    "if the client looked up one of {} and got {ip}",
                    rule.domains
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Dest::Domain(name) => {
            if let Some(d) = rule.domains.iter().find(|d| d.matches(name)) {
                return Match::Yes(format!("domain {d}"));
            }
            if !rule.cidrs.is_empty() {
                maybe.push("if the name resolves into its CIDRs".to_string());
            }
        }
    }
    for l in rule
        .lists
        .iter()
        .filter(|l| !(sets_known && policy.domain_lists.contains(*l)))
    {
        let kind = if policy.domain_lists.contains(l) {
            "names"
        } else {
            "addresses"
        };
        maybe.push(format!("depends on the {kind} in list '{l}'"));
    }
    if matches!(q.dest, Dest::Domain(_)) {
        for (neg, cc) in &rule.geoip {
            let what = if *neg {
                format!("every country but {}", cc.to_uppercase())
            } else {
                cc.to_uppercase()
            };
            maybe.push(format!("depends on GeoIP data (geoip {what})"));
        }
    }
    if maybe.is_empty() {
        Match::No
    } else {
        Match::Maybe(maybe.join("; "))
    }
}

/// Explains where `dest` from `client` goes, from the config alone. Pure.
pub fn explain(policy: &Policy, client: &str, dest: &str) -> Result<Explanation, String> {
    explain_live(policy, client, dest, None)
}

/// Why the DNS bypass guard drops a connection to `ip` on `port`, if it does:
/// 853 always; 443 to an address of the kernel's DoH set (the element named),
/// or, when the set was not read (no kernel access, `--config-only`), of the
/// shipped list; with `server.doh_list` addresses configured that is a guess,
/// and a caveat says so.
fn guard_drop(
    policy: &Policy,
    ip: IpAddr,
    port: Option<u16>,
    live: Option<&Live>,
    caveats: &mut Vec<String>,
) -> Option<String> {
    use crate::plan::guard::{DOH_SET_V4, DOH_SET_V6, drops};
    let set = if ip.is_ipv6() { DOH_SET_V6 } else { DOH_SET_V4 };
    match (port, live.and_then(|l| l.sets.get(set))) {
        (Some(443), Some(Some(hit))) => Some(format!(
            "HTTPS to a known DoH resolver (set {set}, element {})",
            hit.element
        )),
        (Some(443), Some(None)) => None,
        (Some(443), None) if !policy.doh_cidr_lists.is_empty() => {
            caveats.push(format!(
                "the DNS bypass guard drops HTTPS to the addresses of server.doh_list's lists \
                 ({}); set {set} was not read, so whether this is one is not known here",
                policy.doh_cidr_lists.join(", ")
            ));
            None
        }
        _ => drops(ip, port).map(str::to_string),
    }
}

/// Explains where `dest` from `client` goes, with what the running system
/// knows (`live`: the kernel's sets, upstream health). Pure.
pub fn explain_live(
    policy: &Policy,
    client: &str,
    dest: &str,
    live: Option<&Live>,
) -> Result<Explanation, String> {
    let c = policy
        .client(client)
        .ok_or_else(|| format!("no client '{client}'"))?;
    let q = parse_dest(dest)?;
    let destination = match (&q.dest, q.port) {
        (Dest::Addr(IpAddr::V6(a)), Some(p)) => format!("[{a}]:{p}"),
        (Dest::Addr(a), Some(p)) => format!("{a}:{p}"),
        (Dest::Addr(a), None) => a.to_string(),
        (Dest::Domain(d), Some(p)) => format!("{d}:{p}"),
        (Dest::Domain(d), None) => d.clone(),
    } + match q.proto {
        Proto::Tcp => "/tcp",
        Proto::Udp => "/udp",
        Proto::Any => "",
    };
    let mut caveats = Vec::new();
    if !c.active {
        caveats.push(if c.expired {
            "the client has expired: it is not a peer, none of its traffic arrives".to_string()
        } else {
            "the client is disabled: it is not a peer, none of its traffic arrives".to_string()
        });
    }
    if let (true, Dest::Addr(ip)) = (c.dns_guard, &q.dest)
        && let Some(why) = guard_drop(policy, *ip, q.port, live, &mut caveats)
    {
        return Ok(Explanation {
            client: c.name.clone(),
            destination,
            goes: format!("block (DNS bypass guard: {why})"),
            rule: None,
            caveats,
            active: c.active,
            live: live.is_some(),
        });
    }
    for r in &c.rules {
        let d = dest_match(policy, &c.name, r, &q, live);
        let p = ports_match(r, &q);
        let action = format!("{:?}", r.action).to_lowercase();
        let here = format!("rule {} ({}, {action})", r.pos + 1, r.section.clone());
        match (d, p) {
            (Match::No, _) | (_, Match::No) => continue,
            (Match::Yes(why), Match::Yes(port)) => {
                return Ok(Explanation {
                    client: c.name.clone(),
                    destination,
                    goes: target_now(policy, r.target, live),
                    rule: Some(RuleRef {
                        position: r.pos + 1,
                        section: r.section.clone(),
                        action,
                        matched: format!("{why}{port}"),
                    }),
                    caveats,
                    active: c.active,
                    live: live.is_some(),
                });
            }
            (Match::Maybe(why), _) | (_, Match::Maybe(why)) => caveats.push(format!(
                "{here} would send it to {} {why}",
                target_now(policy, r.target, live)
            )),
        }
    }
    Ok(Explanation {
        client: c.name.clone(),
        destination,
        goes: target_now(policy, c.default, live),
        rule: None,
        caveats,
        active: c.active,
        live: live.is_some(),
    })
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} → {}: {}", self.client, self.destination, self.goes)?;
        match &self.rule {
            Some(r) => writeln!(
                f,
                "  decided by rule {} ({}, action {}): matched {}",
                r.position, r.section, r.action, r.matched
            )?,
            None => writeln!(f, "  decided by the client's default (no rule matched)")?,
        }
        if !self.caveats.is_empty() {
            writeln!(f, "  but:")?;
            for c in &self.caveats {
                writeln!(f, "    - {c}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config, policy};

    fn setup() -> (config::Config, Policy) {
        let c = config::parse_valid(include_str!("../../examples/wgsplit.conf")).unwrap();
        let p = policy::compile(&c, 0);
        (c, p)
    }

    #[test]
    fn domains_addresses_ports_and_defaults() {
        let (_, p) = setup();
        let e = explain(&p, "alice", "www.netflix.com").unwrap();
        assert_eq!(e.goes, "upstream us1");
        assert_eq!(e.rule.as_ref().unwrap().position, 1);
        assert_eq!(e.rule.as_ref().unwrap().matched, "domain netflix.com");
        let e = explain(&p, "alice", "198.51.100.9:443/tcp").unwrap();
        assert_eq!(e.goes, "upstream us1");
        assert_eq!(e.rule.unwrap().matched, "cidr 198.51.100.0/24");
        let e = explain(&p, "alice", "ads.example").unwrap();
        assert_eq!(e.goes, "block");
        let e = explain(&p, "alice", "192.0.2.1").unwrap();
        assert_eq!(e.goes, "direct");
        assert!(e.rule.is_none());
        // An address might still be one a domain rule learned through DNS.
        assert!(e.caveats[0].contains("if the client looked up one of netflix.com"));
        // Bob: bank.example on tcp:22 direct (ports narrow the domain), the rest eu1.
        let e = explain(&p, "bob", "bank.example:22/tcp").unwrap();
        assert_eq!(e.goes, "direct");
        assert_eq!(e.rule.unwrap().matched, "domain bank.example port 22");
        let e = explain(&p, "bob", "bank.example:22/udp").unwrap();
        assert_eq!(e.goes, "upstream eu1");
        let e = explain(&p, "bob", "bank.example").unwrap();
        assert_eq!(e.goes, "upstream eu1");
        assert!(
            e.caveats[0].contains("only on ports tcp:22"),
            "{:?}",
            e.caveats
        );
        let e = explain(&p, "bob", "[2001:db8::1]:443").unwrap();
        assert_eq!(e.destination, "[2001:db8::1]:443");
        assert_eq!(e.goes, "upstream eu1");
        // The DNS bypass guard (alice has domain rules) before any rule.
        let e = explain(&p, "alice", "192.0.2.1:853/tcp").unwrap();
        assert_eq!(
            e.goes,
            "block (DNS bypass guard: DNS over TLS/QUIC (port 853))"
        );
    }

    #[test]
    fn the_doh_addresses_come_from_the_kernels_set_or_the_shipped_list() {
        let (mut c, p) = setup();
        // Shipped list, no kernel: 1.1.1.1 is a DoH address.
        let e = explain(&p, "alice", "1.1.1.1:443").unwrap();
        assert!(
            e.goes
                .starts_with("block (DNS bypass guard: HTTPS to a known DoH")
        );
        // The kernel's set read: its element named; not in it: not dropped.
        let mut live = Live::default();
        let hit = SetHit {
            element: "192.0.2.0/24".into(),
            expires_in: None,
        };
        live.sets.insert("doh_4".into(), Some(hit));
        let e = explain_live(&p, "alice", "192.0.2.7:443", Some(&live)).unwrap();
        assert_eq!(
            e.goes,
            "block (DNS bypass guard: HTTPS to a known DoH resolver (set doh_4, element 192.0.2.0/24))"
        );
        live.sets.insert("doh_4".into(), None);
        let e = explain_live(&p, "alice", "1.1.1.1:443", Some(&live)).unwrap();
        assert!(!e.goes.contains("DNS bypass guard"), "{}", e.goes);
        // server.doh_list names addresses and the set is not read: a caveat, no guess.
        c.lists.push(config::List {
            name: "doh_ips".into(),
            path: "/tmp/wgsplit/doh-ips.txt".into(),
            format: Some(config::ListFormat::Cidr),
            ..Default::default()
        });
        c.server.doh_list = vec!["doh_ips".into()];
        let p = policy::compile(&c, 0);
        let e = explain(&p, "alice", "1.1.1.1:443").unwrap();
        assert!(!e.goes.contains("DNS bypass guard"), "{}", e.goes);
        assert!(
            e.caveats
                .iter()
                .any(|w| w.contains("server.doh_list's lists (doh_ips)")),
            "{:?}",
            e.caveats
        );
    }

    #[test]
    fn geoip_and_lists_are_caveats_not_guesses() {
        let (mut c, _) = setup();
        c.rules.insert(
            0,
            config::Rule {
                client: "carol".into(),
                action: config::Action::Block,
                geoip: vec!["!de".into()],
                ..Default::default()
            },
        );
        let p = policy::compile(&c, 0);
        let e = explain(&p, "carol", "192.0.2.1").unwrap();
        assert_eq!(e.goes, "direct");
        assert!(e.caveats[0].contains("depends on GeoIP data (geoip every country but DE)"));
    }

    #[test]
    fn v6_addresses_in_every_form() {
        let (_, p) = setup();
        for (text, port) in [
            ("[2001:db8:100::10]", None),
            ("2001:db8:100::10", None),
            ("[2001:db8:100::10]:443", Some(443)),
            ("[2001:db8:100::10]:443/tcp", Some(443)),
        ] {
            let q = parse_dest(text).unwrap();
            assert_eq!(
                q.dest,
                Dest::Addr("2001:db8:100::10".parse().unwrap()),
                "{text}"
            );
            assert_eq!(q.port, port, "{text}");
            assert!(explain(&p, "bob", text).is_ok(), "{text}");
        }
    }

    #[test]
    fn live_sets_name_the_element_and_health_the_way_taken() {
        let (mut c, _) = setup();
        c.rules.insert(
            0,
            config::Rule {
                client: "carol".into(),
                action: config::Action::Proxy,
                upstream: Some("eu1".into()),
                geoip: vec!["us".into()],
                ..Default::default()
            },
        );
        let p = policy::compile(&c, 0);
        let mut live = Live::default();
        live.sets.insert(
            "geo_us_4".into(),
            Some(SetHit {
                element: "192.0.2.0/24".into(),
                expires_in: None,
            }),
        );
        let e = explain_live(&p, "carol", "192.0.2.1", Some(&live)).unwrap();
        assert_eq!(e.goes, "upstream eu1");
        assert_eq!(
            e.rule.unwrap().matched,
            "geoip US (set geo_us_4, element 192.0.2.0/24)"
        );
        assert!(e.live);
        // Not in the country set: the default, and no caveat about GeoIP.
        live.sets.insert("geo_us_4".into(), None);
        let e = explain_live(&p, "carol", "192.0.2.1", Some(&live)).unwrap();
        assert_eq!(e.goes, "direct");
        assert!(e.caveats.is_empty(), "{:?}", e.caveats);
        // A learned element of alice's netflix rule, with its time left.
        let set = policy::dns_set_name("alice", 0, false);
        live.sets.insert(
            set.clone(),
            Some(SetHit {
                element: "192.0.2.1".into(),
                expires_in: Some(42),
            }),
        );
        let e = explain_live(&p, "alice", "192.0.2.1", Some(&live)).unwrap();
        assert_eq!(e.goes, "upstream us1");
        assert_eq!(
            e.rule.unwrap().matched,
            format!("learned from DNS (set {set}, 42 s left)")
        );
        // eu1 down: on_down failover to us1 in the example.
        live.upstream_up.insert("eu1".into(), false);
        let e = explain_live(&p, "bob", "192.0.2.1", Some(&live)).unwrap();
        assert_eq!(e.goes, "upstream us1 (failover: upstream eu1 is down)");
        // us1 down too (on_down block): the failover is down, so eu1's traffic is blocked.
        live.upstream_up.insert("us1".into(), false);
        let e = explain_live(&p, "alice", "192.0.2.1", Some(&live)).unwrap();
        assert_eq!(e.goes, "block (upstream us1 is down: kill switch)");
    }

    #[test]
    fn bad_input_is_named() {
        let (c, p) = setup();
        assert_eq!(
            explain(&p, "mallory", "1.2.3.4").unwrap_err(),
            "no client 'mallory'"
        );
        assert!(explain(&p, "alice", "1.2.3.4:99/icmp").is_err());
        assert!(explain(&p, "alice", "bad_name!").is_err());
        let e = explain(&p, "carol", "1.2.3.4").unwrap();
        assert!(e.active);
        let p2 = policy::compile(&c, 2_000_000_000);
        let e = explain(&p2, "carol", "1.2.3.4").unwrap();
        assert!(e.caveats[0].contains("expired"));
    }
}
