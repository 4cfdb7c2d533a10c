//! The API's HTTP server: std sockets and one thread per connection, every
//! resource bounded.
//!
//! - At most [`CONN_CAP`] connections. When all are taken, a new one evicts
//!   the oldest connection that is still sending (its head, or the body of a
//!   request that has not proved who sent it) or lingering; if every one is
//!   being answered or uploading with a token or session, the new one gets a
//!   503. Slow senders therefore never lock others out for long, and a flood
//!   of connections cannot cut off an admin's upload.
//! - The head must arrive within [`HEAD_TIMEOUT`] and fit in
//!   [`http::MAX_HEAD`]; the body within [`BODY_TIMEOUT`].
//! - The handler sees the head first ([`Handler::before_body`]: token, origin,
//!   route) and names the route's body limit; a longer `Content-Length` is a
//!   413 before any byte of the body is read or any buffer sized by it.
//!   Bodies being read share [`BODY_BUDGET`] bytes.
//! - One request per connection. An unread body is never drained into
//!   memory: after the answer, the socket lingers for at most
//!   [`LINGER_TIME`] / [`LINGER_BYTES`] through a fixed buffer (so the client
//!   reads the answer rather than a reset), then closes.
//! - Accept errors (EMFILE, ENFILE, ENOMEM…) are logged and backed off (up to
//!   [`ACCEPT_BACKOFF_MAX`]); the accept loop never exits on one.
//!
//! Only std here: the routes live in `mod.rs`.

use std::{
    io::{ErrorKind, Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use super::http::{self, Head, MAX_HEAD};

/// Most connections open at once (each is one thread).
pub const CONN_CAP: usize = 64;
/// Time to send the whole request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Time to send the whole body, once the head is accepted.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Time the client gets to take the answer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of request bodies held in memory at once, over all connections.
pub const BODY_BUDGET: usize = 4 << 20;
/// After answering, how long and how much of an unread body is read and
/// thrown away (in [`LINGER_CHUNK`] pieces) before the socket closes.
pub const LINGER_TIME: Duration = Duration::from_millis(500);
pub const LINGER_BYTES: usize = 256 * 1024;
const LINGER_CHUNK: usize = 4096;
/// Longest pause between accepts after accept errors (doubling from 5 ms).
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_millis(200);
/// Stack of a connection thread: routes parse JSON and render QR codes, nothing deep.
const CONN_STACK: usize = 512 * 1024;

/// An answer, as the server writes it.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(status: u16, message: &str) -> Self {
        let body = format!("{{\"error\": {}}}\n", json_string(message)).into_bytes();
        Self {
            status,
            headers: vec![
                ("Content-Type", "application/json".into()),
                ("Cache-Control", "no-store".into()),
                ("X-Content-Type-Options", "nosniff".into()),
            ],
            body,
        }
    }
}

/// A JSON string literal, for the server's own few error messages.
fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What the routes provide.
pub trait Handler: Send + Sync + 'static {
    /// What `before_body` learnt about the request, kept for `respond`.
    type Pass: Send;
    /// Sees the head before any of the body: answers now (`Err`: 401, 403,
    /// 415…) or names the route's body limit.
    fn before_body(&self, head: &Head) -> Result<(usize, Self::Pass), Response>;
    /// Whether the request proved who sent it (a token, a session): its body
    /// is then never cut off for a newcomer (it has [`BODY_TIMEOUT`] to come).
    fn authorised(&self, _pass: &Self::Pass) -> bool {
        false
    }
    /// Whether a connection from `peer` (to `local`) is served at all:
    /// asked at accept, before a byte is read; a refused one is closed at once.
    fn admits(&self, _peer: SocketAddr, _local: SocketAddr) -> bool {
        true
    }
    /// Answers a request whose body has been read in full.
    fn respond(&self, head: &Head, pass: Self::Pass, body: Vec<u8>) -> Response;
    /// Every answer sent (for metrics), with the time since the head arrived.
    fn record(&self, status: u16, elapsed: Duration);
    /// Something worth a line in the log.
    fn note(&self, message: &str);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the client (head, body, or the end of an unread body):
    /// such a connection may be evicted for a new one.
    Waiting,
    /// Reading the body of a request that proved who sent it: not evicted
    /// (an attacker's stream of connections must not cut an admin's upload
    /// on a slow link; the body's own deadline bounds it).
    Body,
    /// The handler runs or the answer is being written.
    Answering,
}

struct Slot {
    id: usize,
    opened: Instant,
    phase: Phase,
    stream: Arc<TcpStream>,
}

/// The open connections.
struct Slots {
    list: Mutex<Vec<Slot>>,
    /// Connection ids: unique among the (at most `CONN_CAP`) open ones; usize, as
    /// 32-bit MIPS has no 64-bit atomics.
    next_id: AtomicUsize,
}

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a slot for `stream`, evicting the oldest waiting connection if
    /// all are taken; `None` if every connection is being answered.
    fn admit(&self, stream: &Arc<TcpStream>) -> Option<usize> {
        let mut list = self.lock();
        if list.len() >= CONN_CAP {
            let oldest = list
                .iter()
                .enumerate()
                .filter(|(_, s)| s.phase == Phase::Waiting)
                .min_by_key(|(_, s)| s.opened)
                .map(|(i, _)| i)?;
            let evicted = list.swap_remove(oldest);
            // Wakes its thread (reads fail), which then exits.
            let _ = evicted.stream.shutdown(Shutdown::Both);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        list.push(Slot {
            id,
            opened: Instant::now(),
            phase: Phase::Waiting,
            stream: stream.clone(),
        });
        Some(id)
    }

    fn set_phase(&self, id: usize, phase: Phase) -> bool {
        let mut list = self.lock();
        match list.iter_mut().find(|s| s.id == id) {
            Some(s) => {
                s.phase = phase;
                true
            }
            // Evicted meanwhile: the socket is shut down already.
            None => false,
        }
    }

    fn release(&self, id: usize) {
        self.lock().retain(|s| s.id != id);
    }

    fn close_all(&self) {
        for s in self.lock().drain(..) {
            let _ = s.stream.shutdown(Shutdown::Both);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Bytes reserved from [`BODY_BUDGET`], given back when dropped.
struct Reservation<'a> {
    used: &'a AtomicUsize,
    bytes: usize,
}

impl<'a> Reservation<'a> {
    fn take(used: &'a AtomicUsize, bytes: usize) -> Option<Self> {
        used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
            u.checked_add(bytes).filter(|&n| n <= BODY_BUDGET)
        })
        .ok()
        .map(|_| Self { used, bytes })
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

struct Shared<H> {
    handler: Arc<H>,
    slots: Slots,
    body_bytes: AtomicUsize,
    stopping: AtomicBool,
}

/// A running server: stop it to close the listener and every connection.
pub struct Server {
    pub addr: SocketAddr,
    stop: Box<dyn Fn() + Send + Sync>,
    #[cfg(test)]
    open: Box<dyn Fn() -> usize + Send + Sync>,
    accept: Option<thread::JoinHandle<()>>,
}

impl Server {
    pub fn start<H: Handler>(listen: SocketAddr, handler: Arc<H>) -> std::io::Result<Self> {
        let listener = crate::sys::sock::tcp_listener_freebind(listen)?;
        let addr = listener.local_addr()?;
        let listen_fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
        let shared = Arc::new(Shared {
            handler,
            slots: Slots {
                list: Mutex::new(Vec::with_capacity(CONN_CAP)),
                next_id: AtomicUsize::new(0),
            },
            body_bytes: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
        });
        let accept = {
            let shared = shared.clone();
            thread::Builder::new()
                .name("api-accept".into())
                .spawn(move || accept_loop(&listener, &shared))?
        };
        let stop = {
            let shared = shared.clone();
            move || {
                shared.stopping.store(true, Ordering::Release);
                shared.slots.close_all();
                // Wakes the accept loop: shutdown(2) on a listening socket
                // makes a blocked accept(2) return (Linux). Connecting to it
                // instead would send a SYN out of the host when the address
                // is not (yet) ours.
                // SAFETY: the listener stays open until the accept thread,
                // joined after this, returns.
                unsafe {
                    libc::shutdown(listen_fd, libc::SHUT_RDWR);
                }
            }
        };
        #[cfg(test)]
        let open = move || shared.slots.len();
        Ok(Self {
            addr,
            stop: Box::new(stop),
            #[cfg(test)]
            open: Box::new(open),
            accept: Some(accept),
        })
    }

    /// Connections open now.
    #[cfg(test)]
    pub fn open_connections(&self) -> usize {
        (self.open)()
    }

    pub fn stop(mut self) {
        (self.stop)();
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop<H: Handler>(listener: &TcpListener, shared: &Arc<Shared<H>>) {
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = listener.accept();
        if shared.stopping.load(Ordering::Acquire) {
            return;
        }
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::ZERO;
                let local = stream.local_addr();
                if local.is_ok_and(|l| !shared.handler.admits(peer, l)) {
                    // Counted (as a 403), not logged: a flood must not fill the log.
                    shared.handler.record(403, Duration::ZERO);
                    continue;
                }
                // The head and the body of an answer are two writes: without
                // this, Nagle holds the second for the client's delayed ACK.
                let _ = stream.set_nodelay(true);
                start_connection(shared, stream);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                // Out of descriptors or memory: the pending connections wait
                // in the backlog until some close; say so once per streak.
                if backoff.is_zero() {
                    shared.handler.note(&format!(
                        "API: accepting a connection failed ({e}); retrying with back-off"
                    ));
                }
                backoff = (backoff * 2).clamp(Duration::from_millis(5), ACCEPT_BACKOFF_MAX);
                thread::sleep(backoff);
            }
        }
    }
}

fn start_connection<H: Handler>(shared: &Arc<Shared<H>>, stream: TcpStream) {
    let stream = Arc::new(stream);
    let Some(id) = shared.slots.admit(&stream) else {
        // Every connection is being answered: say so now, without a thread.
        let mut r = Response::text(503, "the API is busy: too many connections; retry");
        r.headers.push(("Retry-After", "1".into()));
        let _ = write_response(&stream, &r, Instant::now() + Duration::from_millis(100));
        shared.handler.record(503, Duration::ZERO);
        return;
    };
    let conn_shared = shared.clone();
    let conn_stream = stream.clone();
    let spawned = thread::Builder::new()
        .name("api-conn".into())
        .stack_size(CONN_STACK)
        .spawn(move || {
            serve_connection(&conn_shared, &conn_stream, id);
            conn_shared.slots.release(id);
        });
    if spawned.is_err() {
        // No thread to be had: drop the connection (the slot with it).
        shared.slots.release(id);
        let _ = stream.shutdown(Shutdown::Both);
    }
}

/// Reads from `stream` into `buf` until `done(filled)` or the deadline.
/// Returns the bytes filled, or `None` on a closed/failed/late connection.
fn read_until(
    mut stream: &TcpStream,
    buf: &mut [u8],
    mut filled: usize,
    deadline: Instant,
    mut done: impl FnMut(&[u8], usize) -> bool,
) -> Result<usize, ReadFail> {
    while !done(buf, filled) {
        if filled == buf.len() {
            return Ok(filled);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadFail::Late);
        }
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Err(ReadFail::Closed),
            Ok(n) => filled += n,
            Err(e) if matches!(e.kind(), ErrorKind::Interrupted) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(ReadFail::Late);
            }
            Err(_) => return Err(ReadFail::Closed),
        }
    }
    Ok(filled)
}

enum ReadFail {
    Late,
    Closed,
}

fn serve_connection<H: Handler>(shared: &Shared<H>, stream: &TcpStream, id: usize) {
    let handler = &*shared.handler;
    let mut buf = vec![0u8; MAX_HEAD];
    // Look for the blank line only in what is new (and the 3 bytes before it),
    // so a head sent a byte at a time costs linear time.
    let mut scanned: usize = 0;
    let filled = match read_until(
        stream,
        &mut buf,
        0,
        Instant::now() + HEAD_TIMEOUT,
        |b, n| {
            let from = scanned.saturating_sub(3);
            scanned = n;
            http::head_end(&b[from..n]).is_some()
        },
    ) {
        Ok(n) => n,
        Err(ReadFail::Late) => {
            answer(
                shared,
                stream,
                &Response::text(408, "the request head was not sent in time"),
                Instant::now(),
            );
            return;
        }
        Err(ReadFail::Closed) => return,
    };
    let started = Instant::now();
    let head = match http::parse_head(&buf[..filled]) {
        Ok(Some(mut h)) => {
            h.peer = stream.peer_addr().ok();
            h
        }
        Ok(None) => return, // unreachable: read_until stopped at the blank line or a full buffer
        Err(e) => {
            answer(
                shared,
                stream,
                &Response::text(e.status(), &e.message()),
                started,
            );
            return;
        }
    };
    let (limit, pass) = match handler.before_body(&head) {
        Ok(x) => x,
        Err(r) => {
            answer(shared, stream, &r, started);
            return;
        }
    };
    if head.content_length > limit as u64 {
        let r = Response::text(
            413,
            &format!(
                "the body is larger than {limit} bytes, the most {} {} takes",
                head.method,
                head.path()
            ),
        );
        answer(shared, stream, &r, started);
        return;
    }
    // At most `limit` (≤ MAX_BODY) now, so the allocation below is bounded.
    let length = head.content_length as usize;
    let Some(_reserved) = Reservation::take(&shared.body_bytes, length) else {
        let mut r = Response::text(503, "the API is busy reading other bodies; retry");
        r.headers.push(("Retry-After", "1".into()));
        answer(shared, stream, &r, started);
        return;
    };
    if handler.authorised(&pass) && !shared.slots.set_phase(id, Phase::Body) {
        return;
    }
    let mut body = vec![0u8; length];
    let early = (filled - head.len).min(length);
    body[..early].copy_from_slice(&buf[head.len..head.len + early]);
    drop(buf);
    if early < length && head.expects_continue() {
        let _ = write_until(
            stream,
            b"HTTP/1.1 100 Continue\r\n\r\n",
            Instant::now() + WRITE_TIMEOUT,
        );
    }
    match read_until(
        stream,
        &mut body,
        early,
        Instant::now() + BODY_TIMEOUT,
        |_, n| n == length,
    ) {
        Ok(_) => {}
        Err(ReadFail::Late) => {
            handler.note(&format!(
                "API: {} {}: body not sent within {} s; dropped",
                head.method,
                head.path(),
                BODY_TIMEOUT.as_secs()
            ));
            answer(
                shared,
                stream,
                &Response::text(408, "the body was not sent in time"),
                started,
            );
            return;
        }
        Err(ReadFail::Closed) => return,
    }
    if !shared.slots.set_phase(id, Phase::Answering) {
        return;
    }
    let r = handler.respond(&head, pass, body);
    // Waiting for the client again; if it was evicted meanwhile, it is gone.
    if shared.slots.set_phase(id, Phase::Waiting) {
        answer(shared, stream, &r, started);
    }
}

/// Writes the answer within [`WRITE_TIMEOUT`], then lingers (bounded) so it
/// is read, not reset. The connection stays evictable meanwhile: it is the
/// client that is being waited for.
fn answer<H: Handler>(shared: &Shared<H>, stream: &TcpStream, r: &Response, started: Instant) {
    let _ = write_response(stream, r, Instant::now() + WRITE_TIMEOUT);
    shared.handler.record(r.status, started.elapsed());
    let _ = stream.shutdown(Shutdown::Write);
    linger(stream);
}

fn write_response(stream: &TcpStream, r: &Response, deadline: Instant) -> std::io::Result<()> {
    let headers: Vec<(&str, &str)> = r.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let head = http::response_head(r.status, &headers, r.body.len());
    write_until(stream, head.as_bytes(), deadline)?;
    write_until(stream, &r.body, deadline)
}

/// `write_all` with one deadline for all of `bytes`: a socket timeout alone
/// bounds each write, and a client taking a byte at a time would renew it
/// for ever.
fn write_until(mut stream: &TcpStream, mut bytes: &[u8], deadline: Instant) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        stream.set_write_timeout(Some(left))?;
        match stream.write(bytes) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads and discards what the client still sends, through a fixed buffer,
/// for at most [`LINGER_TIME`] and [`LINGER_BYTES`]: closing with unread data
/// makes the kernel send a reset, which can destroy the answer in flight.
fn linger(mut stream: &TcpStream) {
    let deadline = Instant::now() + LINGER_TIME;
    let mut chunk = [0u8; LINGER_CHUNK];
    let mut read = 0;
    while read < LINGER_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => read += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_budget_is_shared_and_given_back() {
        let used = AtomicUsize::new(0);
        let a = Reservation::take(&used, BODY_BUDGET - 10).unwrap();
        assert!(Reservation::take(&used, 11).is_none());
        let b = Reservation::take(&used, 10).unwrap();
        assert!(Reservation::take(&used, 1).is_none());
        drop(a);
        drop(b);
        assert_eq!(used.load(Ordering::Acquire), 0);
        assert!(Reservation::take(&used, usize::MAX).is_none());
    }

    /// A 200 that sends the body back.
    fn echo(body: Vec<u8>) -> Response {
        Response {
            status: 200,
            headers: Vec::new(),
            body,
        }
    }

    struct Echo;

    impl Handler for Echo {
        type Pass = ();
        fn before_body(&self, head: &Head) -> Result<(usize, ()), Response> {
            Ok((
                if head.method == http::Method::Post {
                    16
                } else {
                    0
                },
                (),
            ))
        }
        fn respond(&self, _: &Head, _: (), body: Vec<u8>) -> Response {
            echo(body)
        }
        fn record(&self, _: u16, _: Duration) {}
        fn note(&self, _: &str) {}
    }

    fn ask(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(request).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[test]
    fn the_cap_holds_and_new_requests_evict_idle_connections() {
        let server = Server::start("127.0.0.1:0".parse().unwrap(), Arc::new(Echo)).unwrap();
        let idle: Vec<TcpStream> = (0..CONN_CAP + 16)
            .map(|_| TcpStream::connect(server.addr).unwrap())
            .collect();
        let t0 = Instant::now();
        while server.open_connections() < CONN_CAP && t0.elapsed() < Duration::from_secs(2) {
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(server.open_connections(), CONN_CAP);
        let t0 = Instant::now();
        let answer = ask(
            server.addr,
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
        );
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nabc"), "{answer}");
        assert!(t0.elapsed() < Duration::from_secs(1));
        assert!(server.open_connections() <= CONN_CAP);
        // Over the route's limit: refused from the head, the body never read.
        let answer = ask(
            server.addr,
            b"POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n",
        );
        assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
        drop(idle);
        server.stop();
    }

    /// Echoes bodies; a request with `X-Proof: yes` counts as authorised.
    struct Gate;

    impl Handler for Gate {
        type Pass = bool;
        fn before_body(&self, head: &Head) -> Result<(usize, bool), Response> {
            Ok((16, head.header("X-Proof") == Some("yes")))
        }
        fn authorised(&self, pass: &bool) -> bool {
            *pass
        }
        fn respond(&self, _: &Head, _: bool, body: Vec<u8>) -> Response {
            echo(body)
        }
        fn record(&self, _: u16, _: Duration) {}
        fn note(&self, _: &str) {}
    }

    /// Starts a 16-byte upload, lets a crowd of idle connections come, then
    /// sends the rest: the answer, or "" if the upload was cut off.
    fn upload_through_a_crowd(server: &Server, proof: &str) -> String {
        let mut up = TcpStream::connect(server.addr).unwrap();
        up.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        write!(
            up,
            "POST / HTTP/1.1\r\nContent-Length: 16\r\nX-Proof: {proof}\r\n\r\nabcd"
        )
        .unwrap();
        thread::sleep(Duration::from_millis(200));
        let crowd: Vec<TcpStream> = (0..CONN_CAP + 16)
            .map(|_| TcpStream::connect(server.addr).unwrap())
            .collect();
        let t0 = Instant::now();
        while server.open_connections() < CONN_CAP && t0.elapsed() < Duration::from_secs(2) {
            thread::sleep(Duration::from_millis(10));
        }
        thread::sleep(Duration::from_millis(100));
        let _ = up.write_all(b"efghijklmnop");
        let mut out = String::new();
        let _ = up.read_to_string(&mut out);
        drop(crowd);
        out
    }

    #[test]
    fn an_authorised_upload_is_not_evicted_for_newcomers() {
        let server = Server::start("127.0.0.1:0".parse().unwrap(), Arc::new(Gate)).unwrap();
        let answer = upload_through_a_crowd(&server, "yes");
        assert!(answer.ends_with("\r\n\r\nabcdefghijklmnop"), "{answer:?}");
        // Without the proof the same upload is the oldest waiting connection,
        // and the crowd cuts it off (what an attacker could do to anyone's).
        let answer = upload_through_a_crowd(&server, "no");
        assert_eq!(answer, "");
        server.stop();
    }

    #[test]
    fn listens_on_an_address_the_host_does_not_have_yet() {
        // The LAN address may come up after the daemon (boot): TEST-NET-1 is
        // on no interface here, and the bind still works (no packet is sent).
        let server = Server::start("192.0.2.77:0".parse().unwrap(), Arc::new(Echo)).unwrap();
        assert_eq!(server.addr.ip().to_string(), "192.0.2.77");
        server.stop();
        // A taken port still fails.
        let server = Server::start("127.0.0.1:0".parse().unwrap(), Arc::new(Echo)).unwrap();
        assert!(Server::start(server.addr, Arc::new(Echo)).is_err());
        server.stop();
    }

    #[test]
    fn a_client_that_does_not_read_is_cut_off_at_the_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _reader = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (writer, _) = listener.accept().unwrap();
        // Far more than the two sockets' buffers hold.
        let bytes = vec![0u8; 64 << 20];
        let t0 = Instant::now();
        let r = write_until(&writer, &bytes, t0 + Duration::from_millis(300));
        assert_eq!(r.unwrap_err().kind(), ErrorKind::TimedOut);
        assert!(t0.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn json_strings() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
