//! Domain matching for millions of names: a table of 64-bit hashes of names,
//! probed once per suffix of the query name.
//!
//! A name's labels are hashed right to left, each step folding the next label into
//! the running hash, so one pass over `a.b.example.com` yields the hashes of
//! `com`, `example.com`, `b.example.com` and `a.b.example.com`. The table holds
//! each listed name's hash with two flag bits: *itself* (`=x`, `x`) and
//! *subdomains* (`*.x`, `x`). A query matches when its full name's hash is present
//! with *itself*, or a proper suffix's hash with *subdomains*.
//!
//! Two cheap filters keep most probes off the big table: the depths (label
//! counts) that listed names have, and a blocked Bloom filter of one byte per slot.
//!
//! Memory is 9 bytes per slot (open addressing, load ≤ 0.75): 12–25 bytes per
//! name (19 for a million). Two different names share a 62-bit hash with a probability of about
//! n / 2^62 per lookup (2e-13 for a million names): accepted.

use crate::config::types::DomainPattern;

/// How a listed name matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The name and its subdomains (`google.com`).
    Suffix,
    /// Only subdomains (`*.google.com`).
    SubdomainsOnly,
    /// Only the name (`=google.com`).
    Exact,
}

impl Kind {
    fn bits(self) -> u64 {
        match self {
            Kind::Suffix => SELF | SUB,
            Kind::SubdomainsOnly => SUB,
            Kind::Exact => SELF,
        }
    }
}

const SELF: u64 = 1;
const SUB: u64 = 2;
const FLAGS: u64 = 3;
/// Suffixes kept inline; deeper names (rare: up to 127 labels) spill to the heap.
const INLINE: usize = 24;

/// The suffix hashes of one query name, computed once and probed against many sets.
#[derive(Clone)]
pub struct NameHashes {
    /// `hashes[i]`: the name made of the last `i + 1` labels (`extra` holds
    /// those past `INLINE`).
    hashes: [u64; INLINE],
    /// Byte offset in the name where that suffix starts.
    starts: [u8; INLINE],
    extra: Vec<(u64, u8)>,
    n: usize,
}

impl std::fmt::Debug for NameHashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries((0..self.n).map(|i| self.get(i)))
            .finish()
    }
}

#[inline]
fn mix(mut z: u64) -> u64 {
    // splitmix64's finaliser.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[inline]
fn label_hash(label: &[u8]) -> u64 {
    // FNV-1a over lowercased bytes, 8 at a time where possible.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ label.len() as u64;
    let mut chunks = label.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap());
        // ASCII lowercase for A-Z only would need per-byte work; names are
        // lowercased before hashing (see `NameHashes::new`), so fold as is.
        h = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
    }
    for &b in chunks.remainder() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl NameHashes {
    /// Hashes a name (any case, with or without the final dot). `None` for names
    /// that are empty, too long, or have empty labels.
    pub fn new(name: &str) -> Option<Self> {
        let mut buf = [0u8; 256];
        let bytes = name.as_bytes();
        let bytes = bytes.strip_suffix(b".").unwrap_or(bytes);
        if bytes.is_empty() || bytes.len() > 253 {
            return None;
        }
        for (d, s) in buf.iter_mut().zip(bytes) {
            *d = s.to_ascii_lowercase();
        }
        Self::from_lower(&buf[..bytes.len()])
    }

    /// Like `new` for a name already lowercase, without the final dot.
    pub fn from_lower(name: &[u8]) -> Option<Self> {
        if name.is_empty() || name.len() > 253 {
            return None;
        }
        let mut out = NameHashes {
            hashes: [0; INLINE],
            starts: [0; INLINE],
            extra: Vec::new(),
            n: 0,
        };
        let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut end = name.len();
        loop {
            let start = name[..end]
                .iter()
                .rposition(|&b| b == b'.')
                .map_or(0, |p| p + 1);
            if start == end {
                return None;
            }
            h = mix(h ^ label_hash(&name[start..end]));
            if out.n < INLINE {
                out.hashes[out.n] = h;
                out.starts[out.n] = start as u8;
            } else {
                out.extra.push((h, start as u8));
            }
            out.n += 1;
            if start == 0 {
                break;
            }
            end = start - 1;
        }
        Some(out)
    }

    pub fn labels(&self) -> usize {
        self.n
    }

    /// (hash, start) of the suffix of `i + 1` labels.
    #[inline]
    fn get(&self, i: usize) -> (u64, u8) {
        if i < INLINE {
            (self.hashes[i], self.starts[i])
        } else {
            self.extra[i - INLINE]
        }
    }

    fn full(&self) -> u64 {
        self.get(self.n - 1).0
    }
}

/// A set of listed names (one list, or one rule's inline domains).
#[derive(Debug, Clone, Default)]
pub struct NameSet {
    /// 0 = empty; otherwise the hash with its low two bits replaced by flags.
    slots: Vec<u64>,
    /// A blocked Bloom filter in front of the table (one byte per slot, two bits
    /// per name in one word): most probes are misses, and this answers them from
    /// a table small enough to stay in the CPU cache.
    bloom: Vec<u64>,
    /// Bit d: some name of d + 1 labels (63: more) is listed with *itself* /
    /// with *subdomains*: suffixes of other depths are never probed.
    self_depths: u64,
    sub_depths: u64,
    len: usize,
}

#[inline]
fn depth_bit(labels: usize) -> u64 {
    1u64 << (labels - 1).min(63)
}

#[inline]
fn bloom_bits(k: u64) -> u64 {
    (1u64 << ((k >> 8) & 63)) | (1u64 << ((k >> 14) & 63))
}

#[inline]
fn key(h: u64) -> u64 {
    // Never 0 (the empty slot) once flags are added: force a bit above the flags.
    (h & !FLAGS) | 4
}

impl NameSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        let mut s = Self::default();
        s.resize(n);
        s
    }

    /// Listed names (distinct).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held by the table and its filter.
    pub fn memory(&self) -> usize {
        self.slots.capacity() * 8 + self.bloom.capacity() * 8
    }

    fn resize(&mut self, n: usize) {
        let cap = ((n.max(4) * 4).div_ceil(3)).next_power_of_two();
        if cap <= self.slots.len() {
            return;
        }
        let old = std::mem::replace(&mut self.slots, vec![0; cap]);
        self.bloom = vec![0; (cap / 8).max(1)];
        for s in old.into_iter().filter(|&s| s != 0) {
            self.place(s);
        }
    }

    #[inline]
    fn index(&self, h: u64) -> usize {
        // The table size is a power of two; the high bits of a mixed hash are good.
        (h >> (64 - self.slots.len().trailing_zeros())) as usize
    }

    #[inline]
    fn bloom_index(&self, k: u64) -> usize {
        (k >> (64 - self.bloom.len().trailing_zeros()).min(63)) as usize & (self.bloom.len() - 1)
    }

    /// Inserts a slot value (key | flags), merging flags with an equal key.
    fn place(&mut self, v: u64) -> bool {
        let b = self.bloom_index(v);
        self.bloom[b] |= bloom_bits(v);
        let mask = self.slots.len() - 1;
        let mut i = self.index(v);
        loop {
            let s = self.slots[i];
            if s == 0 {
                self.slots[i] = v;
                return true;
            }
            if s & !FLAGS == v & !FLAGS {
                self.slots[i] = s | (v & FLAGS);
                return false;
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds a name (lowercase, no final dot; not checked further).
    pub fn insert(&mut self, name: &str, kind: Kind) -> bool {
        let Some(h) = NameHashes::new(name) else {
            return false;
        };
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.resize((self.len + 1) * 2);
        }
        if kind.bits() & SELF != 0 {
            self.self_depths |= depth_bit(h.n);
        }
        if kind.bits() & SUB != 0 {
            self.sub_depths |= depth_bit(h.n);
        }
        if self.place(key(h.full()) | kind.bits()) {
            self.len += 1;
        }
        true
    }

    pub fn insert_pattern(&mut self, p: &DomainPattern) -> bool {
        let kind = match p {
            DomainPattern::Suffix(_) => Kind::Suffix,
            DomainPattern::SubdomainsOnly(_) => Kind::SubdomainsOnly,
            DomainPattern::Exact(_) => Kind::Exact,
        };
        self.insert(p.name(), kind)
    }

    #[inline]
    fn flags(&self, h: u64) -> u64 {
        if self.slots.is_empty() {
            return 0;
        }
        let k = key(h);
        let bits = bloom_bits(k);
        if self.bloom[self.bloom_index(k)] & bits != bits {
            return 0;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.index(k);
        loop {
            let s = self.slots[i];
            if s == 0 {
                return 0;
            }
            if s & !FLAGS == k {
                return s & FLAGS;
            }
            i = (i + 1) & mask;
        }
    }

    /// Does the hashed name match? Returns the byte offset, in the query name, of
    /// the listed name that matched (0 = the whole name).
    #[inline]
    pub fn find(&self, q: &NameHashes) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let last = q.n - 1;
        for i in 0..q.n {
            let (want, depths) = if i == last {
                (SELF, self.self_depths)
            } else {
                (SUB, self.sub_depths)
            };
            if depths & depth_bit(i + 1) == 0 {
                continue;
            }
            let (h, start) = q.get(i);
            if self.flags(h) & want != 0 {
                return Some(start as usize);
            }
        }
        None
    }

    pub fn matches(&self, q: &NameHashes) -> bool {
        self.find(q).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> NameSet {
        let mut s = NameSet::new();
        for i in items {
            assert!(s.insert_pattern(&DomainPattern::parse(i).unwrap()));
        }
        s
    }

    fn m(s: &NameSet, name: &str) -> bool {
        s.matches(&NameHashes::new(name).unwrap())
    }

    #[test]
    fn forms_match_like_the_config_says() {
        let s = set(&["google.com", "*.netflix.com", "=bank.example"]);
        assert!(m(&s, "google.com"));
        assert!(m(&s, "WWW.Google.COM."));
        assert!(m(&s, "a.b.google.com"));
        assert!(!m(&s, "oogle.com"));
        assert!(!m(&s, "google.com.evil"));
        assert!(!m(&s, "com"));
        assert!(!m(&s, "netflix.com"));
        assert!(m(&s, "www.netflix.com"));
        assert!(m(&s, "bank.example"));
        assert!(!m(&s, "www.bank.example"));
        // Each form agrees with DomainPattern::matches.
        for p in ["google.com", "*.netflix.com", "=bank.example"] {
            let pat = DomainPattern::parse(p).unwrap();
            let one = set(&[p]);
            for n in [
                "google.com",
                "x.google.com",
                "netflix.com",
                "a.netflix.com",
                "bank.example",
                "x.bank.example",
                "example",
            ] {
                assert_eq!(m(&one, n), pat.matches(n), "{p} vs {n}");
            }
        }
    }

    #[test]
    fn flags_merge_for_the_same_name() {
        let s = set(&["*.x.org", "=x.org"]);
        assert!(m(&s, "x.org") && m(&s, "a.x.org"));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn find_reports_the_matching_suffix() {
        let s = set(&["example.com"]);
        let q = NameHashes::new("a.b.example.com").unwrap();
        assert_eq!(s.find(&q), Some(4));
        assert_eq!(q.labels(), 4);
    }

    #[test]
    fn bad_names_do_not_hash() {
        assert!(NameHashes::new("").is_none());
        assert!(NameHashes::new(".").is_none());
        assert!(NameHashes::new("a..b").is_none());
        assert!(NameHashes::new(&"a".repeat(254)).is_none());
        // Deep names (past the inline suffixes) still match at any depth.
        let deep: Vec<String> = (0..60).map(|i| format!("l{i}")).collect();
        let deep = deep.join(".");
        let tail = "l57.l58.l59";
        let s = set(&[&format!("={deep}")]);
        assert!(m(&s, &deep));
        assert!(!m(&s, &format!("x.{deep}")));
        let s = set(&[tail]);
        assert!(m(&s, &deep));
        let s = set(&[&format!("*.{}", &deep[3..])]);
        assert!(m(&s, &deep));
        assert_eq!(NameHashes::new(&deep).unwrap().labels(), 60);
    }

    #[test]
    fn grows_and_keeps_everything() {
        let mut s = NameSet::new();
        for i in 0..50_000 {
            s.insert(&format!("host{i}.example{}.com", i % 97), Kind::Exact);
        }
        assert_eq!(s.len(), 50_000);
        for i in (0..50_000).step_by(7) {
            assert!(m(&s, &format!("host{i}.example{}.com", i % 97)));
            assert!(!m(&s, &format!("x.host{i}.example{}.com", i % 97)));
        }
        assert!(s.memory() / s.len() <= 25, "{}", s.memory() / s.len());
    }
}
