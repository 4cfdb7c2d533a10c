//! Forwarding to one route's resolvers (the WAN's, or an upstream's through its
//! tunnel): shared UDP sockets carrying the route's firewall mark (so the
//! kernel's `ip rule fwmark … lookup <upstream table>` sends them into the
//! tunnel, and the kill switch applies to them too), random transaction IDs,
//! answers matched by ID and source, TCP when the answer is truncated, and a hard
//! time budget: a dead or slow resolver costs at most `budget`, then SERVFAIL.

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    os::fd::AsRawFd,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, UdpSocket},
    sync::oneshot,
    time::timeout,
};

/// An answer from upstream and when it arrived.
pub struct Reply {
    pub bytes: Vec<u8>,
    pub received: Instant,
}

/// Accepts an answer (right question) and acts on it at once, in the socket's
/// read loop: the resolver puts the addresses into the kernel here, before any
/// task switch (answer received → element in the kernel in µs, even under load).
pub type Check = Arc<dyn Fn(&[u8], Instant) -> bool + Send + Sync>;

struct Pending {
    from: SocketAddr,
    tx: oneshot::Sender<Reply>,
    check: Check,
}

struct Sock {
    sock: Arc<UdpSocket>,
    pending: Arc<Mutex<HashMap<u16, Pending>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Sock {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The resolvers of one route.
pub struct Forwarder {
    pub servers: Vec<SocketAddr>,
    pub mark: Option<u32>,
    pub attempt: Duration,
    pub budget: Duration,
    v4: Mutex<Option<Arc<Sock>>>,
    v6: Mutex<Option<Arc<Sock>>>,
    rng: Mutex<u64>,
}

fn set_mark(fd: i32, mark: u32) -> io::Result<()> {
    // SAFETY: a valid fd and a pointer to a live u32 of the given size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_MARK,
            (&mark as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Forwarder {
    pub fn new(
        servers: Vec<SocketAddr>,
        mark: Option<u32>,
        attempt: Duration,
        budget: Duration,
    ) -> Self {
        let mut seed = [0u8; 8];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
        Self {
            servers,
            mark,
            attempt,
            budget,
            v4: Mutex::new(None),
            v6: Mutex::new(None),
            rng: Mutex::new(u64::from_ne_bytes(seed) | 1),
        }
    }

    fn random(&self) -> u16 {
        let mut s = self.rng.lock().unwrap();
        // xorshift64*
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        (s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 48) as u16
    }

    fn socket(&self, v6: bool) -> io::Result<Arc<Sock>> {
        let slot = if v6 { &self.v6 } else { &self.v4 };
        let mut slot = slot.lock().unwrap();
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        let bind: SocketAddr = if v6 {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let std = std::net::UdpSocket::bind(bind)?;
        std.set_nonblocking(true)?;
        if let Some(m) = self.mark {
            set_mark(std.as_raw_fd(), m)?;
        }
        let sock = Arc::new(UdpSocket::from_std(std)?);
        let pending: Arc<Mutex<HashMap<u16, Pending>>> = Arc::default();
        let reader = tokio::spawn(read_loop(sock.clone(), pending.clone()));
        let s = Arc::new(Sock {
            sock,
            pending,
            reader,
        });
        *slot = Some(s.clone());
        Ok(s)
    }

    /// Sends `request` (its ID is replaced) to each server in turn until one
    /// answers, within the time budget. `check` accepts or rejects an answer
    /// (wrong question: keep waiting for the real one).
    pub async fn query(&self, request: &[u8], tcp: bool, check: Check) -> Option<Reply> {
        let deadline = Instant::now() + self.budget;
        for &server in self
            .servers
            .iter()
            .cycle()
            .take(self.servers.len().max(1) * 2)
        {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let left = (deadline - now).min(self.attempt);
            let r = if tcp {
                timeout(left, self.tcp(server, request))
                    .await
                    .ok()
                    .and_then(|r| r.ok())
            } else {
                self.udp(server, request, left, check.clone()).await
            };
            match r {
                Some(reply) if tcp && check(&reply.bytes, reply.received) => return Some(reply),
                Some(reply) if !tcp => return Some(reply),
                _ => continue,
            }
        }
        None
    }

    async fn udp(
        &self,
        server: SocketAddr,
        request: &[u8],
        wait: Duration,
        check: Check,
    ) -> Option<Reply> {
        let sock = self.socket(server.is_ipv6()).ok()?;
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut p = sock.pending.lock().unwrap();
            let mut id = self.random();
            while p.contains_key(&id) {
                id = self.random();
            }
            p.insert(
                id,
                Pending {
                    from: server,
                    tx,
                    check,
                },
            );
            id
        };
        let out = super::wire::with_id(request, id);
        let result = async {
            sock.sock.send_to(&out, server).await.ok()?;
            rx.await.ok()
        };
        let r = timeout(wait, result).await.ok().flatten();
        sock.pending.lock().unwrap().remove(&id);
        r
    }

    async fn tcp(&self, server: SocketAddr, request: &[u8]) -> io::Result<Reply> {
        let s = if server.is_ipv6() {
            TcpSocket::new_v6()?
        } else {
            TcpSocket::new_v4()?
        };
        if let Some(m) = self.mark {
            set_mark(s.as_raw_fd(), m)?;
        }
        let mut stream = s.connect(server).await?;
        let id = self.random();
        let out = super::wire::with_id(request, id);
        let mut framed = Vec::with_capacity(out.len() + 2);
        framed.extend_from_slice(&(out.len() as u16).to_be_bytes());
        framed.extend_from_slice(&out);
        stream.write_all(&framed).await?;
        loop {
            let len = stream.read_u16().await? as usize;
            let mut buf = vec![0; len];
            stream.read_exact(&mut buf).await?;
            if super::wire::id_of(&buf) == Some(id) {
                return Ok(Reply {
                    bytes: buf,
                    received: Instant::now(),
                });
            }
        }
    }
}

async fn read_loop(sock: Arc<UdpSocket>, pending: Arc<Mutex<HashMap<u16, Pending>>>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            // ICMP errors (port unreachable) surface here on Linux: keep going.
            tokio::task::yield_now().await;
            continue;
        };
        let received = Instant::now();
        let Some(id) = super::wire::id_of(&buf[..n]) else {
            continue;
        };
        // Only the server we asked may answer, and only to the question asked
        // (otherwise: a forged or stale answer, keep waiting for the real one).
        let x = {
            let mut p = pending.lock().unwrap();
            match p.get(&id) {
                Some(x) if same(x.from, from) => p.remove(&id),
                _ => None,
            }
        };
        let Some(x) = x else { continue };
        if (x.check)(&buf[..n], received) {
            let _ = x.tx.send(Reply {
                bytes: buf[..n].to_vec(),
                received,
            });
        } else {
            pending.lock().unwrap().insert(id, x);
        }
    }
}

fn same(a: SocketAddr, b: SocketAddr) -> bool {
    let canon = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    a.port() == b.port() && canon(a.ip()) == canon(b.ip())
}

/// Parses `ip`, `ip:port` or `[v6]:port` (port 53 by default).
pub fn parse_server(text: &str) -> Option<SocketAddr> {
    let t = text.trim();
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Some(a);
    }
    t.trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, 53))
}

/// The `nameserver` lines of a resolv.conf.
pub fn resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver"))
                .then(|| w.next())
                .flatten()
                .and_then(|a| a.split('%').next())
                .and_then(parse_server)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_parse() {
        assert_eq!(parse_server("1.2.3.4"), Some("1.2.3.4:53".parse().unwrap()));
        assert_eq!(
            parse_server("1.2.3.4:5353"),
            Some("1.2.3.4:5353".parse().unwrap())
        );
        assert_eq!(parse_server("[::1]:54"), Some("[::1]:54".parse().unwrap()));
        assert_eq!(parse_server("::1"), Some("[::1]:53".parse().unwrap()));
        assert_eq!(parse_server("nope"), None);
        assert_eq!(
            resolv_conf("# x\nnameserver 9.9.9.9\nsearch lan\nnameserver fe80::1%eth0\n"),
            vec![
                "9.9.9.9:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
    }

    #[test]
    fn a_dead_server_costs_the_budget_not_more() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // A bound socket that never answers.
            let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let f = Forwarder::new(
                vec![silent.local_addr().unwrap()],
                None,
                Duration::from_millis(100),
                Duration::from_millis(250),
            );
            let t = Instant::now();
            let q = crate::dns::wire::tests::query(1, "x.test", 1, false);
            assert!(f.query(&q, false, Arc::new(|_, _| true)).await.is_none());
            let took = t.elapsed();
            assert!(
                took >= Duration::from_millis(190) && took < Duration::from_millis(400),
                "{took:?}"
            );
        });
    }
}
