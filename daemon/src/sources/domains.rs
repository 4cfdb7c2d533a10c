//! Domain entries from every list format, and the entry point the resolver calls:
//! [`for_each`] (streaming, for huge lists) or [`load`] (an iterator).
//!
//! Formats (`config list … option format`):
//! - `domains`: one name per line; `*.x` and `.x` mean the same as `x` (x and its
//!   subdomains), `=x` only x; hosts-file lines (`0.0.0.0 x`) are read too;
//! - `dnsmasq`: `server=/a/b/…`, `nftset=/a/…`, `ipset=/a/…`, `address=/a/…`,
//!   `local=/a/`: every domain between the slashes (x and its subdomains);
//! - `v2fly`: the domain-list-community source format ([`super::v2fly`]);
//! - `geosite`: v2fly `geosite.dat` / `dlc.dat` ([`super::geosite`]).

use std::{fmt, path::Path};

use super::{SourceError, geosite, plain::for_each_line, v2fly};
use crate::config::{List, ListFormat, types::normalize_domain};

/// How an entry matches a name (the v2fly kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DomainKind {
    /// The name itself and its subdomains.
    Domain,
    /// Only the name itself.
    Full,
    /// Names containing the text.
    Keyword,
    /// Names matching the regular expression (Go RE2 syntax in v2fly's lists).
    Regexp,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainEntry {
    pub kind: DomainKind,
    /// Lowercase name (Domain/Full), lowercase keyword, or the expression as written.
    pub value: String,
}

impl DomainEntry {
    /// Checks and normalises a value for its kind.
    pub fn new(kind: DomainKind, value: &str) -> Result<Self, String> {
        let value = match kind {
            DomainKind::Domain | DomainKind::Full => normalize_domain(value)?,
            DomainKind::Keyword => {
                let k = value.trim().to_ascii_lowercase();
                if k.is_empty() || k.len() > 253 || k.contains(char::is_whitespace) {
                    return Err(format!("'{value}' is not a keyword"));
                }
                k
            }
            DomainKind::Regexp => {
                let r = value.trim();
                if r.is_empty() || r.len() > 1024 {
                    return Err(format!("'{value}' is not a regular expression"));
                }
                r.to_string()
            }
        };
        Ok(Self { kind, value })
    }

    /// Does a lowercase name without the final dot match? (Not for regexps: the
    /// resolver compiles those; here they never match.)
    pub fn matches(&self, name: &str) -> bool {
        match self.kind {
            DomainKind::Full => name == self.value,
            DomainKind::Domain => {
                name == self.value
                    || (name.len() > self.value.len()
                        && name.ends_with(&self.value)
                        && name.as_bytes()[name.len() - self.value.len() - 1] == b'.')
            }
            DomainKind::Keyword => name.contains(&self.value),
            DomainKind::Regexp => false,
        }
    }
}

impl fmt::Display for DomainEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = match self.kind {
            DomainKind::Domain => "domain",
            DomainKind::Full => "full",
            DomainKind::Keyword => "keyword",
            DomainKind::Regexp => "regexp",
        };
        write!(f, "{k}:{}", self.value)
    }
}

/// Reads a plain `domains` line.
pub fn parse_plain(line: &str) -> Result<Option<DomainEntry>, String> {
    let mut words = line.split_whitespace();
    let mut first = words.next().unwrap_or_default();
    // hosts-file form: `0.0.0.0 name`.
    if first.parse::<std::net::IpAddr>().is_ok() {
        match words.next() {
            Some(name) => first = name,
            None => return Err(format!("'{line}' is an address, not a name")),
        }
        if matches!(
            first,
            "localhost" | "localhost.localdomain" | "broadcasthost"
        ) {
            return Ok(None);
        }
    }
    if let Some(extra) = words.next() {
        return Err(format!("unexpected '{extra}' after the name"));
    }
    let (kind, name) = if let Some(n) = first.strip_prefix('=') {
        (DomainKind::Full, n)
    } else if let Some(n) = first.strip_prefix("*.") {
        (DomainKind::Domain, n)
    } else if let Some(n) = first.strip_prefix('.') {
        (DomainKind::Domain, n)
    } else if first.contains(':') {
        // A v2fly-style prefix in a plain list.
        return v2fly::parse_rule(first).map(|r| Some(r.entry));
    } else {
        (DomainKind::Domain, first)
    };
    DomainEntry::new(kind, name).map(Some)
}

/// Reads a dnsmasq line: the domains of `server=/a/b/…` and friends.
pub fn parse_dnsmasq(line: &str, f: &mut dyn FnMut(DomainEntry)) -> Result<(), String> {
    let Some((key, rest)) = line.split_once('=') else {
        return Err(format!("'{line}' is not a dnsmasq option"));
    };
    let key = key.trim().trim_start_matches("--");
    if !matches!(
        key,
        "server" | "nftset" | "ipset" | "address" | "local" | "rebind-domain-ok"
    ) {
        // Other options carry no domains (cache-size=…): ignored.
        return Ok(());
    }
    let Some(rest) = rest.trim().strip_prefix('/') else {
        return Ok(());
    };
    // Domains sit between the first and the last slash.
    let Some(end) = rest.rfind('/') else {
        return Err(format!("'{line}': no closing '/'"));
    };
    for d in rest[..end].split('/') {
        let d = d.trim();
        if d.is_empty() || d == "#" {
            continue;
        }
        let d = d.trim_start_matches("*.").trim_start_matches('.');
        f(DomainEntry::new(DomainKind::Domain, d)?);
    }
    Ok(())
}

/// Streams the entries of a list to `f`; returns how many there were. A bad line
/// stops the load with an error naming it (the caller keeps its old data).
pub fn for_each(list: &List, f: &mut dyn FnMut(DomainEntry)) -> Result<usize, SourceError> {
    let path = Path::new(&list.path);
    let selector = list
        .category
        .as_deref()
        .map(v2fly::Selector::parse)
        .transpose()
        .map_err(SourceError::Check)?;
    let mut n = 0;
    match list.format.unwrap_or_default() {
        ListFormat::Domains => for_each_line(path, |l| {
            if let Some(e) = parse_plain(l)? {
                n += 1;
                f(e);
            }
            Ok(())
        })?,
        ListFormat::Dnsmasq => for_each_line(path, |l| {
            parse_dnsmasq(l, &mut |e| {
                n += 1;
                f(e)
            })
        })?,
        ListFormat::V2fly => {
            n = if path.is_dir() {
                let sel = selector.ok_or_else(|| {
                    SourceError::Check(format!("{}: a folder needs a category", list.path))
                })?;
                v2fly::load_category(path, &sel, f)?
            } else {
                v2fly::load_file(path, selector.as_ref(), f)?
            }
        }
        ListFormat::Geosite => {
            let sel = selector
                .ok_or_else(|| SourceError::Check(format!("list {}: no category", list.name)))?;
            n = geosite::load(path, &sel, f)?;
        }
        ListFormat::Cidr => {
            return Err(SourceError::Check(format!(
                "list {} holds addresses, not domains",
                list.name
            )));
        }
    }
    Ok(n)
}

/// The entries of a list, as an iterator (collected first: use [`for_each`] for
/// lists of millions of names).
pub fn load(list: &List) -> Result<impl Iterator<Item = DomainEntry>, SourceError> {
    let mut out = Vec::new();
    for_each(list, &mut |e| out.push(e))?;
    Ok(out.into_iter())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::mmdb::tests::tempfile_path::TempPath;

    fn list(path: &Path, format: ListFormat, category: Option<&str>) -> List {
        List {
            name: "t".into(),
            path: path.to_string_lossy().into_owned(),
            format: Some(format),
            url: None,
            category: category.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn plain_and_dnsmasq() {
        let f = TempPath::new("plain");
        std::fs::write(
            &f.0,
            "# list\nExample.COM\n*.sub.example.org\n=exact.net\n0.0.0.0 ads.example\n127.0.0.1 localhost\nfull:x.io\n",
        )
        .unwrap();
        let got: Vec<String> = load(&list(&f.0, ListFormat::Domains, None))
            .unwrap()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            got,
            vec![
                "domain:example.com",
                "domain:sub.example.org",
                "full:exact.net",
                "domain:ads.example",
                "full:x.io"
            ]
        );
        std::fs::write(&f.0, "ok.com\nnot a domain!\n").unwrap();
        let err = for_each(&list(&f.0, ListFormat::Domains, None), &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains(":2:"), "{err}");

        std::fs::write(
            &f.0,
            "server=/a.com/b.net/8.8.8.8\nnftset=/c.org/4#inet#fw4#vpn\nipset=/d.io/set\naddress=/#/0.0.0.0\ncache-size=1000\nserver=1.1.1.1\n",
        )
        .unwrap();
        let got: Vec<String> = load(&list(&f.0, ListFormat::Dnsmasq, None))
            .unwrap()
            .map(|e| e.value)
            .collect();
        assert_eq!(got, vec!["a.com", "b.net", "c.org", "d.io"]);
    }

    #[test]
    fn matching() {
        let d = DomainEntry::new(DomainKind::Domain, "netflix.com").unwrap();
        assert!(d.matches("netflix.com") && d.matches("www.netflix.com"));
        assert!(!d.matches("notnetflix.com"));
        let f = DomainEntry::new(DomainKind::Full, "netflix.com").unwrap();
        assert!(!f.matches("www.netflix.com"));
        let k = DomainEntry::new(DomainKind::Keyword, "flix").unwrap();
        assert!(k.matches("www.netflix.com"));
    }
}
