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
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use ipnet::IpNet;

use super::net::nl::{NLA_F_NESTED, NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST};
use super::nft_consts::{
    NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END, NFNL_SUBSYS_NFTABLES, NFPROTO_INET, NFT_GOTO,
    NFT_MSG_DELSETELEM, NFT_MSG_NEWSETELEM, NFT_SET_ELEM_INTERVAL_END, NFTA_DATA_VALUE,
    NFTA_DATA_VERDICT, NFTA_LIST_ELEM, NFTA_SET_ELEM_DATA, NFTA_SET_ELEM_EXPIRATION,
    NFTA_SET_ELEM_FLAGS, NFTA_SET_ELEM_KEY, NFTA_SET_ELEM_KEY_END, NFTA_SET_ELEM_LIST_ELEMENTS,
    NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_TIMEOUT, NFTA_VERDICT_CHAIN,
    NFTA_VERDICT_CODE,
};
use crate::plan::NFT_TABLE;

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
    /// Offsets (from the message start) of each element nest it carries.
    elem_offsets: Vec<u32>,
}

/// An encoded batch: bytes and message map. Pure, so it is unit-tested without root.
#[derive(Debug, Default)]
pub struct Batch {
    buf: Vec<u8>,
    msgs: Vec<MsgInfo>,
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
}

fn put_u16(buf: &mut Vec<u8>, v: u16) {
    buf.extend_from_slice(&v.to_ne_bytes());
}

fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_ne_bytes());
}

fn pad(buf: &mut Vec<u8>) {
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

fn attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    put_u16(buf, (4 + payload.len()) as u16);
    put_u16(buf, kind);
    buf.extend_from_slice(payload);
    pad(buf);
}

fn attr_str(buf: &mut Vec<u8>, kind: u16, s: &str) {
    put_u16(buf, (4 + s.len() + 1) as u16);
    put_u16(buf, kind);
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
    pad(buf);
}

fn nest_start(buf: &mut Vec<u8>, kind: u16) -> usize {
    let at = buf.len();
    put_u16(buf, 0);
    put_u16(buf, kind | NLA_F_NESTED);
    at
}

fn nest_end(buf: &mut [u8], at: usize) {
    let len = (buf.len() - at) as u16;
    buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
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
    attr(buf, NFTA_DATA_VALUE, &bytes[..len]);
    nest_end(buf, n);
}

fn encode_elem(buf: &mut Vec<u8>, e: &Elem, with_timeouts: bool, goto: Option<&str>) {
    let n = nest_start(buf, NFTA_LIST_ELEM);
    put_key(buf, NFTA_SET_ELEM_KEY, &e.key);
    if let Some(end) = &e.key_end {
        put_key(buf, NFTA_SET_ELEM_KEY_END, end);
    }
    if e.interval_end {
        attr(
            buf,
            NFTA_SET_ELEM_FLAGS,
            &NFT_SET_ELEM_INTERVAL_END.to_be_bytes(),
        );
    }
    if with_timeouts {
        if let Some(t) = e.timeout_ms {
            attr(buf, NFTA_SET_ELEM_TIMEOUT, &t.to_be_bytes());
        }
        if let Some(x) = e.expiration_ms {
            attr(buf, NFTA_SET_ELEM_EXPIRATION, &x.to_be_bytes());
        }
    }
    if let Some(chain) = goto {
        let d = nest_start(buf, NFTA_SET_ELEM_DATA);
        let v = nest_start(buf, NFTA_DATA_VERDICT);
        attr(buf, NFTA_VERDICT_CODE, &NFT_GOTO.to_be_bytes());
        attr_str(buf, NFTA_VERDICT_CHAIN, chain);
        nest_end(buf, v);
        nest_end(buf, d);
    }
    nest_end(buf, n);
}

/// Encodes `ops` for `table` as one batch. Sequence numbers start at `seq`.
pub fn encode(family: u8, table: &str, ops: &[Op], seq: u32) -> Batch {
    let mut b = Batch::default();
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
                        | NLM_F_ACK
                        | if kind == NFT_MSG_NEWSETELEM {
                            NLM_F_CREATE
                        } else {
                            0
                        },
                    seq,
                    family,
                    0,
                );
                attr_str(buf, NFTA_SET_ELEM_LIST_TABLE, table);
                attr_str(buf, NFTA_SET_ELEM_LIST_SET, op.set());
                let mut info = MsgInfo {
                    seq,
                    start,
                    op: op_index,
                    first_elem: next,
                    elem_offsets: Vec::new(),
                };
                if count > 0 {
                    let list = nest_start(buf, NFTA_SET_ELEM_LIST_ELEMENTS);
                    while next < count && buf.len() - list < ELEMS_PER_MSG_BYTES {
                        info.elem_offsets.push((buf.len() - start) as u32);
                        match map.get(next) {
                            Some(m) => encode_elem(buf, &m.elem, with_timeouts, m.goto),
                            None => encode_elem(buf, &elems[next], with_timeouts, None),
                        }
                        next += 1;
                    }
                    nest_end(buf, list);
                }
                msg_end(buf, at);
                b.msgs.push(info);
                seq = seq.wrapping_add(1);
                if next >= count {
                    break;
                }
            }
        }
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

/// Merges prefixes into sorted, non-overlapping ranges and returns the interval-set
/// elements for them (start, then end-exclusive flagged `interval_end`).
/// Adjacent ranges are joined: the kernel refuses overlapping intervals.
pub fn intervals(nets: &[IpNet]) -> Vec<Elem> {
    let mut v4: Vec<(u128, u128)> = Vec::new();
    let mut v6: Vec<(u128, u128)> = Vec::new();
    for n in nets {
        match n {
            IpNet::V4(n) => v4.push((
                u32::from(n.network()) as u128,
                u32::from(n.broadcast()) as u128,
            )),
            IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
        }
    }
    let mut out = Vec::with_capacity(2 * nets.len());
    for (ranges, max, v6) in [(v4, u32::MAX as u128, false), (v6, u128::MAX, true)] {
        for (a, b) in merge(ranges) {
            let ip = |x: u128| {
                if v6 {
                    IpAddr::V6(Ipv6Addr::from(x))
                } else {
                    IpAddr::V4(Ipv4Addr::from(x as u32))
                }
            };
            out.push(Elem::addr(ip(a)));
            if b < max {
                out.push(Elem {
                    interval_end: true,
                    ..Elem::addr(ip(b + 1))
                });
            }
        }
    }
    out
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

/// A persistent nf_tables netlink socket bound to one table.
pub struct NftSock {
    fd: OwnedFd,
    family: u8,
    table: String,
    seq: u32,
    sndbuf: usize,
    rcv: Vec<u8>,
}

impl fmt::Debug for NftSock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NftSock({} {})", self.family, self.table)
    }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn setsockopt_int(fd: &OwnedFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: a valid fd and a pointer to a live c_int of the given size.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    })
    .map(drop)
}

fn getsockopt_int(fd: &OwnedFd, level: i32, name: i32) -> io::Result<i32> {
    let mut value: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: a valid fd and pointers to live values of the given sizes.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut i32).cast(),
            &mut len,
        )
    })?;
    Ok(value)
}

impl NftSock {
    /// A socket for `table inet wgsplit` in the current network namespace.
    pub fn open() -> io::Result<Self> {
        Self::open_table(NFPROTO_INET, NFT_TABLE)
    }

    pub fn open_table(family: u8, table: &str) -> io::Result<Self> {
        // SAFETY: plain socket(2); the result is checked and owned right away.
        let raw = cvt(unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                NETLINK_NETFILTER,
            )
        })?;
        // SAFETY: raw is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_nl is plain data; zeroed is a valid value.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: a valid fd and a sockaddr_nl of the given size.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        })?;
        // Acks carry only the header (not our whole message back) plus the TLVs
        // that name the offending attribute.
        let _ = setsockopt_int(&fd, SOL_NETLINK, NETLINK_CAP_ACK, 1);
        let _ = setsockopt_int(&fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
        let rcv = 1 << 20;
        if setsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, rcv).is_err() {
            let _ = setsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, rcv);
        }
        let sndbuf = getsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF)? as usize;
        let seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() as u32);
        Ok(Self {
            fd,
            family,
            table: table.to_string(),
            seq,
            sndbuf,
            rcv: vec![0; 64 * 1024],
        })
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Sends `ops` as one batch and reads every acknowledgement. Either all of it
    /// is in the kernel (`Ok`) or none of it (`Err(Refused)`), unless the batch
    /// is larger than the socket can take in one write (> 64 MiB, or no
    /// CAP_NET_ADMIN to raise the buffer): then it goes as several batches, each
    /// atomic on its own.
    pub fn apply(&mut self, ops: &[Op]) -> Result<(), Error> {
        if ops.is_empty() {
            return Ok(());
        }
        let batch = encode(self.family, &self.table, ops, self.seq);
        self.seq = batch.end_seq.wrapping_add(1);
        let need = batch.buf.len() + 4096;
        if need > self.sndbuf.saturating_sub(64) && need <= MAX_BATCH {
            let want = need.next_power_of_two() as i32;
            if setsockopt_int(&self.fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, want).is_ok() {
                // The kernel doubles the value; read back what we got.
                self.sndbuf = getsockopt_int(&self.fd, libc::SOL_SOCKET, libc::SO_SNDBUF)
                    .map_or(self.sndbuf, |v| v as usize);
            }
        }
        if batch.buf.len() + 64 <= self.sndbuf {
            return self.send_batch(&batch.buf, &batch);
        }
        // Too big for one write: split at message boundaries into batches.
        let mut errors = Vec::new();
        let limit = self.sndbuf.saturating_sub(4096).max(MAX_NEST * 2);
        let mut i = 0;
        while i < batch.msgs.len() {
            let mut j = i;
            let mut size = 0;
            while j < batch.msgs.len() {
                let len = msg_len(&batch, j);
                if j > i && size + len > limit {
                    break;
                }
                size += len;
                j += 1;
            }
            let sub = Batch {
                msgs: batch.msgs[i..j].to_vec(),
                ..Default::default()
            };
            let mut buf = Vec::with_capacity(size + 64);
            let at = msg_start(
                &mut buf,
                NFNL_MSG_BATCH_BEGIN,
                NLM_F_REQUEST,
                self.next_seq(),
                0,
                NFNL_SUBSYS_NFTABLES,
            );
            msg_end(&mut buf, at);
            let first = batch.msgs[i].start;
            let last = batch.msgs[j - 1].start + msg_len(&batch, j - 1);
            buf.extend_from_slice(&batch.buf[first..last]);
            let at = msg_start(
                &mut buf,
                NFNL_MSG_BATCH_END,
                NLM_F_REQUEST,
                self.next_seq(),
                0,
                NFNL_SUBSYS_NFTABLES,
            );
            msg_end(&mut buf, at);
            match self.send_batch(&buf, &sub) {
                Ok(()) => {}
                Err(Error::Refused(mut e)) => errors.append(&mut e),
                Err(e) => return Err(e),
            }
            i = j;
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Refused(errors))
        }
    }

    fn next_seq(&mut self) -> u32 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(1);
        s
    }

    fn send_batch(&mut self, bytes: &[u8], batch: &Batch) -> Result<(), Error> {
        // SAFETY: sockaddr_nl is plain data; zeroed means "the kernel".
        let mut to: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        to.nl_family = libc::AF_NETLINK as u16;
        loop {
            // SAFETY: a valid fd, a live buffer and address of the given sizes.
            let r = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    0,
                    (&to as *const libc::sockaddr_nl).cast(),
                    std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if r >= 0 {
                break;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e.into());
            }
        }
        // The kernel handles the batch inside sendto(): every ack is queued by now.
        let mut pending = batch.msgs.len();
        let mut errors = Vec::new();
        let mut blocking = false;
        while pending > 0 {
            let flags = if blocking { 0 } else { libc::MSG_DONTWAIT };
            // SAFETY: a valid fd and a live buffer of the given size.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.rcv.as_mut_ptr().cast(),
                    self.rcv.len(),
                    flags,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    // Acks for a refused batch can stop early (the kernel aborts
                    // before the end): what we have is the answer.
                    io::ErrorKind::WouldBlock if !errors.is_empty() => break,
                    io::ErrorKind::WouldBlock => {
                        // Should not happen (synchronous processing); wait once
                        // with a timeout rather than spin.
                        if blocking {
                            return Err(e.into());
                        }
                        let tv = libc::timeval {
                            tv_sec: 1,
                            tv_usec: 0,
                        };
                        // SAFETY: a valid fd and a timeval of the given size.
                        unsafe {
                            libc::setsockopt(
                                self.fd.as_raw_fd(),
                                libc::SOL_SOCKET,
                                libc::SO_RCVTIMEO,
                                (&tv as *const libc::timeval).cast(),
                                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
                            );
                        }
                        blocking = true;
                        continue;
                    }
                    _ => return Err(e.into()),
                }
            }
            let data = &self.rcv[..n as usize];
            for ack in parse_acks(data) {
                if ack.seq == batch.begin_seq || ack.seq == batch.end_seq {
                    if ack.errno != 0 {
                        errors.push(OpError {
                            op: None,
                            elem: None,
                            errno: ack.errno,
                            message: ack.message,
                        });
                        pending = 0;
                    }
                    continue;
                }
                let Some(m) = batch.msgs.iter().find(|m| m.seq == ack.seq) else {
                    continue;
                };
                pending = pending.saturating_sub(1);
                if ack.errno != 0 {
                    let elem = ack.offset.and_then(|off| {
                        match m.elem_offsets.binary_search(&off) {
                            Ok(i) => Some(i),
                            Err(0) => None,
                            Err(i) => Some(i - 1),
                        }
                        .map(|i| m.first_elem + i)
                    });
                    errors.push(OpError {
                        op: Some(m.op),
                        elem,
                        errno: ack.errno,
                        message: ack.message,
                    });
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Refused(errors))
        }
    }
}

impl NftSock {
    /// Sends one `NFT_MSG_GET*` request (`flags`: `NLM_F_DUMP` for a dump, or
    /// `NLM_F_ACK` for one object) with string attributes, and hands each reply
    /// (its type without the subsystem, the bytes after the nfgenmsg header) to
    /// `f` until the kernel is done. A kernel error is returned as it is.
    pub fn query(
        &mut self,
        get: u16,
        flags: u16,
        attrs: &[(u16, &str)],
        mut f: impl FnMut(u16, &[u8]),
    ) -> io::Result<()> {
        const NLMSG_DONE: u16 = 3;
        let seq = self.next_seq();
        let mut req = Vec::with_capacity(128);
        let at = msg_start(
            &mut req,
            (NFNL_SUBSYS_NFTABLES << 8) | get,
            NLM_F_REQUEST | flags,
            seq,
            self.family,
            0,
        );
        for (kind, value) in attrs {
            attr_str(&mut req, *kind, value);
        }
        msg_end(&mut req, at);
        // SAFETY: a valid fd and a live buffer of the given size.
        cvt(unsafe { libc::send(self.fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) as i32 })?;
        loop {
            // SAFETY: a valid fd and a live buffer of the given size.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.rcv.as_mut_ptr().cast(),
                    self.rcv.len(),
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let mut data = &self.rcv[..n as usize];
            while data.len() >= NLMSG_HDRLEN {
                let len = u32::from_ne_bytes(data[0..4].try_into().unwrap()) as usize;
                if len < NLMSG_HDRLEN || len > data.len() {
                    return Err(io::Error::other("truncated netlink message"));
                }
                let kind = u16::from_ne_bytes(data[4..6].try_into().unwrap());
                let mseq = u32::from_ne_bytes(data[8..12].try_into().unwrap());
                if mseq == seq {
                    match kind {
                        NLMSG_DONE => return Ok(()),
                        NLMSG_ERROR if len >= NLMSG_HDRLEN + 4 => {
                            let err = i32::from_ne_bytes(data[16..20].try_into().unwrap());
                            return if err == 0 {
                                Ok(())
                            } else {
                                Err(io::Error::from_raw_os_error(-err))
                            };
                        }
                        _ if len >= NLMSG_HDRLEN + 4 => {
                            f(kind & 0xff, &data[NLMSG_HDRLEN + 4..len]);
                        }
                        _ => {}
                    }
                }
                data = data.get(align4(len)..).unwrap_or(&[]);
            }
        }
    }

    /// Dumps one kind of object of the socket's table; a missing table is an
    /// empty answer, not an error.
    pub fn dump(&mut self, get: u16, table_attr: u16) -> io::Result<Vec<Vec<u8>>> {
        const NLM_F_DUMP: u16 = 0x300;
        let table = self.table.clone();
        let mut out = Vec::new();
        match self.query(get, NLM_F_DUMP, &[(table_attr, &table)], |_, body| {
            out.push(body.to_vec())
        }) {
            Ok(()) => Ok(out),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

fn msg_len(batch: &Batch, i: usize) -> usize {
    let s = batch.msgs[i].start;
    u32::from_ne_bytes(batch.buf[s..s + 4].try_into().unwrap()) as usize
}

#[derive(Debug, PartialEq, Eq)]
struct Ack {
    seq: u32,
    errno: i32,
    offset: Option<u32>,
    message: Option<String>,
}

/// Parses the `NLMSG_ERROR` messages (acks and errors) in a receive buffer.
fn parse_acks(mut data: &[u8]) -> Vec<Ack> {
    let mut out = Vec::new();
    while data.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes(data[0..4].try_into().unwrap()) as usize;
        if len < NLMSG_HDRLEN || len > data.len() {
            break;
        }
        let kind = u16::from_ne_bytes(data[4..6].try_into().unwrap());
        let flags = u16::from_ne_bytes(data[6..8].try_into().unwrap());
        let msg = &data[..len];
        if kind == NLMSG_ERROR && len >= NLMSG_HDRLEN + 4 + NLMSG_HDRLEN {
            let err = i32::from_ne_bytes(msg[16..20].try_into().unwrap());
            let orig = &msg[20..];
            let orig_len = u32::from_ne_bytes(orig[0..4].try_into().unwrap()) as usize;
            let seq = u32::from_ne_bytes(orig[8..12].try_into().unwrap());
            let mut ack = Ack {
                seq,
                errno: -err,
                offset: None,
                message: None,
            };
            if flags & NLM_F_ACK_TLVS != 0 {
                let skip = if flags & NLM_F_CAPPED != 0 {
                    NLMSG_HDRLEN
                } else {
                    orig_len
                };
                let mut tlv = orig.get(align4(skip)..).unwrap_or(&[]);
                while tlv.len() >= 4 {
                    let l = u16::from_ne_bytes(tlv[0..2].try_into().unwrap()) as usize;
                    let t = u16::from_ne_bytes(tlv[2..4].try_into().unwrap()) & 0x3fff;
                    if l < 4 || l > tlv.len() {
                        break;
                    }
                    let v = &tlv[4..l];
                    match t {
                        NLMSGERR_ATTR_MSG => {
                            let s = v.split(|&b| b == 0).next().unwrap_or(&[]);
                            ack.message = Some(String::from_utf8_lossy(s).into_owned());
                        }
                        NLMSGERR_ATTR_OFFS if v.len() >= 4 => {
                            ack.offset = Some(u32::from_ne_bytes(v[0..4].try_into().unwrap()));
                        }
                        _ => {}
                    }
                    tlv = tlv.get(align4(l)..).unwrap_or(&[]);
                }
            }
            out.push(ack);
        }
        data = data.get(align4(len)..).unwrap_or(&[]);
    }
    out
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], i: usize) -> u16 {
        u16::from_ne_bytes(b[i..i + 2].try_into().unwrap())
    }
    fn u32_at(b: &[u8], i: usize) -> u32 {
        u32::from_ne_bytes(b[i..i + 4].try_into().unwrap())
    }

    /// Walks the batch: (type, flags, seq, family, payload) per message.
    fn messages(b: &[u8]) -> Vec<(u16, u16, u32, u8, Vec<u8>)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let len = u32_at(b, i) as usize;
            assert!(len >= 20 && len.is_multiple_of(4), "bad length {len}");
            out.push((
                u16_at(b, i + 4),
                u16_at(b, i + 6),
                u32_at(b, i + 8),
                b[i + 16],
                b[i + 20..i + len].to_vec(),
            ));
            i += len;
        }
        assert_eq!(i, b.len());
        out
    }

    /// Attributes of a payload: (type without flags, value).
    fn attrs(mut p: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        while p.len() >= 4 {
            let l = u16_at(p, 0) as usize;
            out.push((u16_at(p, 2) & 0x3fff, p[4..l].to_vec()));
            p = &p[align4(l).min(p.len())..];
        }
        out
    }

    #[test]
    fn encodes_one_element_with_timeout() {
        let e = [Elem::with_timeout("1.2.3.4".parse().unwrap(), 60_000)];
        let b = encode(
            NFPROTO_INET,
            "wgsplit",
            &[Op::Add {
                set: "alice_r0_dns4",
                elems: &e,
            }],
            7,
        );
        let m = messages(b.bytes());
        assert_eq!(m.len(), 3);
        // Batch begin: subsystem nftables in res_id, big-endian.
        assert_eq!(m[0].0, NFNL_MSG_BATCH_BEGIN);
        assert_eq!(m[0].2, 7);
        assert_eq!(&b.bytes()[18..20], &[0, 10]);
        assert_eq!(m[1].0, (10 << 8) | 12);
        assert_eq!(m[1].1, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE);
        assert_eq!(m[1].2, 8);
        assert_eq!(m[1].3, NFPROTO_INET);
        assert_eq!(m[2].0, NFNL_MSG_BATCH_END);
        assert_eq!(m[2].2, 9);
        let a = attrs(&m[1].4);
        assert_eq!(a[0], (1, b"wgsplit\0".to_vec()));
        assert_eq!(a[1], (2, b"alice_r0_dns4\0".to_vec()));
        assert_eq!(a[2].0, 3);
        let list = attrs(&a[2].1);
        assert_eq!(list.len(), 1);
        let el = attrs(&list[0].1);
        assert_eq!(el[0].0, NFTA_SET_ELEM_KEY);
        assert_eq!(attrs(&el[0].1), vec![(1, vec![1, 2, 3, 4])]);
        assert_eq!(
            el[1],
            (NFTA_SET_ELEM_TIMEOUT, 60_000u64.to_be_bytes().to_vec())
        );
        assert_eq!(b.msgs[0].elem_offsets.len(), 1);
    }

    #[test]
    fn refresh_is_add_delete_add_and_delete_has_no_timeout() {
        let e = [Elem {
            expiration_ms: Some(5000),
            ..Elem::with_timeout("2001:db8::1".parse().unwrap(), 9000)
        }];
        let b = encode(
            NFPROTO_INET,
            "t",
            &[Op::Refresh {
                set: "s",
                elems: &e,
            }],
            1,
        );
        let m = messages(b.bytes());
        let kinds: Vec<u16> = m.iter().map(|x| x.0 & 0xff).collect();
        assert_eq!(kinds, vec![0x10, 12, 14, 12, 0x11]);
        for (i, msg) in m[1..4].iter().enumerate() {
            let list = attrs(&attrs(&msg.4)[2].1);
            let el = attrs(&list[0].1);
            assert_eq!(attrs(&el[0].1)[0].1.len(), 16);
            let has_timeout = el.iter().any(|x| x.0 == NFTA_SET_ELEM_TIMEOUT);
            let has_exp = el.iter().any(|x| x.0 == NFTA_SET_ELEM_EXPIRATION);
            assert_eq!(has_timeout, i != 1, "message {i}");
            assert_eq!(has_exp, i != 1, "message {i}");
        }
        assert_eq!(m[2].1 & NLM_F_CREATE, 0);
    }

    #[test]
    fn flush_has_no_element_list() {
        let b = encode(NFPROTO_INET, "t", &[Op::Flush { set: "s" }], 1);
        let m = messages(b.bytes());
        assert_eq!(m[1].0 & 0xff, NFT_MSG_DELSETELEM);
        assert_eq!(attrs(&m[1].4).len(), 2);
    }

    #[test]
    fn big_lists_split_under_the_attribute_limit() {
        let elems: Vec<Elem> = (0..100_000u32)
            .map(|i| Elem::with_timeout(IpAddr::V4(Ipv4Addr::from(i)), 1000))
            .collect();
        let b = encode(
            NFPROTO_INET,
            "t",
            &[Op::Add {
                set: "s",
                elems: &elems,
            }],
            1,
        );
        let m = messages(b.bytes());
        assert!(m.len() > 3);
        let mut total = 0;
        for (i, msg) in m[1..m.len() - 1].iter().enumerate() {
            let a = attrs(&msg.4);
            assert!(a[2].1.len() + 4 <= MAX_NEST);
            let n = attrs(&a[2].1).len();
            assert_eq!(b.msgs[i].first_elem, total);
            assert_eq!(b.msgs[i].elem_offsets.len(), n);
            total += n;
        }
        assert_eq!(total, elems.len());
        // Sequence numbers are consecutive.
        for w in m.windows(2) {
            assert_eq!(w[1].2, w[0].2 + 1);
        }
    }

    #[test]
    fn intervals_merge_and_close() {
        let nets: Vec<IpNet> = [
            "10.0.0.0/24",
            "10.0.1.0/24",
            "10.0.0.128/25",
            "192.168.0.0/16",
            "255.255.255.0/24",
            "2001:db8::/32",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let e = intervals(&nets);
        let show: Vec<String> = e
            .iter()
            .map(|x| format!("{}{}", x.key, if x.interval_end { "!" } else { "" }))
            .collect();
        assert_eq!(
            show,
            vec![
                "10.0.0.0",
                "10.0.2.0!",
                "192.168.0.0",
                "192.169.0.0!",
                "255.255.255.0",
                "2001:db8::",
                "2001:db9::!"
            ]
        );
        let flags = attrs(&{
            let mut buf = Vec::new();
            encode_elem(&mut buf, &e[1], true, None);
            attrs(&buf)[0].1.clone()
        });
        assert_eq!(flags[1], (NFTA_SET_ELEM_FLAGS, 1u32.to_be_bytes().to_vec()));
    }

    #[test]
    fn a_map_element_carries_a_goto_verdict() {
        let e = [MapElem {
            elem: Elem::addr("10.0.0.0".parse().unwrap()),
            goto: Some("mark_up_a"),
        }];
        let b = encode(
            NFPROTO_INET,
            "wgsplit",
            &[Op::AddMap {
                set: "c_r0_map4",
                elems: &e,
            }],
            1,
        );
        let m = messages(b.bytes());
        let list = attrs(&attrs(&m[1].4)[2].1);
        let el = attrs(&list[0].1);
        assert_eq!(el[1].0, NFTA_SET_ELEM_DATA);
        let verdict = attrs(&attrs(&el[1].1)[0].1);
        assert_eq!(
            verdict[0],
            (NFTA_VERDICT_CODE, NFT_GOTO.to_be_bytes().to_vec())
        );
        assert_eq!(verdict[1], (NFTA_VERDICT_CHAIN, b"mark_up_a\0".to_vec()));
    }

    #[test]
    fn parses_error_acks_with_offsets() {
        // An NLMSG_ERROR for seq 42, ENOENT, capped, with a message and an offset.
        let mut b = Vec::new();
        let at = b.len();
        put_u32(&mut b, 0);
        put_u16(&mut b, NLMSG_ERROR);
        put_u16(&mut b, NLM_F_CAPPED | NLM_F_ACK_TLVS);
        put_u32(&mut b, 42);
        put_u32(&mut b, 0);
        b.extend_from_slice(&(-2i32).to_ne_bytes());
        // The original header (capped).
        put_u32(&mut b, 100);
        put_u16(&mut b, 0x0a0c);
        put_u16(&mut b, 5);
        put_u32(&mut b, 42);
        put_u32(&mut b, 0);
        attr_str(&mut b, NLMSGERR_ATTR_MSG, "no such set");
        attr(&mut b, NLMSGERR_ATTR_OFFS, &64u32.to_ne_bytes());
        msg_end(&mut b, at);
        // And a plain success ack for seq 43.
        let at = b.len();
        put_u32(&mut b, 0);
        put_u16(&mut b, NLMSG_ERROR);
        put_u16(&mut b, NLM_F_CAPPED);
        put_u32(&mut b, 43);
        put_u32(&mut b, 0);
        put_u32(&mut b, 0);
        put_u32(&mut b, 20);
        put_u16(&mut b, 0x0a0c);
        put_u16(&mut b, 5);
        put_u32(&mut b, 43);
        put_u32(&mut b, 0);
        msg_end(&mut b, at);
        let acks = parse_acks(&b);
        assert_eq!(
            acks,
            vec![
                Ack {
                    seq: 42,
                    errno: 2,
                    offset: Some(64),
                    message: Some("no such set".into())
                },
                Ack {
                    seq: 43,
                    errno: 0,
                    offset: None,
                    message: None
                }
            ]
        );
    }
}

/// Against the real kernel, each test in a fresh network namespace of its own
/// thread (skipped unless root and `nft` is installed).
#[cfg(test)]
mod kernel_tests {
    use std::{process::Command, time::Instant};

    use super::*;

    /// Runs `f` on a thread moved into a new netns; the namespace dies with it.
    fn in_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        assert!(
            Command::new("nft").arg("-v").output().is_ok(),
            "a kernel test needs nft"
        );
        crate::sys::in_new_netns(f)
    }

    fn nft(script: &str) {
        let mut c = Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        c.stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(c.wait().unwrap().success(), "nft failed on:\n{script}");
    }

    /// `nft -j list set`: (element text, timeout s, expires s) per element.
    fn list(set: &str) -> Vec<(String, Option<u64>, Option<u64>)> {
        let out = Command::new("nft")
            .args(["-j", "list", "set", "inet", "wgsplit", set])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut res = Vec::new();
        for item in v["nftables"].as_array().unwrap() {
            let Some(elems) = item["set"]["elem"].as_array() else {
                continue;
            };
            for e in elems {
                let (text, t, x) = if let Some(inner) = e.get("elem") {
                    (
                        inner["val"].to_string(),
                        inner["timeout"].as_u64(),
                        inner["expires"].as_u64(),
                    )
                } else {
                    (e.to_string(), None, None)
                };
                res.push((text.trim_matches('"').to_string(), t, x));
            }
        }
        res
    }

    const TABLE: &str = "table inet wgsplit {
        set a_r0_dns4 { type ipv4_addr; flags timeout; }
        set a_r0_dns6 { type ipv6_addr; flags timeout; }
        set small4 { type ipv4_addr; size 2; flags timeout; }
        set geo_xx_4 { type ipv4_addr; flags interval; }
        set geo_xx_6 { type ipv6_addr; flags interval; }
    }";

    #[test]
    #[ignore = "kernel: needs root, run by tests/run.sh with --ignored"]
    fn hash_set_add_refresh_delete() {
        in_netns(|| {
            nft(TABLE);
            let mut s = NftSock::open().unwrap();
            let a: IpAddr = "192.0.2.1".parse().unwrap();
            let b: IpAddr = "2001:db8::7".parse().unwrap();
            s.apply(&[
                Op::Add {
                    set: "a_r0_dns4",
                    elems: &[Elem::with_timeout(a, 60_000)],
                },
                Op::Add {
                    set: "a_r0_dns6",
                    elems: &[Elem::with_timeout(b, 120_000)],
                },
            ])
            .unwrap();
            let l = list("a_r0_dns4");
            assert_eq!(l.len(), 1);
            assert_eq!(l[0].0, "192.0.2.1");
            assert_eq!(l[0].1, Some(60));
            assert_eq!(list("a_r0_dns6")[0].1, Some(120));
            // Refresh an existing element with a longer timeout, and a missing one.
            let c: IpAddr = "192.0.2.2".parse().unwrap();
            s.apply(&[Op::Refresh {
                set: "a_r0_dns4",
                elems: &[
                    Elem::with_timeout(a, 3_600_000),
                    Elem::with_timeout(c, 300_000),
                ],
            }])
            .unwrap();
            let mut l = list("a_r0_dns4");
            l.sort();
            assert_eq!(l.len(), 2);
            assert_eq!((l[0].0.as_str(), l[0].1), ("192.0.2.1", Some(3600)));
            assert!(l[0].2.unwrap() > 3500, "expiry reset: {:?}", l[0]);
            assert_eq!((l[1].0.as_str(), l[1].1), ("192.0.2.2", Some(300)));
            // Refreshing to a shorter timeout works too (not just max()).
            s.apply(&[Op::Refresh {
                set: "a_r0_dns4",
                elems: &[Elem::with_timeout(a, 90_000)],
            }])
            .unwrap();
            let l = list("a_r0_dns4");
            let e = l.iter().find(|x| x.0 == "192.0.2.1").unwrap();
            assert_eq!(e.1, Some(90));
            // Plain add of an existing element is not an error.
            s.apply(&[Op::Add {
                set: "a_r0_dns4",
                elems: &[Elem::with_timeout(a, 1000)],
            }])
            .unwrap();
            s.apply(&[Op::Del {
                set: "a_r0_dns4",
                elems: &[Elem::addr(a)],
            }])
            .unwrap();
            assert_eq!(list("a_r0_dns4").len(), 1);
            // Deleting a missing element fails the whole batch, nothing applied,
            // and the error names the op and the element.
            let d: IpAddr = "198.51.100.9".parse().unwrap();
            let err = s
                .apply(&[
                    Op::Add {
                        set: "a_r0_dns4",
                        elems: &[Elem::with_timeout(d, 1000)],
                    },
                    Op::Del {
                        set: "a_r0_dns4",
                        elems: &[Elem::addr(c), Elem::addr(a)],
                    },
                ])
                .unwrap_err();
            let Error::Refused(errs) = &err else {
                panic!("{err}")
            };
            assert_eq!(errs.len(), 1, "{err}");
            assert_eq!(
                (errs[0].op, errs[0].elem, errs[0].errno),
                (Some(1), Some(1), libc::ENOENT)
            );
            assert_eq!(list("a_r0_dns4").len(), 1, "batch rolled back");
            // A missing set is reported, and the socket keeps working after it.
            let err = s
                .apply(&[Op::Add {
                    set: "nope",
                    elems: &[Elem::addr(d)],
                }])
                .unwrap_err();
            assert_eq!(err.errno(), Some(libc::ENOENT));
            s.apply(&[Op::Flush { set: "a_r0_dns4" }]).unwrap();
            assert!(list("a_r0_dns4").is_empty());
        });
    }

    #[test]
    #[ignore = "kernel: needs root, run by tests/run.sh with --ignored"]
    fn full_set_is_reported() {
        in_netns(|| {
            nft(TABLE);
            let mut s = NftSock::open().unwrap();
            let e: Vec<Elem> = (1..=3u32)
                .map(|i| Elem::with_timeout(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 10_000))
                .collect();
            s.apply(&[Op::Add {
                set: "small4",
                elems: &e[..2],
            }])
            .unwrap();
            let err = s
                .apply(&[Op::Refresh {
                    set: "small4",
                    elems: &e[2..],
                }])
                .unwrap_err();
            assert_eq!(err.errno(), Some(libc::ENFILE), "{err}");
            assert_eq!(list("small4").len(), 2);
            // Refreshing elements already in a full set works.
            s.apply(&[Op::Refresh {
                set: "small4",
                elems: &e[..2],
            }])
            .unwrap();
        });
    }

    #[test]
    #[ignore = "kernel: needs root, run by tests/run.sh with --ignored"]
    fn interval_sets_load_and_match() {
        in_netns(|| {
            nft(TABLE);
            let mut s = NftSock::open().unwrap();
            let nets: Vec<IpNet> = [
                "10.1.0.0/16",
                "10.3.0.0/24",
                "10.3.1.0/24",
                "255.255.255.0/24",
                "2001:db8::/32",
            ]
            .iter()
            .map(|x| x.parse().unwrap())
            .collect();
            let (v4, v6) = split_family(&intervals(&nets));
            s.apply(&[
                Op::Add {
                    set: "geo_xx_4",
                    elems: &v4,
                },
                Op::Add {
                    set: "geo_xx_6",
                    elems: &v6,
                },
            ])
            .unwrap();
            let mut l: Vec<String> = list("geo_xx_4").into_iter().map(|x| x.0).collect();
            l.sort();
            assert_eq!(l.len(), 3, "{l:?}");
            assert!(
                l.iter().any(|x| x.contains("10.3.0.0") && x.contains("23")),
                "{l:?}"
            );
            assert!(l.iter().any(|x| x.contains("255.255.255.0")), "{l:?}");
            // `nft get element` answers which interval holds an address.
            let get = |set: &str, a: &str| {
                Command::new("nft")
                    .args([
                        "get",
                        "element",
                        "inet",
                        "wgsplit",
                        set,
                        &format!("{{ {a} }}"),
                    ])
                    .output()
                    .unwrap()
                    .status
                    .success()
            };
            assert!(get("geo_xx_4", "10.1.200.3"));
            assert!(get("geo_xx_4", "10.3.1.255"));
            assert!(!get("geo_xx_4", "10.3.2.0"));
            assert!(get("geo_xx_4", "255.255.255.255"));
            assert!(get("geo_xx_6", "2001:db8:ffff::1"));
            assert!(!get("geo_xx_6", "2001:db9::"));
            // Delete one range (its start and end pair), then replace everything
            // atomically (flush + add in one batch).
            let one = intervals(&["10.1.0.0/16".parse().unwrap()]);
            s.apply(&[Op::Del {
                set: "geo_xx_4",
                elems: &one,
            }])
            .unwrap();
            assert!(!get("geo_xx_4", "10.1.200.3"));
            let other = intervals(&["172.16.0.0/12".parse().unwrap()]);
            s.apply(&[
                Op::Flush { set: "geo_xx_4" },
                Op::Add {
                    set: "geo_xx_4",
                    elems: &other,
                },
            ])
            .unwrap();
            assert!(!get("geo_xx_4", "10.3.1.255"));
            assert!(get("geo_xx_4", "172.20.0.1"));
        });
    }

    #[test]
    #[ignore = "kernel: needs root, run by tests/run.sh with --ignored"]
    fn bulk_loads_are_fast() {
        in_netns(|| {
            nft(TABLE);
            let mut s = NftSock::open().unwrap();
            let e: Vec<Elem> = (0..10_000u32)
                .map(|i| Elem::with_timeout(IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i)), 600_000))
                .collect();
            let t = Instant::now();
            s.apply(&[Op::Add {
                set: "a_r0_dns4",
                elems: &e,
            }])
            .unwrap();
            let add = t.elapsed();
            let t = Instant::now();
            s.apply(&[Op::Refresh {
                set: "a_r0_dns4",
                elems: &e,
            }])
            .unwrap();
            let refresh = t.elapsed();
            // 100k intervals (200k elements): more than one message, one batch.
            let nets: Vec<IpNet> = (0..100_000u32)
                .map(|i| {
                    IpNet::V4(
                        ipnet::Ipv4Net::new(Ipv4Addr::from(0x2000_0000 + i * 512), 24).unwrap(),
                    )
                })
                .collect();
            let iv = intervals(&nets);
            assert_eq!(iv.len(), 200_000);
            let t = Instant::now();
            s.apply(&[Op::Add {
                set: "geo_xx_4",
                elems: &iv,
            }])
            .unwrap();
            let bulk = t.elapsed();
            let t = Instant::now();
            let mut one = Vec::new();
            for i in 0..1000u32 {
                let el = [Elem::with_timeout(
                    IpAddr::V4(Ipv4Addr::from(0x0c00_0000 + i)),
                    60_000,
                )];
                let t1 = Instant::now();
                s.apply(&[Op::Refresh {
                    set: "a_r0_dns4",
                    elems: &el,
                }])
                .unwrap();
                one.push(t1.elapsed());
            }
            let _ = t;
            one.sort();
            eprintln!(
                "10k add {add:?}, 10k refresh {refresh:?}, 100k intervals {bulk:?}, \
                 one refresh p50 {:?} p99 {:?}",
                one[500], one[990]
            );
            assert_eq!(list("a_r0_dns4").len(), 11_000);
            assert!(add.as_millis() < 500, "10k add took {add:?}");
        });
    }
}
