//! Rules that hold when clients misbehave (issue #19): learned routes fail
//! closed while in use, and the DNS bypass guard's data-path half.
//!
//! ## Learned routes
//!
//! A DNS-learned element lives for its answer's TTL. Apps keep answers far
//! longer (some never ask again), so an element that expired under a client
//! still connecting would send that client's next connection by its default —
//! out the WAN, though its rule says upstream. So the rule that matches a learned
//! set also refreshes the element it matched, in the data path: every new
//! connection through the rule (only a flow's first packet walks the client's
//! chain; later ones restore the ct mark) sets the element's timeout to
//! [`learned_hold`] from now. An address never learned is not added (the set is
//! looked up first), so it takes the client's default; an element nobody
//! connects to is gone `hold` after its last use (or its TTL, if longer left).

/// How long a learned element lives after the last new connection to it, by
/// default: a day, so an app that keeps an answer across a day's use and a night
/// still finds its route; one that is not used for a day is forgotten.
pub const LEARNED_HOLD_DEFAULT: u32 = 86_400;
/// The shortest hold accepted (`WGSPLIT_LEARNED_HOLD`): shorter would expire
/// elements between a client's connections. Tests use it.
pub const LEARNED_HOLD_MIN: u32 = 5;
/// The longest: a week.
pub const LEARNED_HOLD_MAX: u32 = 7 * 86_400;
/// Room for learned addresses per rule and family (nft's default for a set the
/// data path updates would be 65,535; the resolver's inserts count too).
pub const LEARNED_SET_SIZE: u32 = 262_144;

/// A hold clamped into its bounds; 0 (unset) is the default.
pub fn hold(secs: u32) -> u32 {
    if secs == 0 {
        LEARNED_HOLD_DEFAULT
    } else {
        secs.clamp(LEARNED_HOLD_MIN, LEARNED_HOLD_MAX)
    }
}

/// The match of a learned set that refreshes what it matched:
/// `ip daddr @S update @S { ip daddr timeout Ns }`.
pub fn learned_match(set: &str, v6: bool, hold_secs: u32) -> String {
    let fam = if v6 { "ip6" } else { "ip" };
    format!(
        "{fam} daddr @{set} update @{set} {{ {fam} daddr timeout {}s }}",
        hold(hold_secs)
    )
}

/// The declaration of a learned set: updated from the data path (`dynamic`),
/// elements with their own timeouts, room for [`LEARNED_SET_SIZE`].
pub fn learned_declaration(addr_type: &str) -> String {
    format!("type {addr_type}; size {LEARNED_SET_SIZE}; flags dynamic, timeout;")
}

/// The router's own ICMP errors about a marked flow (packet too big, port
/// unreachable…) take that flow's way. They are sent by the router, not
/// forwarded, so no fwmark came with them, and they left by the WAN: to the
/// far end, from the router's WAN address (the address an upstream is there to
/// hide), where they also never reached the sender of the packet they are about
/// (a too-big reply from upstream was never answered through the tunnel: a path
/// MTU black hole, the first bulk IPv6 flow stalled). Connection tracking finds
/// the flow an error is about (`ct state related`); these rules, in a `route`
/// chain on output, give the error that flow's upstream mark, and it is routed
/// again. One rule per upstream target, only on such errors, and not on those
/// going to a client (a "packet too big" for the client's own packets must
/// reach it by the server interface, as routed).
pub fn related_rules(policy: &crate::policy::Policy) -> Vec<String> {
    let marks = policy.marks;
    let (mask, keep) = (marks.mask, !marks.mask);
    let server = super::nft::nft_quoted(&policy.server.interface);
    (0..policy.upstreams.len())
        .map(|i| {
            let m = marks.of(crate::policy::Target::Upstream(i));
            format!(
                "oifname != {server} ct state related ct mark and {mask:#010x} == {m:#010x} meta mark set meta mark and {keep:#010x} or {m:#010x}"
            )
        })
        .collect()
}

/// The DNS bypass guard, in the data path, for a client whose domain rules
/// need its DNS to reach our resolver (`ClientPolicy::dns_guard`):
/// - DNS over TLS and over QUIC (TCP and UDP 853) is dropped, so apps (Android's
///   Private DNS "automatic", browsers) fall back to plain DNS, which the
///   server redirects to our resolver;
/// - HTTPS (TCP and UDP 443) to the well-known DoH resolvers' addresses
///   ([`DOH_V4`], [`DOH_V6`]) is dropped; the resolver refuses their names
///   (`dns/bypass.rs`).
///
/// It cannot see an app's own DoH to a server not on the list (DoH is HTTPS
/// like any other), nor DNS inside another VPN the client runs.
/// Dropped, not rejected: the client chains run in prerouting, where nft
/// cannot reject; a drop costs an app one connect timeout before it falls back.
pub fn bypass_rules() -> [String; 3] {
    [
        "meta l4proto { tcp, udp } th dport 853 drop".to_string(),
        format!("ip daddr @{DOH_SET_V4} meta l4proto {{ tcp, udp }} th dport 443 drop"),
        format!("ip6 daddr @{DOH_SET_V6} meta l4proto {{ tcp, udp }} th dport 443 drop"),
    ]
}

/// The DoH addresses the guard drops: those of `server.doh_list`'s `cidr`
/// lists (`lists`, by name) as read (`list_cidrs`, the planner's input), or the
/// shipped [`DOH_V4`] and [`DOH_V6`] when none is configured or they hold no
/// address (not downloaded yet, unreadable): a guard that dropped nothing
/// until the first download would be no guard.
pub fn doh_nets(
    lists: &[String],
    list_cidrs: &std::collections::BTreeMap<String, Vec<ipnet::IpNet>>,
) -> Vec<ipnet::IpNet> {
    let configured: Vec<ipnet::IpNet> = lists
        .iter()
        .filter_map(|l| list_cidrs.get(l))
        .flatten()
        .map(ipnet::IpNet::trunc)
        .collect();
    if !configured.is_empty() {
        return configured;
    }
    DOH_V4
        .iter()
        .chain(DOH_V6)
        .filter_map(|a| a.parse::<std::net::IpAddr>().ok())
        .map(ipnet::IpNet::from)
        .collect()
}

/// Why the guard drops a connection to `ip` on `port` (any protocol), if it
/// does, with the shipped DoH addresses (`explain` without the kernel's sets).
pub fn drops(ip: std::net::IpAddr, port: Option<u16>) -> Option<&'static str> {
    match port {
        Some(853) => Some("DNS over TLS/QUIC (port 853)"),
        Some(443) if DOH_V4.iter().chain(DOH_V6).any(|a| a.parse() == Ok(ip)) => {
            Some("HTTPS to a known DoH resolver")
        }
        _ => None,
    }
}

/// The shared sets of DoH resolver addresses (one per family, for every guarded client).
pub const DOH_SET_V4: &str = "doh_4";
pub const DOH_SET_V6: &str = "doh_6";

/// The shipped DoH resolvers' addresses (Cloudflare, Google, Quad9, AdGuard,
/// OpenDNS, CleanBrowsing, Mullvad), used when `server.doh_list` names no
/// `cidr` list. Anything else on 443 is ordinary HTTPS.
pub const DOH_V4: &[&str] = &[
    "1.1.1.1",
    "1.0.0.1",
    "1.1.1.2",
    "1.0.0.2",
    "1.1.1.3",
    "1.0.0.3",
    "8.8.8.8",
    "8.8.4.4",
    "9.9.9.9",
    "149.112.112.112",
    "9.9.9.11",
    "149.112.112.11",
    "94.140.14.14",
    "94.140.15.15",
    "208.67.222.222",
    "208.67.220.220",
    "185.228.168.168",
    "185.228.169.168",
    "194.242.2.2",
];
pub const DOH_V6: &[&str] = &[
    "2606:4700:4700::1111",
    "2606:4700:4700::1001",
    "2001:4860:4860::8888",
    "2001:4860:4860::8844",
    "2620:fe::fe",
    "2620:fe::9",
    "2a10:50c0::ad1:ff",
    "2a10:50c0::ad2:ff",
    "2620:119:35::35",
    "2620:119:53::53",
    "2a0d:2a00:1::",
    "2a07:e340::2",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_doh_addresses_parse_and_are_of_their_family() {
        // Written as the kernel's listing renders them (the engine compares text).
        for a in DOH_V4 {
            assert_eq!(a.parse::<std::net::Ipv4Addr>().unwrap().to_string(), *a);
        }
        for a in DOH_V6 {
            assert_eq!(a.parse::<std::net::Ipv6Addr>().unwrap().to_string(), *a);
        }
    }

    #[test]
    fn related_errors_take_their_upstreams_way_but_never_a_clients() {
        let c = crate::config::parse_valid(include_str!("../../../examples/wgsplit.conf")).unwrap();
        let p = crate::policy::compile(&c, 0);
        let rules = related_rules(&p);
        assert_eq!(rules.len(), p.upstreams.len());
        for (i, r) in rules.iter().enumerate() {
            let m = p.marks.of(crate::policy::Target::Upstream(i));
            assert!(r.starts_with("oifname != \"wg0\" ct state related "), "{r}");
            assert!(r.contains(&format!("== {m:#010x} meta mark set")), "{r}");
        }
    }

    #[test]
    fn configured_doh_addresses_replace_the_shipped_ones_unless_there_are_none() {
        let net = |t: &str| t.parse::<ipnet::IpNet>().unwrap();
        let shipped = doh_nets(&[], &Default::default());
        assert_eq!(shipped.len(), DOH_V4.len() + DOH_V6.len());
        let lists = ["doh_ips".to_string()];
        let read = std::collections::BTreeMap::from([(
            "doh_ips".to_string(),
            vec![net("192.0.2.0/24"), net("2001:db8::53/128")],
        )]);
        assert_eq!(
            doh_nets(&lists, &read),
            [net("192.0.2.0/24"), net("2001:db8::53/128")]
        );
        // Configured, but not read (yet): the shipped ones.
        assert_eq!(doh_nets(&lists, &Default::default()), shipped);
    }

    #[test]
    fn drops_agrees_with_the_rules() {
        let doh = "1.1.1.1".parse().unwrap();
        let other = "192.0.2.1".parse().unwrap();
        assert!(drops(other, Some(853)).is_some());
        assert!(drops(doh, Some(443)).is_some());
        assert!(drops(other, Some(443)).is_none());
        assert!(drops(doh, Some(80)).is_none());
        assert!(drops(doh, None).is_none());
    }

    #[test]
    fn the_guard_drops_853_both_protocols_and_443_only_to_the_doh_sets() {
        let r = bypass_rules();
        assert!(r[0].contains("{ tcp, udp } th dport 853 drop"));
        assert!(r[1].starts_with("ip daddr @doh_4 ") && r[1].ends_with("443 drop"));
        assert!(r[2].starts_with("ip6 daddr @doh_6 ") && r[2].ends_with("443 drop"));
    }

    #[test]
    fn the_hold_is_clamped_and_zero_is_the_default() {
        assert_eq!(hold(0), LEARNED_HOLD_DEFAULT);
        assert_eq!(hold(1), LEARNED_HOLD_MIN);
        assert_eq!(hold(LEARNED_HOLD_MIN), LEARNED_HOLD_MIN);
        assert_eq!(hold(u32::MAX), LEARNED_HOLD_MAX);
        assert_eq!(hold(3600), 3600);
    }

    #[test]
    fn the_match_only_refreshes_what_is_in_the_set() {
        // The set lookup comes first: an address never learned is not added.
        assert_eq!(
            learned_match("alice_r0_dns6", true, 30),
            "ip6 daddr @alice_r0_dns6 update @alice_r0_dns6 { ip6 daddr timeout 30s }"
        );
    }
}
