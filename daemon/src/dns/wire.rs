//! Just enough of the DNS wire format for a forwarding resolver: read a query's
//! question, read an upstream answer's addresses, CNAME targets and TTLs, and
//! build the few answers we make ourselves (SERVFAIL, NXDOMAIN, null). Answers
//! from upstream are passed on byte for byte (only the ID, the question's case and
//! the TTLs are rewritten), so nothing is lost in a decode/encode round trip and
//! the hot path allocates little.
//!
//! Everything here is pure and bounds-checked: a malformed packet is an `Err`,
//! never a panic (fuzzed by `fuzz/fuzz_targets/dns_request.rs`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const TYPE_A: u16 = 1;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_OPT: u16 = 41;
pub const CLASS_IN: u16 = 1;

pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_NOTIMP: u8 = 4;
pub const RCODE_REFUSED: u8 = 5;

const FLAG_QR: u16 = 0x8000;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_RA: u16 = 0x0080;
const HEADER: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    Short,
    NotQuery,
    /// A query with an opcode other than QUERY (answered NOTIMP).
    Opcode,
    /// Not exactly one question.
    Questions,
    BadName,
    BadRecord,
    Mismatch,
}

/// A client's question, with what we need to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: u16,
    pub rd: bool,
    /// Lowercase wire-format name (the cache key; `name()` is the dotted text).
    pub wire_name: Vec<u8>,
    pub qtype: u16,
    pub qclass: u16,
    /// End of the question section in the request.
    pub q_end: usize,
    /// The client's EDNS UDP payload size, if it sent an OPT record.
    pub edns: Option<u16>,
    /// Every label is a plain host label (letters, digits, `-`, `_`): the name can
    /// be matched against rules.
    pub plain: bool,
}

impl Query {
    /// The lowercase dotted name without the final dot ("" for the root; `?`
    /// for bytes that are not plain, see `dotted`). Made on demand: the hot
    /// path matches names by the hashes of their wire form.
    pub fn name(&self) -> String {
        dotted(&self.wire_name)
    }

    /// Largest UDP answer the client takes.
    pub fn udp_limit(&self) -> usize {
        self.edns.map_or(512, |s| (s as usize).clamp(512, 4096))
    }
}

fn u16_at(b: &[u8], i: usize) -> Result<u16, WireError> {
    b.get(i..i + 2)
        .map(|x| u16::from_be_bytes([x[0], x[1]]))
        .ok_or(WireError::Short)
}

fn u32_at(b: &[u8], i: usize) -> Result<u32, WireError> {
    b.get(i..i + 4)
        .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
        .ok_or(WireError::Short)
}

/// The end of an uncompressed name at `start` (questions): the position after
/// its final zero. Lengths and bounds are checked; nothing is copied.
fn plain_name_end(b: &[u8], start: usize) -> Result<usize, WireError> {
    let mut pos = start;
    loop {
        let len = *b.get(pos).ok_or(WireError::Short)? as usize;
        if len & 0xc0 != 0 {
            return Err(WireError::BadName);
        }
        if len == 0 {
            return Ok(pos + 1);
        }
        pos += 1 + len;
        if pos > b.len() {
            return Err(WireError::Short);
        }
        if pos - start > 255 {
            return Err(WireError::BadName);
        }
    }
}

#[inline(always)]
fn plain_byte(c: u8) -> bool {
    matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'A'..=b'Z')
}

/// Reads an uncompressed name at `pos` (questions): (lowercase wire form, plain,
/// end). One copy of the name's bytes, lowercased in place (length bytes are
/// below `A`, so lowercasing leaves them alone).
fn read_plain_name(b: &[u8], pos: usize) -> Result<(Vec<u8>, bool, usize), WireError> {
    let end = plain_name_end(b, pos)?;
    let mut wire = b[pos..end].to_vec();
    wire.make_ascii_lowercase();
    let mut plain = true;
    let mut p = 0;
    while let Some(&l) = wire.get(p)
        && l != 0
    {
        let label = &wire[p + 1..p + 1 + l as usize];
        plain &= label.iter().all(|&c| plain_byte(c));
        p += 1 + l as usize;
    }
    Ok((wire, plain, end))
}

/// A wire-form name as dotted text without the final dot ("" for the root);
/// bytes that are not plain host-label bytes (a dot inside a label included)
/// show as `?`.
pub fn dotted(wire: &[u8]) -> String {
    let mut out = String::with_capacity(wire.len());
    let mut p = 0;
    while let Some(&l) = wire.get(p)
        && l != 0
    {
        if !out.is_empty() {
            out.push('.');
        }
        for &c in wire.get(p + 1..p + 1 + l as usize).unwrap_or_default() {
            out.push(if plain_byte(c) { c as char } else { '?' });
        }
        p += 1 + l as usize;
    }
    out
}

/// Skips a possibly compressed name; returns the position after it.
fn skip_name(b: &[u8], mut pos: usize) -> Result<usize, WireError> {
    loop {
        let len = *b.get(pos).ok_or(WireError::Short)? as usize;
        match len & 0xc0 {
            0 if len == 0 => return Ok(pos + 1),
            0 => pos += 1 + len,
            0xc0 => {
                b.get(pos + 1).ok_or(WireError::Short)?;
                return Ok(pos + 2);
            }
            _ => return Err(WireError::BadName),
        }
    }
}

/// Reads a possibly compressed name as lowercase dotted text (`None` if a label
/// is not a plain host label: such names are not matched). The name's own bytes
/// must end by `end` (its record's end), and a pointer may only point back, to
/// bytes before it. Every byte range the name was read from is added to `spans`,
/// so the caller can refuse a name made of bytes that are not names (TTLs).
fn read_name(
    b: &[u8],
    mut pos: usize,
    end: usize,
    spans: &mut Vec<(usize, usize)>,
) -> Result<Option<String>, WireError> {
    let mut out = String::new();
    let mut plain = true;
    let mut jumps = 0;
    let mut limit = end;
    loop {
        if pos >= limit {
            return Err(WireError::BadName);
        }
        let len = *b.get(pos).ok_or(WireError::Short)? as usize;
        match len & 0xc0 {
            0 if len == 0 => {
                spans.push((pos, pos + 1));
                break;
            }
            0 => {
                if pos + 1 + len >= limit {
                    return Err(WireError::BadName);
                }
                spans.push((pos, pos + 1 + len));
                let label = b.get(pos + 1..pos + 1 + len).ok_or(WireError::Short)?;
                if !out.is_empty() {
                    out.push('.');
                }
                for &c in label {
                    let c = c.to_ascii_lowercase();
                    if !(c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
                        plain = false;
                    }
                    out.push(c as char);
                }
                if out.len() > 255 {
                    return Err(WireError::BadName);
                }
                pos += 1 + len;
            }
            0xc0 => {
                jumps += 1;
                if jumps > 32 || pos + 2 > limit {
                    return Err(WireError::BadName);
                }
                let lo = *b.get(pos + 1).ok_or(WireError::Short)? as usize;
                spans.push((pos, pos + 2));
                let target = ((len & 0x3f) << 8) | lo;
                if target >= pos {
                    return Err(WireError::BadName);
                }
                // What follows the pointer is an earlier name's: it ends before
                // the pointer that led to it.
                limit = pos;
                pos = target;
            }
            _ => return Err(WireError::BadName),
        }
    }
    Ok(plain.then_some(out))
}

/// Reads a client's query. `Err(Opcode)` and `Err(Questions)` deserve an error
/// answer; other errors mean the packet is dropped.
pub fn parse_query(b: &[u8]) -> Result<Query, WireError> {
    if b.len() < HEADER {
        return Err(WireError::Short);
    }
    let id = u16_at(b, 0)?;
    let flags = u16_at(b, 2)?;
    if flags & FLAG_QR != 0 {
        return Err(WireError::NotQuery);
    }
    if (flags >> 11) & 0xf != 0 {
        return Err(WireError::Opcode);
    }
    let qd = u16_at(b, 4)?;
    let an = u16_at(b, 6)?;
    let ns = u16_at(b, 8)?;
    let ar = u16_at(b, 10)?;
    if qd != 1 {
        return Err(WireError::Questions);
    }
    let (wire_name, plain, pos) = read_plain_name(b, HEADER)?;
    let qtype = u16_at(b, pos)?;
    let qclass = u16_at(b, pos + 2)?;
    let q_end = pos + 4;
    let mut edns = None;
    if an == 0 && ns == 0 {
        let mut p = q_end;
        for _ in 0..ar {
            let n = skip_name(b, p)?;
            let t = u16_at(b, n)?;
            let class = u16_at(b, n + 2)?;
            let rdlen = u16_at(b, n + 8)? as usize;
            if t == TYPE_OPT {
                edns = Some(class);
            }
            p = n + 10 + rdlen;
            if p > b.len() {
                return Err(WireError::Short);
            }
        }
    }
    Ok(Query {
        id,
        rd: flags & FLAG_RD != 0,
        wire_name,
        qtype,
        qclass,
        q_end,
        edns,
        plain,
    })
}

/// What an upstream answer says, for matching, set inserts and caching.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    pub rcode: u8,
    pub truncated: bool,
    /// A and AAAA records of the answer section with their TTLs.
    pub addrs: Vec<(IpAddr, u32)>,
    /// CNAME targets in the answer section (plain names only).
    pub cnames: Vec<String>,
    /// Offsets of every record's TTL field (not OPT's).
    pub ttl_offsets: Vec<usize>,
    /// How long the answer may be cached: the smallest TTL of the answer section,
    /// or for an answer without records the SOA's negative TTL.
    pub cache_ttl: Option<u32>,
}

/// Reads an upstream's answer to `q` (the question must be the same).
pub fn parse_answer(b: &[u8], q: &Query) -> Result<Answer, WireError> {
    if b.len() < HEADER {
        return Err(WireError::Short);
    }
    let flags = u16_at(b, 2)?;
    if flags & FLAG_QR == 0 {
        return Err(WireError::NotQuery);
    }
    let counts = [u16_at(b, 6)?, u16_at(b, 8)?, u16_at(b, 10)?];
    if u16_at(b, 4)? != 1 {
        return Err(WireError::Questions);
    }
    let pos = plain_name_end(b, HEADER)?;
    if !b[HEADER..pos].eq_ignore_ascii_case(&q.wire_name)
        || u16_at(b, pos)? != q.qtype
        || u16_at(b, pos + 2)? != q.qclass
    {
        return Err(WireError::Mismatch);
    }
    let mut a = Answer {
        rcode: (flags & 0xf) as u8,
        truncated: flags & FLAG_TC != 0,
        ..Default::default()
    };
    let mut p = pos + 4;
    let mut min_answer: Option<u32> = None;
    let mut negative: Option<u32> = None;
    // The bytes CNAME targets were read from: a name borrowed from a TTL field
    // would change when `rewrite` ages the TTLs, so the answer a client gets from
    // the cache would not be the one parsed and put into the sets.
    let mut name_spans: Vec<(usize, usize)> = Vec::new();
    for (section, &count) in counts.iter().enumerate() {
        for _ in 0..count {
            let n = skip_name(b, p)?;
            let t = u16_at(b, n)?;
            let class = u16_at(b, n + 2)?;
            let ttl = u32_at(b, n + 4)?;
            let rdlen = u16_at(b, n + 8)? as usize;
            let rd = n + 10;
            let end = rd + rdlen;
            let rdata = b.get(rd..end).ok_or(WireError::Short)?;
            if t != TYPE_OPT {
                a.ttl_offsets.push(n + 4);
            }
            if section == 0 {
                min_answer = Some(min_answer.map_or(ttl, |m| m.min(ttl)));
                match (t, class) {
                    (TYPE_A, CLASS_IN) if rdlen == 4 => a.addrs.push((
                        IpAddr::V4(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3])),
                        ttl,
                    )),
                    (TYPE_AAAA, CLASS_IN) if rdlen == 16 => {
                        let o: [u8; 16] = rdata.try_into().map_err(|_| WireError::BadRecord)?;
                        a.addrs.push((IpAddr::V6(Ipv6Addr::from(o)), ttl));
                    }
                    (TYPE_CNAME, _) => {
                        if let Some(name) = read_name(b, rd, end, &mut name_spans)? {
                            a.cnames.push(name);
                        }
                    }
                    _ => {}
                }
            } else if section == 1 && t == TYPE_SOA {
                let m = skip_name(b, rd)?;
                let m = skip_name(b, m)?;
                let minimum = u32_at(b, m + 16)?;
                if m + 20 > end {
                    return Err(WireError::BadRecord);
                }
                negative = Some(ttl.min(minimum));
            }
            p = end;
        }
    }
    let overlaps_ttl = |&(s, e): &(usize, usize)| a.ttl_offsets.iter().any(|&o| s < o + 4 && o < e);
    if name_spans.iter().any(overlaps_ttl) {
        return Err(WireError::BadRecord);
    }
    a.cache_ttl = if counts[0] > 0 { min_answer } else { negative };
    Ok(a)
}

fn header(out: &mut Vec<u8>, q: &Query, rcode: u8, an: u16) {
    out.extend_from_slice(&q.id.to_be_bytes());
    let mut flags = FLAG_QR | FLAG_RA | rcode as u16;
    if q.rd {
        flags |= FLAG_RD;
    }
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&an.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
}

/// An answer without records (SERVFAIL, NXDOMAIN, REFUSED, NODATA), echoing the
/// question of `request`.
pub fn error_answer(request: &[u8], q: &Query, rcode: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(q.q_end);
    header(&mut out, q, rcode, 0);
    out.extend_from_slice(&request[HEADER..q.q_end]);
    out
}

/// An answer with only a header (FORMERR/NOTIMP for queries we cannot read).
pub fn bare_error(request: &[u8], rcode: u8) -> Option<Vec<u8>> {
    let id = request.get(0..2)?;
    let flags = u16_at(request, 2).ok()?;
    if flags & FLAG_QR != 0 {
        return None;
    }
    let mut out = id.to_vec();
    let flags = FLAG_QR | (flags & (0x7800 | FLAG_RD)) | FLAG_RA | rcode as u16;
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    Some(out)
}

/// The `null` block answer: 0.0.0.0 / :: for A / AAAA, no records otherwise.
pub fn null_answer(request: &[u8], q: &Query, ttl: u32) -> Vec<u8> {
    let rdata: &[u8] = match (q.qtype, q.qclass) {
        (TYPE_A, CLASS_IN) => &[0; 4],
        (TYPE_AAAA, CLASS_IN) => &[0; 16],
        _ => return error_answer(request, q, RCODE_NOERROR),
    };
    let mut out = Vec::with_capacity(q.q_end + 32);
    header(&mut out, q, RCODE_NOERROR, 1);
    out.extend_from_slice(&request[HEADER..q.q_end]);
    out.extend_from_slice(&[0xc0, 0x0c]);
    out.extend_from_slice(&q.qtype.to_be_bytes());
    out.extend_from_slice(&q.qclass.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(rdata);
    out
}

/// The request with another ID (what we send upstream).
pub fn with_id(request: &[u8], id: u16) -> Vec<u8> {
    let mut out = request.to_vec();
    out[0..2].copy_from_slice(&id.to_be_bytes());
    out
}

/// Turns a stored upstream answer into the answer for this client's query: its
/// ID, its RD bit, its question's letter case, TTLs minus `age` seconds.
pub fn rewrite(
    stored: &[u8],
    request: &[u8],
    q: &Query,
    ttl_offsets: &[usize],
    age: u32,
) -> Vec<u8> {
    let mut out = stored.to_vec();
    out[0..2].copy_from_slice(&q.id.to_be_bytes());
    let rd = if q.rd { FLAG_RD } else { 0 };
    let flags = (u16::from_be_bytes([out[2], out[3]]) & !FLAG_RD) | rd;
    out[2..4].copy_from_slice(&flags.to_be_bytes());
    if out.len() >= q.q_end && request.len() >= q.q_end {
        out[HEADER..q.q_end].copy_from_slice(&request[HEADER..q.q_end]);
    }
    if age > 0 {
        for &o in ttl_offsets {
            if let Some(t) = out.get_mut(o..o + 4) {
                let v = u32::from_be_bytes([t[0], t[1], t[2], t[3]]).saturating_sub(age);
                t.copy_from_slice(&v.to_be_bytes());
            }
        }
    }
    out
}

/// A truncated answer (TC set, question only) for answers too big for UDP.
pub fn truncated(request: &[u8], q: &Query, rcode: u8) -> Vec<u8> {
    let mut out = error_answer(request, q, rcode);
    out[2] |= (FLAG_TC >> 8) as u8;
    out
}

/// The transaction ID of a message.
pub fn id_of(b: &[u8]) -> Option<u16> {
    b.get(0..2).map(|x| u16::from_be_bytes([x[0], x[1]]))
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// Builds a query packet by hand.
    pub fn query(id: u16, name: &str, qtype: u16, edns: bool) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&FLAG_RD.to_be_bytes());
        b.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, edns as u8]);
        for l in name.split('.').filter(|l| !l.is_empty()) {
            b.push(l.len() as u8);
            b.extend_from_slice(l.as_bytes());
        }
        b.push(0);
        b.extend_from_slice(&qtype.to_be_bytes());
        b.extend_from_slice(&CLASS_IN.to_be_bytes());
        if edns {
            b.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
        }
        b
    }

    /// An answer to `req`: a CNAME, then A records, then a SOA in authority.
    pub fn answer(
        req: &[u8],
        cname: Option<&str>,
        addrs: &[([u8; 4], u32)],
        soa: Option<(u32, u32)>,
    ) -> Vec<u8> {
        let q = parse_query(req).unwrap();
        let mut b = req[..q.q_end].to_vec();
        b[2] |= 0x80;
        let an = addrs.len() + cname.is_some() as usize;
        b[6..8].copy_from_slice(&(an as u16).to_be_bytes());
        b[8..10].copy_from_slice(&(soa.is_some() as u16).to_be_bytes());
        b[10..12].copy_from_slice(&[0, 0]);
        let mut target = 12u16;
        if let Some(c) = cname {
            b.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 1, 0x2c]);
            let mut rd = Vec::new();
            for l in c.split('.') {
                rd.push(l.len() as u8);
                rd.extend_from_slice(l.as_bytes());
            }
            rd.push(0);
            b.extend_from_slice(&(rd.len() as u16).to_be_bytes());
            target = b.len() as u16;
            b.extend_from_slice(&rd);
        }
        for (a, ttl) in addrs {
            b.extend_from_slice(&(0xc000 | target).to_be_bytes());
            b.extend_from_slice(&[0, 1, 0, 1]);
            b.extend_from_slice(&ttl.to_be_bytes());
            b.extend_from_slice(&[0, 4]);
            b.extend_from_slice(a);
        }
        if let Some((ttl, min)) = soa {
            b.extend_from_slice(&[0xc0, 12, 0, 6, 0, 1]);
            b.extend_from_slice(&ttl.to_be_bytes());
            b.extend_from_slice(&(2u16 + 2 + 20).to_be_bytes());
            b.extend_from_slice(&[0xc0, 12, 0xc0, 12]);
            for v in [1u32, 2, 3, 4, min] {
                b.extend_from_slice(&v.to_be_bytes());
            }
        }
        b
    }

    #[test]
    fn reads_a_query() {
        let b = query(0x1234, "WWW.Example.com", TYPE_AAAA, true);
        let q = parse_query(&b).unwrap();
        assert_eq!(q.id, 0x1234);
        assert!(q.rd && q.plain);
        assert_eq!(q.name(), "www.example.com");
        assert_eq!(q.wire_name[0], 3);
        assert_eq!(q.qtype, TYPE_AAAA);
        assert_eq!(q.edns, Some(1232));
        assert_eq!(q.udp_limit(), 1232);
        assert_eq!(
            parse_query(&query(1, "x", 1, false)).unwrap().udp_limit(),
            512
        );
    }

    #[test]
    fn rejects_bad_queries() {
        let good = query(1, "a.b", TYPE_A, false);
        for cut in 0..good.len() {
            assert!(parse_query(&good[..cut]).is_err(), "cut {cut}");
        }
        let mut two = good.clone();
        two[5] = 2;
        assert_eq!(parse_query(&two), Err(WireError::Questions));
        let mut resp = good.clone();
        resp[2] |= 0x80;
        assert_eq!(parse_query(&resp), Err(WireError::NotQuery));
        let mut upd = good.clone();
        upd[2] |= 5 << 3;
        assert_eq!(parse_query(&upd), Err(WireError::Opcode));
        let mut ptr = good.clone();
        ptr[12] = 0xc0;
        assert_eq!(parse_query(&ptr), Err(WireError::BadName));
        let mut odd = good.clone();
        odd[13] = b'.';
        let q = parse_query(&odd).unwrap();
        assert!(!q.plain);
        assert_eq!(q.name(), "?.b");
        let mut long = Vec::new();
        for _ in 0..4 {
            long.push(63);
            long.extend_from_slice(&[b'A'; 63]);
        }
        long.push(0);
        let mut too_long = good[..12].to_vec();
        too_long.extend_from_slice(&long);
        too_long.extend_from_slice(&[0, 1, 0, 1]);
        assert_eq!(parse_query(&too_long), Err(WireError::BadName));
        let mut longest = good[..12].to_vec();
        longest.extend_from_slice(&long[64..]);
        longest.extend_from_slice(&[0, 1, 0, 1]);
        let q = parse_query(&longest).unwrap();
        assert!(q.plain && q.wire_name[1] == b'a' && q.name().len() == 3 * 64 - 1);
    }

    #[test]
    fn reads_an_answer() {
        let req = query(7, "www.netflix.com", TYPE_A, false);
        let q = parse_query(&req).unwrap();
        let resp = answer(
            &req,
            Some("edge.nflxvideo.net"),
            &[([1, 2, 3, 4], 120), ([5, 6, 7, 8], 30)],
            None,
        );
        let a = parse_answer(&resp, &q).unwrap();
        assert_eq!(a.rcode, 0);
        assert_eq!(a.cnames, vec!["edge.nflxvideo.net".to_string()]);
        assert_eq!(
            a.addrs,
            vec![
                ("1.2.3.4".parse().unwrap(), 120),
                ("5.6.7.8".parse().unwrap(), 30)
            ]
        );
        assert_eq!(a.cache_ttl, Some(30));
        assert_eq!(a.ttl_offsets.len(), 3);
        // Served later from the cache: TTLs aged, ID and case from the new query.
        let req2 = query(99, "WWW.netflix.com", TYPE_A, false);
        let q2 = parse_query(&req2).unwrap();
        let out = rewrite(&resp, &req2, &q2, &a.ttl_offsets, 10);
        let a2 = parse_answer(&out, &q2).unwrap();
        assert_eq!(id_of(&out), Some(99));
        assert_eq!(a2.addrs[0].1, 110);
        assert_eq!(&out[12..q2.q_end], &req2[12..q2.q_end]);
        // Every truncation is an error, never a panic.
        for cut in 0..resp.len() {
            assert!(parse_answer(&resp[..cut], &q).is_err(), "cut {cut}");
        }
        // Another question is refused.
        let other = parse_query(&query(7, "www.netflix.org", TYPE_A, false)).unwrap();
        assert_eq!(parse_answer(&resp, &other), Err(WireError::Mismatch));
    }

    #[test]
    fn negative_answers_cache_by_soa() {
        let req = query(7, "nope.example", TYPE_A, false);
        let q = parse_query(&req).unwrap();
        let mut resp = answer(&req, None, &[], Some((300, 60)));
        resp[3] |= RCODE_NXDOMAIN;
        let a = parse_answer(&resp, &q).unwrap();
        assert_eq!((a.rcode, a.cache_ttl), (RCODE_NXDOMAIN, Some(60)));
        assert!(a.addrs.is_empty());
    }

    #[test]
    fn our_own_answers_parse() {
        let req = query(3, "ads.example", TYPE_A, true);
        let q = parse_query(&req).unwrap();
        let nx = error_answer(&req, &q, RCODE_NXDOMAIN);
        assert_eq!(parse_answer(&nx, &q).unwrap().rcode, RCODE_NXDOMAIN);
        let null = null_answer(&req, &q, 60);
        let a = parse_answer(&null, &q).unwrap();
        assert_eq!(a.addrs, vec![("0.0.0.0".parse().unwrap(), 60)]);
        let tc = truncated(&req, &q, 0);
        assert!(parse_answer(&tc, &q).unwrap().truncated);
        let bare = bare_error(&req, RCODE_FORMERR).unwrap();
        assert_eq!(bare.len(), 12);
        assert_eq!(bare[3] & 0xf, RCODE_FORMERR);
    }

    #[test]
    fn compression_loops_are_errors() {
        let req = query(7, "a.b", TYPE_A, false);
        let q = parse_query(&req).unwrap();
        let mut resp = req.clone();
        resp[2] |= 0x80;
        resp[7] = 1;
        // A CNAME whose target points at itself.
        let at = resp.len() + 12;
        resp.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 1, 0, 2]);
        resp.extend_from_slice(&(0xc000u16 | at as u16).to_be_bytes());
        assert_eq!(parse_answer(&resp, &q), Err(WireError::BadName));
    }

    /// The fuzzer's find: a CNAME whose labels run past its record into the next
    /// record's TTL, and one that points into an earlier TTL. Either would change
    /// when the cached answer's TTLs are aged; both are refused.
    #[test]
    fn cname_names_never_borrow_ttl_bytes() {
        use base64::Engine as _;
        let found = base64::engine::general_purpose::STANDARD
            .decode(
                "LDQBAAABAAAAAAABA3d3dwdleGFtcGxlA2NvbQAAAQABAAApBNAAAAAAAAAsNIGAAAEAAgAAAAEDd3d3B2V4YW1wbGUDY29tAAABAAHADAAFAAEAAA4QABIkZWQDQ2ScB2V4YW1wbGUAwC0AAQABAAAAAQAAAAAxACkE0AAAAAAA",
            )
            .unwrap();
        let cut = found[0] as usize;
        let (req, resp) = found.split_at(cut);
        let q = parse_query(req).unwrap();
        assert!(parse_answer(resp, &q).is_err());
        // A well-formed chain still reads, compression to the question included.
        let req = query(7, "www.example.com", TYPE_A, false);
        let q = parse_query(&req).unwrap();
        let mut resp = req.clone();
        resp[2] |= 0x80;
        resp[7] = 1; // one answer
        // www.example.com CNAME edge.example.com (edge + pointer to "example.com").
        resp.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 7, 4]);
        resp.extend_from_slice(b"edge");
        resp.extend_from_slice(&[0xc0, 16]);
        let a = parse_answer(&resp, &q).unwrap();
        assert_eq!(a.cnames, vec!["edge.example.com".to_string()]);
        // The same CNAME pointing at its own TTL instead: refused.
        let ttl_at = resp.len() - 7 - 6; // the TTL field of the record above
        let n = resp.len();
        resp[n - 2..].copy_from_slice(&[0xc0, ttl_at as u8]);
        assert!(parse_answer(&resp, &q).is_err());
    }
}
