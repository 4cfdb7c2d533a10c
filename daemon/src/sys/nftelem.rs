//! Set elements of the engine's interval sets and maps, written straight to the
//! kernel as one nfnetlink batch (one transaction) on a NETLINK_NETFILTER socket.
//!
//! Why not `nft -f`: nft 1.0.x reads back every element of every interval set of
//! the table before it changes one (≈0.36 s for a table of 50k elements), and
//! spends ≈1 s turning 50k ranges into messages. The kernel needs neither.
//!
//! An interval `[a, b]` is two elements in the kernel's rbtree: key `a` (carrying
//! the verdict, for maps) and key `b + 1` flagged INTERVAL_END; a range that ends
//! at the top of the address space has no end element.

use std::{net::IpAddr, os::fd::AsRawFd};

use rtnetlink::sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};

use crate::policy::NFT_TABLE;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;
const NFPROTO_INET: u8 = 1;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
const NFT_SET_ELEM_INTERVAL_END: u32 = 1;
const NFT_GOTO: i32 = -4;
/// Ranges per netlink message (each message stays well under 64 KB).
const PER_MESSAGE: usize = 400;

/// One element as the planner writes it: `a`, `a/len` or `a-b`, optionally
/// followed by ` : goto CHAIN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub v6: bool,
    pub start: u128,
    pub end: u128,
    pub goto: Option<String>,
}

fn addr_value(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

pub fn parse_element(text: &str) -> Result<Element, String> {
    let (key, goto) = match text.split_once(" : ") {
        Some((k, v)) => (
            k.trim(),
            Some(
                v.trim()
                    .strip_prefix("goto ")
                    .ok_or_else(|| format!("element '{text}': only goto verdicts"))?
                    .to_string(),
            ),
        ),
        None => (text.trim(), None),
    };
    let bad = || format!("element '{text}': bad key");
    let (v6, start, end) = if let Some((a, b)) = key.split_once('-') {
        let (v6, s) = addr_value(a.parse().map_err(|_| bad())?);
        let (_, e) = addr_value(b.parse().map_err(|_| bad())?);
        (v6, s, e)
    } else if key.contains('/') {
        let net: ipnet::IpNet = key.parse().map_err(|_| bad())?;
        let (s, e) = crate::config::types::net_range(&net);
        (matches!(net, ipnet::IpNet::V6(_)), s, e)
    } else {
        let (v6, s) = addr_value(key.parse().map_err(|_| bad())?);
        (v6, s, s)
    };
    Ok(Element {
        v6,
        start,
        end,
        goto,
    })
}

struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    fn new(ty: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched at finish
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id
        buf.push(family);
        buf.push(0); // version
        buf.extend_from_slice(&res_id.to_be_bytes());
        Self { buf }
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn attr(&mut self, ty: u16, data: &[u8]) {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn str_attr(&mut self, ty: u16, s: &str) {
        let mut d = s.as_bytes().to_vec();
        d.push(0);
        self.attr(ty, &d);
    }

    fn begin_nest(&mut self, ty: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        at
    }

    fn end_nest(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn finish(mut self, out: &mut Vec<u8>) {
        self.pad();
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        out.extend_from_slice(&self.buf);
    }
}

fn key_bytes(v6: bool, v: u128) -> Vec<u8> {
    if v6 {
        v.to_be_bytes().to_vec()
    } else {
        (v as u32).to_be_bytes().to_vec()
    }
}

fn push_elem(m: &mut Msg, v6: bool, key: u128, end: bool, goto: Option<&str>) {
    let el = m.begin_nest(NFTA_LIST_ELEM);
    let k = m.begin_nest(NFTA_SET_ELEM_KEY);
    m.attr(NFTA_DATA_VALUE, &key_bytes(v6, key));
    m.end_nest(k);
    if end {
        m.attr(
            NFTA_SET_ELEM_FLAGS,
            &NFT_SET_ELEM_INTERVAL_END.to_be_bytes(),
        );
    } else if let Some(chain) = goto {
        let d = m.begin_nest(NFTA_SET_ELEM_DATA);
        let v = m.begin_nest(NFTA_DATA_VERDICT);
        m.attr(NFTA_VERDICT_CODE, &NFT_GOTO.to_be_bytes());
        m.str_attr(NFTA_VERDICT_CHAIN, chain);
        m.end_nest(v);
        m.end_nest(d);
    }
    m.end_nest(el);
}

/// One change to one set.
pub struct SetChange<'a> {
    pub set: &'a str,
    pub add: bool,
    pub elements: Vec<Element>,
}

/// Element changes, as one batch: all of them or none.
#[derive(Default)]
pub struct Batch {
    buf: Vec<u8>,
    seq: u32,
    messages: u32,
}

impl Batch {
    pub fn new() -> Self {
        let mut b = Self {
            buf: Vec::new(),
            seq: 1,
            messages: 0,
        };
        Msg::new(
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            0,
            0,
            NFNL_SUBSYS_NFTABLES,
        )
        .finish(&mut b.buf);
        b
    }

    pub fn push(&mut self, change: &SetChange) {
        let ty = (NFNL_SUBSYS_NFTABLES << 8)
            | if change.add {
                NFT_MSG_NEWSETELEM
            } else {
                NFT_MSG_DELSETELEM
            };
        let flags = NLM_F_REQUEST | NLM_F_ACK | if change.add { NLM_F_CREATE } else { 0 };
        for chunk in change.elements.chunks(PER_MESSAGE) {
            let mut m = Msg::new(ty, flags, self.seq, NFPROTO_INET, 0);
            self.seq += 1;
            self.messages += 1;
            m.str_attr(NFTA_SET_ELEM_LIST_TABLE, NFT_TABLE);
            m.str_attr(NFTA_SET_ELEM_LIST_SET, change.set);
            let list = m.begin_nest(NFTA_SET_ELEM_LIST_ELEMENTS);
            for e in chunk {
                push_elem(&mut m, e.v6, e.start, false, e.goto.as_deref());
                let max = if e.v6 { u128::MAX } else { u32::MAX as u128 };
                if e.end < max {
                    push_elem(&mut m, e.v6, e.end + 1, true, None);
                }
            }
            m.end_nest(list);
            m.finish(&mut self.buf);
        }
    }

    /// How many netlink messages the batch holds (begin/end included).
    pub fn message_count(&self) -> u32 {
        self.messages + 2
    }

    pub fn is_empty(&self) -> bool {
        self.messages == 0
    }

    /// Sends the batch and waits for every acknowledgement; the first error
    /// aborts the whole transaction in the kernel.
    pub fn commit(mut self) -> Result<(), String> {
        if self.messages == 0 {
            return Ok(());
        }
        Msg::new(
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            self.seq,
            0,
            NFNL_SUBSYS_NFTABLES,
        )
        .finish(&mut self.buf);
        let mut sock =
            Socket::new(NETLINK_NETFILTER).map_err(|e| format!("netfilter socket: {e}"))?;
        sock.bind_auto()
            .map_err(|e| format!("netfilter bind: {e}"))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| format!("netfilter connect: {e}"))?;
        // The whole batch must go in one datagram.
        let size = (self.buf.len() + 65536) as i32;
        // SAFETY: setsockopt on our own socket with a pointer to a live i32.
        unsafe {
            setsockopt(
                sock.as_raw_fd(),
                SOL_SOCKET,
                SO_SNDBUFFORCE,
                (&size as *const i32).cast(),
                4,
            );
        }
        let _ = sock.set_rx_buf_sz(4 << 20);
        sock.send(&self.buf, 0)
            .map_err(|e| format!("netfilter send ({} bytes): {e}", self.buf.len()))?;
        let mut acked = 0;
        let mut rx: Vec<u8> = Vec::with_capacity(1 << 16);
        while acked < self.messages {
            rx.clear();
            sock.recv(&mut rx, 0)
                .map_err(|e| format!("netfilter recv: {e}"))?;
            let mut off = 0;
            while off + 16 <= rx.len() {
                let len =
                    u32::from_ne_bytes(rx[off..off + 4].try_into().unwrap_or([0; 4])) as usize;
                let ty = u16::from_ne_bytes([rx[off + 4], rx[off + 5]]);
                if len < 16 {
                    break;
                }
                if ty == NLMSG_ERROR && off + 20 <= rx.len() {
                    let code =
                        i32::from_ne_bytes(rx[off + 16..off + 20].try_into().unwrap_or([0; 4]));
                    if code != 0 {
                        return Err(format!(
                            "the kernel rejected the element batch: {}",
                            std::io::Error::from_raw_os_error(-code)
                        ));
                    }
                    acked += 1;
                }
                off += (len + 3) & !3;
            }
        }
        Ok(())
    }
}

const SOL_SOCKET: i32 = 1;
const SO_SNDBUFFORCE: i32 = 32;

unsafe extern "C" {
    fn setsockopt(fd: i32, level: i32, name: i32, value: *const core::ffi::c_void, len: u32)
    -> i32;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_planner_forms() {
        let e = parse_element("10.0.0.0/24 : goto mark_up_us1").unwrap();
        assert_eq!((e.start, e.end), (0x0a00_0000, 0x0a00_00ff));
        assert_eq!(e.goto.as_deref(), Some("mark_up_us1"));
        let e = parse_element("10.0.0.5-10.0.1.9").unwrap();
        assert_eq!((e.start, e.end, e.v6), (0x0a00_0005, 0x0a00_0109, false));
        let e = parse_element("fd00::1 : goto client_a").unwrap();
        assert!(e.v6);
        assert_eq!(e.start, e.end);
        assert!(parse_element("10.0.0.1 : accept").is_err());
    }

    #[test]
    fn batch_layout() {
        let mut b = Batch::new();
        b.push(&SetChange {
            set: "m",
            add: true,
            elements: vec![parse_element("10.0.0.0/24 : goto c").unwrap()],
        });
        assert_eq!(b.message_count(), 3);
        // begin (20 bytes) then the element message, 4-byte aligned.
        assert_eq!(b.buf.len() % 4, 0);
        let len = u32::from_ne_bytes(b.buf[20..24].try_into().unwrap()) as usize;
        assert_eq!(20 + len, b.buf.len());
    }
}
