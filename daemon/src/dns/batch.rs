//! UDP in batches: `recvmmsg` takes every query waiting on the socket (up to
//! `BATCH`) in one system call, `sendmmsg` sends the answers made locally
//! (cache hits, blocks, errors) in one. Under load most of a cache hit's cost is
//! the kernel's (two system calls and a scheduler round per packet); batching
//! shares it. An idle socket costs the same as before: the call returns
//! whatever is there, one packet or more, without waiting.

use std::{
    io,
    mem::{MaybeUninit, size_of},
    net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6},
    os::fd::AsRawFd,
};

/// Packets per system call.
pub const BATCH: usize = 32;
/// Largest query read (as before batching).
const BUF: usize = 4096;

/// The plain C structs of the headers, all zeroes (a valid value for each).
trait Zeroed: Sized {
    fn zeroed() -> Self {
        // SAFETY: implemented only for plain-old-data C structs, for which all
        // zeroes is a valid value.
        unsafe { MaybeUninit::zeroed().assume_init() }
    }
}

impl Zeroed for libc::sockaddr_storage {}
impl Zeroed for libc::iovec {}
impl Zeroed for libc::mmsghdr {}

fn zeroed<T: Zeroed>() -> T {
    T::zeroed()
}

/// Receive buffers for one socket's loop, with the `recvmmsg` headers made once
/// (each call only resets the address lengths the kernel wrote).
pub struct RecvBatch {
    bufs: Box<[u8]>,
    addrs: Box<[libc::sockaddr_storage]>,
    iov: Box<[libc::iovec]>,
    msgs: Box<[libc::mmsghdr]>,
    /// Bytes per datagram buffer.
    buf: usize,
    n: usize,
}

// SAFETY: the raw pointers in `iov` and `msgs` point into the batch's own heap
// buffers (`bufs`, `addrs`, `iov`), which move with it and are only used
// through `&mut self`.
unsafe impl Send for RecvBatch {}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    pub fn new() -> Self {
        Self::sized(BATCH, BUF)
    }

    /// Room for `count` datagrams of up to `buf` bytes each. (Zeroed heap
    /// memory: pages no datagram reached cost no RAM.)
    pub fn sized(count: usize, buf: usize) -> Self {
        let mut b = Self {
            bufs: vec![0; buf * count].into(),
            addrs: (0..count).map(|_| zeroed()).collect(),
            iov: (0..count).map(|_| zeroed()).collect(),
            msgs: (0..count).map(|_| zeroed()).collect(),
            buf,
            n: 0,
        };
        for i in 0..count {
            b.iov[i] = libc::iovec {
                iov_base: b.bufs[i * buf..].as_mut_ptr().cast(),
                iov_len: buf,
            };
            let h = &mut b.msgs[i].msg_hdr;
            h.msg_name = (&mut b.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_iov = &mut b.iov[i];
            h.msg_iovlen = 1;
        }
        b
    }

    /// Reads the waiting datagrams (non-blocking): how many, or the error
    /// (`WouldBlock` when there were none). Fewer than `capacity()`: the
    /// socket's queue was empty when the call returned.
    pub fn recv(&mut self, sock: &impl AsRawFd) -> io::Result<usize> {
        for m in self.msgs.iter_mut() {
            m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as _;
        }
        // SAFETY: every header points at live buffers of the sizes given (made
        // in `new`, owned by `self`), which outlive the call; the kernel writes
        // at most those sizes.
        let r = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                self.msgs.as_mut_ptr(),
                self.msgs.len() as _,
                libc::MSG_DONTWAIT as _,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            self.n = 0;
            return Err(io::Error::last_os_error());
        }
        self.n = r as usize;
        Ok(self.n)
    }

    /// Datagrams one `recv` can take.
    pub fn capacity(&self) -> usize {
        self.msgs.len()
    }

    /// Datagram `i` of the last `recv` and its sender (`None`: an address
    /// family we do not serve).
    pub fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        let len = (self.msgs[i].msg_len as usize).min(self.buf);
        let data = &self.bufs[i * self.buf..i * self.buf + len];
        (data, from_storage(&self.addrs[i]))
    }
}

/// The `sendmmsg` headers for one socket's loop, made once.
pub struct SendBatch {
    addrs: Box<[libc::sockaddr_storage]>,
    iov: Box<[libc::iovec]>,
    msgs: Box<[libc::mmsghdr]>,
}

// SAFETY: as for `RecvBatch`: the pointers point into the batch's own heap
// buffers (`addrs`, `iov`); the answers' pointers are set and used within one
// call of `send_all`.
unsafe impl Send for SendBatch {}

impl Default for SendBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl SendBatch {
    pub fn new() -> Self {
        let mut b = Self {
            addrs: (0..BATCH).map(|_| zeroed()).collect(),
            iov: (0..BATCH).map(|_| zeroed()).collect(),
            msgs: (0..BATCH).map(|_| zeroed()).collect(),
        };
        for i in 0..BATCH {
            let h = &mut b.msgs[i].msg_hdr;
            h.msg_name = (&mut b.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_iov = &mut b.iov[i];
            h.msg_iovlen = 1;
        }
        b
    }

    /// Sends the answers in as few system calls as the kernel takes them
    /// (non-blocking). Answers the socket has no room for are dropped, like any
    /// UDP packet the kernel drops; the client asks again.
    pub fn send_all(&mut self, sock: &impl AsRawFd, out: &mut Vec<(Vec<u8>, SocketAddr)>) {
        let mut done = 0;
        while done < out.len() {
            let chunk = &out[done..out.len().min(done + BATCH)];
            for (i, (data, to)) in chunk.iter().enumerate() {
                self.iov[i] = libc::iovec {
                    iov_base: data.as_ptr() as *mut libc::c_void,
                    iov_len: data.len(),
                };
                self.msgs[i].msg_hdr.msg_namelen = write_addr(&mut self.addrs[i], *to);
            }
            // SAFETY: the headers point at live buffers (the answers, the
            // addresses) that outlive the call; the kernel only reads them.
            let r = unsafe {
                libc::sendmmsg(
                    sock.as_raw_fd(),
                    self.msgs.as_mut_ptr(),
                    chunk.len() as _,
                    libc::MSG_DONTWAIT as _,
                )
            };
            if r <= 0 {
                // EAGAIN (no room), or an error for the first packet (say an
                // unreachable client): skip that one, go on with the rest.
                done += 1;
            } else {
                done += r as usize;
            }
        }
        out.clear();
    }
}

fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Writes `a` at the start of `s` (the rest is not read): its length.
fn write_addr(s: &mut libc::sockaddr_storage, a: SocketAddr) -> libc::socklen_t {
    match a {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as _,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*v4.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe {
                (s as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in>()
                    .write(sin)
            };
            size_of::<libc::sockaddr_in>() as _
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as _,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe {
                (s as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in6>()
                    .write(sin6)
            };
            size_of::<libc::sockaddr_in6>() as _
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_goes_round_trip() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let v6 = std::net::UdpSocket::bind("[::1]:0").ok();
        for i in 0..40u8 {
            b.send_to(&[i; 3], a.local_addr().unwrap()).unwrap();
        }
        let mut batch = RecvBatch::new();
        let mut got = Vec::new();
        while got.len() < 40 {
            let n = batch.recv(&a).unwrap();
            assert!(n <= BATCH);
            for i in 0..n {
                let (data, from) = batch.get(i);
                assert_eq!(from, Some(b.local_addr().unwrap()));
                got.push(data.to_vec());
            }
        }
        assert_eq!(got[39], vec![39; 3]);
        assert_eq!(
            batch.recv(&a).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let mut out: Vec<(Vec<u8>, SocketAddr)> = (0..40u8)
            .map(|i| (vec![i; 5], b.local_addr().unwrap()))
            .collect();
        if let Some(v6) = &v6 {
            out.push((vec![7; 2], v6.local_addr().unwrap()));
        }
        let a6 = std::net::UdpSocket::bind("[::]:0");
        let mut send = SendBatch::new();
        send.send_all(&a, &mut out);
        assert!(out.is_empty());
        let mut buf = [0u8; 16];
        for i in 0..40u8 {
            let (n, from) = b.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (&[i; 5][..], a.local_addr().unwrap()));
        }
        // IPv6 addresses convert both ways.
        if let (Some(v6), Ok(a6)) = (v6, a6) {
            let mut out = vec![(vec![1, 2], v6.local_addr().unwrap())];
            send.send_all(&a6, &mut out);
            let (n, _) = v6.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[1, 2]);
            v6.send_to(&[9], ("::1", a6.local_addr().unwrap().port()))
                .unwrap();
            a6.set_nonblocking(true).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert_eq!(batch.recv(&a6).unwrap(), 1);
            assert_eq!(batch.get(0), (&[9u8][..], Some(v6.local_addr().unwrap())));
        }
    }
}
