//! Address ranges: what nft interval sets hold. GeoIP sources give CIDRs or
//! ranges in any order; [`RangeSet`] sorts and merges them (adjacent ranges too),
//! converts back to CIDRs, and diffs two sets for an atomic update.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address as an unsigned integer: `u32` for IPv4, `u128` for IPv6.
pub trait Addr: Copy + Ord + Eq + std::fmt::Debug {
    const BITS: u32;
    const MAX: Self;
    fn zero() -> Self;
    fn succ(self) -> Option<Self>;
    /// The last address of the prefix `self/len` (host bits set).
    fn prefix_end(self, len: u32) -> Self;
    /// The prefix `self/len` with host bits cleared.
    fn prefix_start(self, len: u32) -> Self;
    fn trailing_zeros_(self) -> u32;
    fn sub(self, other: Self) -> Self;
    /// Big-endian bytes (4 or 16).
    fn to_bytes(self) -> Vec<u8>;
    fn to_ip(self) -> IpAddr;
}

macro_rules! addr_impl {
    ($t:ty, $ip:ty, $variant:ident) => {
        impl Addr for $t {
            const BITS: u32 = <$t>::BITS;
            const MAX: Self = <$t>::MAX;
            fn zero() -> Self {
                0
            }
            fn succ(self) -> Option<Self> {
                self.checked_add(1)
            }
            fn prefix_end(self, len: u32) -> Self {
                self | <$t>::MAX.checked_shr(len).unwrap_or(0)
            }
            fn prefix_start(self, len: u32) -> Self {
                self & !<$t>::MAX.checked_shr(len).unwrap_or(0)
            }
            fn trailing_zeros_(self) -> u32 {
                self.trailing_zeros()
            }
            fn sub(self, other: Self) -> Self {
                self - other
            }
            fn to_bytes(self) -> Vec<u8> {
                self.to_be_bytes().to_vec()
            }
            fn to_ip(self) -> IpAddr {
                IpAddr::$variant(<$ip>::from(self))
            }
        }
    };
}
addr_impl!(u32, Ipv4Addr, V4);
addr_impl!(u128, Ipv6Addr, V6);

/// Ranges to delete, ranges to add.
pub type RangeDiff<A> = (Vec<(A, A)>, Vec<(A, A)>);

/// Sorted, non-overlapping, non-adjacent inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RangeSet<A: Addr> {
    ranges: Vec<(A, A)>,
}

impl<A: Addr> RangeSet<A> {
    pub fn new() -> Self {
        Self { ranges: Vec::new() }
    }

    /// Builds a set from ranges in any order, overlapping or not. Backwards
    /// ranges are swapped.
    pub fn from_ranges(mut ranges: Vec<(A, A)>) -> Self {
        for r in &mut ranges {
            if r.0 > r.1 {
                *r = (r.1, r.0);
            }
        }
        ranges.sort_unstable();
        let mut out: Vec<(A, A)> = Vec::with_capacity(ranges.len());
        for (s, e) in ranges {
            if let Some(last) = out.last_mut() {
                // Overlapping or adjacent: extend.
                if last.1.succ().is_none_or(|n| s <= n) {
                    if e > last.1 {
                        last.1 = e;
                    }
                    continue;
                }
            }
            out.push((s, e));
        }
        out.shrink_to_fit();
        Self { ranges: out }
    }

    pub fn ranges(&self) -> &[(A, A)] {
        &self.ranges
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn contains(&self, a: A) -> bool {
        match self.ranges.binary_search_by(|&(s, _)| s.cmp(&a)) {
            Ok(_) => true,
            Err(0) => false,
            Err(i) => self.ranges[i - 1].1 >= a,
        }
    }

    /// Every address not in the set (for `!cc` tests and checks).
    pub fn complement(&self) -> Self {
        let mut out = Vec::new();
        let mut next = Some(A::zero());
        for &(s, e) in &self.ranges {
            if let Some(n) = next
                && n < s
            {
                out.push((n, prev(s)));
            }
            next = e.succ();
        }
        if let Some(n) = next {
            out.push((n, A::MAX));
        }
        Self { ranges: out }
    }

    /// The update from `self` to `new` as whole ranges: those to delete (in `self`,
    /// not in `new`) and those to add. Applied in one transaction, deletes first,
    /// the set goes from `self` to `new` with no moment in between.
    pub fn diff(&self, new: &Self) -> RangeDiff<A> {
        let (mut del, mut add) = (Vec::new(), Vec::new());
        let (a, b) = (&self.ranges, &new.ranges);
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) if x == y => {
                    i += 1;
                    j += 1;
                }
                (Some(x), Some(y)) if x < y => {
                    del.push(*x);
                    i += 1;
                }
                (Some(_), Some(y)) => {
                    add.push(*y);
                    j += 1;
                }
                (Some(x), None) => {
                    del.push(*x);
                    i += 1;
                }
                (None, Some(y)) => {
                    add.push(*y);
                    j += 1;
                }
                (None, None) => break,
            }
        }
        (del, add)
    }
}

fn prev<A: Addr>(a: A) -> A {
    // Only called with a > 0.
    let one = A::zero().succ().expect("1 exists");
    a.sub(one)
}

/// The range a CIDR covers (host bits of `addr` ignored).
pub fn cidr_range<A: Addr>(addr: A, len: u32) -> (A, A) {
    let len = len.min(A::BITS);
    (
        addr.prefix_start(len),
        addr.prefix_start(len).prefix_end(len),
    )
}

/// The fewest CIDRs covering exactly `start..=end`.
pub fn cidrs<A: Addr>(start: A, end: A) -> impl Iterator<Item = (A, u32)> {
    let mut next = (start <= end).then_some(start);
    std::iter::from_fn(move || {
        let s = next?;
        // The largest block aligned at s that stays within end.
        let mut len = A::BITS - s.trailing_zeros_().min(A::BITS);
        while s.prefix_end(len) > end {
            len += 1;
        }
        let e = s.prefix_end(len);
        next = if e >= end { None } else { e.succ() };
        Some((s, len))
    })
}

/// A country's addresses, both families.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CountrySet {
    pub v4: RangeSet<u32>,
    pub v6: RangeSet<u128>,
}

/// Collects CIDRs and ranges before they are merged into a [`CountrySet`].
#[derive(Debug, Default)]
pub struct CountryBuilder {
    pub v4: Vec<(u32, u32)>,
    pub v6: Vec<(u128, u128)>,
}

impl CountryBuilder {
    pub fn push_cidr(&mut self, addr: IpAddr, len: u32) {
        match addr {
            IpAddr::V4(a) => self.v4.push(cidr_range(u32::from(a), len)),
            IpAddr::V6(a) => self.v6.push(cidr_range(u128::from(a), len)),
        }
    }

    /// Pushes an inclusive range; both ends must be the same family.
    pub fn push_range(&mut self, start: IpAddr, end: IpAddr) -> Result<(), String> {
        match (start, end) {
            (IpAddr::V4(s), IpAddr::V4(e)) => self.v4.push((s.into(), e.into())),
            (IpAddr::V6(s), IpAddr::V6(e)) => self.v6.push((s.into(), e.into())),
            _ => return Err(format!("range {start}-{end} mixes IPv4 and IPv6")),
        }
        Ok(())
    }

    pub fn build(self) -> CountrySet {
        CountrySet {
            v4: RangeSet::from_ranges(self.v4),
            v6: RangeSet::from_ranges(self.v6),
        }
    }
}

impl CountrySet {
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.v4.contains(a.into()),
            IpAddr::V6(a) => self.v6.contains(a.into()),
        }
    }

    /// The compact text form kept in the lists folder: one `start-end` range (or
    /// a single address) per line, IPv4 first.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(self.len() * 24);
        let mut line = |s: IpAddr, e: IpAddr| {
            use std::fmt::Write;
            if s == e {
                let _ = writeln!(out, "{s}");
            } else {
                let _ = writeln!(out, "{s}-{e}");
            }
        };
        for &(s, e) in self.v4.ranges() {
            line(s.to_ip(), e.to_ip());
        }
        for &(s, e) in self.v6.ranges() {
            line(s.to_ip(), e.to_ip());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> u32 {
        s.parse::<Ipv4Addr>().unwrap().into()
    }

    #[test]
    fn merges_overlapping_and_adjacent() {
        let set = RangeSet::from_ranges(vec![
            (v4("10.0.1.0"), v4("10.0.1.255")),
            (v4("10.0.0.0"), v4("10.0.0.255")),
            (v4("10.0.0.128"), v4("10.0.0.200")),
            (v4("10.0.3.0"), v4("10.0.3.0")),
            (v4("255.255.255.0"), v4("255.255.255.255")),
            (v4("255.255.255.255"), v4("255.255.255.255")),
        ]);
        assert_eq!(
            set.ranges(),
            &[
                (v4("10.0.0.0"), v4("10.0.1.255")),
                (v4("10.0.3.0"), v4("10.0.3.0")),
                (v4("255.255.255.0"), v4("255.255.255.255")),
            ]
        );
        assert!(set.contains(v4("10.0.1.7")));
        assert!(!set.contains(v4("10.0.2.0")));
        assert!(set.contains(v4("255.255.255.255")));
        assert!(!set.contains(v4("9.255.255.255")));
    }

    #[test]
    fn cidr_round_trip() {
        let (s, e) = cidr_range(v4("192.168.7.9"), 22);
        assert_eq!((s, e), (v4("192.168.4.0"), v4("192.168.7.255")));
        assert_eq!(cidrs(s, e).collect::<Vec<_>>(), vec![(s, 22)]);
        let got: Vec<_> = cidrs(v4("10.0.0.1"), v4("10.0.0.6")).collect();
        assert_eq!(
            got,
            vec![
                (v4("10.0.0.1"), 32),
                (v4("10.0.0.2"), 31),
                (v4("10.0.0.4"), 31),
                (v4("10.0.0.6"), 32)
            ]
        );
        assert_eq!(cidrs(0u32, u32::MAX).collect::<Vec<_>>(), vec![(0, 0)]);
        assert_eq!(
            cidrs(0u128, u128::MAX >> 1).collect::<Vec<_>>(),
            vec![(0, 1)]
        );
        assert_eq!(cidr_range(5u32, 0), (0, u32::MAX));
    }

    #[test]
    fn cidrs_cover_exactly() {
        // Pseudo-random ranges: the CIDRs must tile the range with no gap or overlap.
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let s = x >> 3;
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let e = s.saturating_add(x >> 12);
            let mut next = s;
            let mut done = false;
            for (a, len) in cidrs(s, e) {
                assert_eq!(a, next);
                assert_eq!(a.prefix_start(len), a, "aligned");
                let end = a.prefix_end(len);
                assert!(end <= e);
                if end == e {
                    done = true;
                } else {
                    next = end + 1;
                }
            }
            assert!(done);
        }
    }

    #[test]
    fn complement_and_diff() {
        let a = RangeSet::from_ranges(vec![(5u32, 10), (20, 30)]);
        assert_eq!(a.complement().ranges(), &[(0, 4), (11, 19), (31, u32::MAX)]);
        assert_eq!(a.complement().complement(), a);
        let b = RangeSet::from_ranges(vec![(5u32, 12), (20, 30), (40, 41)]);
        let (del, add) = a.diff(&b);
        assert_eq!(del, vec![(5, 10)]);
        assert_eq!(add, vec![(5, 12), (40, 41)]);
        assert_eq!(a.diff(&a), (vec![], vec![]));
        let full = RangeSet::from_ranges(vec![(0u32, u32::MAX)]);
        assert!(full.complement().is_empty());
    }

    #[test]
    fn country_text() {
        let mut b = CountryBuilder::default();
        b.push_cidr("1.2.3.0".parse().unwrap(), 24);
        b.push_range(
            "2001:db8::".parse().unwrap(),
            "2001:db8::ff".parse().unwrap(),
        )
        .unwrap();
        b.push_cidr("9.9.9.9".parse().unwrap(), 32);
        assert!(
            b.push_range("1.1.1.1".parse().unwrap(), "::1".parse().unwrap())
                .is_err()
        );
        let c = b.build();
        assert_eq!(
            c.to_text(),
            "1.2.3.0-1.2.3.255\n9.9.9.9\n2001:db8::-2001:db8::ff\n"
        );
        assert!(c.contains("2001:db8::7".parse().unwrap()));
    }
}
