//! The listening sockets: UDP (queries read and local answers sent in
//! batches) and TCP (a bounded number of connections, each with its idle and
//! write timeouts), bound with IP_FREEBIND so the resolver can start before
//! its addresses exist.

use std::{
    io,
    net::SocketAddr,
    os::fd::AsRawFd,
    sync::{Arc, atomic::Ordering::Relaxed},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, UdpSocket},
    task::JoinSet,
};

use super::{Resolver, query::Step};
use crate::{
    dns::batch::{BATCH, RecvBatch, SendBatch},
    sys::sock,
};

/// DNS over TCP: connections open at once (all listeners together; more are
/// closed as soon as accepted), how long one may wait for its next query, and
/// how long an answer may take to be written (a client that does not read).
pub const TCP_MAX_CONNECTIONS: usize = 64;
pub const TCP_IDLE: Duration = Duration::from_secs(10);
pub const TCP_WRITE: Duration = Duration::from_secs(5);
/// The longest query read over TCP (a question and its EDNS options fit in a
/// few hundred bytes; the 64 KiB the length prefix allows would be memory
/// for nothing, times every connection).
pub const TCP_QUERY_MAX: usize = 4096;

impl Resolver {
    /// Listens on the configured addresses (UDP and TCP) until the future is
    /// dropped or a socket fails.
    pub async fn serve(self: Arc<Self>) -> io::Result<()> {
        let addrs = self.listen_addrs();
        self.serve_on(&addrs).await
    }

    pub async fn serve_on_owned(self: Arc<Self>, addrs: Vec<SocketAddr>) -> io::Result<()> {
        self.serve_on(&addrs).await
    }

    pub async fn serve_on(self: Arc<Self>, addrs: &[SocketAddr]) -> io::Result<()> {
        let mut tasks = JoinSet::new();
        for &a in addrs {
            let udp = bind_udp(a)?;
            let tcp = bind_tcp(a)?;
            log::info!("dns: listening on {a} (udp, tcp)");
            tasks.spawn(self.clone().udp_loop(udp));
            tasks.spawn(self.clone().tcp_loop(tcp));
        }
        match tasks.join_next().await {
            Some(Ok(r)) => r,
            Some(Err(e)) => Err(io::Error::other(e)),
            None => Ok(()),
        }
    }

    async fn udp_loop(self: Arc<Self>, sock: UdpSocket) -> io::Result<()> {
        let sock = Arc::new(sock);
        let mut batch = RecvBatch::new();
        let mut send = SendBatch::new();
        let mut out = Vec::with_capacity(BATCH);
        loop {
            sock.readable().await?;
            // Every query waiting, in one call; the local answers in one call.
            let n = match sock.try_io(tokio::io::Interest::READABLE, || batch.recv(&*sock)) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            };
            for i in 0..n {
                let (request, src) = batch.get(i);
                let Some(src) = src else { continue };
                match self.fast(request, src, false, true) {
                    Step::Reply(r) => out.push((r, src)),
                    Step::Drop => {}
                    Step::Forward(ctx) => {
                        let me = self.clone();
                        let sock = sock.clone();
                        let request = request.to_vec();
                        tokio::spawn(async move {
                            let r = me.forward(&request, *ctx, false).await;
                            let _ = sock.send_to(&r, src).await;
                        });
                    }
                }
            }
            send.send_all(&*sock, &mut out);
        }
    }

    async fn tcp_loop(self: Arc<Self>, listener: TcpListener) -> io::Result<()> {
        loop {
            let (mut stream, src) = match listener.accept().await {
                Ok(x) => x,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            // At the cap: closed at once (the listener keeps accepting, so
            // the backlog never fills with connections nobody serves).
            let Ok(slot) = self.tcp_slots.clone().try_acquire_owned() else {
                self.stats.tcp_rejected.fetch_add(1, Relaxed);
                drop(stream);
                continue;
            };
            let me = self.clone();
            tokio::spawn(async move {
                let _slot = slot;
                loop {
                    // An idle or stuck client is cut off after TCP_IDLE.
                    let read = async {
                        let len = stream.read_u16().await? as usize;
                        if len > TCP_QUERY_MAX {
                            return Err(io::ErrorKind::InvalidData.into());
                        }
                        let mut buf = vec![0; len];
                        stream.read_exact(&mut buf).await?;
                        io::Result::Ok(buf)
                    };
                    let Ok(Ok(req)) = tokio::time::timeout(TCP_IDLE, read).await else {
                        return;
                    };
                    let Some(r) = me.handle(&req, src, true).await else {
                        return;
                    };
                    let mut out = Vec::with_capacity(r.len() + 2);
                    out.extend_from_slice(&(r.len() as u16).to_be_bytes());
                    out.extend_from_slice(&r);
                    // A client that does not read its answers is cut off too.
                    if !matches!(
                        tokio::time::timeout(TCP_WRITE, stream.write_all(&out)).await,
                        Ok(Ok(()))
                    ) {
                        return;
                    }
                }
            });
        }
    }
}

/// Failure is harmless: the bind then needs the address to exist.
fn freebind(fd: i32, v6: bool) {
    let _ = sock::set_freebind(&fd, v6);
}

/// Binds with IP_FREEBIND, so the resolver can start before the server interface
/// has its address.
fn bind_udp(a: SocketAddr) -> io::Result<UdpSocket> {
    UdpSocket::from_std(raw_udp(a)?)
}

fn raw_udp(a: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let domain = if a.is_ipv6() {
        libc::AF_INET6
    } else {
        libc::AF_INET
    };
    // SAFETY: plain socket(2); the fd is owned by the UdpSocket right away.
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket we own.
    let sock: std::net::UdpSocket = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
    freebind(sock.as_raw_fd(), a.is_ipv6());
    // SO_REUSEADDR lets us share port 53 with a dnsmasq bound to the wildcard
    // address; a 1 MiB receive buffer rides out bursts.
    let _ = sock::set_reuse_addr(&fd);
    let _ = sock::set_recv_buffer(&fd, 1 << 20);
    bind_fd(fd, a)?;
    Ok(sock)
}

fn bind_fd(fd: i32, a: SocketAddr) -> io::Result<()> {
    let r = match a {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as u16,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: a valid fd and a sockaddr_in of the given size.
            unsafe {
                libc::bind(
                    fd,
                    (&sin as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as u32,
                )
            }
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as u16,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: a valid fd and a sockaddr_in6 of the given size.
            unsafe {
                libc::bind(
                    fd,
                    (&sin6 as *const libc::sockaddr_in6).cast(),
                    std::mem::size_of::<libc::sockaddr_in6>() as u32,
                )
            }
        }
    };
    if r < 0 {
        Err(io::Error::new(
            io::Error::last_os_error().kind(),
            format!("bind {a}: {}", io::Error::last_os_error()),
        ))
    } else {
        Ok(())
    }
}

fn bind_tcp(a: SocketAddr) -> io::Result<TcpListener> {
    let s = if a.is_ipv6() {
        tokio::net::TcpSocket::new_v6()?
    } else {
        tokio::net::TcpSocket::new_v4()?
    };
    s.set_reuseaddr(true)?;
    freebind(s.as_raw_fd(), a.is_ipv6());
    if a.is_ipv6() {
        let _ = sock::set_v6_only(&s);
    }
    s.bind(a)
        .map_err(|e| io::Error::new(e.kind(), format!("bind {a}/tcp: {e}")))?;
    s.listen(128)
}
