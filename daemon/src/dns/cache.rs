//! The answer cache: upstream answers kept as bytes per (route, name, type,
//! class, EDNS), served with aged TTLs, positive and negative, bounded in entries
//! and bytes.

use std::{
    borrow::Borrow,
    collections::HashMap,
    hash::{BuildHasher, Hash, Hasher},
    net::IpAddr,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

/// A fast hasher for the resolver's maps (cache, inserted elements, rate
/// limits): each 8-byte word is mixed in by a 64x64->128-bit multiply folded to
/// 64 bits (foldhash's step), by a per-process random multiplier, from a
/// per-process random start (SipHash was 5 % of a cache hit's CPU). The keys
/// come from clients on the LAN: which names collide must depend on those
/// secrets. (A multiply-rotate with a random start alone did not: a 2^63
/// difference survives any odd multiply, so names differing in two chosen bits
/// hashed alike under every seed.)
#[derive(Clone, Copy)]
pub struct FastState {
    start: u64,
    multiplier: u64,
}

impl FastState {
    #[cfg(test)]
    fn with(start: u64, multiplier: u64) -> Self {
        Self { start, multiplier }
    }
}

impl Default for FastState {
    fn default() -> Self {
        static SEED: OnceLock<FastState> = OnceLock::new();
        *SEED.get_or_init(|| {
            let r = std::collections::hash_map::RandomState::new();
            Self {
                start: r.hash_one(0x5eed_u64),
                // Odd: never 0, and every word value reaches a distinct product.
                multiplier: r.hash_one(0x5eed_u64 + 1) | 1,
            }
        })
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.start, self.multiplier)
    }
}

pub struct FastHasher(u64, u64);

impl FastHasher {
    #[inline(always)]
    fn add(&mut self, w: u64) {
        let m = u128::from(self.0 ^ w) * u128::from(self.1);
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap()));
        }
        let mut t = 0u64;
        for (i, &b) in chunks.remainder().iter().enumerate() {
            t |= (b as u64) << (i * 8);
        }
        self.add(t ^ ((bytes.len() as u64) << 56));
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        let h = (self.0 ^ (self.0 >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^ (h >> 32)
    }
}

pub type FastMap<K, V> = HashMap<K, V, FastState>;

#[derive(Debug, Clone)]
pub struct Key {
    pub route: u16,
    pub qtype: u16,
    pub qclass: u16,
    pub edns: bool,
    pub name: Box<[u8]>,
}

/// A key with a borrowed name: what a lookup is made with (a cache hit copies
/// no name). Hashes and compares like the `Key` it views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyRef<'a> {
    pub route: u16,
    pub qtype: u16,
    pub qclass: u16,
    pub edns: bool,
    pub name: &'a [u8],
}

impl KeyRef<'_> {
    pub fn to_key(self) -> Key {
        Key {
            route: self.route,
            qtype: self.qtype,
            qclass: self.qclass,
            edns: self.edns,
            name: self.name.into(),
        }
    }
}

/// Either form of a key, seen as a `KeyRef`: the map's keys are `Key`s and it
/// is searched with `&dyn KeyView` (`Key: Borrow<dyn KeyView>`).
pub trait KeyView {
    fn view(&self) -> KeyRef<'_>;
}

impl KeyView for Key {
    fn view(&self) -> KeyRef<'_> {
        KeyRef {
            route: self.route,
            qtype: self.qtype,
            qclass: self.qclass,
            edns: self.edns,
            name: &self.name,
        }
    }
}

impl KeyView for KeyRef<'_> {
    fn view(&self) -> KeyRef<'_> {
        *self
    }
}

impl<'a> Borrow<dyn KeyView + 'a> for Key {
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

impl Hash for dyn KeyView + '_ {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.view().hash(h)
    }
}

impl PartialEq for dyn KeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.view() == other.view()
    }
}

impl Eq for dyn KeyView + '_ {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.view().hash(h)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.view() == other.view()
    }
}

impl Eq for Key {}

#[derive(Debug)]
pub struct Entry {
    pub bytes: Box<[u8]>,
    pub ttl_offsets: Box<[usize]>,
    pub stored: Instant,
    pub expires: Instant,
    pub addrs: Box<[(IpAddr, u32)]>,
    pub cnames: Box<[String]>,
}

impl Entry {
    fn cost(&self, name_len: usize) -> usize {
        std::mem::size_of::<Entry>()
            + 64
            + name_len
            + self.bytes.len()
            + self.ttl_offsets.len() * 8
            + self.addrs.len() * 24
            + self.cnames.iter().map(|c| c.len() + 24).sum::<usize>()
    }
}

pub struct Cache {
    map: FastMap<Key, Arc<Entry>>,
    bytes: usize,
    pub max_bytes: usize,
    pub max_ttl: Duration,
    pub max_negative_ttl: Duration,
}

impl Cache {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            map: FastMap::default(),
            bytes: 0,
            max_bytes,
            max_ttl: Duration::from_secs(86_400),
            max_negative_ttl: Duration::from_secs(3600),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.bytes = 0;
    }

    /// Keeps only the entries of routes `keep` accepts (a config change
    /// drops what routes whose resolvers changed answered, nothing else).
    /// Returns how many entries were dropped.
    pub fn retain_routes(&mut self, keep: impl Fn(u16) -> bool) -> usize {
        let before = self.map.len();
        let mut freed = 0;
        self.map.retain(|k, e| {
            let stay = keep(k.route);
            if !stay {
                freed += e.cost(k.name.len());
            }
            stay
        });
        self.bytes -= freed;
        before - self.map.len()
    }

    #[cfg(test)]
    pub fn map_contains(&self, key: &impl KeyView) -> bool {
        self.map.contains_key(key as &dyn KeyView)
    }

    /// A live entry (expired ones are removed).
    pub fn get(&mut self, key: &impl KeyView, now: Instant) -> Option<Arc<Entry>> {
        let key = key as &dyn KeyView;
        let e = self.map.get(key)?;
        if e.expires > now {
            return Some(e.clone());
        }
        let e = self.map.remove(key)?;
        self.bytes -= e.cost(key.view().name.len());
        None
    }

    pub fn insert(&mut self, key: Key, entry: Entry, negative: bool, now: Instant) {
        let cap = if negative {
            self.max_negative_ttl
        } else {
            self.max_ttl
        };
        let mut entry = entry;
        entry.expires = entry.expires.min(now + cap);
        if entry.expires <= now {
            return;
        }
        let name_len = key.name.len();
        let cost = entry.cost(name_len);
        if cost > self.max_bytes / 8 {
            return;
        }
        if self.bytes + cost > self.max_bytes {
            self.evict(now, cost);
        }
        self.bytes += cost;
        if let Some(old) = self.map.insert(key, Arc::new(entry)) {
            self.bytes -= old.cost(name_len);
        }
    }

    /// Frees room: expired entries first, then arbitrary ones down to 3/4.
    fn evict(&mut self, now: Instant, need: usize) {
        let mut freed = 0;
        self.map.retain(|k, e| {
            let keep = e.expires > now;
            if !keep {
                freed += e.cost(k.name.len());
            }
            keep
        });
        self.bytes -= freed;
        let target = (self.max_bytes * 3 / 4).saturating_sub(need);
        if self.bytes > target {
            let mut over = self.bytes - target;
            let mut gone = 0;
            self.map.retain(|k, e| {
                if over == 0 {
                    return true;
                }
                let c = e.cost(k.name.len());
                over = over.saturating_sub(c);
                gone += c;
                false
            });
            self.bytes -= gone;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed must decide which names collide. With a plain multiply-rotate
    /// it does not: names differing by bit 7 of their 8th byte and bit 6 of
    /// their 12th hash alike under every seed (the first difference is 2^63
    /// after any odd multiply, and the rotation puts it where the second one
    /// cancels it), so a client could fill one bucket with 2^k such names.
    #[test]
    fn collisions_depend_on_the_seed() {
        let a = b"abcdefghijklmnop".to_vec();
        let mut b = a.clone();
        b[7] ^= 0x80;
        b[11] ^= 0x40;
        // Random-looking seeds, as the process draws them.
        for (start, multiplier) in [
            (0x5eed, 0x9e37_79b9_7f4a_7c15),
            (0x1234_5678_9abc_def1, 0xbf58_476d_1ce4_e5b9),
            (u64::MAX, 0x94d0_49bb_1331_11eb),
        ] {
            let h = |bytes: &[u8]| {
                let mut h = FastState::with(start, multiplier).build_hasher();
                h.write(bytes);
                h.finish()
            };
            assert_ne!(h(&a), h(&b), "start {start:#x}");
        }
    }

    fn key(n: usize) -> Key {
        Key {
            route: 0,
            qtype: 1,
            qclass: 1,
            edns: false,
            name: format!("n{n}").into_bytes().into(),
        }
    }

    fn entry(now: Instant, secs: u64) -> Entry {
        Entry {
            bytes: vec![0; 100].into(),
            ttl_offsets: Box::new([]),
            stored: now,
            expires: now + Duration::from_secs(secs),
            addrs: Box::new([]),
            cnames: Box::new([]),
        }
    }

    #[test]
    fn expiry_and_bounds() {
        let now = Instant::now();
        let mut c = Cache::new(64 * 1024);
        c.insert(key(1), entry(now, 10), false, now);
        assert!(c.get(&key(1), now).is_some());
        // A borrowed key finds the same entry.
        let name = b"n1".to_vec();
        let r = KeyRef {
            route: 0,
            qtype: 1,
            qclass: 1,
            edns: false,
            name: &name,
        };
        assert!(c.get(&r, now).is_some());
        assert!(c.get(&KeyRef { route: 1, ..r }, now).is_none());
        assert_eq!(r.to_key(), key(1));
        assert!(c.get(&key(1), now + Duration::from_secs(11)).is_none());
        assert!(c.is_empty());
        assert_eq!(c.bytes(), 0);
        // Negative entries are capped.
        c.max_negative_ttl = Duration::from_secs(5);
        c.insert(key(2), entry(now, 100), true, now);
        assert!(c.get(&key(2), now + Duration::from_secs(6)).is_none());
        for i in 0..10_000 {
            c.insert(key(i), entry(now, 100), false, now);
            assert!(c.bytes() <= c.max_bytes);
        }
        assert!(c.len() > 50 && c.len() < 10_000, "{}", c.len());
    }

    #[test]
    fn a_changed_route_drops_only_its_entries() {
        let now = Instant::now();
        let mut c = Cache::new(1 << 20);
        for route in 0..3 {
            for i in 0..10 {
                c.insert(Key { route, ..key(i) }, entry(now, 100), false, now);
            }
        }
        let per_route = c.bytes() / 3;
        assert_eq!(c.retain_routes(|r| r != 1), 10);
        assert_eq!(c.len(), 20);
        assert_eq!(c.bytes(), 2 * per_route);
        assert!(c.get(&Key { route: 0, ..key(3) }, now).is_some());
        assert!(c.get(&Key { route: 1, ..key(3) }, now).is_none());
        assert!(c.get(&Key { route: 2, ..key(3) }, now).is_some());
        // Nothing changed: nothing dropped.
        assert_eq!(c.retain_routes(|_| true), 0);
        assert_eq!(c.len(), 20);
    }
}
