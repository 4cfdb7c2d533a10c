//! A small reader for MaxMind DB files (`.mmdb`): DB-IP lite country, GeoLite2 /
//! GeoIP2 country. It walks the search tree once and decodes each distinct data
//! record once, reading the file through a small page cache, so a router never
//! holds the whole file in memory.
//!
//! Format: a binary search tree (`node_count` nodes of two records), 16 zero
//! bytes, a data section, then `\xAB\xCD\xEFMaxMind.com` and the metadata map.
//! A record below `node_count` is a node, equal to it is "no data", above it
//! points into the data section.

use std::{
    collections::{HashMap, HashSet},
    fs::File,
    os::unix::fs::FileExt,
    path::Path,
};

use super::{
    SourceError,
    ranges::{CountryBuilder, cidr_range},
};

const MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";
const PAGE: usize = 64 * 1024;
const SLOTS: usize = 32;
/// Decoding work (control bytes read) allowed per byte of the data section.
/// A real file decodes each record once and each shared map (reached by
/// pointers) once, about one step per byte; only records that overlap or
/// repeat work could need more, and a crafted file is refused instead of
/// taking time that grows with leaves × entries.
pub const STEPS_PER_DATA_BYTE: u64 = 4;
/// Work allowed on top, for tiny files and the metadata map.
pub const STEPS_SLACK: u64 = 1 << 16;

/// Positioned reads through a direct-mapped cache of `SLOTS` pages (2 MB).
struct Pages {
    file: File,
    size: u64,
    slots: Vec<Option<(u64, Box<[u8]>)>>,
}

impl Pages {
    fn new(file: File) -> std::io::Result<Self> {
        let size = file.metadata()?.len();
        Ok(Self {
            file,
            size,
            slots: (0..SLOTS).map(|_| None).collect(),
        })
    }

    fn page(&mut self, n: u64) -> Result<&[u8], SourceError> {
        let slot = (n as usize) % SLOTS;
        if self.slots[slot].as_ref().is_none_or(|(p, _)| *p != n) {
            let start = n * PAGE as u64;
            let len = (self.size.saturating_sub(start)).min(PAGE as u64) as usize;
            let mut buf = vec![0u8; len].into_boxed_slice();
            self.file
                .read_exact_at(&mut buf, start)
                .map_err(|e| SourceError::Io(e.to_string()))?;
            self.slots[slot] = Some((n, buf));
        }
        Ok(&self.slots[slot].as_ref().expect("filled").1)
    }

    fn read(&mut self, off: u64, out: &mut [u8]) -> Result<(), SourceError> {
        if off + out.len() as u64 > self.size {
            return Err(SourceError::Format(format!(
                "read past the end of the file at offset {off}"
            )));
        }
        let mut done = 0;
        while done < out.len() {
            let pos = off + done as u64;
            let page = self.page(pos / PAGE as u64)?;
            let at = (pos % PAGE as u64) as usize;
            let n = (page.len() - at).min(out.len() - done);
            out[done..done + n].copy_from_slice(&page[at..at + n]);
            done += n;
        }
        Ok(())
    }

    fn byte(&mut self, off: u64) -> Result<u8, SourceError> {
        let mut b = [0u8];
        self.read(off, &mut b)?;
        Ok(b[0])
    }
}

/// A decoded metadata value (only what the metadata map uses).
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Uint(u128),
    Other,
    Map(Vec<(String, Value)>),
}

/// Country codes of maps already decoded, by (what was looked up, the
/// offset after the map's control byte): records share their `country`
/// maps through pointers, so each is decoded once however many point at it.
type Memo = HashMap<(Lookup, u64), Option<[u8; 2]>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Lookup {
    Record,
    IsoCode,
}

/// The data-section decoder; `base` is where the section starts in the file.
struct Decoder<'a> {
    pages: &'a mut Pages,
    base: u64,
    /// Control bytes still allowed to be read (see [`STEPS_PER_DATA_BYTE`]).
    steps_left: &'a mut u64,
    memo: &'a mut Memo,
}

impl Decoder<'_> {
    /// Reads a control byte at `off`: (type, size or pointer target, offset after it).
    fn control(&mut self, off: u64) -> Result<(u8, u64, u64), SourceError> {
        *self.steps_left = self.steps_left.checked_sub(1).ok_or_else(|| {
            SourceError::Format(
                "data records overlap or repeat (more decoding work than the file's size allows)"
                    .into(),
            )
        })?;
        let c = self.pages.byte(off)?;
        let mut pos = off + 1;
        let mut kind = c >> 5;
        if kind == 1 {
            // Pointer.
            let ss = (c >> 3) & 3;
            let v = u64::from(c & 7);
            let mut b = [0u8; 4];
            let n = usize::from(ss) + 1;
            self.pages.read(pos, &mut b[..n])?;
            pos += n as u64;
            let p = match ss {
                0 => (v << 8) | u64::from(b[0]),
                1 => ((v << 16) | u64::from(b[0]) << 8 | u64::from(b[1])) + 2048,
                2 => {
                    ((v << 24) | u64::from(b[0]) << 16 | u64::from(b[1]) << 8 | u64::from(b[2]))
                        + 526_336
                }
                _ => u64::from(u32::from_be_bytes(b)),
            };
            return Ok((1, p, pos));
        }
        if kind == 0 {
            // Extended types are 8..=15; a larger byte is corrupt (and must not overflow).
            kind = 7u8
                .checked_add(self.pages.byte(pos)?)
                .filter(|k| *k <= 15)
                .ok_or_else(|| SourceError::Format("bad extended type".into()))?;
            pos += 1;
        }
        let mut size = u64::from(c & 0x1f);
        if size >= 29 {
            let n = (size - 28) as usize;
            let mut b = [0u8; 3];
            self.pages.read(pos, &mut b[..n])?;
            pos += n as u64;
            let v = b[..n].iter().fold(0u64, |a, &x| a << 8 | u64::from(x));
            size = match n {
                1 => 29 + v,
                2 => 285 + v,
                _ => 65_821 + v,
            };
        }
        Ok((kind, size, pos))
    }

    /// Follows pointers: the offset of the real value.
    fn resolve(&mut self, off: u64) -> Result<(u8, u64, u64, u64), SourceError> {
        let (kind, size, pos) = self.control(off)?;
        if kind == 1 {
            let target = self.base + size;
            let (k, s, p) = self.control(target)?;
            if k == 1 {
                return Err(SourceError::Format("pointer to a pointer".into()));
            }
            Ok((k, s, p, pos))
        } else {
            Ok((kind, size, pos, 0))
        }
    }

    /// The offset just after the value at `off`.
    fn skip(&mut self, off: u64, depth: u32) -> Result<u64, SourceError> {
        if depth > 32 {
            return Err(SourceError::Format("data nested too deep".into()));
        }
        let (kind, size, pos) = self.control(off)?;
        Ok(match kind {
            1 => pos,
            7 => {
                let mut p = pos;
                for _ in 0..size * 2 {
                    p = self.skip(p, depth + 1)?;
                }
                p
            }
            11 => {
                let mut p = pos;
                for _ in 0..size {
                    p = self.skip(p, depth + 1)?;
                }
                p
            }
            14 => pos,
            3 => pos + 8,
            15 => pos + 4,
            _ => pos + size,
        })
    }

    fn string(&mut self, off: u64) -> Result<(Option<String>, u64), SourceError> {
        let (kind, size, pos, after) = self.resolve(off)?;
        let next = if after != 0 { after } else { pos + size };
        if kind != 2 {
            let next = if after != 0 {
                after
            } else {
                self.skip(off, 0)?
            };
            return Ok((None, next));
        }
        if size > 4096 {
            return Err(SourceError::Format("string too long".into()));
        }
        let mut b = vec![0u8; size as usize];
        self.pages.read(pos, &mut b)?;
        Ok((Some(String::from_utf8_lossy(&b).into_owned()), next))
    }

    fn value(&mut self, off: u64, depth: u32) -> Result<(Value, u64), SourceError> {
        if depth > 8 {
            return Err(SourceError::Format("metadata nested too deep".into()));
        }
        let (kind, size, pos, after) = self.resolve(off)?;
        let end_of = |this: &mut Self, v: Value, end: u64| -> Result<(Value, u64), SourceError> {
            let _ = this;
            Ok((v, if after != 0 { after } else { end }))
        };
        match kind {
            2 => {
                let (s, next) = self.string(off)?;
                Ok((s.map_or(Value::Other, Value::Str), next))
            }
            5 | 6 | 9 | 10 => {
                if size > 16 {
                    return Err(SourceError::Format("integer too wide".into()));
                }
                let mut b = vec![0u8; size as usize];
                self.pages.read(pos, &mut b)?;
                let v = b.iter().fold(0u128, |a, &x| a << 8 | u128::from(x));
                end_of(self, Value::Uint(v), pos + size)
            }
            7 => {
                let mut p = pos;
                let mut items = Vec::new();
                for _ in 0..size.min(1024) {
                    let (k, next) = self.string(p)?;
                    let (v, next) = self.value(next, depth + 1)?;
                    p = next;
                    items.push((k.unwrap_or_default(), v));
                }
                end_of(self, Value::Map(items), p)
            }
            _ => {
                let end = if after != 0 {
                    after
                } else {
                    self.skip(off, 0)?
                };
                Ok((Value::Other, end))
            }
        }
    }

    /// The country code of the record at `off`: GeoIP2's `country.iso_code`,
    /// else DB-IP's `country_code`, else `registered_country.iso_code`.
    fn country(&mut self, off: u64) -> Result<Option<[u8; 2]>, SourceError> {
        let (kind, size, pos, after) = self.resolve(off)?;
        if kind != 7 {
            return Ok(None);
        }
        if after != 0 {
            if let Some(c) = self.memo.get(&(Lookup::Record, pos)) {
                return Ok(*c);
            }
            let c = self.country_map(size, pos)?;
            self.memo.insert((Lookup::Record, pos), c);
            return Ok(c);
        }
        self.country_map(size, pos)
    }

    /// The entries of a record map (`size` of them from `pos`).
    fn country_map(&mut self, size: u64, pos: u64) -> Result<Option<[u8; 2]>, SourceError> {
        let mut found = None;
        let mut registered = None;
        let mut p = pos;
        for _ in 0..size {
            let (key, next) = self.string(p)?;
            match key.as_deref() {
                Some("country_code") => {
                    let (v, next) = self.string(next)?;
                    found = found.or(v.as_deref().and_then(code));
                    p = next;
                }
                Some(k @ ("country" | "registered_country")) => {
                    let is_country = k == "country";
                    let (v, next) = self.iso_code(next)?;
                    if is_country {
                        found = v.or(found);
                    } else {
                        registered = v;
                    }
                    p = next;
                }
                _ => p = self.skip(next, 0)?,
            }
        }
        Ok(found.or(registered))
    }

    /// `{ "iso_code": "US", … }` → US; returns the offset after the map.
    fn iso_code(&mut self, off: u64) -> Result<(Option<[u8; 2]>, u64), SourceError> {
        let (kind, size, pos, after) = self.resolve(off)?;
        if kind != 7 {
            let end = if after != 0 {
                after
            } else {
                self.skip(off, 0)?
            };
            return Ok((None, end));
        }
        if after != 0
            && let Some(c) = self.memo.get(&(Lookup::IsoCode, pos))
        {
            return Ok((*c, after));
        }
        let mut p = pos;
        let mut found = None;
        for _ in 0..size {
            let (key, next) = self.string(p)?;
            if key.as_deref() == Some("iso_code") {
                let (v, next) = self.string(next)?;
                found = v.as_deref().and_then(code);
                p = next;
            } else {
                p = self.skip(next, 0)?;
            }
        }
        if after != 0 {
            self.memo.insert((Lookup::IsoCode, pos), found);
        }
        Ok((found, if after != 0 { after } else { p }))
    }
}

/// A two-letter code, lowercased.
fn code(s: &str) -> Option<[u8; 2]> {
    let b = s.as_bytes();
    (b.len() == 2 && b.iter().all(u8::is_ascii_alphabetic))
        .then(|| [b[0].to_ascii_lowercase(), b[1].to_ascii_lowercase()])
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub node_count: u32,
    pub record_size: u32,
    pub ip_version: u32,
    pub database_type: String,
    /// Control bytes the data records took to decode (bounded by
    /// [`STEPS_PER_DATA_BYTE`] × the data section's size).
    pub decode_steps: u64,
}

/// Reads `path` and adds every network whose country is in `wanted` (lowercase
/// codes; `None` = all) to `out`. Returns the metadata.
pub fn extract(
    path: &Path,
    wanted: Option<&HashSet<[u8; 2]>>,
    out: &mut HashMap<[u8; 2], CountryBuilder>,
) -> Result<Metadata, SourceError> {
    let file = super::open_regular(path)?;
    let mut pages = Pages::new(file).map_err(|e| SourceError::Io(e.to_string()))?;
    let meta_start = find_metadata(&mut pages)?;
    let mut meta_steps = STEPS_SLACK;
    let mut meta_memo = Memo::new();
    let mut meta = {
        let mut d = Decoder {
            pages: &mut pages,
            base: meta_start,
            steps_left: &mut meta_steps,
            memo: &mut meta_memo,
        };
        let (v, _) = d.value(meta_start, 0)?;
        let Value::Map(items) = v else {
            return Err(SourceError::Format("metadata is not a map".into()));
        };
        let get = |k: &str| items.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let uint = |k: &str| match get(k) {
            Some(Value::Uint(v)) if v <= u128::from(u32::MAX) => Ok(v as u32),
            _ => Err(SourceError::Format(format!("metadata has no {k}"))),
        };
        Metadata {
            node_count: uint("node_count")?,
            record_size: uint("record_size")?,
            ip_version: uint("ip_version")?,
            database_type: match get("database_type") {
                Some(Value::Str(s)) => s,
                _ => String::new(),
            },
            decode_steps: 0,
        }
    };
    if ![24, 28, 32].contains(&meta.record_size) || ![4, 6].contains(&meta.ip_version) {
        return Err(SourceError::Format(format!(
            "unsupported record size {} / ip version {}",
            meta.record_size, meta.ip_version
        )));
    }
    let node_bytes = u64::from(meta.record_size) * 2 / 8;
    let tree_size = node_bytes * u64::from(meta.node_count);
    let data_base = tree_size + 16;
    if data_base > meta_start {
        return Err(SourceError::Format(
            "search tree larger than the file (truncated?)".into(),
        ));
    }
    let data_end = meta_start - MARKER.len() as u64;
    let budget = (data_end.saturating_sub(data_base))
        .saturating_mul(STEPS_PER_DATA_BYTE)
        .saturating_add(STEPS_SLACK);
    let mut walker = Walker {
        pages,
        meta: meta.clone(),
        node_bytes,
        data_base,
        data_end,
        cache: HashMap::new(),
        memo: Memo::new(),
        steps_left: budget,
        wanted,
        out,
    };
    walker.walk()?;
    meta.decode_steps = budget - walker.steps_left;
    Ok(meta)
}

/// The offset of the metadata map (after the last marker, searched in the last 128 KB).
fn find_metadata(pages: &mut Pages) -> Result<u64, SourceError> {
    let tail = pages.size.min(128 * 1024);
    let start = pages.size - tail;
    let mut buf = vec![0u8; tail as usize];
    pages.read(start, &mut buf)?;
    buf.windows(MARKER.len())
        .rposition(|w| w == MARKER)
        .map(|i| start + (i + MARKER.len()) as u64)
        .ok_or_else(|| {
            SourceError::Format("no MaxMind DB metadata marker (not an mmdb file?)".into())
        })
}

struct Walker<'a> {
    pages: Pages,
    meta: Metadata,
    node_bytes: u64,
    data_base: u64,
    data_end: u64,
    /// Data offset → country, so each record is decoded once.
    cache: HashMap<u64, Option<[u8; 2]>>,
    memo: Memo,
    steps_left: u64,
    wanted: Option<&'a HashSet<[u8; 2]>>,
    out: &'a mut HashMap<[u8; 2], CountryBuilder>,
}

impl Walker<'_> {
    fn node(&mut self, n: u32) -> Result<(u32, u32), SourceError> {
        let mut b = [0u8; 8];
        let len = self.node_bytes as usize;
        self.pages
            .read(u64::from(n) * self.node_bytes, &mut b[..len])?;
        let be3 = |x: &[u8]| u32::from(x[0]) << 16 | u32::from(x[1]) << 8 | u32::from(x[2]);
        Ok(match self.meta.record_size {
            24 => (be3(&b[0..3]), be3(&b[3..6])),
            28 => (
                u32::from(b[3] & 0xf0) << 20 | be3(&b[0..3]),
                u32::from(b[3] & 0x0f) << 24 | be3(&b[4..7]),
            ),
            _ => (
                u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            ),
        })
    }

    fn walk(&mut self) -> Result<(), SourceError> {
        let nodes = self.meta.node_count;
        let v6 = self.meta.ip_version == 6;
        let bits = if v6 { 128 } else { 32 };
        // The IPv4 subtree of an IPv6 tree sits at ::/96; its aliases
        // (::ffff:0:0/96, 2002::/16) point at the same node and are skipped.
        let mut v4_root = None;
        if v6 {
            let mut n = 0;
            for _ in 0..96 {
                if n >= nodes {
                    break;
                }
                n = self.node(n)?.0;
            }
            v4_root = Some(n);
        }
        // Depth-first: (record, depth, prefix bits so far).
        let mut stack: Vec<(u32, u32, u128)> = vec![(0, 0, 0)];
        let mut visited: u64 = 0;
        while let Some((rec, depth, prefix)) = stack.pop() {
            if rec < nodes {
                if v6 && Some(rec) == v4_root && depth > 0 && !(depth == 96 && prefix == 0) {
                    continue;
                }
                visited += 1;
                if visited > u64::from(nodes) * 2 || depth >= bits {
                    return Err(SourceError::Format("search tree has a cycle".into()));
                }
                let (l, r) = self.node(rec)?;
                let bit = 1u128 << (bits - 1 - depth);
                stack.push((r, depth + 1, prefix | bit));
                stack.push((l, depth + 1, prefix));
            } else if rec > nodes {
                let off = u64::from(rec - nodes).checked_sub(16).ok_or_else(|| {
                    SourceError::Format(format!("record {rec} points into the separator"))
                })?;
                self.leaf(off, depth, prefix, bits)?;
            }
        }
        Ok(())
    }

    fn leaf(&mut self, off: u64, depth: u32, prefix: u128, bits: u32) -> Result<(), SourceError> {
        if self.data_base + off >= self.data_end {
            return Err(SourceError::Format(format!(
                "record points past the data section ({off})"
            )));
        }
        let cc = match self.cache.get(&off) {
            Some(c) => *c,
            None => {
                let mut d = Decoder {
                    pages: &mut self.pages,
                    base: self.data_base,
                    steps_left: &mut self.steps_left,
                    memo: &mut self.memo,
                };
                let c = d.country(self.data_base + off)?;
                self.cache.insert(off, c);
                c
            }
        };
        let Some(cc) = cc else { return Ok(()) };
        if self.wanted.is_some_and(|w| !w.contains(&cc)) {
            return Ok(());
        }
        let b = self.out.entry(cc).or_default();
        if bits == 32 {
            b.v4.push(cidr_range(prefix as u32, depth));
        } else if depth >= 96 && prefix >> 32 == 0 {
            b.v4.push(cidr_range(prefix as u32, depth - 96));
        } else {
            b.v6.push(cidr_range(prefix, depth));
        }
        Ok(())
    }
}

#[cfg(test)]
pub mod tests {
    //! A tiny mmdb writer, enough to test the reader with both field layouts.
    use std::io::Write;

    use super::*;

    fn ctrl(kind: u8, size: usize, out: &mut Vec<u8>) {
        assert!(size < 29);
        if kind <= 7 {
            out.push(kind << 5 | size as u8);
        } else {
            out.push(size as u8);
            out.push(kind - 7);
        }
    }
    fn string(s: &str, out: &mut Vec<u8>) {
        ctrl(2, s.len(), out);
        out.extend_from_slice(s.as_bytes());
    }
    fn uint(kind: u8, v: u32, out: &mut Vec<u8>) {
        let b = v.to_be_bytes();
        let skip = b.iter().take_while(|&&x| x == 0).count();
        ctrl(kind, 4 - skip, out);
        out.extend_from_slice(&b[skip..]);
    }

    /// Networks (v4 prefix bits as u32, len, record index) → an IPv4 mmdb with
    /// record size 24. `records` are the encoded data records.
    pub fn build_v4(nets: &[(u32, u32, usize)], records: &[Vec<u8>]) -> Vec<u8> {
        // Build a binary trie.
        #[derive(Clone, Default)]
        struct N {
            kids: [Option<usize>; 2],
            data: [Option<usize>; 2],
        }
        let mut nodes = vec![N::default()];
        for &(net, len, rec) in nets {
            let mut n = 0;
            for d in 0..len {
                let bit = ((net >> (31 - d)) & 1) as usize;
                if d + 1 == len {
                    nodes[n].data[bit] = Some(rec);
                } else {
                    n = match nodes[n].kids[bit] {
                        Some(k) => k,
                        None => {
                            nodes.push(N::default());
                            let k = nodes.len() - 1;
                            nodes[n].kids[bit] = Some(k);
                            k
                        }
                    };
                }
            }
        }
        let mut data = Vec::new();
        let mut offs = Vec::new();
        for r in records {
            offs.push(data.len());
            data.extend_from_slice(r);
        }
        let count = nodes.len() as u32;
        let mut out = Vec::new();
        for n in &nodes {
            for side in 0..2 {
                let v = match (n.kids[side], n.data[side]) {
                    (Some(k), _) => k as u32,
                    (None, Some(r)) => count + 16 + offs[r] as u32,
                    (None, None) => count,
                };
                out.extend_from_slice(&v.to_be_bytes()[1..]);
            }
        }
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&data);
        out.extend_from_slice(MARKER);
        ctrl(7, 4, &mut out);
        string("node_count", &mut out);
        uint(6, count, &mut out);
        string("record_size", &mut out);
        uint(5, 24, &mut out);
        string("ip_version", &mut out);
        uint(5, 4, &mut out);
        string("database_type", &mut out);
        string("test", &mut out);
        out
    }

    pub fn dbip_record(cc: &str) -> Vec<u8> {
        let mut r = Vec::new();
        ctrl(7, 1, &mut r);
        string("country_code", &mut r);
        string(cc, &mut r);
        r
    }

    pub fn geoip2_record(cc: &str) -> Vec<u8> {
        let mut r = Vec::new();
        ctrl(7, 2, &mut r);
        string("continent", &mut r);
        ctrl(7, 1, &mut r);
        string("code", &mut r);
        string("EU", &mut r);
        string("country", &mut r);
        ctrl(7, 3, &mut r);
        string("geoname_id", &mut r);
        uint(6, 2_921_044, &mut r);
        string("iso_code", &mut r);
        string(cc, &mut r);
        string("names", &mut r);
        ctrl(7, 1, &mut r);
        string("en", &mut r);
        string("Somewhere", &mut r);
        r
    }

    fn ip(s: &str) -> u32 {
        s.parse::<std::net::Ipv4Addr>().unwrap().into()
    }

    fn write(bytes: &[u8]) -> tempfile_path::TempPath {
        let p = tempfile_path::TempPath::new("mmdb");
        std::fs::File::create(&p.0)
            .unwrap()
            .write_all(bytes)
            .unwrap();
        p
    }

    pub mod tempfile_path {
        pub struct TempPath(pub std::path::PathBuf);
        impl TempPath {
            pub fn new(tag: &str) -> Self {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                Self(std::env::temp_dir().join(format!(
                    "wsl-test-{}-{tag}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                )))
            }
        }
        impl Drop for TempPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn reads_both_layouts() {
        for make in [dbip_record as fn(&str) -> Vec<u8>, geoip2_record] {
            let db = build_v4(
                &[
                    (ip("1.0.0.0"), 24, 0),
                    (ip("1.0.1.0"), 24, 0),
                    (ip("8.0.0.0"), 8, 1),
                    (ip("200.0.0.0"), 7, 2),
                ],
                &[make("US"), make("DE"), make("CN")],
            );
            let f = write(&db);
            let mut out = HashMap::new();
            let meta = extract(&f.0, None, &mut out).unwrap();
            assert_eq!(meta.ip_version, 4);
            let us = out.remove(b"us").unwrap().build();
            assert_eq!(us.v4.ranges(), &[(ip("1.0.0.0"), ip("1.0.1.255"))]);
            let de = out.remove(b"de").unwrap().build();
            assert_eq!(de.v4.ranges(), &[(ip("8.0.0.0"), ip("8.255.255.255"))]);
            let cn = out.remove(b"cn").unwrap().build();
            assert_eq!(cn.v4.ranges(), &[(ip("200.0.0.0"), ip("201.255.255.255"))]);
            assert!(out.is_empty());

            let wanted: HashSet<[u8; 2]> = [*b"de"].into();
            let mut out = HashMap::new();
            extract(&f.0, Some(&wanted), &mut out).unwrap();
            assert_eq!(out.keys().collect::<Vec<_>>(), vec![b"de"]);
        }
    }

    #[test]
    fn rejects_broken_files() {
        let db = build_v4(&[(ip("1.0.0.0"), 24, 0)], &[dbip_record("US")]);
        // Not an mmdb.
        let f = write(b"hello world, this is not a database");
        assert!(matches!(
            extract(&f.0, None, &mut HashMap::new()),
            Err(SourceError::Format(_))
        ));
        // Truncated: metadata gone.
        let f = write(&db[..db.len() / 2]);
        assert!(extract(&f.0, None, &mut HashMap::new()).is_err());
        // A record pointing into the 16-byte separator.
        let mut bad = db.clone();
        let nodes = extract(&write(&db).0, None, &mut HashMap::new())
            .unwrap()
            .node_count;
        bad[0..3].copy_from_slice(&(nodes + 3).to_be_bytes()[1..]);
        assert!(matches!(
            extract(&write(&bad).0, None, &mut HashMap::new()),
            Err(SourceError::Format(_))
        ));
        // Tree cut short but metadata kept.
        let meta_at = db.windows(MARKER.len()).position(|w| w == MARKER).unwrap();
        let mut cut = db[..6].to_vec();
        cut.extend_from_slice(&db[meta_at..]);
        let f = write(&cut);
        assert!(extract(&f.0, None, &mut HashMap::new()).is_err());
    }

    /// A map control byte for `n` entries (any size).
    fn big_map(n: usize, out: &mut Vec<u8>) {
        match n {
            0..29 => out.push(7 << 5 | n as u8),
            29..285 => out.extend_from_slice(&[7 << 5 | 29, (n - 29) as u8]),
            _ => {
                let v = (n - 285) as u16;
                out.push(7 << 5 | 30);
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
    }

    /// The crafted file behind the 9 s extract: every leaf is a record of its
    /// own, `{country: →shared}`, and all point at one shared map of `entries`
    /// entries without an `iso_code`. Decoding that map once per leaf made
    /// the work leaves × entries for a file of leaves + entries bytes.
    fn shared_map_bomb(leaves: u32, entries: usize) -> Vec<u8> {
        let mut shared = Vec::new();
        big_map(entries, &mut shared);
        for _ in 0..entries {
            string("x", &mut shared);
            string("y", &mut shared);
        }
        let mut leaf = Vec::new();
        ctrl(7, 1, &mut leaf);
        string("country", &mut leaf);
        leaf.extend_from_slice(&[1 << 5, 0]); // pointer to data offset 0
        let mut records = vec![shared];
        records.extend((0..leaves).map(|_| leaf.clone()));
        let nets: Vec<(u32, u32, usize)> = (0..leaves)
            .map(|i| (0x0100_0000 + (i << 8), 24, i as usize + 1))
            .collect();
        build_v4(&nets, &records)
    }

    #[test]
    fn decoding_work_is_linear_in_the_file() {
        for (leaves, entries) in [(500, 2_000), (2_000, 8_000)] {
            let db = shared_map_bomb(leaves, entries);
            let f = write(&db);
            let mut out = HashMap::new();
            let meta = extract(&f.0, None, &mut out).unwrap();
            // Before: ≥ leaves × 2 × entries steps (2M, 32M). Now each map once.
            let bound = 2 * entries as u64 + 8 * u64::from(leaves);
            assert!(
                meta.decode_steps <= bound,
                "{leaves} leaves × {entries} entries: {} steps (bound {bound}, file {} bytes)",
                meta.decode_steps,
                db.len()
            );
            assert!(meta.decode_steps <= STEPS_PER_DATA_BYTE * db.len() as u64);
            assert!(out.is_empty(), "no iso_code anywhere");
        }
    }

    #[test]
    fn work_past_the_budget_is_refused() {
        // A map of 5,000 entries decoded with a budget of 100 steps.
        let mut data = Vec::new();
        big_map(5_000, &mut data);
        for _ in 0..5_000 {
            string("k", &mut data);
            string("v", &mut data);
        }
        let f = write(&data);
        let mut pages = Pages::new(File::open(&f.0).unwrap()).unwrap();
        let (mut steps, mut memo) = (100, Memo::new());
        let mut d = Decoder {
            pages: &mut pages,
            base: 0,
            steps_left: &mut steps,
            memo: &mut memo,
        };
        let e = d.country(0).unwrap_err();
        assert!(
            matches!(&e, SourceError::Format(m) if m.contains("decoding work")),
            "{e}"
        );
    }

    /// Found by the `source_readers` fuzz target: an extended type byte of 255
    /// overflowed `7 + byte`. A corrupt download must be an error, not a panic.
    #[test]
    fn corrupt_extended_type_is_an_error() {
        let data = [
            10, 104, 171, 205, 239, 77, 97, 120, 77, 105, 110, 100, 46, 99, 111, 109, 255, 255, 0,
            0, 32, 0, 10, 255,
        ];
        let path = std::env::temp_dir().join(format!("wgsplit-mmdb-{}", std::process::id()));
        std::fs::write(&path, data).unwrap();
        let mut out = std::collections::HashMap::new();
        assert!(extract(&path, None, &mut out).is_err());
        std::fs::remove_file(&path).unwrap();
    }
}
