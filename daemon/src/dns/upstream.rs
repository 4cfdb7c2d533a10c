//! Forwarding to one route's resolvers (the WAN's, or an upstream's through its
//! tunnel). Sockets carry the route's firewall mark (so the kernel's
//! `ip rule fwmark … lookup <upstream table>` sends them into the tunnel, and the
//! kill switch applies to them too); TCP when the answer is truncated; a hard
//! time budget: a dead or slow resolver costs at most `budget`, then SERVFAIL.
//!
//! Against forged answers (an off-path forger must hit port, ID and the name's
//! letter case within one round trip): source ports from a small pool of
//! sockets per route and family, each socket carrying at most `USES_PER_PORT`
//! queries and taking none after `PORT_MAX_AGE` (a port learnt from one query
//! is good for at most 7 more within 2 s, each landing on it one time in
//! `PORT_POOL`); IDs and 0x20 case bits from the OS generator; answers judged
//! on server, port, ID and question (`forward_guard::judge`). A fresh socket per
//! query would be stronger still but costs ~9 µs of CPU (socket, bind, epoll
//! add/del, close: measured), a third of a cache miss; the pool pays that once
//! per `USES_PER_PORT` queries. (32 instead of 8 did not lower the bench's CPU
//! per miss measurably, so the pool stays small.)
//!
//! Against floods: identical questions in flight share one upstream query, and
//! at most `MAX_INFLIGHT` questions are in flight per route; beyond, SERVFAIL at
//! once (counted in `forwards_over_cap`). No loop runs unbounded: ID draws are
//! `MAX_ID_DRAWS` at most.

use std::{
    cell::RefCell,
    io,
    net::{IpAddr, SocketAddr},
    os::fd::{AsRawFd, FromRawFd},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicUsize, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt, Interest, unix::AsyncFd},
    net::TcpSocket,
    sync::oneshot,
    task::AbortHandle,
    time::timeout,
};

use super::{
    batch::RecvBatch,
    forward_guard::{
        CASE_BITS_BYTES, CaseMemory, FlightKey, Flights, Join, MAX_ID_DRAWS, RandomBytes, Sent,
        Verdict, case_bits_bytes, draw_id, judge, scramble_case,
    },
    wire::{self, Query},
};

/// Sockets (source ports) per route and address family that queries are
/// spread over at random.
pub const PORT_POOL: usize = 32;
/// Queries one socket carries before it is retired (closed once its last
/// answer is in). The socket's cost (~9 µs) is shared by this many queries.
pub const USES_PER_PORT: usize = 8;
/// A socket older than this takes no new query (at low rates every query gets
/// a fresh port).
pub const PORT_MAX_AGE: Duration = Duration::from_secs(2);
/// Datagrams a socket's reader takes in one go before letting other tasks run
/// (a spray at one port must not starve the rest of the resolver).
const READ_BURST: usize = 64;
/// Datagrams one `recvmmsg` takes from a port. A short read tells the queue is
/// empty, which spares the extra `recvfrom` that only answers "would block"
/// (a port holds at most `USES_PER_PORT` queries, so this is rarely short of
/// room).
const PORT_BATCH: usize = 4;
/// Largest answer read: a UDP datagram's largest payload.
const ANSWER_BUF: usize = 65_535;

/// Forwards refused because their route had `MAX_INFLIGHT` questions in flight
/// (or `MAX_WAITERS` on one question): one count shared by a resolver's
/// routes, which it hands to each forwarder it makes (routes come and go with
/// config changes; the count stays). Wraps on 32-bit targets.
pub type OverCap = Arc<AtomicUsize>;

/// An answer from upstream, when it arrived, and what it says (read once, by
/// the `Check` that accepted it).
pub struct Reply {
    pub bytes: Vec<u8>,
    pub received: Instant,
    pub answer: wire::Answer,
}

/// Accepts an answer (right question, readable records: `Some` with what it
/// says) and acts on it at once, in the socket's read loop: the resolver puts
/// the addresses into the kernel here, before any task switch (answer received
/// → element in the kernel in µs, even under load).
pub type Check = Arc<dyn Fn(&[u8], Instant) -> Option<wire::Answer> + Send + Sync>;

/// What the socket's reader tells the query waiting on it.
enum Event {
    Answer(Reply),
    /// Our ID and port, the name in another letter case.
    CaseMismatch,
}

struct Pending {
    id: u16,
    server: SocketAddr,
    /// The query as sent: its question section (`12..q_end`: the name in its
    /// scrambled case, type, class) is what an answer must echo.
    packet: Box<[u8]>,
    q_end: usize,
    /// The server's case memory when the name's case was scrambled (only an
    /// exact echo is then our answer).
    case: Option<Arc<Mutex<CaseMemory>>>,
    tx: oneshot::Sender<Event>,
    check: Check,
}

#[derive(Default)]
struct PortState {
    pending: heapless::Vec<Pending, USES_PER_PORT>,
    /// Queries given this port so far.
    uses: usize,
    /// Queries given this port and not yet done with it (registered or about
    /// to be): the port stays open while any is left.
    active: usize,
    /// Out of the pool: closed when its last active query is done.
    retired: bool,
}

/// One source port: its socket, the queries waiting on it, and its reader.
struct Port {
    sock: AsyncFd<std::net::UdpSocket>,
    born: Instant,
    state: Mutex<PortState>,
    reader: OnceLock<AbortHandle>,
    /// The forwarder's count of open ports (this one included until dropped).
    open_ports: Arc<AtomicUsize>,
}

impl Drop for Port {
    fn drop(&mut self) {
        self.open_ports.fetch_sub(1, Relaxed);
    }
}

impl Port {
    fn open(v6: bool, mark: Option<u32>, open_ports: &Arc<AtomicUsize>) -> io::Result<Arc<Port>> {
        // Not bound: the first send binds it to a random free ephemeral port,
        // as bind(port 0) would, one system call fewer.
        let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
        // SAFETY: plain socket(2); the result is checked before use.
        let fd = unsafe {
            libc::socket(
                domain,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh socket nothing else owns.
        let std = unsafe { std::net::UdpSocket::from_raw_fd(fd) };
        if let Some(m) = mark {
            set_mark(std.as_raw_fd(), m)?;
        }
        // SAFETY: a std UdpSocket owns its fd, returns the same one from
        // every `as_raw_fd`, and keeps it open until it is dropped (with the
        // AsyncFd that now owns it).
        let sock = unsafe { AsyncFd::register_with_interest(std, Interest::READABLE) }
            .map_err(io::Error::from)?;
        let port = Arc::new(Port {
            sock,
            born: Instant::now(),
            state: Mutex::default(),
            reader: OnceLock::new(),
            open_ports: open_ports.clone(),
        });
        open_ports.fetch_add(1, Relaxed);
        let reader = tokio::spawn(read_loop(port.clone()));
        let _ = port.reader.set(reader.abort_handle());
        Ok(port)
    }

    /// Takes no new query; closes now if none is active.
    fn retire(&self) {
        let mut st = self.state.lock().unwrap();
        st.retired = true;
        if st.active == 0 {
            self.close();
        }
    }

    fn close(&self) {
        // Ends the reader task, which holds the last reference: the socket closes.
        if let Some(r) = self.reader.get() {
            r.abort();
        }
    }

    /// Ends a lease: forgets the query with `id` (answered or timed out;
    /// `None`: it never registered); closes a retired port whose last active
    /// query this was.
    fn release(&self, id: Option<u16>) {
        let mut st = self.state.lock().unwrap();
        if let Some(i) = st.pending.iter().position(|p| Some(p.id) == id) {
            st.pending.swap_remove(i);
        }
        st.active = st.active.saturating_sub(1);
        if st.retired && st.active == 0 {
            self.close();
        }
    }

    /// Hands an arriving datagram to the query it answers, if any.
    fn deliver(&self, b: &[u8], from: SocketAddr, received: Instant) {
        let Some(id) = wire::id_of(b) else { return };
        let p = {
            let mut st = self.state.lock().unwrap();
            let Some(i) = st.pending.iter().position(|p| p.id == id) else {
                return;
            };
            let p = &st.pending[i];
            let sent = Sent {
                server: p.server,
                id: p.id,
                question: &p.packet[12..p.q_end],
                exact_case: p.case.is_some(),
            };
            let verdict = judge(b, from, &sent);
            match verdict {
                Verdict::Reject => return,
                Verdict::CaseMismatch => {
                    let ask_again = p
                        .case
                        .as_ref()
                        .is_none_or(|c| c.lock().unwrap().mismatch(received));
                    if ask_again {
                        let p = st.pending.swap_remove(i);
                        let _ = p.tx.send(Event::CaseMismatch);
                    }
                    return;
                }
                Verdict::Accept => st.pending.swap_remove(i),
            }
        };
        if let Some(c) = &p.case {
            c.lock().unwrap().kept();
        }
        // Outside the lock: the check writes to the kernel.
        if let Some(answer) = (p.check)(b, received) {
            let _ = p.tx.send(Event::Answer(Reply {
                bytes: b.to_vec(),
                received,
                answer,
            }));
        } else {
            // Our question, unreadable records: keep waiting for a better one.
            // The slot just freed is still free (uses never exceed capacity).
            let _ = self.state.lock().unwrap().pending.push(p);
        }
    }
}

/// The live sockets of one route and family.
struct PortPool {
    slots: [Option<Arc<Port>>; PORT_POOL],
}

impl Default for PortPool {
    fn default() -> Self {
        Self {
            slots: std::array::from_fn(|_| None),
        }
    }
}

impl PortPool {
    /// The socket in `slot` for one more query, or a fresh one in its place
    /// when it is used up or old.
    fn lease(
        &mut self,
        slot: usize,
        v6: bool,
        mark: Option<u32>,
        open_ports: &Arc<AtomicUsize>,
    ) -> io::Result<Arc<Port>> {
        let now = Instant::now();
        let entry = &mut self.slots[slot % PORT_POOL];
        if let Some(p) = entry.as_ref() {
            let fresh = now.duration_since(p.born) < PORT_MAX_AGE;
            let mut st = p.state.lock().unwrap();
            if fresh && st.uses < USES_PER_PORT {
                st.uses += 1;
                st.active += 1;
                let p = p.clone();
                if st.uses == USES_PER_PORT {
                    // Out of the pool; closed when this last query (and any
                    // other still active) is done.
                    st.retired = true;
                    drop(st);
                    *entry = None;
                }
                return Ok(p);
            }
            drop(st);
            p.retire();
            *entry = None;
        }
        let p = Port::open(v6, mark, open_ports)?;
        {
            let mut st = p.state.lock().unwrap();
            st.uses = 1;
            st.active = 1;
        }
        *entry = Some(p.clone());
        Ok(p)
    }
}

impl Drop for PortPool {
    fn drop(&mut self) {
        for p in self.slots.iter().flatten() {
            p.retire();
        }
    }
}

/// A follower of an in-flight question.
struct Waiter {
    check: Check,
    tx: oneshot::Sender<Option<Reply>>,
}

/// The resolvers of one route.
pub struct Forwarder {
    pub servers: Vec<SocketAddr>,
    pub mark: Option<u32>,
    pub attempt: Duration,
    pub budget: Duration,
    v4: Mutex<PortPool>,
    v6: Mutex<PortPool>,
    flights: Mutex<Box<Flights<Waiter>>>,
    random: Mutex<RandomBytes>,
    /// Per server (same order as `servers`): does it keep the name's case?
    case: Vec<Arc<Mutex<CaseMemory>>>,
    /// Sockets open for this route (in the pool, or retired with queries left).
    open_ports: Arc<AtomicUsize>,
    over_cap: OverCap,
}

fn set_mark(fd: i32, mark: u32) -> io::Result<()> {
    crate::sys::sock::set_mark(&fd, mark)
}

/// Ends a flight when its leader is done or dropped: followers still waiting
/// then get `None` (SERVFAIL) instead of hanging.
struct FlightGuard<'a> {
    fwd: &'a Forwarder,
    key: FlightKey,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        let waiters = self.fwd.flights.lock().unwrap().finish(&self.key);
        drop(waiters);
    }
}

/// How one UDP try ended.
enum Outcome {
    Answer(Reply),
    CaseMismatch,
    Failed,
}

thread_local! {
    /// The readers' receive buffers: one set per runtime thread, not one per
    /// socket (a reader never awaits while holding it).
    static RECV_BATCH: RefCell<RecvBatch> = RefCell::new(RecvBatch::sized(PORT_BATCH, ANSWER_BUF));
}

impl Forwarder {
    pub fn new(
        servers: Vec<SocketAddr>,
        mark: Option<u32>,
        attempt: Duration,
        budget: Duration,
        over_cap: OverCap,
    ) -> Self {
        let case = servers.iter().map(|_| Arc::default()).collect();
        Self {
            servers,
            mark,
            attempt,
            budget,
            v4: Mutex::default(),
            v6: Mutex::default(),
            flights: Mutex::new(Box::default()),
            random: Mutex::default(),
            case,
            open_ports: Arc::default(),
            over_cap,
        }
    }

    /// Sockets open for this route's queries now.
    pub fn open_ports(&self) -> usize {
        self.open_ports.load(Relaxed)
    }

    /// Questions of this route now in flight.
    pub fn in_flight(&self) -> usize {
        self.flights.lock().unwrap().len()
    }

    fn random(&self, out: &mut [u8]) -> bool {
        self.random.lock().unwrap().fill(out)
    }

    /// Sends `request` (the client's, question `q`; its ID is replaced) to each
    /// server in turn until one answers, within the time budget. `check`
    /// accepts or rejects an answer (unreadable: keep waiting for the real
    /// one). An identical question already in flight is not sent again: this
    /// waits for its answer (and runs `check` on it).
    pub async fn query(&self, request: &[u8], q: &Query, tcp: bool, check: Check) -> Option<Reply> {
        let key = FlightKey::new(q, tcp);
        let mut rx = None;
        let joined = self.flights.lock().unwrap().join(&key, || {
            let (tx, r) = oneshot::channel();
            rx = Some(r);
            Waiter {
                check: check.clone(),
                tx,
            }
        });
        match joined {
            Join::Follower => return rx?.await.ok().flatten(),
            Join::Full => {
                self.over_cap.fetch_add(1, Relaxed);
                return None;
            }
            Join::Leader => {}
        }
        let guard = FlightGuard { fwd: self, key };
        // Boxed: keeps each piece of a miss's task small (see `Resolver::forward`).
        let reply = Box::pin(self.exchange(request, q, tcp, &check)).await;
        let waiters = self.flights.lock().unwrap().finish(&guard.key);
        for w in waiters {
            // Each follower's own check (its client's sets) on the same bytes.
            let r = reply.as_ref().and_then(|r| {
                (w.check)(&r.bytes, r.received).map(|answer| Reply {
                    bytes: r.bytes.clone(),
                    received: r.received,
                    answer,
                })
            });
            let _ = w.tx.send(r);
        }
        reply
    }

    async fn exchange(&self, request: &[u8], q: &Query, tcp: bool, check: &Check) -> Option<Reply> {
        let deadline = Instant::now() + self.budget;
        let tries = self.servers.len().max(1) * 2;
        for (i, &server) in self.servers.iter().enumerate().cycle().take(tries) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let left = (deadline - now).min(self.attempt);
            let r = if tcp {
                // Boxed: TCP is rare (truncated answers), and its future
                // would otherwise sit in every UDP query's task.
                Box::pin(timeout(left, self.tcp(server, request, q)))
                    .await
                    .ok()
                    .and_then(|r| r.ok())
                    .and_then(|(bytes, received)| {
                        check(&bytes, received).map(|answer| Reply {
                            bytes,
                            received,
                            answer,
                        })
                    })
            } else {
                self.udp(i, server, request, q, left, check).await
            };
            if r.is_some() {
                return r;
            }
        }
        None
    }

    /// One try at `server` (index `si`): with 0x20 unless the server is known
    /// to lower-case names. An answer in the wrong case from a server not yet
    /// known to keep case is asked again at once without 0x20 (a lower-casing
    /// server still answers); from one known to keep case it is ignored.
    async fn udp(
        &self,
        si: usize,
        server: SocketAddr,
        request: &[u8],
        q: &Query,
        wait: Duration,
        check: &Check,
    ) -> Option<Reply> {
        let until = Instant::now() + wait;
        let memory = &self.case[si];
        let mut scramble = memory.lock().unwrap().scramble(Instant::now());
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let case = scramble.then(|| memory.clone());
            match self.udp_once(server, request, q, case, left, check).await {
                Outcome::Answer(r) => return Some(r),
                Outcome::CaseMismatch if scramble => scramble = false,
                Outcome::CaseMismatch | Outcome::Failed => return None,
            }
        }
    }

    async fn udp_once(
        &self,
        server: SocketAddr,
        request: &[u8],
        q: &Query,
        case: Option<Arc<Mutex<CaseMemory>>>,
        wait: Duration,
        check: &Check,
    ) -> Outcome {
        let scramble = case.is_some();
        if q.q_end > request.len() || q.q_end < 12 + 5 {
            return Outcome::Failed;
        }
        // One draw for everything: the pool slot, candidate IDs, case bits
        // (one per position of the name).
        let name_len = q.q_end - 4 - 12;
        let mut rnd = [0u8; 1 + 2 * MAX_ID_DRAWS + CASE_BITS_BYTES];
        let take = 1
            + 2 * MAX_ID_DRAWS
            + if scramble {
                case_bits_bytes(name_len)
            } else {
                0
            };
        if !self.random(&mut rnd[..take]) {
            return Outcome::Failed;
        }
        let (slot, rest) = rnd[..take].split_at(1);
        let (ids, bits) = rest.split_at(2 * MAX_ID_DRAWS);
        let ids: &[u8; 2 * MAX_ID_DRAWS] = ids.try_into().expect("sized above");
        let v6 = server.is_ipv6();
        let pool = if v6 { &self.v6 } else { &self.v4 };
        let Ok(port) =
            pool.lock()
                .unwrap()
                .lease(slot[0] as usize, v6, self.mark, &self.open_ports)
        else {
            return Outcome::Failed;
        };
        let mut out = request.to_vec();
        if scramble {
            scramble_case(&mut out[12..q.q_end - 4], bits);
        }
        let (tx, rx) = oneshot::channel();
        let (id, sent) = {
            let mut st = port.state.lock().unwrap();
            let Some(id) = draw_id(ids, |id| st.pending.iter().any(|p| p.id == id)) else {
                drop(st);
                port.release(None);
                return Outcome::Failed;
            };
            out[0..2].copy_from_slice(&id.to_be_bytes());
            let pending = Pending {
                id,
                server,
                packet: out.into_boxed_slice(),
                q_end: q.q_end,
                case,
                tx,
                check: check.clone(),
            };
            if st.pending.push(pending).is_err() {
                // Cannot happen (a port carries at most USES_PER_PORT queries);
                // refuse rather than overwrite.
                drop(st);
                port.release(None);
                return Outcome::Failed;
            }
            // Sent from its registered copy, under the port's lock (so no copy
            // is made). A UDP send does not wait for room (the kernel drops
            // instead), so no writable readiness is needed: sent, or this try
            // failed.
            let packet = &st.pending.last().expect("pushed above").packet;
            (id, port.sock.get_ref().send_to(packet, server).is_ok())
        };
        let r = if sent {
            timeout(wait, rx).await.ok().and_then(|r| r.ok())
        } else {
            None
        };
        port.release(Some(id));
        match r {
            Some(Event::Answer(reply)) => Outcome::Answer(reply),
            Some(Event::CaseMismatch) => Outcome::CaseMismatch,
            None => Outcome::Failed,
        }
    }

    /// One try over TCP (a forger would have to complete a handshake): an
    /// OS-random ID, the answer judged on ID and question (case-blind: no 0x20).
    async fn tcp(
        &self,
        server: SocketAddr,
        request: &[u8],
        q: &Query,
    ) -> io::Result<(Vec<u8>, Instant)> {
        let mut ids = [0u8; 2 * MAX_ID_DRAWS];
        if q.q_end > request.len() || q.q_end < 12 + 5 || !self.random(&mut ids) {
            return Err(io::Error::other("no random ID"));
        }
        let id = u16::from_be_bytes([ids[0], ids[1]]);
        let s = if server.is_ipv6() {
            TcpSocket::new_v6()?
        } else {
            TcpSocket::new_v4()?
        };
        if let Some(m) = self.mark {
            set_mark(s.as_raw_fd(), m)?;
        }
        let mut stream = s.connect(server).await?;
        let out = wire::with_id(request, id);
        let mut framed = Vec::with_capacity(out.len() + 2);
        framed.extend_from_slice(&(out.len() as u16).to_be_bytes());
        framed.extend_from_slice(&out);
        stream.write_all(&framed).await?;
        let sent = Sent {
            server,
            id,
            question: &out[12..q.q_end],
            exact_case: false,
        };
        loop {
            let len = stream.read_u16().await? as usize;
            let mut buf = vec![0; len];
            stream.read_exact(&mut buf).await?;
            if judge(&buf, server, &sent) == Verdict::Accept {
                return Ok((buf, Instant::now()));
            }
        }
    }
}

async fn read_loop(port: Arc<Port>) {
    loop {
        let Ok(mut ready) = port.sock.readable().await else {
            return;
        };
        let mut taken = 0;
        loop {
            let r = RECV_BATCH.with_borrow_mut(|batch| {
                let n = batch.recv(port.sock.get_ref())?;
                let received = Instant::now();
                for i in 0..n {
                    if let (b, Some(from)) = batch.get(i) {
                        port.deliver(b, from, received);
                    }
                }
                io::Result::Ok((n, n < batch.capacity()))
            });
            match r {
                // The queue is empty: wait for the next datagram. (A datagram
                // that came since is a new readiness event, which this keeps.)
                Ok((_, true)) => {
                    ready.clear_ready();
                    break;
                }
                Ok((n, false)) => taken += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready.clear_ready();
                    break;
                }
                // ICMP errors (port unreachable) surface here on Linux: keep going.
                Err(_) => taken += 1,
            }
            if taken >= READ_BURST {
                // A burst (a spray at this port?): let the other tasks run.
                drop(ready);
                tokio::task::yield_now().await;
                break;
            }
        }
    }
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
    use tokio::net::UdpSocket;

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
                Arc::default(),
            );
            let t = Instant::now();
            let q = crate::dns::wire::tests::query(1, "x.test", 1, false);
            let parsed = crate::dns::wire::parse_query(&q).unwrap();
            assert!(
                f.query(&q, &parsed, false, any_answer(&parsed))
                    .await
                    .is_none()
            );
            let took = t.elapsed();
            assert!(
                took >= Duration::from_millis(190) && took < Duration::from_millis(400),
                "{took:?}"
            );
        });
    }

    /// A check that takes every readable answer to `q`.
    fn any_answer(q: &Query) -> Check {
        let q = q.clone();
        Arc::new(move |b, _| crate::dns::wire::parse_answer(b, &q).ok())
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn forwarder(server: SocketAddr) -> Arc<Forwarder> {
        Arc::new(Forwarder::new(
            vec![server],
            None,
            Duration::from_millis(300),
            Duration::from_millis(600),
            Arc::default(),
        ))
    }

    fn ask(f: &Arc<Forwarder>, name: &str) -> tokio::task::JoinHandle<Option<Reply>> {
        let f = f.clone();
        let req = crate::dns::wire::tests::query(7, name, 1, false);
        tokio::spawn(async move {
            let q = crate::dns::wire::parse_query(&req).unwrap();
            f.query(&req, &q, false, any_answer(&q)).await
        })
    }

    /// An answer to `req` with address `a`, the question echoed as asked or
    /// in lowercase.
    fn reply_to(req: &[u8], a: [u8; 4], lower: bool) -> Vec<u8> {
        let mut b = crate::dns::wire::tests::answer(req, None, &[(a, 60)], None);
        if lower {
            let end = crate::dns::wire::parse_query(req).unwrap().q_end;
            b[12..end - 4].make_ascii_lowercase();
        }
        b
    }

    #[test]
    fn identical_questions_in_flight_are_asked_once() {
        rt().block_on(async {
            let up = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let f = forwarder(up.local_addr().unwrap());
            let waiters: Vec<_> = (0..5).map(|_| ask(&f, "same.example")).collect();
            let mut buf = [0u8; 512];
            let (n, from) = up.recv_from(&mut buf).await.unwrap();
            // Every waiter joined before the answer: nothing else was sent.
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(f.in_flight(), 1);
            up.send_to(&reply_to(&buf[..n], [1, 2, 3, 4], false), from)
                .await
                .unwrap();
            for w in waiters {
                let r = w.await.unwrap().expect("every waiter gets the answer");
                assert_eq!(&r.bytes[r.bytes.len() - 4..], &[1, 2, 3, 4]);
            }
            assert_eq!(f.in_flight(), 0);
            let quiet = timeout(Duration::from_millis(50), up.recv_from(&mut buf)).await;
            assert!(quiet.is_err(), "one upstream query for five clients");
        });
    }

    #[test]
    fn a_flood_of_unique_names_is_capped_not_frozen() {
        rt().block_on(async {
            let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let f = forwarder(silent.local_addr().unwrap());
            let before = f.over_cap.load(Relaxed);
            let flood: Vec<_> = (0..crate::dns::forward_guard::MAX_INFLIGHT)
                .map(|i| ask(&f, &format!("n{i}.flood.example")))
                .collect();
            while f.in_flight() < crate::dns::forward_guard::MAX_INFLIGHT {
                tokio::task::yield_now().await;
            }
            // One more: refused at once, not after the budget (600 ms): the
            // flood is still waiting when the refusal is in. (Not a tight
            // time bound: a loaded machine may take long to schedule it.)
            assert!(ask(&f, "one-more.example").await.unwrap().is_none());
            assert!(
                flood.iter().any(|w| !w.is_finished()),
                "the refusal waited for the flood's budget"
            );
            assert_eq!(f.over_cap.load(Relaxed) - before, 1);
            for w in flood {
                assert!(w.await.unwrap().is_none());
            }
            // The budget spent, the table is empty and takes questions again.
            assert_eq!(f.in_flight(), 0);
            let again = ask(&f, "later.example");
            let mut buf = [0u8; 512];
            let got = timeout(Duration::from_millis(500), async {
                loop {
                    let (n, _) = silent.recv_from(&mut buf).await.unwrap();
                    if buf[12..n]
                        .windows(5)
                        .any(|w| w.eq_ignore_ascii_case(b"later"))
                    {
                        break;
                    }
                }
            })
            .await;
            assert!(got.is_ok(), "sent upstream after the flood drained");
            drop(again);
        });
    }

    #[test]
    fn forgeries_are_ignored_and_the_real_answer_taken() {
        rt().block_on(async {
            let up = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let forger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let f = forwarder(up.local_addr().unwrap());
            let mut buf = [0u8; 512];
            // One genuine exchange: the server echoes our case exactly.
            let w = ask(&f, "first.example");
            let (n, from) = up.recv_from(&mut buf).await.unwrap();
            up.send_to(&reply_to(&buf[..n], [1, 1, 1, 1], false), from)
                .await
                .unwrap();
            assert!(w.await.unwrap().is_some());
            let w = ask(&f, "victim.example");
            let (n, from) = up.recv_from(&mut buf).await.unwrap();
            let req = buf[..n].to_vec();
            // The name went out with its letters' case randomised.
            assert!(req[12..n - 4].eq_ignore_ascii_case(b"\x06victim\x07example\x00"));
            // From another port with the right ID and question; from the
            // server's port with the wrong ID; the right everything but the
            // case (unless the draw was all lowercase, one time in 2^13).
            forger
                .send_to(&reply_to(&req, [6, 6, 6, 6], false), from)
                .await
                .unwrap();
            let mut wrong_id = reply_to(&req, [6, 6, 6, 6], false);
            wrong_id[1] ^= 1;
            up.send_to(&wrong_id, from).await.unwrap();
            up.send_to(&reply_to(&req, [6, 6, 6, 6], true), from)
                .await
                .unwrap();
            // A server known to keep case did not send that: not asked again
            // without 0x20 (which would give the forger an easier try).
            let again = timeout(Duration::from_millis(100), up.recv_from(&mut buf)).await;
            assert!(again.is_err(), "no retry after a forged case mismatch");
            up.send_to(&reply_to(&req, [1, 2, 3, 4], false), from)
                .await
                .unwrap();
            let r = w.await.unwrap().expect("the real answer");
            assert_eq!(&r.bytes[r.bytes.len() - 4..], &[1, 2, 3, 4]);
        });
    }

    #[test]
    fn an_upstream_that_lowercases_names_still_works() {
        rt().block_on(async {
            let up = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
            let f = forwarder(up.local_addr().unwrap());
            let server = up.clone();
            let asked = Arc::new(AtomicUsize::new(0));
            let count = asked.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                loop {
                    let (n, from) = server.recv_from(&mut buf).await.unwrap();
                    count.fetch_add(1, Relaxed);
                    let _ = server
                        .send_to(&reply_to(&buf[..n], [1, 2, 3, 4], true), from)
                        .await;
                }
            });
            for i in 0..(crate::dns::forward_guard::CASE_STRIKES as usize + 3) {
                let t = Instant::now();
                let r = ask(&f, &format!("name{i}.example")).await.unwrap();
                assert!(r.is_some(), "query {i} answered");
                assert!(
                    t.elapsed() < Duration::from_millis(200),
                    "no wait for a timeout"
                );
            }
            // Two sends per query while 0x20 was on, one each once it was off.
            let strikes = crate::dns::forward_guard::CASE_STRIKES as usize;
            assert_eq!(asked.load(Relaxed), 2 * strikes + 3);
        });
    }

    #[test]
    fn source_ports_rotate() {
        rt().block_on(async {
            let up = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
            let f = forwarder(up.local_addr().unwrap());
            let server = up.clone();
            let ports = Arc::new(Mutex::new(std::collections::HashSet::new()));
            let seen = ports.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                loop {
                    let (n, from) = server.recv_from(&mut buf).await.unwrap();
                    seen.lock().unwrap().insert(from.port());
                    let _ = server
                        .send_to(&reply_to(&buf[..n], [1, 2, 3, 4], false), from)
                        .await;
                }
            });
            let queries = 4 * PORT_POOL * USES_PER_PORT;
            for i in 0..queries {
                assert!(ask(&f, &format!("p{i}.example")).await.unwrap().is_some());
            }
            // Each port carries at most USES_PER_PORT queries.
            let distinct = ports.lock().unwrap().len();
            assert!(
                distinct >= queries / USES_PER_PORT,
                "{distinct} ports for {queries} queries"
            );
            // Used-up ports were closed: what is open is the pool at most.
            tokio::task::yield_now().await;
            assert!(f.open_ports() <= PORT_POOL, "{} open", f.open_ports());
            let open = f.open_ports.clone();
            drop(f);
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            assert_eq!(open.load(Relaxed), 0, "every port closed with its route");
        });
    }
}
