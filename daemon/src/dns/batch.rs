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

/// Receive buffers for one socket's loop.
pub struct RecvBatch {
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    lens: [usize; BATCH],
    n: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

fn zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
    unsafe { MaybeUninit::zeroed().assume_init() }
}

impl RecvBatch {
    pub fn new() -> Self {
        Self {
            bufs: vec![0; BUF * BATCH],
            addrs: vec![zeroed_storage(); BATCH],
            lens: [0; BATCH],
            n: 0,
        }
    }

    /// Reads the waiting datagrams (non-blocking): how many, or the error
    /// (`WouldBlock` when there were none).
    pub fn recv(&mut self, sock: &impl AsRawFd) -> io::Result<usize> {
        let mut iov: [MaybeUninit<libc::iovec>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
        // SAFETY: mmsghdr is plain old data; all zeroes is a valid value.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
        let base = self.bufs.as_mut_ptr();
        for i in 0..BATCH {
            iov[i].write(libc::iovec {
                // SAFETY: i * BUF + BUF <= bufs.len().
                iov_base: unsafe { base.add(i * BUF) }.cast(),
                iov_len: BUF,
            });
            let h = &mut msgs[i].msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as _;
            h.msg_iov = iov[i].as_mut_ptr();
            h.msg_iovlen = 1;
        }
        // SAFETY: every header points at live buffers of the sizes given, which
        // outlive the call; the kernel writes at most those sizes.
        let r = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                msgs.as_mut_ptr(),
                BATCH as _,
                libc::MSG_DONTWAIT as _,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            self.n = 0;
            return Err(io::Error::last_os_error());
        }
        self.n = r as usize;
        for (len, m) in self.lens.iter_mut().zip(&msgs).take(self.n) {
            *len = (m.msg_len as usize).min(BUF);
        }
        Ok(self.n)
    }

    /// Datagram `i` of the last `recv` and its sender (`None`: an address
    /// family we do not serve).
    pub fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        let data = &self.bufs[i * BUF..i * BUF + self.lens[i]];
        (data, from_storage(&self.addrs[i]))
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

fn to_storage(a: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    let mut s = zeroed_storage();
    let len = match a {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            let p = unsafe {
                &mut *(&mut s as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            p.sin_family = libc::AF_INET as _;
            p.sin_port = v4.port().to_be();
            p.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            let p = unsafe {
                &mut *(&mut s as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            p.sin6_family = libc::AF_INET6 as _;
            p.sin6_port = v6.port().to_be();
            p.sin6_addr.s6_addr = v6.ip().octets();
            p.sin6_flowinfo = v6.flowinfo();
            p.sin6_scope_id = v6.scope_id();
            size_of::<libc::sockaddr_in6>()
        }
    };
    (s, len as libc::socklen_t)
}

/// Sends the answers in as few system calls as the kernel takes them
/// (non-blocking). Answers the socket has no room for are dropped, like any
/// UDP packet the kernel drops; the client asks again.
pub fn send_all(sock: &impl AsRawFd, out: &mut Vec<(Vec<u8>, SocketAddr)>) {
    let mut done = 0;
    while done < out.len() {
        let chunk = &out[done..out.len().min(done + BATCH)];
        let mut addrs = [(zeroed_storage(), 0 as libc::socklen_t); BATCH];
        let mut iov: [MaybeUninit<libc::iovec>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
        // SAFETY: mmsghdr is plain old data; all zeroes is a valid value.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
        for (i, (data, to)) in chunk.iter().enumerate() {
            addrs[i] = to_storage(*to);
            iov[i].write(libc::iovec {
                iov_base: data.as_ptr() as *mut libc::c_void,
                iov_len: data.len(),
            });
            let h = &mut msgs[i].msg_hdr;
            h.msg_name = (&mut addrs[i].0 as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = addrs[i].1;
            h.msg_iov = iov[i].as_mut_ptr();
            h.msg_iovlen = 1;
        }
        // SAFETY: the headers point at live buffers (the answers, the addresses)
        // that outlive the call; the kernel only reads them.
        let r = unsafe {
            libc::sendmmsg(
                sock.as_raw_fd(),
                msgs.as_mut_ptr(),
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
        send_all(&a, &mut out);
        assert!(out.is_empty());
        let mut buf = [0u8; 16];
        for i in 0..40u8 {
            let (n, from) = b.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (&[i; 5][..], a.local_addr().unwrap()));
        }
        // IPv6 addresses convert both ways.
        if let (Some(v6), Ok(a6)) = (v6, a6) {
            let mut out = vec![(vec![1, 2], v6.local_addr().unwrap())];
            send_all(&a6, &mut out);
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
