//! The DNS bypass guard's resolver half (issue #19; the data-path half is
//! `plan/guard.rs`). For a client whose domain rules need its DNS to come here
//! (`ClientPolicy::dns_guard`), these names are answered NXDOMAIN:
//! - Firefox's canary `use-application-dns.net`: NXDOMAIN tells Firefox not to
//!   turn on its DNS over HTTPS by default;
//! - the DoH resolvers' names, and names under them: a browser or app that
//!   cannot resolve its DoH server falls back to plain DNS. The names are the
//!   domain lists `server.doh_list` names (downloaded and updated like any
//!   list), or, when none is configured or none could be read, the small
//!   shipped list [`DOH_NAMES`].
//!
//! It cannot catch an app that ships a DoH server's address (that is the data
//! path's address list) or uses one not on the list.

use std::sync::Arc;

use super::{
    matcher::NameHashes,
    rules::{DomainList, WireText},
};

/// Firefox's canary domain.
pub const CANARY: &str = "use-application-dns.net";

/// The shipped DoH resolvers' names, lower case; a name under one is refused too.
pub const DOH_NAMES: &[&str] = &[
    "dns.google",
    "dns64.dns.google",
    "cloudflare-dns.com",
    "one.one.one.one",
    "dns.quad9.net",
    "dns9.quad9.net",
    "dns10.quad9.net",
    "dns11.quad9.net",
    "dns.adguard.com",
    "dns.adguard-dns.com",
    "doh.opendns.com",
    "doh.familyshield.opendns.com",
    "doh.cleanbrowsing.org",
    "dns.nextdns.io",
    "doh.mullvad.net",
    "dns.mullvad.net",
    "freedns.controld.com",
    "doh.dns.sb",
    "dns.alidns.com",
    "doh.pub",
];

/// The most labels a refused name has (`doh.familyshield.opendns.com`); a name
/// is compared by its last labels only, so the check is bounded whatever its length.
const MAX_LABELS: usize = 4;

/// Is the question (wire format: length-prefixed labels, a zero at the end)
/// one the guard answers NXDOMAIN? The canary always; DoH names from `lists`
/// (`server.doh_list`, loaded), or the shipped [`DOH_NAMES`] when there are
/// none. Case-insensitive; malformed names are not. Allocation-free with the
/// shipped names: it runs on every query of a guarded client.
pub fn refused(wire_name: &[u8], lists: &[Arc<DomainList>]) -> bool {
    if lists.is_empty() {
        return suffix_in(wire_name, &|s| {
            is_name(s, CANARY) || DOH_NAMES.iter().any(|d| is_name(s, d))
        });
    }
    suffix_in(wire_name, &|s| is_name(s, CANARY))
        || NameHashes::from_wire(wire_name).is_some_and(|h| {
            let text = WireText::new(wire_name);
            lists.iter().any(|l| l.matches(&h, &text))
        })
}

/// Does the name, or a name it is under (its last labels, up to
/// [`MAX_LABELS`]: bounded whatever its length), pass `hit`? `hit` gets the
/// suffix's wire labels (without the final zero).
fn suffix_in(wire_name: &[u8], hit: &dyn Fn(&[u8]) -> bool) -> bool {
    // The start offsets of the last MAX_LABELS labels (a ring), then try
    // every suffix of up to MAX_LABELS labels.
    let mut starts = [0usize; MAX_LABELS];
    let mut n = 0;
    let mut at = 0;
    while let Some(&len) = wire_name.get(at) {
        if len == 0 {
            break;
        }
        if len > 63 || at + 1 + usize::from(len) > wire_name.len() {
            return false;
        }
        starts[n % MAX_LABELS] = at;
        n += 1;
        at += 1 + usize::from(len);
    }
    (1..=MAX_LABELS.min(n)).any(|k| hit(&wire_name[starts[(n - k) % MAX_LABELS]..at]))
}

/// Do the wire labels (`3www7example3com`, without the final zero) spell the
/// dotted lower-case `name` (`www.example.com`), in any letter case?
fn is_name(labels: &[u8], name: &str) -> bool {
    let name = name.as_bytes();
    if labels.len() != name.len() + 1 {
        return false;
    }
    let mut at = 0;
    while at < labels.len() {
        let len = usize::from(labels[at]);
        let (Some(label), Some(text)) = (labels.get(at + 1..at + 1 + len), name.get(at..at + len))
        else {
            return false;
        };
        // Labels are separated by a dot in `name` exactly where the next length byte sits.
        if !label.eq_ignore_ascii_case(text) || name.get(at + len).is_some_and(|&c| c != b'.') {
            return false;
        }
        at += 1 + len;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for l in name.split('.').filter(|l| !l.is_empty()) {
            out.push(l.len() as u8);
            out.extend_from_slice(l.as_bytes());
        }
        out.push(0);
        out
    }

    #[test]
    fn the_canary_and_doh_names_and_names_under_them_are_refused() {
        for n in [
            "use-application-dns.net",
            "USE-Application-DNS.net",
            "dns.google",
            "mozilla.cloudflare-dns.com",
            "chrome.cloudflare-dns.com",
            "doh.familyshield.opendns.com",
            "x.y.dns.nextdns.io",
        ] {
            assert!(refused(&wire(n), &[]), "{n}");
        }
    }

    #[test]
    fn other_names_pass() {
        for n in [
            "google.com",
            "www.google",
            "quad9.net",
            "example.com",
            "application-dns.net",
            "notcloudflare-dns.com",
            "",
        ] {
            assert!(!refused(&wire(n), &[]), "{n}");
        }
    }

    #[test]
    fn every_listed_name_fits_the_label_bound() {
        for n in DOH_NAMES.iter().chain([&CANARY]) {
            assert!(n.split('.').count() <= MAX_LABELS, "{n}");
            assert_eq!(*n, n.to_ascii_lowercase());
        }
    }

    #[test]
    fn malformed_names_are_not_refused() {
        assert!(!refused(&[10, b'd', b'n', b's'], &[]));
        assert!(!refused(&[64], &[]));
    }

    #[test]
    fn a_configured_list_replaces_the_shipped_names_but_never_the_canary() {
        let dir = std::env::temp_dir().join(format!("wgsplit-bypass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("doh.txt");
        std::fs::write(&path, "# a maintained list\ndoh.example.net\n").unwrap();
        let list = crate::config::List {
            name: "doh".into(),
            path: path.to_string_lossy().into_owned(),
            ..Default::default()
        };
        let lists = [Arc::new(DomainList::load(&list).unwrap())];
        assert!(refused(&wire("doh.example.net"), &lists));
        // (The query parser lowercases names: the lists match lowercase wire names.)
        assert!(refused(&wire("a.doh.example.net"), &lists));
        assert!(refused(&wire("use-application-dns.net"), &lists));
        assert!(!refused(&wire("dns.google"), &lists));
        assert!(!refused(&wire("example.net"), &lists));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
