//! A minimal nf_tables netlink client for set elements (and, in `nftlist`, for
//! listing our table): one persistent
//! `NETLINK_NETFILTER` socket, one batch (`NFNL_MSG_BATCH_BEGIN` … `END`) per
//! [`NftSock::apply`], one acknowledgement read per message, errors mapped back to
//! the operation and the element that caused them.
//!
//! This is the DNS hot path (an answer's addresses go into a per-client set before
//! the answer leaves: a few µs per batch) and the bulk path (GeoIP and CIDR interval
//! sets with ~100k ranges: many elements per message, messages split under the
//! 64 KiB attribute limit, one batch as long as the socket buffer allows).
//!
//! # Refreshing an element that may already exist
//!
//! Re-adding an existing element succeeds (without `NLM_F_EXCL`) but only kernels
//! from 6.12 on update its timeout, and only when an expiration is sent too.
//! Deleting an element that does not exist fails the whole batch (`ENOENT`), and
//! `NFT_MSG_DESTROYSETELEM` (delete-if-present) exists only from 6.3. So
//! [`Op::Refresh`] sends, inside one batch, *add* (no `EXCL`: creates it when
//! missing, a no-op when present), *delete* (it now exists in the next
//! generation, so this cannot fail) and *add* again with the new timeout. The
//! kernel applies the three atomically at commit: a packet never sees the element
//! missing, and every kernel since 4.x accepts the sequence (OpenWrt 24.10 runs 6.6).
//!
//! # Interval sets
//!
//! A range `[a, b]` is two elements: key `a`, and key `b + 1` flagged
//! `NFT_SET_ELEM_INTERVAL_END` (no end element when `b` is the last address).
//! [`intervals`] turns prefixes into merged, sorted ranges of such elements;
//! delete a range by sending the same pair with [`Op::Del`].
//! Sets with concatenations (pipapo) instead take the end in `NFTA_SET_ELEM_KEY_END`
//! ([`Elem::key_end`]).

use std::{
    fmt, io,
    net::IpAddr,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use ipnet::IpNet;

use super::net::nl::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST, nest_end, nest_start, put_attr, put_attr_str,
};
use super::nft_consts::{
    NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END, NFNL_SUBSYS_NFTABLES, NFPROTO_INET, NFT_GOTO,
    NFT_MSG_DELSETELEM, NFT_MSG_NEWSETELEM, NFT_SET_ELEM_INTERVAL_END, NFTA_DATA_VALUE,
    NFTA_DATA_VERDICT, NFTA_LIST_ELEM, NFTA_SET_ELEM_DATA, NFTA_SET_ELEM_EXPIRATION,
    NFTA_SET_ELEM_FLAGS, NFTA_SET_ELEM_KEY, NFTA_SET_ELEM_KEY_END, NFTA_SET_ELEM_LIST_ELEMENTS,
    NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_TIMEOUT, NFTA_VERDICT_CHAIN,
    NFTA_VERDICT_CODE,
};
use crate::{
    plan::{NFT_TABLE, nft::AddrRange},
    util::ranges::net_range,
};

// Netlink and nfnetlink constants (linux/netlink.h, linux/netfilter/nfnetlink.h,
// linux/netfilter/nf_tables.h).
const NETLINK_NETFILTER: i32 = 12;
const SOL_NETLINK: i32 = 270;
const NETLINK_CAP_ACK: i32 = 10;
const NETLINK_EXT_ACK: i32 = 11;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSG_ERROR: u16 = 2;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLMSGERR_ATTR_OFFS: u16 = 2;

const NLMSG_HDRLEN: usize = 16;
/// An attribute's length is a u16: the elements of one message must fit in it.
const MAX_NEST: usize = 65_535;
/// Leave room for headers when filling one message's element list.
const ELEMS_PER_MSG_BYTES: usize = MAX_NEST - 512;
/// A message's bytes before its elements, besides the table's name (header,
/// set name, nests): what `encode` reserves per message.
const ENCODE_MSG_BYTES: usize = 96;
/// An element's usual bytes (key, timeout, expiration, flags): what `encode`
/// reserves per element (more only costs a regrowth).
const ENCODE_ELEM_BYTES: usize = 64;
/// Largest batch we ask the kernel to take in one write (needs `SO_SNDBUFFORCE`,
/// i.e. CAP_NET_ADMIN, which we have; otherwise batches are split).
const MAX_BATCH: usize = 64 << 20;

/// One set element: an address (or the start of a range) and its options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elem {
    pub key: IpAddr,
    /// `NFTA_SET_ELEM_KEY_END`: the inclusive end of a range in sets that take it
    /// in one element (concatenations / pipapo).
    pub key_end: Option<IpAddr>,
    /// `NFT_SET_ELEM_INTERVAL_END`: this key closes the range opened by the
    /// previous element (rbtree interval sets).
    pub interval_end: bool,
    /// Element timeout in milliseconds (the set needs `flags timeout`).
    pub timeout_ms: Option<u64>,
    /// Time left in milliseconds (defaults to the timeout in the kernel).
    pub expiration_ms: Option<u64>,
}

impl Elem {
    pub fn addr(key: IpAddr) -> Self {
        Self {
            key,
            key_end: None,
            interval_end: false,
            timeout_ms: None,
            expiration_ms: None,
        }
    }

    pub fn with_timeout(key: IpAddr, timeout_ms: u64) -> Self {
        Self {
            timeout_ms: Some(timeout_ms),
            ..Self::addr(key)
        }
    }

    fn is_v6(&self) -> bool {
        self.key.is_ipv6()
    }
}

/// An element of a verdict map: the key, and `goto CHAIN` as its data (`None`
/// for the end element of an interval, which carries no data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapElem<'a> {
    pub elem: Elem,
    pub goto: Option<&'a str>,
}

/// One change to one set (of the socket's table).
#[derive(Debug, Clone, Copy)]
pub enum Op<'a> {
    /// Add elements; existing ones are left as they are (no error).
    Add { set: &'a str, elems: &'a [Elem] },
    /// Add elements to a verdict map (delete them with `Del`: keys only).
    AddMap {
        set: &'a str,
        elems: &'a [MapElem<'a>],
    },
    /// Delete elements; a missing element fails the batch (`ENOENT`).
    Del { set: &'a str, elems: &'a [Elem] },
    /// Add-or-replace: existing elements get the new timeout (see the module docs).
    Refresh { set: &'a str, elems: &'a [Elem] },
    /// Remove every element of the set.
    Flush { set: &'a str },
}

impl Op<'_> {
    fn set(&self) -> &str {
        match self {
            Op::Add { set, .. }
            | Op::AddMap { set, .. }
            | Op::Del { set, .. }
            | Op::Refresh { set, .. }
            | Op::Flush { set } => set,
        }
    }
}

/// One message the kernel refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    /// Index into the `ops` given to `apply` (`None`: the batch itself).
    pub op: Option<usize>,
    /// Index into that op's `elems` when the kernel named the element.
    pub elem: Option<usize>,
    /// Positive errno.
    pub errno: i32,
    /// The kernel's extended-ack message, if any.
    pub message: Option<String>,
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.op {
            Some(op) => write!(f, "op {op}")?,
            None => write!(f, "batch")?,
        }
        if let Some(e) = self.elem {
            write!(f, " element {e}")?;
        }
        write!(f, ": {}", io::Error::from_raw_os_error(self.errno))?;
        if let Some(m) = &self.message {
            write!(f, " ({m})")?;
        }
        Ok(())
    }
}

/// Why a batch was not (fully) applied. When the kernel refuses any message the
/// whole batch is rolled back: nothing of it is in the kernel.
#[derive(Debug)]
pub enum Error {
    Io(io::Error),
    Refused(Vec<OpError>),
}

impl Error {
    /// The errno of the first refusal (or of the I/O error).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Io(e) => e.raw_os_error(),
            Error::Refused(v) => v.first().map(|e| e.errno),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "nf_tables netlink: {e}"),
            Error::Refused(errs) => {
                write!(f, "nf_tables refused the batch:")?;
                for e in errs {
                    write!(f, " [{e}]")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

/// Where in the encoded batch each message came from, to map acks back.
#[derive(Debug, Default, Clone)]
struct MsgInfo {
    seq: u32,
    /// Start of the message in the batch buffer.
    start: usize,
    op: usize,
    /// Index of the op's first element carried in this message.
    first_elem: usize,
    /// Where the offsets (from the message start) of each element nest it
    /// carries are in the batch's `elem_offsets`.
    elems: std::ops::Range<usize>,
}

/// An encoded batch: bytes and message map. Pure, so it is unit-tested without root.
#[derive(Debug, Default)]
pub struct Batch {
    buf: Vec<u8>,
    msgs: Vec<MsgInfo>,
    /// Every message's element offsets, one after the other (one allocation
    /// per batch, not one per message: the resolver encodes a batch per answer).
    elem_offsets: Vec<u32>,
    begin_seq: u32,
    end_seq: u32,
}

impl Batch {
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn messages(&self) -> usize {
        self.msgs.len()
    }

    /// The element offsets of message `m`.
    fn elem_offsets(&self, m: &MsgInfo) -> &[u32] {
        self.elem_offsets.get(m.elems.clone()).unwrap_or(&[])
    }
}

fn put_u16(buf: &mut Vec<u8>, v: u16) {
    buf.extend_from_slice(&v.to_ne_bytes());
}

fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_ne_bytes());
}

fn msg_start(buf: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> usize {
    let at = buf.len();
    put_u32(buf, 0);
    put_u16(buf, kind);
    put_u16(buf, flags);
    put_u32(buf, seq);
    put_u32(buf, 0);
    buf.push(family);
    buf.push(0); // NFNETLINK_V0
    buf.extend_from_slice(&res_id.to_be_bytes());
    at
}

fn msg_end(buf: &mut [u8], at: usize) {
    let len = (buf.len() - at) as u32;
    buf[at..at + 4].copy_from_slice(&len.to_ne_bytes());
}

fn key_bytes(a: &IpAddr) -> ([u8; 16], usize) {
    let mut out = [0u8; 16];
    match a {
        IpAddr::V4(v4) => {
            out[..4].copy_from_slice(&v4.octets());
            (out, 4)
        }
        IpAddr::V6(v6) => {
            out.copy_from_slice(&v6.octets());
            (out, 16)
        }
    }
}

fn put_key(buf: &mut Vec<u8>, kind: u16, a: &IpAddr) {
    let (bytes, len) = key_bytes(a);
    let n = nest_start(buf, kind);
    put_attr(buf, NFTA_DATA_VALUE, &bytes[..len]);
    nest_end(buf, n);
}

fn encode_elem(buf: &mut Vec<u8>, e: &Elem, with_timeouts: bool, goto: Option<&str>) {
    let n = nest_start(buf, NFTA_LIST_ELEM);
    put_key(buf, NFTA_SET_ELEM_KEY, &e.key);
    if let Some(end) = &e.key_end {
        put_key(buf, NFTA_SET_ELEM_KEY_END, end);
    }
    if e.interval_end {
        put_attr(
            buf,
            NFTA_SET_ELEM_FLAGS,
            &NFT_SET_ELEM_INTERVAL_END.to_be_bytes(),
        );
    }
    if with_timeouts {
        if let Some(t) = e.timeout_ms {
            put_attr(buf, NFTA_SET_ELEM_TIMEOUT, &t.to_be_bytes());
        }
        if let Some(x) = e.expiration_ms {
            put_attr(buf, NFTA_SET_ELEM_EXPIRATION, &x.to_be_bytes());
        }
    }
    if let Some(chain) = goto {
        let d = nest_start(buf, NFTA_SET_ELEM_DATA);
        let v = nest_start(buf, NFTA_DATA_VERDICT);
        put_attr(buf, NFTA_VERDICT_CODE, &NFT_GOTO.to_be_bytes());
        put_attr_str(buf, NFTA_VERDICT_CHAIN, chain);
        nest_end(buf, v);
        nest_end(buf, d);
    }
    nest_end(buf, n);
}

/// Encodes `ops` for `table` as one batch. Sequence numbers start at `seq`.
pub fn encode(family: u8, table: &str, ops: &[Op], seq: u32) -> Batch {
    // Sized up front (a refresh of one element is ~300 bytes in three messages):
    // the resolver encodes one batch per answer, and growing costs reallocations.
    let (messages, elements) = ops.iter().fold((0, 0), |(m, e), op| {
        let steps = if matches!(op, Op::Refresh { .. }) {
            3
        } else {
            1
        };
        let n = match op {
            Op::Add { elems, .. } | Op::Del { elems, .. } | Op::Refresh { elems, .. } => {
                elems.len()
            }
            Op::AddMap { elems, .. } => elems.len(),
            Op::Flush { .. } => 0,
        };
        (m + steps, e + steps * n)
    });
    let mut b = Batch {
        buf: Vec::with_capacity(
            (2 + messages) * (ENCODE_MSG_BYTES + table.len()) + elements * ENCODE_ELEM_BYTES,
        ),
        msgs: Vec::with_capacity(messages),
        elem_offsets: Vec::with_capacity(elements),
        ..Default::default()
    };
    let mut seq = seq;
    let buf = &mut b.buf;
    b.begin_seq = seq;
    let at = msg_start(
        buf,
        NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        seq,
        0,
        NFNL_SUBSYS_NFTABLES,
    );
    msg_end(buf, at);
    seq = seq.wrapping_add(1);
    for (op_index, op) in ops.iter().enumerate() {
        let steps: &[(u16, bool)] = match op {
            Op::Add { .. } | Op::AddMap { .. } => &[(NFT_MSG_NEWSETELEM, true)],
            Op::Del { .. } => &[(NFT_MSG_DELSETELEM, false)],
            Op::Refresh { .. } => &[
                (NFT_MSG_NEWSETELEM, true),
                (NFT_MSG_DELSETELEM, false),
                (NFT_MSG_NEWSETELEM, true),
            ],
            Op::Flush { .. } => &[(NFT_MSG_DELSETELEM, false)],
        };
        let (elems, map): (&[Elem], &[MapElem]) = match op {
            Op::Add { elems, .. } | Op::Del { elems, .. } | Op::Refresh { elems, .. } => {
                (elems, &[])
            }
            Op::AddMap { elems, .. } => (&[], elems),
            Op::Flush { .. } => (&[], &[]),
        };
        let count = elems.len().max(map.len());
        for &(kind, with_timeouts) in steps {
            let mut next = 0;
            loop {
                // One message: header, table, set, and as many elements as fit.
                let start = buf.len();
                let msg_kind = (NFNL_SUBSYS_NFTABLES << 8) | kind;
                let at = msg_start(
                    buf,
                    msg_kind,
                    NLM_F_REQUEST
                        | if kind == NFT_MSG_NEWSETELEM {
                            NLM_F_CREATE
                        } else {
                            0
                        },
                    seq,
                    family,
                    0,
                );
                put_attr_str(buf, NFTA_SET_ELEM_LIST_TABLE, table);
                put_attr_str(buf, NFTA_SET_ELEM_LIST_SET, op.set());
                let first_offset = b.elem_offsets.len();
                let first_elem = next;
                if count > 0 {
                    let list = nest_start(buf, NFTA_SET_ELEM_LIST_ELEMENTS);
                    while next < count && buf.len() - list < ELEMS_PER_MSG_BYTES {
                        b.elem_offsets.push((buf.len() - start) as u32);
                        match map.get(next) {
                            Some(m) => encode_elem(buf, &m.elem, with_timeouts, m.goto),
                            None => encode_elem(buf, &elems[next], with_timeouts, None),
                        }
                        next += 1;
                    }
                    nest_end(buf, list);
                }
                msg_end(buf, at);
                b.msgs.push(MsgInfo {
                    seq,
                    start,
                    op: op_index,
                    first_elem,
                    elems: first_offset..b.elem_offsets.len(),
                });
                seq = seq.wrapping_add(1);
                if next >= count {
                    break;
                }
            }
        }
    }
    if let Some(last) = b.msgs.last() {
        ask_ack(buf, last.start);
    }
    b.end_seq = seq;
    let at = msg_start(
        buf,
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        seq,
        0,
        NFNL_SUBSYS_NFTABLES,
    );
    msg_end(buf, at);
    b
}

/// Sets `NLM_F_ACK` on the message at `start` of `buf`. Only a batch's last
/// message asks for an ack: the kernel reports every failing message anyway
/// (an error is an ack with an errno), all of them before the last message's
/// reply, so that reply ends the answer. One ack per batch instead of one per
/// message: for the resolver's refresh of an element (three messages) two
/// receive calls fewer per answer.
pub(super) fn ask_ack(buf: &mut [u8], start: usize) {
    // nlmsghdr: len u32, type u16, flags u16 (host order).
    let at = start + 6;
    let flags = u16::from_ne_bytes([buf[at], buf[at + 1]]) | NLM_F_ACK;
    buf[at..at + 2].copy_from_slice(&flags.to_ne_bytes());
}

/// Merges prefixes into sorted, non-overlapping ranges and returns the interval-set
/// elements for them (see [`interval`]).
/// Adjacent ranges are joined: the kernel refuses overlapping intervals.
pub fn intervals(nets: &[IpNet]) -> Vec<Elem> {
    let (v6, v4): (Vec<IpNet>, Vec<IpNet>) = nets.iter().partition(|n| matches!(n, IpNet::V6(_)));
    let mut out = Vec::with_capacity(2 * nets.len());
    for (family, is_v6) in [(v4, false), (v6, true)] {
        let ranges = family.iter().map(net_range).collect();
        for (a, b) in merge(ranges) {
            let (start, end) = interval(AddrRange::new(a, b, is_v6));
            out.push(start);
            out.extend(end);
        }
    }
    out
}

/// The kernel's form of a range in an rbtree interval set: an element at its
/// start, and one at `end + 1` flagged `NFT_SET_ELEM_INTERVAL_END` (none when
/// the range reaches the last address of its family).
pub fn interval(range: AddrRange) -> (Elem, Option<Elem>) {
    let start = Elem::addr(range.addr(range.start()));
    let end = (range.end() < range.family_max()).then(|| Elem {
        interval_end: true,
        ..Elem::addr(range.addr(range.end() + 1))
    });
    (start, end)
}

fn merge(mut ranges: Vec<(u128, u128)>) -> Vec<(u128, u128)> {
    ranges.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(ranges.len());
    for (a, b) in ranges {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Splits elements by address family (sets are typed v4 or v6).
pub fn split_family(elems: &[Elem]) -> (Vec<Elem>, Vec<Elem>) {
    elems.iter().partition(|e| !e.is_v6())
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

mod socket;

pub use socket::NftSock;
#[cfg(test)]
use socket::{Ack, parse_acks};

#[cfg(test)]
mod kernel_tests;
#[cfg(test)]
mod tests;
