//! A blocking netlink socket, a message writer and an attribute reader: all the
//! netlink that rtnetlink (links, addresses, routes, rules) and WireGuard's
//! generic netlink family need here. The requests are few and the kernel answers
//! at once, so a blocking socket behind a mutex serves the async engine too.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

pub const NETLINK_ROUTE: i32 = 0;
pub const NETLINK_GENERIC: i32 = 16;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLA_F_NESTED: u16 = 0x8000;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const HDR: usize = 16;

pub const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Pads `buf` to the next multiple of 4 (netlink's alignment).
pub fn pad(buf: &mut Vec<u8>) {
    buf.resize(align4(buf.len()), 0);
}

/// Appends one attribute: length, type, payload, padding. An attribute is at
/// most 64 KiB; callers chunk (element batches) or write small ones.
pub fn put_attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    debug_assert!(len <= usize::from(u16::MAX), "netlink attribute too long");
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    pad(buf);
}

/// Appends a NUL-terminated string attribute.
pub fn put_attr_str(buf: &mut Vec<u8>, kind: u16, s: &str) {
    let len = 4 + s.len() + 1;
    debug_assert!(len <= usize::from(u16::MAX), "netlink attribute too long");
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
    pad(buf);
}

/// Opens a nested attribute at the end of `buf`; close it with [`nest_end`].
pub fn nest_start(buf: &mut Vec<u8>, kind: u16) -> usize {
    let at = buf.len();
    buf.extend_from_slice(&4u16.to_ne_bytes());
    buf.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    at
}

/// Closes the nested attribute opened at `at`: its length is all written since.
pub fn nest_end(buf: &mut [u8], at: usize) {
    let len = buf.len() - at;
    debug_assert!(len <= usize::from(u16::MAX), "netlink nest too long");
    buf[at..at + 2].copy_from_slice(&(len as u16).to_ne_bytes());
}

/// One request being written: the 16-byte header, a fixed family header, then
/// attributes (nested ones through [`Msg::nest`] / [`Msg::end`]).
pub struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    pub fn new(kind: u16, flags: u16) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&[0; 8]); // seq, port id: set when sent
        Self { buf }
    }

    /// Raw bytes (a family header), padded to 4.
    pub fn push(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        pad(&mut self.buf);
        self
    }

    pub fn attr(&mut self, kind: u16, payload: &[u8]) -> &mut Self {
        put_attr(&mut self.buf, kind, payload);
        self
    }

    pub fn u8(&mut self, kind: u16, v: u8) -> &mut Self {
        self.attr(kind, &[v])
    }

    pub fn u16(&mut self, kind: u16, v: u16) -> &mut Self {
        self.attr(kind, &v.to_ne_bytes())
    }

    pub fn u32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.attr(kind, &v.to_ne_bytes())
    }

    /// A NUL-terminated string.
    pub fn str(&mut self, kind: u16, s: &str) -> &mut Self {
        put_attr_str(&mut self.buf, kind, s);
        self
    }

    /// Opens a nested attribute; close it with [`Msg::end`].
    pub fn nest(&mut self, kind: u16) -> usize {
        nest_start(&mut self.buf, kind)
    }

    pub fn end(&mut self, at: usize) {
        nest_end(&mut self.buf, at);
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    #[cfg(test)]
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// The attributes in `buf`: (type without the nested/byte-order flags, payload).
pub fn attrs(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([buf[0], buf[1]]));
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        if len < 4 || len > buf.len() {
            return None;
        }
        let payload = &buf[4..len];
        buf = &buf[align4(len).min(buf.len())..];
        Some((kind, payload))
    })
}

pub fn get_u16(b: &[u8]) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(..2)?.try_into().ok()?))
}

pub fn get_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(..4)?.try_into().ok()?))
}

pub fn get_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(..8)?.try_into().ok()?))
}

pub fn get_i64(b: &[u8]) -> Option<i64> {
    Some(i64::from_ne_bytes(b.get(..8)?.try_into().ok()?))
}

/// A NUL-terminated string attribute.
pub fn get_str(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

pub fn get_key(b: &[u8]) -> Option<[u8; 32]> {
    b.try_into().ok()
}

pub struct Socket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

fn cvt(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

impl Socket {
    pub fn open(protocol: i32) -> io::Result<Self> {
        // SAFETY: socket(2) with constant arguments; the fd is owned at once.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                protocol,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self {
            fd,
            seq: 0,
            buf: vec![0; 16384],
        })
    }

    fn send(&mut self, mut msg: Msg) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1).max(1);
        let len = msg.buf.len() as u32;
        msg.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        msg.buf[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        // SAFETY: a netlink address of zeros (the kernel) and a live buffer.
        let sent = cvt(unsafe {
            let mut sa: libc::sockaddr_nl = std::mem::zeroed();
            sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.buf.as_ptr().cast(),
                msg.buf.len(),
                0,
                (&raw const sa).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        })?;
        if sent != msg.buf.len() {
            return Err(io::Error::other("netlink: short send"));
        }
        Ok(self.seq)
    }

    /// One datagram into `self.buf`, grown to fit it; returns its length.
    fn recv(&mut self) -> io::Result<usize> {
        loop {
            // The kernel answers at once; a wait this long means something is wrong.
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll(2) on one pollfd we own.
            match unsafe { libc::poll(&mut pfd, 1, 10_000) } {
                0 => return Err(io::Error::from(io::ErrorKind::TimedOut)),
                r if r < 0 => {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(e);
                }
                _ => {}
            }
            // SAFETY: peeking the length only; the buffer pointer is valid.
            let want = cvt(unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    0,
                    libc::MSG_PEEK | libc::MSG_TRUNC,
                )
            });
            match want {
                Ok(n) if n > self.buf.len() => self.buf.resize(n, 0),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            // SAFETY: receiving into our own buffer of buf.len() bytes.
            match cvt(unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            }) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    /// Sends `msg` and reads the answers to it until the kernel's ack (requests
    /// with NLM_F_ACK) or the end of a dump, handing each data message's type
    /// and payload (after the netlink header) to `each`. A negative error in the
    /// ack is returned as that errno.
    pub fn exchange(&mut self, msg: Msg, mut each: impl FnMut(u16, &[u8])) -> io::Result<()> {
        let seq = self.send(msg)?;
        loop {
            let n = self.recv()?;
            let mut data = &self.buf[..n];
            while data.len() >= HDR {
                let len = u32::from_ne_bytes(data[0..4].try_into().unwrap()) as usize;
                if len < HDR || len > data.len() {
                    return Err(io::Error::other("netlink: truncated message"));
                }
                let kind = u16::from_ne_bytes([data[4], data[5]]);
                let mseq = u32::from_ne_bytes(data[8..12].try_into().unwrap());
                let payload = &data[HDR..len];
                data = &data[align4(len).min(data.len())..];
                if mseq != seq {
                    continue;
                }
                match kind {
                    NLMSG_ERROR | NLMSG_DONE => {
                        let code = payload
                            .get(..4)
                            .map(|b| i32::from_ne_bytes(b.try_into().unwrap()))
                            .unwrap_or(0);
                        return if code < 0 {
                            Err(io::Error::from_raw_os_error(-code))
                        } else {
                            Ok(())
                        };
                    }
                    _ => each(kind, payload),
                }
            }
        }
    }

    /// A request acknowledged by the kernel, with no answer expected.
    pub fn request(&mut self, msg: Msg) -> io::Result<()> {
        self.exchange(msg, |_, _| {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_padded_attributes_and_nests() {
        let mut m = Msg::new(16, NLM_F_REQUEST | NLM_F_ACK);
        m.push(&[1, 2, 3]);
        let at = m.nest(18);
        m.str(1, "wireguard");
        m.end(at);
        m.u32(4, 1420);
        let b = m.bytes();
        assert_eq!(b.len() % 4, 0);
        assert_eq!(&b[16..20], &[1, 2, 3, 0]);
        let top: Vec<(u16, Vec<u8>)> = attrs(&b[20..]).map(|(k, p)| (k, p.to_vec())).collect();
        assert_eq!(top.len(), 2);
        assert_eq!(top[0].0, 18, "the nested flag is masked off");
        let inner: Vec<_> = attrs(&top[0].1).collect();
        assert_eq!(inner, vec![(1, &b"wireguard\0"[..])]);
        assert_eq!(get_u32(&top[1].1), Some(1420));
    }

    #[test]
    fn attribute_reader_stops_at_garbage() {
        // A length past the end, then one below the header size.
        assert_eq!(attrs(&[200, 0, 1, 0, 0, 0]).count(), 0);
        assert_eq!(attrs(&[2, 0, 1, 0]).count(), 0);
        let ok = [8, 0, 3, 0, b'l', b'o', 0, 0];
        let v: Vec<_> = attrs(&ok).collect();
        assert_eq!(v.len(), 1);
        assert_eq!(get_str(v[0].1), "lo");
    }

    #[test]
    fn a_dump_of_links_sees_loopback() {
        // Every network namespace has `lo`; this only reads.
        let mut s = Socket::open(NETLINK_ROUTE).unwrap();
        let mut m = Msg::new(18, NLM_F_REQUEST | NLM_F_DUMP);
        m.push(&[0; 16]);
        let mut names = Vec::new();
        s.exchange(m, |_, p| {
            for (k, v) in attrs(&p[16..]) {
                if k == 3 {
                    names.push(get_str(v));
                }
            }
        })
        .unwrap();
        assert!(names.iter().any(|n| n == "lo"), "{names:?}");
        // A request the kernel refuses comes back as its errno.
        let mut m = Msg::new(19, NLM_F_REQUEST | NLM_F_ACK);
        m.push(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0]);
        let e = s.request(m).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV));
    }
}
