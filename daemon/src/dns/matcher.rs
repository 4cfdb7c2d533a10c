//! Domain matching for millions of names: a table of 64-bit hashes of names,
//! probed once per suffix of the query name.
//!
//! A name's labels are hashed right to left in one pass, 8 bytes at a time
//! (FxHash-like steps; a label ends where a bit trick finds the dot), so one pass
//! over `a.b.example.com` yields the running states for `com`, `example.com`,
//! `b.example.com` and `a.b.example.com`; only the states of suffixes actually
//! probed are finalised into table keys. The query's wire form hashes the same
//! without looking for dots. No allocation, no lowercasing copy, no UTF-8 work.
//!
//! The table holds each listed name's hash with two flag bits: *itself* (`=x`,
//! `x`) and *subdomains* (`*.x`, `x`). A query matches when its full name's hash
//! is present with *itself*, or a proper suffix's hash with *subdomains*.
//!
//! Two cheap filters keep most probes off the big table: the depths (label
//! counts) that listed names have (other depths are never probed), and a blocked
//! Bloom filter of one byte per slot. The table's line is prefetched while the
//! filter is read, so a listed name costs one memory latency, not two; big tables
//! ask for huge pages (no TLB miss per probe).
//!
//! Memory is 9 bytes per slot (open addressing, load ≤ 0.75, any multiple of 64
//! slots): 12 bytes per name when sized for the list, up to 24 after growth.
//! Two different names share a 62-bit hash with a probability of about n / 2^62
//! per lookup (2e-13 for a million names): accepted.
//!
//! Speed (`examples/dns_matcher_bench.rs`, 1,000,000 names): see
//! tests/bench/RESULTS.md, "Resolver".

use crate::policy::dns::DomainPattern;

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
const INLINE: usize = 8;

/// The suffix hashes of one query name, computed once and probed against many sets.
#[derive(Clone)]
pub struct NameHashes {
    /// `raw[i]`: the running hash state after the last `i + 1` labels (`extra`
    /// holds those past `INLINE`); finalised (`finish`) only when probed.
    raw: [u64; INLINE],
    extra: Vec<u64>,
    n: usize,
}

impl std::fmt::Debug for NameHashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries((0..self.n).map(|i| self.get(i)))
            .finish()
    }
}

/// One step of the running hash: fold an 8-byte word in (FxHash-like: xor,
/// multiply by an odd constant, rotate so the well-mixed high half feeds the next
/// multiply). Cheap: the state is finalised only for the suffixes probed.
#[inline(always)]
fn step(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(31)
}

/// The finaliser: a bijection (distinct states stay distinct) whose high bits —
/// the table index — depend on every bit of the state.
#[inline(always)]
fn finish(h: u64) -> u64 {
    let h = (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 32)
}

#[inline(always)]
fn word(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The (up to) 8 bytes of `b` before `end` as a little-endian word with byte
/// `end - 1` on top; missing bytes (before the start) are zero.
#[inline(always)]
fn word_before(b: &[u8], end: usize) -> u64 {
    if end >= 8 {
        word(b, end - 8)
    } else if b.len() >= 8 {
        word(b, 0) << ((8 - end) * 8)
    } else {
        let mut w = 0u64;
        for (i, &c) in b[..end].iter().enumerate() {
            w |= (c as u64) << ((8 - end + i) * 8);
        }
        w
    }
}

/// 0x80 in each byte of `w` that is a dot (exact: no false positives).
#[inline(always)]
fn dots(w: u64) -> u64 {
    const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = w ^ 0x2e2e_2e2e_2e2e_2e2e;
    !(((x & LO7).wrapping_add(LO7)) | x | LO7)
}

/// The last step of a label: its first `r` (0–7) bytes, which `top` holds as
/// its top `r` bytes, with the label's length in the top byte (so label
/// boundaries count: `ab.c` and `a.bc` differ).
#[inline(always)]
fn label_tail(h: u64, top: u64, r: usize, len: usize) -> u64 {
    let t = if r == 0 { 0 } else { top >> ((8 - r) * 8) };
    step(h, t | ((len as u64) << 56))
}

const SEED: u64 = 0x243f_6a88_85a3_08d3;

impl Default for NameHashes {
    fn default() -> Self {
        Self::empty()
    }
}

impl NameHashes {
    #[inline(always)]
    fn empty() -> Self {
        NameHashes {
            raw: [0; INLINE],
            extra: Vec::new(),
            n: 0,
        }
    }

    #[inline(always)]
    fn push(&mut self, h: u64) {
        if self.n < INLINE {
            self.raw[self.n] = h;
        } else {
            self.extra.push(h);
        }
        self.n += 1;
    }

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
    ///
    /// One pass right to left, 8 bytes at a time, no allocation (up to 8
    /// labels) and no UTF-8 work: a label's bytes are folded from its end in
    /// whole words while no dot is among them; the word holding the label's
    /// first bytes (and the dot before them, found by a bit trick) ends the
    /// label. The hash of each suffix is the state after its last label.
    pub fn from_lower(name: &[u8]) -> Option<Self> {
        let mut out = Self::empty();
        out.set_lower(name).then_some(out)
    }

    /// `from_lower` into an existing value (no copy of the result: the
    /// resolver's hot path). `false` (and no hashes) for a bad name.
    pub fn set_lower(&mut self, name: &[u8]) -> bool {
        let ok = self.fill_lower(name);
        if !ok {
            self.n = 0;
        }
        ok
    }

    #[inline(always)]
    fn fill_lower(&mut self, name: &[u8]) -> bool {
        self.n = 0;
        self.extra.clear();
        let len = name.len();
        if len == 0 || len > 253 {
            return false;
        }
        let out = self;
        let mut h = SEED;
        let mut end = len;
        let mut label_end = len;
        loop {
            if end == 0 {
                // A label of whole words at the name's start.
                out.push(label_tail(h, 0, 0, label_end));
                return true;
            }
            let w = word_before(name, end);
            let k = end.min(8);
            // Dots among the k real bytes (the top k bytes of w).
            let d = dots(w) & (!0u64 << ((8 - k) * 8));
            if d == 0 && k == 8 {
                h = step(h, w);
                end -= 8;
                continue;
            }
            // The label starts after the last dot in w, or at the name's start.
            let r = if d == 0 {
                k
            } else {
                d.leading_zeros() as usize / 8
            };
            let start = end - r;
            if start == label_end {
                return false;
            }
            h = label_tail(h, w, r, label_end - start);
            out.push(h);
            if start == 0 {
                return true;
            }
            if start == 1 {
                return false;
            }
            end = start - 1;
            label_end = end;
        }
    }

    /// Hashes a lowercase wire-format name (length-prefixed labels ending in a
    /// zero byte, no compression), the way a query carries it; the same hashes as
    /// `from_lower` of the dotted name. `None` for the root or a bad name.
    pub fn from_wire(wire: &[u8]) -> Option<Self> {
        let mut out = Self::empty();
        out.set_wire(wire).then_some(out)
    }

    /// `from_wire` into an existing value.
    pub fn set_wire(&mut self, wire: &[u8]) -> bool {
        let ok = self.fill_wire(wire);
        if !ok {
            self.n = 0;
        }
        ok
    }

    #[inline(always)]
    fn fill_wire(&mut self, wire: &[u8]) -> bool {
        self.n = 0;
        self.extra.clear();
        // Label starts, left to right.
        let mut starts = [0u8; 128];
        let mut n = 0usize;
        let mut p = 0usize;
        loop {
            let Some(&len) = wire.get(p) else {
                return false;
            };
            let len = len as usize;
            if len == 0 {
                break;
            }
            if len > 63 || n == 127 || p + 1 + len > wire.len() {
                return false;
            }
            starts[n] = (p + 1) as u8;
            n += 1;
            p += 1 + len;
        }
        if n == 0 || p > 254 {
            return false;
        }
        let out = self;
        let mut h = SEED;
        for k in (0..n).rev() {
            let s = starts[k] as usize;
            let len = wire[s - 1] as usize;
            let mut end = s + len;
            while end - s >= 8 {
                h = step(h, word(wire, end - 8));
                end -= 8;
            }
            // The label's first r bytes as the top of a word ending at `end`
            // (the wire form has at least the length byte before them).
            let r = end - s;
            let top = if end >= 8 {
                word(wire, end - 8)
            } else if wire.len() >= 8 {
                word(wire, 0) << ((8 - end) * 8)
            } else {
                word_before(wire, end)
            };
            h = label_tail(h, top, r, len);
            out.push(h);
        }
        true
    }

    pub fn labels(&self) -> usize {
        self.n
    }

    /// Finalised hash of the suffix of `i + 1` labels.
    #[inline(always)]
    fn get(&self, i: usize) -> u64 {
        finish(if i < INLINE {
            self.raw[i]
        } else {
            self.extra[i - INLINE]
        })
    }

    fn full(&self) -> u64 {
        self.get(self.n - 1)
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

/// Asks the kernel to back a big table with huge pages (where transparent huge
/// pages are on "madvise"): random probes into a 16 MB table then cost no TLB
/// misses. Before the table is first written, so the pages are faulted in huge.
fn huge_pages(v: &[u64]) {
    #[cfg(target_os = "linux")]
    if v.len() * 8 >= 4 << 20 {
        let page = 2usize << 20;
        let start = (v.as_ptr() as usize).next_multiple_of(page);
        let end = (v.as_ptr() as usize + v.len() * 8) & !(page - 1);
        if end > start {
            // SAFETY: advice only, on whole huge pages inside our own allocation.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
}

/// A hint to the CPU to fetch the cache line holding `x` (no-op elsewhere).
#[inline(always)]
fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is only a hint; the pointer comes from a reference.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            (x as *const T).cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
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

    /// Room for `n` names at a load of at most 3/4: the table has any multiple
    /// of 64 slots (not only powers of two: 10.7 MB for a million names, not 16).
    fn resize(&mut self, n: usize) {
        let cap = (n.max(4) * 4).div_ceil(3).next_multiple_of(64);
        if cap <= self.slots.len() {
            return;
        }
        let old = std::mem::replace(&mut self.slots, vec![0; cap]);
        self.bloom = vec![0; cap / 8];
        huge_pages(&self.slots);
        huge_pages(&self.bloom);
        for s in old.into_iter().filter(|&s| s != 0) {
            self.place(s);
        }
    }

    /// The slot a key starts at: the key's high 32 bits scaled to the table
    /// (a multiply, no division). Its filter word is `index >> 3`.
    #[inline(always)]
    fn index(slots: &[u64], k: u64) -> usize {
        (((k >> 32) * slots.len() as u64) >> 32) as usize
    }

    /// Inserts a slot value (key | flags), merging flags with an equal key.
    fn place(&mut self, v: u64) -> bool {
        let mut i = Self::index(&self.slots, v);
        self.bloom[i >> 3] |= bloom_bits(v);
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
            i += 1;
            if i == self.slots.len() {
                i = 0;
            }
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

    #[inline(always)]
    fn flags(&self, h: u64) -> u64 {
        // Slices, not Vecs: plain indexing even where the optimiser is told to
        // keep code small (the release profile is opt-level "z").
        let slots = self.slots.as_slice();
        if slots.is_empty() {
            return 0;
        }
        let k = key(h);
        let bits = bloom_bits(k);
        let mut i = Self::index(slots, k);
        // Start loading the table's line now: a listed name then costs one
        // memory latency (filter and table in parallel), not two in a row.
        prefetch(&slots[i]);
        if self.bloom.as_slice()[i >> 3] & bits != bits {
            return 0;
        }
        loop {
            let s = slots[i];
            if s == 0 {
                return 0;
            }
            if s & !FLAGS == k {
                return s & FLAGS;
            }
            i += 1;
            if i == slots.len() {
                i = 0;
            }
        }
    }

    /// Does the hashed name match? Returns the number of labels of the listed
    /// name that matched (the shortest, if several do).
    #[inline]
    pub fn find(&self, q: &NameHashes) -> Option<usize> {
        if self.len == 0 || q.n == 0 {
            return None;
        }
        // Proper suffixes (i + 1 < n labels) whose depth has a *subdomains* name,
        // shortest first; bit 63 stands for every depth from 64 labels on.
        let proper = q.n - 1;
        let mut depths = self.sub_depths
            & if proper >= 64 {
                !0
            } else {
                (1u64 << proper) - 1
            };
        while depths != 0 {
            let d = depths.trailing_zeros() as usize;
            depths &= depths - 1;
            let last = if d == 63 { proper } else { d + 1 };
            for i in d..last {
                if self.flags(q.get(i)) & SUB != 0 {
                    return Some(i + 1);
                }
            }
        }
        if self.self_depths & depth_bit(q.n) != 0 && self.flags(q.get(q.n - 1)) & SELF != 0 {
            return Some(q.n);
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
        assert_eq!(s.find(&q), Some(2));
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
    fn wire(name: &str) -> Vec<u8> {
        let mut w = Vec::new();
        for l in name.split('.') {
            w.push(l.len() as u8);
            w.extend_from_slice(l.as_bytes());
        }
        w.push(0);
        w
    }

    #[test]
    fn dotted_and_wire_forms_hash_alike() {
        // Labels of every length around the word size, at every position.
        let mut names = vec!["a".to_string(), "a.b".into(), "ab.c".into(), "a.bc".into()];
        for l in [1, 2, 7, 8, 9, 15, 16, 17, 24, 63] {
            let lab: String = (0..l).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            names.push(lab.clone());
            names.push(format!("{lab}.x"));
            names.push(format!("x.{lab}"));
            names.push(format!("x.{lab}.yz"));
            names.push(format!("{lab}.{lab}.{lab}"));
        }
        let deep: Vec<String> = (0..40).map(|i| format!("l{i}")).collect();
        names.push(deep.join("."));
        let mut seen = std::collections::HashSet::new();
        for n in &names {
            let d = NameHashes::from_lower(n.as_bytes()).unwrap_or_else(|| panic!("{n}"));
            let w = NameHashes::from_wire(&wire(n)).unwrap_or_else(|| panic!("{n}"));
            assert_eq!(d.labels(), n.split('.').count(), "{n}");
            assert_eq!(format!("{d:?}"), format!("{w:?}"), "{n}");
            // Every suffix hash equals the full hash of that suffix as a name.
            let labels: Vec<&str> = n.split('.').collect();
            for i in 0..labels.len() {
                let suffix = labels[labels.len() - 1 - i..].join(".");
                let s = NameHashes::from_lower(suffix.as_bytes()).unwrap();
                assert_eq!(d.get(i), s.full(), "{n} / {suffix}");
            }
            seen.insert(d.full());
        }
        assert_eq!(
            seen.len(),
            names.iter().collect::<std::collections::HashSet<_>>().len()
        );
        for bad in [
            "",
            ".",
            "a.",
            ".a",
            "a..b",
            "abcdefgh..x",
            "abcdefghi.",
            ".abcdefghi",
        ] {
            assert!(NameHashes::from_lower(bad.as_bytes()).is_none(), "{bad:?}");
        }
        assert!(NameHashes::from_wire(&[0]).is_none());
        assert!(NameHashes::from_wire(&[3, b'a', b'b']).is_none());
    }
}
