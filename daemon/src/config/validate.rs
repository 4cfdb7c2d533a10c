//! Checks a config as a whole and reports every problem by its uci path. Nothing
//! downstream (planner, resolver, API) ever sees a config that fails here.

use std::{
    collections::{HashMap, HashSet},
    fmt,
};

use ipnet::IpNet;

use crate::util::keys;

use super::{
    Problem,
    convert::SectionPath,
    model::{Action, Config, ListFormat, OnDown, parse_u32},
    types::{
        DomainPattern, PortSpec, check_ifname, net_range, parse_cidr, parse_endpoint, parse_expiry,
        parse_geoip, parse_interface_address, parse_key, parse_pool, parse_public_host,
        parse_resolver, parse_size,
    },
};

/// How many marks wgsplit needs besides one per upstream: direct and block.
pub const RESERVED_MARKS: u32 = 2;

pub fn validate(config: &Config) -> Vec<Problem> {
    let mut v = Validator::default();
    v.server(config);
    v.upstreams(config);
    v.clients(config);
    v.rules(config);
    v.lists(config);
    v.problems
}

#[derive(Default)]
struct Validator {
    problems: Vec<Problem>,
}

impl Validator {
    fn push(&mut self, path: impl fmt::Display, option: &str, message: impl Into<String>) {
        self.problems
            .push(Problem::new(&format!("{path}.{option}"), message));
    }

    fn check<T>(
        &mut self,
        path: impl fmt::Display,
        option: &str,
        result: Result<T, String>,
    ) -> Option<T> {
        result.map_err(|e| self.push(path, option, e)).ok()
    }

    fn key(
        &mut self,
        path: impl fmt::Display,
        option: &str,
        value: &Option<String>,
        required: bool,
    ) {
        match value {
            Some(k) => {
                self.check(path, option, parse_key(k));
            }
            None if required => self.push(path, option, "required"),
            None => {}
        }
    }

    fn server(&mut self, config: &Config) {
        let s = &config.server;
        let p = "server";
        self.check(p, "interface", check_interface(s.interface_or_default()));
        if s.listen_port == Some(0) {
            self.push(p, "listen_port", "must be 1-65535");
        }
        match &s.address {
            None => self.push(p, "address", "required (e.g. 10.8.0.1/24)"),
            Some(a) => match parse_pool(a) {
                Ok(IpNet::V4(_)) => {}
                Ok(_) => self.push(p, "address", "must be IPv4; use address6 for IPv6"),
                Err(e) => self.push(p, "address", e),
            },
        }
        if let Some(a) = &s.address6 {
            match parse_pool(a) {
                Ok(IpNet::V6(_)) => {}
                Ok(_) => self.push(p, "address6", "must be IPv6"),
                Err(e) => self.push(p, "address6", e),
            }
        }
        self.key(p, "private_key", &s.private_key, true);
        if let Some(e) = &s.endpoint {
            self.check(p, "endpoint", parse_public_host(e));
        }
        if let Some(mtu) = s.mtu
            && !(1280..=9000).contains(&mtu)
        {
            self.push(p, "mtu", format!("{mtu} is outside 1280-9000"));
        }
        if s.dns_port == Some(0) {
            self.push(p, "dns_port", "must be 1-65535");
        }
        for a in &s.dns_listen {
            if a.parse::<std::net::IpAddr>().is_err() {
                self.push(p, "dns_listen", format!("'{a}' is not an IP address"));
            }
        }
        for r in &s.dns_server {
            self.check(p, "dns_server", parse_resolver(r));
        }
        if s.ttl_min_or_default() > s.ttl_max_or_default() {
            self.push(p, "ttl_min", "is larger than ttl_max");
        }
        if let Some(m) = &s.fwmark_mask {
            match parse_u32(m) {
                Some(mask) if mask != 0 => {
                    let capacity = (1u64 << mask.count_ones()) - 1;
                    let needed = config.upstreams.len() as u64 + RESERVED_MARKS as u64;
                    if capacity < needed {
                        self.push(
                            p,
                            "fwmark_mask",
                            format!("{m} holds {capacity} marks; {needed} are needed"),
                        );
                    }
                }
                _ => self.push(p, "fwmark_mask", format!("'{m}' is not a non-zero mask")),
            }
        }
        if let Some(a) = &s.api_listen
            && a.parse::<std::net::SocketAddr>().is_err()
        {
            self.push(p, "api_listen", format!("'{a}' is not address:port"));
        }
        for l in &s.doh_list {
            if !config.lists.iter().any(|x| &x.name == l) {
                self.push(p, "doh_list", format!("no list named '{l}'"));
            }
        }
        if let Some(a) = &s.ui_listen {
            match a.parse::<std::net::SocketAddr>() {
                Err(_) => self.push(p, "ui_listen", format!("'{a}' is not address:port")),
                Ok(ui) if s.api_listen_or_default().parse() == Ok(ui) => self.push(
                    p,
                    "ui_listen",
                    format!("'{a}' is the API's address too (api_listen): pick another port"),
                ),
                Ok(_) => {}
            }
        }
    }

    fn upstreams(&mut self, config: &Config) {
        let names: HashSet<&str> = config.upstreams.iter().map(|u| u.name.as_str()).collect();
        let mut interfaces: HashMap<String, String> = HashMap::new();
        interfaces.insert(
            config.server.interface_or_default().to_string(),
            "server".into(),
        );
        let mut tables: HashMap<u32, String> = HashMap::new();
        let base = config.server.table_base_or_default();
        for (i, u) in config.upstreams.iter().enumerate() {
            let p = u.name.as_str();
            self.check(p, "name", check_name(&u.name));
            let ifname = u.interface_or_default();
            if self
                .check(p, "interface", check_interface(&ifname))
                .is_some()
                && let Some(owner) = interfaces.insert(ifname.clone(), p.to_string())
            {
                self.push(
                    p,
                    "interface",
                    format!("'{ifname}' is already used by {owner}"),
                );
            }
            self.key(p, "private_key", &u.private_key, true);
            self.key(p, "public_key", &u.public_key, true);
            self.key(p, "preshared_key", &u.preshared_key, false);
            if u.address.is_empty() {
                self.push(p, "address", "required (e.g. 10.64.0.2/32)");
            }
            for a in &u.address {
                self.check(p, "address", parse_interface_address(a));
            }
            match &u.endpoint {
                Some(e) => {
                    self.check(p, "endpoint", parse_endpoint(e));
                }
                None => self.push(p, "endpoint", "required (host:port)"),
            }
            for a in &u.allowed_ips {
                self.check(p, "allowed_ips", parse_cidr(a));
            }
            if let Some(mtu) = u.mtu
                && !(1280..=9000).contains(&mtu)
            {
                self.push(p, "mtu", format!("{mtu} is outside 1280-9000"));
            }
            for d in &u.dns {
                self.check(p, "dns", parse_resolver(d));
            }
            match (u.on_down_or_default(), &u.failover) {
                (OnDown::Failover, None) => {
                    self.push(p, "failover", "required when on_down is failover")
                }
                (OnDown::Failover, Some(f)) if f == &u.name => {
                    self.push(p, "failover", "cannot fail over to itself")
                }
                (OnDown::Failover, Some(f)) if !names.contains(f.as_str()) => {
                    self.push(p, "failover", format!("no upstream named '{f}'"))
                }
                (OnDown::Block | OnDown::Direct, Some(_)) => {
                    self.push(p, "failover", "set only together with on_down 'failover'")
                }
                _ => {}
            }
            let table = u.table.unwrap_or(base + i as u32);
            if matches!(table, 0 | 253..=255) {
                self.push(p, "table", format!("table {table} is reserved"));
            } else if let Some(owner) = tables.insert(table, p.to_string()) {
                self.push(
                    p,
                    "table",
                    format!("table {table} is already used by {owner}"),
                );
            }
        }
    }

    fn clients(&mut self, config: &Config) {
        let s = &config.server;
        let pool4 = s
            .address
            .as_deref()
            .and_then(|a| parse_interface_address(a).ok());
        let pool6 = s
            .address6
            .as_deref()
            .and_then(|a| parse_interface_address(a).ok());
        let upstreams: HashSet<&str> = config.upstreams.iter().map(|u| u.name.as_str()).collect();
        // (first, last, v6, owner) for the overlap check.
        let mut ranges: Vec<(u128, u128, bool, String)> = Vec::new();
        for net in [pool4, pool6].into_iter().flatten() {
            let host = IpNet::from(net.addr());
            let (a, b) = net_range(&host);
            ranges.push((a, b, host.addr().is_ipv6(), "the server".into()));
        }
        let mut public_keys: HashMap<[u8; 32], &str> = HashMap::new();
        for c in &config.clients {
            let p = c.name.as_str();
            self.check(p, "name", check_name(&c.name));
            if let Some(d) = &c.description {
                self.check(p, "description", check_description(d));
            }
            self.key(p, "private_key", &c.private_key, false);
            self.key(p, "preshared_key", &c.preshared_key, false);
            let public = match (&c.public_key, &c.private_key) {
                (None, None) => {
                    self.push(
                        p,
                        "public_key",
                        "required (or a private_key to derive it from)",
                    );
                    None
                }
                (Some(k), _) => self.check(p, "public_key", parse_key(k)),
                (None, Some(k)) => parse_key(k).ok().map(|k| keys::public_from_private(&k)),
            };
            if let (Some(pubk), Some(Ok(private))) =
                (public, c.private_key.as_deref().map(parse_key))
                && keys::public_from_private(&private) != pubk
            {
                self.push(p, "public_key", "does not belong to private_key");
            }
            if let Some(k) = public
                && let Some(owner) = public_keys.insert(k, p)
            {
                self.push(
                    p,
                    "public_key",
                    format!("is the same key as client {owner}"),
                );
            }
            if c.address.is_empty() {
                self.push(p, "address", "required (e.g. 10.8.0.2/32)");
            }
            for a in &c.address {
                let Some(net) = self.check(p, "address", parse_cidr(a)) else {
                    continue;
                };
                let pool = if net.addr().is_ipv4() { pool4 } else { pool6 };
                match pool {
                    Some(pool) if pool.trunc().contains(&net) => {}
                    Some(pool) => self.push(
                        p,
                        "address",
                        format!("{net} is outside the server pool {}", pool.trunc()),
                    ),
                    // A missing or bad server address is reported on the server.
                    None if net.addr().is_ipv4() || s.address6.is_some() => {}
                    None => self.push(
                        p,
                        "address",
                        format!("{net}: the server has no IPv6 address (address6)"),
                    ),
                }
                let (a, b) = net_range(&net);
                ranges.push((a, b, net.addr().is_ipv6(), format!("client {p}")));
            }
            if let Some(e) = &c.expires {
                self.check(p, "expires", parse_expiry(e));
            }
            if let Some(q) = &c.quota {
                self.check(p, "quota", parse_size(q));
            }
            if let Some(u) = &c.upstream
                && !upstreams.contains(u.as_str())
            {
                self.push(p, "upstream", format!("no upstream named '{u}'"));
            }
            if c.default_or_default() == Action::Proxy && c.upstream.is_none() {
                self.push(
                    p,
                    "default",
                    "'proxy' needs the client's upstream to be set",
                );
            }
        }
        ranges.sort();
        for pair in ranges.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if a.2 == b.2 && b.0 <= a.1 && a.3 != b.3 {
                let who = b.3.strip_prefix("client ").unwrap_or(&b.3);
                self.push(who, "address", format!("overlaps an address of {}", a.3));
            }
        }
    }

    fn rules(&mut self, config: &Config) {
        let clients: HashMap<&str, &super::model::Client> = config
            .clients
            .iter()
            .map(|c| (c.name.as_str(), c))
            .collect();
        let upstreams: HashSet<&str> = config.upstreams.iter().map(|u| u.name.as_str()).collect();
        let lists: HashSet<&str> = config.lists.iter().map(|l| l.name.as_str()).collect();
        let mut anonymous = 0;
        for r in &config.rules {
            let p = SectionPath {
                kind: "rule",
                name: r.name.as_deref(),
                index: anonymous,
            };
            if r.name.is_none() {
                anonymous += 1;
            }
            if let Some(n) = &r.name {
                self.check(p, "name", check_name(n));
            }
            if let Some(d) = &r.description {
                self.check(p, "description", check_description(d));
            }
            let client = clients.get(r.client.as_str());
            if client.is_none() {
                self.push(p, "client", format!("no client named '{}'", r.client));
            }
            if let Some(u) = &r.upstream
                && !upstreams.contains(u.as_str())
            {
                self.push(p, "upstream", format!("no upstream named '{u}'"));
            }
            if r.action == Action::Proxy
                && r.upstream.is_none()
                && client.is_some_and(|c| c.upstream.is_none())
            {
                self.push(
                    p,
                    "upstream",
                    "a proxy rule needs an upstream (here or on its client)",
                );
            }
            for d in &r.domain {
                self.check(p, "domain", DomainPattern::parse(d));
            }
            for c in &r.cidr {
                self.check(p, "cidr", parse_cidr(c));
            }
            for port in &r.port {
                self.check(p, "port", PortSpec::parse(port));
            }
            for g in &r.geoip {
                self.check(p, "geoip", parse_geoip(g));
            }
            for l in &r.list {
                if !lists.contains(l.as_str()) {
                    self.push(p, "list", format!("no list named '{l}'"));
                }
            }
            let matches_something = !(r.domain.is_empty()
                && r.cidr.is_empty()
                && r.port.is_empty()
                && r.geoip.is_empty()
                && r.list.is_empty());
            if !matches_something {
                self.push(
                    p,
                    "domain",
                    "the rule matches nothing: give domain, cidr, port, geoip or list",
                );
            }
        }
    }

    fn lists(&mut self, config: &Config) {
        use super::confine;
        let mut pins: HashMap<(&str, &str), (&str, &str)> = HashMap::new();
        for l in &config.lists {
            let p = l.name.as_str();
            self.check(p, "name", check_name(&l.name));
            if l.path.is_empty() {
                self.push(p, "path", "required");
            } else {
                self.check(p, "path", confine::check_path(&l.path, false));
            }
            if let Some(u) = &l.url {
                self.check(p, "url", confine::check_url(u));
            }
            self.download_options(p, &l.url, &l.sha256, &l.max_size);
            // Lists sharing a download must agree on its pin.
            if let (Some(url), Some(pin)) = (&l.url, &l.sha256)
                && let Some((owner, other)) =
                    pins.insert((l.path.as_str(), url.as_str()), (p, pin.as_str()))
                && !other.eq_ignore_ascii_case(pin)
            {
                self.push(
                    p,
                    "sha256",
                    format!("differs from the sha256 of list {owner}, same download"),
                );
            }
            let format = l.format.unwrap_or_default();
            match (&l.category, format) {
                (None, ListFormat::Geosite) => {
                    self.push(p, "category", "required for format geosite (e.g. netflix)")
                }
                (Some(c), ListFormat::Geosite | ListFormat::V2fly) => {
                    self.check(p, "category", super::types::Selector::parse(c));
                }
                (Some(_), _) => self.push(p, "category", "only for formats geosite and v2fly"),
                (None, _) => {}
            }
        }
        if let Some(g) = &config.geoip {
            let p = "geoip";
            if let Some(v) = &g.path {
                self.check(p, "path", confine::check_path(v, false));
            }
            if let Some(v) = &g.dir {
                self.check(p, "dir", confine::check_path(v, true));
            }
            if let Some(u) = &g.url {
                self.check(p, "url", confine::check_url(u));
            }
            self.download_options(p, &g.url, &g.sha256, &g.max_size);
            if g.path.is_none() && g.url.is_none() {
                self.push(p, "path", "give path, url or both");
            }
        }
    }

    /// `sha256` and `max_size` of a source: a pin is 64 hex digits, a cap a
    /// size within the hard maximum; both only with a `url`.
    fn download_options(
        &mut self,
        p: &str,
        url: &Option<String>,
        sha256: &Option<String>,
        max_size: &Option<String>,
    ) {
        use super::{confine, types::is_hex_digest};
        if let Some(h) = sha256 {
            if !is_hex_digest(h) {
                self.push(p, "sha256", "must be 64 hex digits (sha256sum of the file)");
            } else if url.is_none() {
                self.push(p, "sha256", "only with a url (it pins the download)");
            }
        }
        if let Some(m) = max_size
            && self
                .check(p, "max_size", confine::check_max_size(m))
                .is_some()
            && url.is_none()
        {
            self.push(p, "max_size", "only with a url (it caps the download)");
        }
    }
}

/// The characters an interface name may use: Linux takes any byte but `/`,
/// `:`, whitespace and NUL (at most 15, not `.`/`..`), yet the name is written
/// into nft rules (`iifname "…"`), shell scripts and socket paths, so
/// wgsplit keeps to the subset every one of them reads as plain text.
pub fn is_interface_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// An interface name: what Linux accepts ([`check_ifname`]), in
/// [`is_interface_byte`]s, not starting with `-` (read as an option by tools).
pub fn check_interface(name: &str) -> Result<(), String> {
    if check_ifname(name).is_ok() && name.bytes().all(is_interface_byte) && !name.starts_with('-') {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not an interface name (1-15 of A-Z a-z 0-9 _ . -)"
        ))
    }
}

/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 256;

/// A description is free text for people, shown in the pages and written as a
/// comment into a client's `.conf`: one line, so no control character (a lone
/// `\r` ends a line for some importers, e.g. Android's, and would let the text
/// add lines to the config) and no Unicode line or paragraph separator.
pub fn check_description(text: &str) -> Result<(), String> {
    if text.chars().count() > MAX_DESCRIPTION {
        return Err(format!("longer than {MAX_DESCRIPTION} characters"));
    }
    match text
        .chars()
        .find(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        Some(c) => Err(format!(
            "contains the control character U+{:04X} (one line of text only)",
            c as u32
        )),
        None => Ok(()),
    }
}

/// Names of clients, upstreams, rules and lists become uci section names.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.len() <= 32 && super::uci::valid_name(name) {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a name (1-32 letters, digits or _)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::nft::nft_quoted;

    #[test]
    fn descriptions_are_one_line_of_text() {
        for ok in [
            "Anna's phone",
            "телефон Анны",
            "安娜的手机",
            "tab-free, 100% text",
            "",
        ] {
            assert!(check_description(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "x\rPostUp = sh",
            "x\nAllowedIPs = 0.0.0.0/0",
            "x\u{2028}y",
            "x\u{85}y",
            "bell\u{7}",
            "tab\there",
        ] {
            let e = check_description(bad).unwrap_err();
            assert!(e.contains("control character"), "{bad:?}: {e}");
        }
        assert!(check_description(&"é".repeat(MAX_DESCRIPTION)).is_ok());
        assert!(check_description(&"é".repeat(MAX_DESCRIPTION + 1)).is_err());
    }

    #[test]
    fn interface_names_are_strict() {
        for ok in [
            "wg0",
            "wgs_us1",
            "eth0.2",
            "br-lan",
            "a",
            "x.",
            "0123456789abcde",
        ] {
            assert_eq!(check_interface(ok), Ok(()), "{ok}");
        }
        for bad in [
            "x\";drop#",
            "a;b",
            "a b",
            "wg0 ",
            "x\"y",
            "a/b",
            "a:b",
            "a\tb",
            "a\nb",
            "é",
            "-x",
            ".",
            "..",
            "",
            "0123456789abcdef",
            "wg*",
            "{wg0}",
            "a'b",
            "a\\b",
        ] {
            let e = check_interface(bad).unwrap_err();
            assert!(e.contains("not an interface name"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn nft_strings_cannot_be_closed() {
        assert_eq!(nft_quoted("wg0"), "\"wg0\"");
        assert_eq!(nft_quoted("br-lan.2"), "\"br-lan.2\"");
        // What validation would refuse still cannot end the string or match another name.
        assert_eq!(nft_quoted("x\";drop#"), "\"x//drop/\"");
        assert_eq!(nft_quoted("a b\n}"), "\"a/b//\"");
        for s in ["\"", "\\", "\n", ";", "é", "$", "*"] {
            let q = nft_quoted(s);
            assert_eq!(q.matches('"').count(), 2, "{s:?} → {q}");
            assert!(
                q[1..q.len() - 1]
                    .bytes()
                    .all(|b| is_interface_byte(b) || b == b'/')
            );
        }
    }

    fn config_with(list: &str, geoip: &str) -> Vec<String> {
        let text = format!(
            "config server\n\toption address 10.9.0.1/24\n\toption private_key '4EqAuesGDDDllVFRw6LW42qz0RGOaO4UN+emBozZgU0='\n{list}{geoip}"
        );
        match super::super::parse_valid(&text) {
            Ok(_) => vec![],
            Err(e) => e.to_string().lines().map(str::to_string).collect(),
        }
    }

    #[test]
    fn download_options() {
        let pin = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        let list = |extra: &str| {
            format!(
                "config list 'l'\n\toption path '/tmp/wgsplit/l.txt'\n\toption url 'https://example.org/l'\n{extra}"
            )
        };
        assert_eq!(
            config_with(
                &list(&format!(
                    "\toption sha256 '{pin}'\n\toption max_size '5M'\n"
                )),
                ""
            ),
            Vec::<String>::new()
        );
        for (extra, want) in [
            ("\toption sha256 'abc'\n", "l.sha256: must be 64 hex digits"),
            (
                &format!("\toption sha256 '{pin}0'\n") as &str,
                "l.sha256: must be 64 hex digits",
            ),
            ("\toption max_size '97M'\n", "l.max_size: '97M' is above"),
            (
                "\toption max_size 'big'\n",
                "l.max_size: 'big' is not a size",
            ),
        ] {
            let problems = config_with(&list(extra), "");
            assert!(
                problems.iter().any(|p| p.contains(want)),
                "{extra}: {problems:?}"
            );
        }
        // Two lists sharing one download must agree on its pin.
        let other = pin.replace('E', "F");
        let shared = format!(
            "{}config list 'm'\n\toption path '/tmp/wgsplit/l.txt'\n\toption url 'https://example.org/l'\n\toption sha256 '{other}'\n",
            list(&format!("\toption sha256 '{pin}'\n"))
        );
        let problems = config_with(&shared, "");
        assert!(
            problems.iter().any(|p| p.starts_with("m.sha256: differs")),
            "{problems:?}"
        );
        // GeoIP: dir and path inside the folders, the pin only with a url.
        let problems = config_with(
            "",
            &format!(
                "config geoip 'geoip'\n\toption path '/etc/geoip.mmdb'\n\toption dir '/var'\n\toption sha256 '{pin}'\n"
            ),
        );
        for want in [
            "geoip.path: '/etc/geoip.mmdb' is outside",
            "geoip.dir: '/var' is outside",
            "geoip.sha256: only with a url",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(want)),
                "{want}: {problems:?}"
            );
        }
    }
}
