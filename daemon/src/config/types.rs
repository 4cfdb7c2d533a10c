//! Typed forms of the values the config holds as text, parsed the same way by
//! validation, the planner, the resolver and `explain`.

pub use crate::util::ranges::{ipv4_of, net_range};
use std::{
    fmt,
    net::{IpAddr, Ipv6Addr},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use ipnet::IpNet;

/// A domain rule: `google.com` (it and its subdomains), `*.google.com` (only
/// subdomains) or `=google.com` (only itself). Names are lowercase, no final dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DomainPattern {
    Suffix(String),
    SubdomainsOnly(String),
    Exact(String),
}

impl DomainPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (make, name): (fn(String) -> Self, &str) = if let Some(rest) = text.strip_prefix("*.") {
            (Self::SubdomainsOnly, rest)
        } else if let Some(rest) = text.strip_prefix('=') {
            (Self::Exact, rest)
        } else {
            (Self::Suffix, text)
        };
        Ok(make(normalize_domain(name)?))
    }

    pub fn name(&self) -> &str {
        match self {
            Self::Suffix(n) | Self::SubdomainsOnly(n) | Self::Exact(n) => n,
        }
    }

    /// Does `name` (already normalised) match?
    pub fn matches(&self, name: &str) -> bool {
        let is_sub = |base: &str| {
            name.len() > base.len()
                && name.ends_with(base)
                && name.as_bytes()[name.len() - base.len() - 1] == b'.'
        };
        match self {
            Self::Exact(b) => name == b,
            Self::SubdomainsOnly(b) => is_sub(b),
            Self::Suffix(b) => name == b || is_sub(b),
        }
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Suffix(n) => write!(f, "{n}"),
            Self::SubdomainsOnly(n) => write!(f, "*.{n}"),
            Self::Exact(n) => write!(f, "={n}"),
        }
    }
}

/// Lowercases and checks a DNS name (letters, digits, `-`, `_`; labels ≤ 63).
pub fn normalize_domain(name: &str) -> Result<String, String> {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() || name.len() > 253 {
        return Err(format!("'{name}' is not a domain name"));
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(format!("'{name}' is not a domain name"));
        }
    }
    Ok(name)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    /// Either.
    Any,
}

/// `tcp:443`, `udp:5000-6000`, `443` (TCP and UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortSpec {
    pub proto: Proto,
    pub first: u16,
    pub last: u16,
}

impl PortSpec {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (proto, range) = match text.split_once(':') {
            Some(("tcp", r)) => (Proto::Tcp, r),
            Some(("udp", r)) => (Proto::Udp, r),
            Some((p, _)) => return Err(format!("'{p}' is not tcp or udp")),
            None => (Proto::Any, text),
        };
        let port = |p: &str| match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("'{p}' is not a port (1-65535)")),
        };
        let (first, last) = match range.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => (port(range)?, port(range)?),
        };
        if first > last {
            return Err(format!("port range {first}-{last} is backwards"));
        }
        Ok(Self { proto, first, last })
    }

    pub fn matches(&self, proto: Proto, port: u16) -> bool {
        (self.proto == Proto::Any || self.proto == proto)
            && (self.first..=self.last).contains(&port)
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.proto {
            Proto::Tcp => write!(f, "tcp:")?,
            Proto::Udp => write!(f, "udp:")?,
            Proto::Any => {}
        }
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// A CIDR or a bare address (a /32 or /128); host bits are cleared.
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    match text.parse::<IpAddr>() {
        Ok(addr) => Ok(IpNet::from(addr)),
        Err(_) => Err(format!("'{text}' is not an IP address or CIDR")),
    }
}

/// An interface address with prefix, keeping its host part (`10.8.0.1/24`).
pub fn parse_interface_address(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net);
    }
    match text.parse::<IpAddr>() {
        Ok(addr) => Ok(IpNet::from(addr)),
        Err(_) => Err(format!("'{text}' is not an address with prefix")),
    }
}

/// `us` or `!cn`: (negated, lowercase code).
pub fn parse_geoip(text: &str) -> Result<(bool, String), String> {
    let t = text.trim();
    let (negated, code) = match t.strip_prefix('!') {
        Some(c) => (true, c),
        None => (false, t),
    };
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok((negated, code.to_ascii_lowercase()))
    } else {
        Err(format!("'{text}' is not a two-letter country code"))
    }
}

/// A WireGuard key: base64 of 32 bytes.
pub fn parse_key(text: &str) -> Result<[u8; 32], String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| "not a base64 WireGuard key".to_string())?;
    bytes
        .try_into()
        .map_err(|_| "not a WireGuard key (must be 32 bytes of base64)".to_string())
}

/// `host:port`, `1.2.3.4:port` or `[v6]:port`.
pub fn parse_endpoint(text: &str) -> Result<(String, u16), String> {
    let text = text.trim();
    let bad = || format!("'{text}' is not host:port");
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
        h.parse::<Ipv6Addr>().map_err(|_| bad())?;
        (h, p)
    } else {
        text.rsplit_once(':').ok_or_else(bad)?
    };
    let port: u16 = port.parse().ok().filter(|&p| p > 0).ok_or_else(bad)?;
    if host.parse::<IpAddr>().is_err() && normalize_domain(host).is_err() {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// A host for client configs: a name or address, optionally with `:port`.
pub fn parse_public_host(text: &str) -> Result<(), String> {
    if parse_endpoint(text).is_ok()
        || text.parse::<IpAddr>().is_ok()
        || normalize_domain(text).is_ok()
    {
        Ok(())
    } else {
        Err(format!("'{text}' is not a host name or address"))
    }
}

/// A resolver: `ip` or `ip:port` / `[v6]:port`; port 53 by default.
pub fn parse_resolver(text: &str) -> Result<std::net::SocketAddr, String> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok((ip, 53).into());
    }
    match text.parse::<std::net::SocketAddr>() {
        Ok(a) if a.port() != 0 => Ok(a),
        _ => Err(format!(
            "'{text}' is not an address or address:port (port 1-65535)"
        )),
    }
}

/// A server pool: an address with an explicit prefix (`10.8.0.1/24`), since the
/// prefix is what clients' addresses are allocated from.
pub fn parse_pool(text: &str) -> Result<IpNet, String> {
    if !text.contains('/') {
        return Err(format!(
            "'{text}' needs a prefix: the server address and its client pool, e.g. 10.8.0.1/24"
        ));
    }
    parse_interface_address(text)
}

/// Linux interface names: 1–15 bytes, no `/`, `:` or white space.
pub fn check_ifname(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not an interface name (1-15 characters, no '/', ':' or spaces)"
        ))
    }
}

/// `YYYY-MM-DD` (the end of that day, UTC) or RFC 3339 (`2026-01-31T12:00:00Z`,
/// `+02:00` offsets) as Unix seconds.
pub fn parse_expiry(text: &str) -> Result<i64, String> {
    let bad = || format!("'{text}' is not a date (YYYY-MM-DD or RFC 3339)");
    let t = text.trim();
    let num = |s: &str| -> Result<i64, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let (date, time) = match t.split_once(['T', 't', ' ']) {
        Some((d, tm)) => (d, Some(tm)),
        None => (t, None),
    };
    let mut parts = date.split('-');
    let (y, m, d) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(y), Some(m), Some(d), None) if y.len() == 4 && m.len() == 2 && d.len() == 2 => {
            (num(y)?, num(m)?, num(d)?)
        }
        _ => return Err(bad()),
    };
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(bad());
    }
    let day_start = days_from_civil(y, m, d) * 86400;
    let Some(time) = time else {
        return Ok(day_start + 86399);
    };
    let (clock, offset) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, off) = time.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':').ok_or_else(bad)?;
        (c, sign * (num(oh)? * 3600 + num(om)? * 60))
    } else {
        return Err(bad());
    };
    let clock = clock.split('.').next().unwrap_or_default();
    let mut hms = clock.split(':');
    let (h, mi, s) = match (hms.next(), hms.next(), hms.next(), hms.next()) {
        (Some(h), Some(mi), Some(s), None) => (num(h)?, num(mi)?, num(s)?),
        _ => return Err(bad()),
    };
    if h > 23 || mi > 59 || s > 60 {
        return Err(bad());
    }
    Ok(day_start + h * 3600 + mi * 60 + s - offset)
}

/// A byte count: `500M`, `50G`, `1T`, `1048576` (K, M, G, T are powers of 1024;
/// a trailing `B` or `iB` is accepted). Zero is refused: leave the option out instead.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("'{text}' is not a size (e.g. 500M, 50G, 1T)");
    let lower = text.trim().to_ascii_lowercase();
    let t = lower.as_str();
    let t = t
        .strip_suffix("ib")
        .or_else(|| t.strip_suffix('b'))
        .unwrap_or(t);
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(bad()),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(format!(
            "'{text}': a quota of zero; leave the option out for none"
        ));
    }
    n.checked_mul(1u64 << shift).ok_or_else(bad)
}

/// Unix seconds → (year, month) in UTC.
pub fn year_month(unix: i64) -> (i64, i64) {
    let days = unix.div_euclid(86400);
    let (y, m, _) = civil_from_days(days);
    (y, m)
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// `netflix`, `category-ads-all@ads`, `geolocation-cn@!cn`, `google@-cn`: a
/// category name and attribute filters (all must hold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub name: String,
    /// (attribute, wanted): `@a` → (a, true), `@-a` → (a, false).
    pub attrs: Vec<(String, bool)>,
}

/// A category or attribute word of a v2fly selector or rule line.
pub fn valid_word(w: &str) -> bool {
    !w.is_empty()
        && w.len() <= 64
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'!' | b'.'))
}

impl Selector {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim().to_ascii_lowercase();
        let mut parts = text.split('@');
        let name = parts.next().unwrap_or_default().trim().to_string();
        if !valid_word(&name) {
            return Err(format!(
                "'{text}' is not a category name (e.g. netflix or category-ads-all@ads)"
            ));
        }
        let mut attrs = Vec::new();
        for a in parts {
            let a = a.trim();
            let (attr, want) = match a.strip_prefix('-') {
                Some(x) => (x, false),
                None => (a, true),
            };
            if !valid_word(attr) {
                return Err(format!("'{text}': '@{a}' is not an attribute"));
            }
            attrs.push((attr.to_string(), want));
        }
        Ok(Self { name, attrs })
    }

    /// Does an entry with these attributes pass the filters?
    pub fn accepts<S: AsRef<str>>(&self, entry_attrs: &[S]) -> bool {
        accepts(&self.attrs, entry_attrs)
    }
}

pub fn accepts<S: AsRef<str>>(filters: &[(String, bool)], attrs: &[S]) -> bool {
    filters
        .iter()
        .all(|(a, want)| attrs.iter().any(|x| x.as_ref() == a) == *want)
}

/// Is `text` a SHA-256 in hex (64 digits, either case)?
pub fn is_hex_digest(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_forms() {
        let suffix = DomainPattern::parse("Google.COM.").unwrap();
        assert!(suffix.matches("google.com"));
        assert!(suffix.matches("www.google.com"));
        assert!(!suffix.matches("notgoogle.com"));
        let sub = DomainPattern::parse("*.google.com").unwrap();
        assert!(!sub.matches("google.com"));
        assert!(sub.matches("a.b.google.com"));
        let exact = DomainPattern::parse("=google.com").unwrap();
        assert!(exact.matches("google.com"));
        assert!(!exact.matches("www.google.com"));
        assert!(DomainPattern::parse("bad domain").is_err());
        assert!(DomainPattern::parse("a..b").is_err());
        assert_eq!(sub.to_string(), "*.google.com");
    }

    #[test]
    fn ports() {
        assert_eq!(
            PortSpec::parse("udp:5000-6000").unwrap(),
            PortSpec {
                proto: Proto::Udp,
                first: 5000,
                last: 6000
            }
        );
        assert!(PortSpec::parse("443").unwrap().matches(Proto::Udp, 443));
        assert!(!PortSpec::parse("tcp:443").unwrap().matches(Proto::Udp, 443));
        for bad in ["0", "70000", "sctp:1", "tcp:9-1", "tcp:", "x"] {
            assert!(PortSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expiry_dates() {
        assert_eq!(parse_expiry("1970-01-01").unwrap(), 86399);
        assert_eq!(parse_expiry("2000-03-01T00:00:00Z").unwrap(), 951868800);
        assert_eq!(
            parse_expiry("2000-03-01T02:00:00+02:00").unwrap(),
            951868800
        );
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "26-01-01",
            "2026-01-01T25:00:00Z",
            "x",
        ] {
            assert!(parse_expiry(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_and_months() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("50G").unwrap(), 50 << 30);
        assert_eq!(parse_size("500MiB").unwrap(), 500 << 20);
        assert_eq!(parse_size("2tb").unwrap(), 2 << 40);
        for bad in ["", "0", "G", "5X", "-1G", "1.5G", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(year_month(0), (1970, 1));
        assert_eq!(year_month(951868800), (2000, 3));
        assert_eq!(year_month(951868799), (2000, 2));
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }

    #[test]
    fn endpoints_and_keys() {
        assert_eq!(
            parse_endpoint("vpn.example.com:51820").unwrap(),
            ("vpn.example.com".into(), 51820)
        );
        assert_eq!(parse_endpoint("[2001:db8::1]:5").unwrap().1, 5);
        assert!(parse_endpoint("vpn.example.com").is_err());
        assert!(parse_endpoint("host:0").is_err());
        assert!(parse_key("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").is_ok());
        assert!(parse_key("AAAA").is_err());
        assert_eq!(parse_cidr("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_cidr("::1").unwrap().to_string(), "::1/128");
    }
}
