//! Set elements as typed values: what the planner builds, the diff compares and
//! the kernel edge encodes straight into netlink attributes. Their nft text
//! (`Display`) is written only where text is the point: `apply --dry-run`, an
//! `nft -f` script, the digest and the record of what the engine wrote.
//!
//! The text is a contract with the past: the record (`sys::nft`) and its digests
//! were written by older versions as text, and a daemon restarted on a new
//! version adopts that state only if the same elements print the same bytes.

use std::{
    collections::BTreeSet,
    fmt::{self, Write as _},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use ipnet::IpNet;

use crate::util::ranges::net_range;

/// The last IPv4 address, as the `u128` an [`AddrRange`] holds it in.
const V4_MAX: u128 = u32::MAX as u128;

/// An inclusive range of addresses of one family: one key of an interval set.
/// Printed as `a` (one address), `a/len` (a whole prefix) or `a-b`.
///
/// Ordered by family, then start, then end: the order the kernel's interval
/// tree keeps, and the order `apply --dry-run` lists elements in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AddrRange {
    v6: bool,
    start: u128,
    end: u128,
}

impl AddrRange {
    /// `start..=end` of one family (IPv4 in the low 32 bits). The planner's
    /// arithmetic only yields valid ranges; a reversed or out-of-family one is
    /// a bug there, caught in tests.
    pub fn new(start: u128, end: u128, v6: bool) -> Self {
        debug_assert!(start <= end, "range {start}..={end} reversed");
        debug_assert!(v6 || end <= V4_MAX, "IPv4 range beyond 32 bits");
        Self { v6, start, end }
    }

    /// Every address of a network (host bits ignored).
    pub fn of_net(net: &IpNet) -> Self {
        let (start, end) = net_range(net);
        Self::new(start, end, matches!(net, IpNet::V6(_)))
    }

    pub fn is_v6(&self) -> bool {
        self.v6
    }

    pub fn start(&self) -> u128 {
        self.start
    }

    pub fn end(&self) -> u128 {
        self.end
    }

    /// The last address of this range's family.
    pub fn family_max(&self) -> u128 {
        if self.v6 { u128::MAX } else { V4_MAX }
    }

    /// An address of this range's family.
    pub fn addr(&self, value: u128) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(value))
        } else {
            IpAddr::V4(Ipv4Addr::from(value as u32))
        }
    }
}

impl fmt::Display for AddrRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (start, end) = (self.addr(self.start), self.addr(self.end));
        if self.start == self.end {
            return write!(f, "{start}");
        }
        // Wraps to 0 for the whole IPv6 space (2^128 addresses).
        let size = self.end.wrapping_sub(self.start).wrapping_add(1);
        if size == 0 {
            return f.write_str("::/0");
        }
        if size.is_power_of_two() && self.start.is_multiple_of(size) {
            let bits = if self.v6 { 128 } else { 32 };
            return write!(f, "{start}/{}", bits - size.trailing_zeros());
        }
        write!(f, "{start}-{end}")
    }
}

/// Why a text is not an element; names the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadElement(pub String);

impl fmt::Display for BadElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads back what `Display` wrote (the record of an older apply). Lenient as
/// nft is (host bits of a prefix are dropped); the record's digest, taken over
/// the text again, tells a line that does not print back the same.
impl FromStr for AddrRange {
    type Err = BadElement;

    fn from_str(text: &str) -> Result<Self, BadElement> {
        let bad = |why: &str| BadElement(format!("element key '{text}': {why}"));
        let addr = |s: &str| {
            s.parse::<IpAddr>().map(|ip| match ip {
                IpAddr::V4(a) => (false, u128::from(u32::from(a))),
                IpAddr::V6(a) => (true, u128::from(a)),
            })
        };
        if let Some((a, b)) = text.split_once('-') {
            let (v6, start) = addr(a).map_err(|_| bad("not an address before '-'"))?;
            let (end_v6, end) = addr(b).map_err(|_| bad("not an address after '-'"))?;
            if v6 != end_v6 {
                return Err(bad("ends of two address families"));
            }
            if start > end {
                return Err(bad("start after end"));
            }
            return Ok(Self::new(start, end, v6));
        }
        if text.contains('/') {
            let net: IpNet = text.parse().map_err(|_| bad("not a prefix"))?;
            return Ok(Self::of_net(&net));
        }
        let (v6, a) = addr(text).map_err(|_| bad("not an address"))?;
        Ok(Self::new(a, a, v6))
    }
}

/// One element of a set the engine fills: a key range, and for a verdict map
/// the chain its traffic goes to. Printed `KEY` or `KEY : goto CHAIN`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Element {
    pub key: AddrRange,
    /// `goto CHAIN` of a verdict map element; `None` in a plain set.
    pub goto: Option<String>,
}

impl Element {
    /// An element of a plain (interval) set.
    pub fn key(key: AddrRange) -> Self {
        Self { key, goto: None }
    }

    /// An element of a verdict map: `key : goto chain`.
    pub fn goto(key: AddrRange, chain: &str) -> Self {
        Self {
            key,
            goto: Some(chain.to_string()),
        }
    }
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.key)?;
        if let Some(chain) = &self.goto {
            write!(f, " : goto {chain}")?;
        }
        Ok(())
    }
}

impl FromStr for Element {
    type Err = BadElement;

    fn from_str(text: &str) -> Result<Self, BadElement> {
        let Some((key, data)) = text.split_once(" : ") else {
            return Ok(Self::key(text.trim().parse()?));
        };
        let chain = data
            .trim()
            .strip_prefix("goto ")
            .filter(|c| !c.is_empty() && !c.contains(char::is_whitespace))
            .ok_or_else(|| BadElement(format!("element '{text}': only 'goto CHAIN' data")))?;
        Ok(Self::goto(key.trim().parse()?, chain))
    }
}

/// An order-independent 64-bit digest of a set's elements, taken over their
/// text (so digests recorded by versions that planned text stay valid).
pub fn set_digest(elements: &BTreeSet<Element>) -> u64 {
    let mut acc = elements.len() as u64;
    // One buffer for every element: 50k of them are digested per full plan.
    let mut text = String::with_capacity(64);
    for e in elements {
        text.clear();
        let _ = write!(text, "{e}");
        acc = acc.wrapping_add(element_hash(text.as_bytes()));
    }
    acc
}

/// A fast 64-bit hash of one element's text (8 bytes per step, then a final mix).
fn element_hash(b: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = b.len() as u64 ^ 0x51_7cc1_b727_220a;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    h ^= h >> 32;
    h = h.wrapping_mul(0xd6e8_feb8_6659_fd93);
    h ^ (h >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> AddrRange {
        text.parse().unwrap()
    }

    #[test]
    fn a_range_prints_as_address_prefix_or_span() {
        let r = |s: u128, e: u128, v6| AddrRange::new(s, e, v6).to_string();
        assert_eq!(r(0x0a00_0001, 0x0a00_0001, false), "10.0.0.1");
        assert_eq!(r(0x0a00_0000, 0x0a00_00ff, false), "10.0.0.0/24");
        // A power-of-two size that does not start on its boundary is a span.
        assert_eq!(r(0x0a00_0080, 0x0a00_017f, false), "10.0.0.128-10.0.1.127");
        assert_eq!(r(0, V4_MAX, false), "0.0.0.0/0");
        assert_eq!(r(0, u128::MAX, true), "::/0");
        assert_eq!(
            r(1, u128::MAX, true),
            "::1-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        );
        assert_eq!(r(0xff, 0xff, true), "::ff");
    }

    #[test]
    fn every_form_reads_back_as_it_prints() {
        for text in [
            "10.0.0.1",
            "10.0.0.0/24",
            "10.0.0.5-10.0.1.9",
            "0.0.0.0/0",
            "255.255.255.255",
            "::/0",
            "fd00::1",
            "2001:db8::/32",
            "::-2001:db8:0:ffff:ffff:ffff:ffff:ffff",
            "10.8.0.2 : goto client_alice",
            "fd42:8::/64 : goto mark_up_us1",
        ] {
            let e: Element = text.parse().unwrap();
            assert_eq!(e.to_string(), text);
        }
        let e: Element = "10.0.0.0/24 : goto mark_up_us1".parse().unwrap();
        assert_eq!((e.key.start(), e.key.end()), (0x0a00_0000, 0x0a00_00ff));
        assert_eq!(e.goto.as_deref(), Some("mark_up_us1"));
        // Host bits are dropped, as nft does: the digest catches the changed text.
        assert_eq!(range("10.0.0.7/24").to_string(), "10.0.0.0/24");
    }

    #[test]
    fn what_is_not_an_element_is_refused_by_name() {
        for text in [
            "",
            "10.0.0.1 : accept",
            "10.0.0.1 : goto ",
            "10.0.0.1 : goto a b",
            "10.0.0.300",
            "10.0.0.9-10.0.0.1",
            "10.0.0.1-fd00::1",
            "10.0.0.0/33",
            "x-10.0.0.1",
        ] {
            let err = text.parse::<Element>().unwrap_err();
            assert!(err.0.contains(text.trim()), "{err} names '{text}'");
        }
    }

    #[test]
    fn ranges_order_by_family_then_address_not_by_text() {
        let set: BTreeSet<AddrRange> = ["9.0.0.0/8", "10.0.0.0/8", "::/0", "8.8.8.8"]
            .map(range)
            .into();
        let shown: Vec<String> = set.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["8.8.8.8", "9.0.0.0/8", "10.0.0.0/8", "::/0"]);
    }

    #[test]
    fn set_digest_depends_on_content_not_order() {
        let set =
            |v: &[&str]| -> BTreeSet<Element> { v.iter().map(|s| s.parse().unwrap()).collect() };
        let a = set(&["10.0.0.0/24 : goto x", "10.0.1.0/24 : goto x"]);
        let b = set(&["10.0.1.0/24 : goto x", "10.0.0.0/24 : goto x"]);
        assert_eq!(set_digest(&a), set_digest(&b));
        assert_ne!(
            set_digest(&a),
            set_digest(&set(&["10.0.0.0/24 : goto x", "10.0.2.0/24 : goto x"]))
        );
        // Another verdict is another element.
        assert_ne!(
            set_digest(&a),
            set_digest(&set(&["10.0.0.0/24 : goto y", "10.0.1.0/24 : goto x"]))
        );
        assert_ne!(set_digest(&a), set_digest(&BTreeSet::new()));
    }
}
