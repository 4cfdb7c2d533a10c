//! Socket options, the one place wgsplit calls setsockopt: firewall marks (so
//! the kernel's `ip rule fwmark …` routes a socket's packets into a tunnel),
//! binding to a device, buffer sizes, address reuse, v6-only.

use std::{io, os::fd::AsRawFd};

fn set(fd: &impl AsRawFd, level: libc::c_int, opt: libc::c_int, value: &[u8]) -> io::Result<()> {
    // SAFETY: a plain setsockopt on a socket the caller owns, with a valid buffer
    // and its length.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            value.as_ptr().cast(),
            value.len() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_int(
    fd: &impl AsRawFd,
    level: libc::c_int,
    opt: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    set(fd, level, opt, &v.to_ne_bytes())
}

/// `SO_MARK`: the firewall mark of every packet the socket sends.
pub fn set_mark(fd: &impl AsRawFd, mark: u32) -> io::Result<()> {
    set(fd, libc::SOL_SOCKET, libc::SO_MARK, &mark.to_ne_bytes())
}

/// `SO_BINDTODEVICE`: the socket sends and receives through `ifname` only.
pub fn bind_to_device(fd: &impl AsRawFd, ifname: &str) -> io::Result<()> {
    set(
        fd,
        libc::SOL_SOCKET,
        libc::SO_BINDTODEVICE,
        ifname.as_bytes(),
    )
}

/// `SO_RCVBUF` (the kernel doubles it, and caps it at `net.core.rmem_max`).
pub fn set_recv_buffer(fd: &impl AsRawFd, bytes: usize) -> io::Result<()> {
    let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, bytes)
}

/// `SO_REUSEADDR`.
pub fn set_reuse_addr(fd: &impl AsRawFd) -> io::Result<()> {
    set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)
}

/// `IP_FREEBIND` / `IPV6_FREEBIND`: bind to an address the host does not have
/// (yet): the resolver starts before the server interface has its address.
pub fn set_freebind(fd: &impl AsRawFd, v6: bool) -> io::Result<()> {
    if v6 {
        set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_FREEBIND, 1)
    } else {
        set_int(fd, libc::SOL_IP, libc::IP_FREEBIND, 1)
    }
}

/// `IPV6_V6ONLY`: an IPv6 socket that does not take IPv4-mapped traffic.
pub fn set_v6_only(fd: &impl AsRawFd) -> io::Result<()> {
    set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)
}

/// A blocking TCP listener on `addr`, bound with [`set_freebind`]: the web
/// UI listens on the LAN address, which may come up after the daemon at boot.
pub fn tcp_listener_freebind(addr: std::net::SocketAddr) -> io::Result<std::net::TcpListener> {
    use std::os::fd::{FromRawFd, IntoRawFd};
    let s = if addr.is_ipv6() {
        tokio::net::TcpSocket::new_v6()?
    } else {
        tokio::net::TcpSocket::new_v4()?
    };
    s.set_reuseaddr(true)?;
    set_freebind(&s, addr.is_ipv6())?;
    if addr.is_ipv6() {
        let _ = set_v6_only(&s);
    }
    s.bind(addr)?;
    let fd = s.into_raw_fd();
    // SAFETY: `fd` is the socket just made, owned by nothing else now.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    // SAFETY: listen(2) on a bound socket we own.
    if unsafe { libc::listen(listener.as_raw_fd(), 128) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // tokio's sockets are made non-blocking; the API's accept thread blocks.
    listener.set_nonblocking(false)?;
    Ok(listener)
}
