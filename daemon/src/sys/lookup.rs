//! Host-name lookups through the system resolver (getaddrinfo), off the
//! caller's thread. getaddrinfo cannot be cancelled and takes its own time
//! (10 s with one silent nameserver, 30 s with three), so the daemon's apply
//! and the health round never call it: they ask here, get what is known at
//! once (or wait a bounded time, for a one-shot command), and a later ask
//! takes the answer when it has landed.
//!
//! Bounds live here: at most [`MAX_THREADS`] lookups run at once (more wait in
//! a queue), one lookup per host:port is in flight, answers are kept with the
//! time they landed, and the table holds at most [`MAX_ENTRIES`] names (the
//! least recently asked idle one makes room).

use std::{
    net::{SocketAddr, ToSocketAddrs},
    sync::{Condvar, Mutex},
    time::{Duration, Instant},
};

/// Lookup threads running at once: a config may list many upstreams, and a
/// stuck resolver holds each thread for its whole time-out.
pub const MAX_THREADS: usize = 4;
/// Names kept (answers and queued lookups).
pub const MAX_ENTRIES: usize = 128;
/// The longest DNS name.
pub const MAX_HOST: usize = 253;

type Key = (String, u16);

/// A finished lookup: the first address or why there is none, and when it landed.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub result: Result<SocketAddr, String>,
    pub at: Instant,
}

impl Answer {
    /// How long ago it landed.
    pub fn age(&self) -> Duration {
        self.at.elapsed()
    }
}

/// What an ask found.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// An answer that landed at or after the time asked for.
    Fresh(Answer),
    /// No such answer yet; a lookup runs or waits for a thread (unless the
    /// table is full of waiting names). `last`: the previous answer, if any.
    Pending { last: Option<Answer> },
}

#[derive(Debug, PartialEq)]
enum Work {
    Idle,
    Queued,
    Running,
}

#[derive(Debug)]
struct Entry {
    answer: Option<Answer>,
    work: Work,
    asked: Instant,
}

/// The bookkeeping, without threads or clocks of its own (unit-tested).
#[derive(Debug)]
pub struct Table {
    /// A list, not a map: it holds at most `max_entries` (a config's few
    /// upstreams, in practice), and a map's code costs flash on the router.
    entries: Vec<(Key, Entry)>,
    queue: Vec<Key>,
    running: usize,
    max_threads: usize,
    max_entries: usize,
}

impl Table {
    pub fn new(max_threads: usize, max_entries: usize) -> Self {
        Self {
            entries: Vec::new(),
            queue: Vec::new(),
            running: 0,
            max_threads: max_threads.max(1),
            max_entries: max_entries.max(1),
        }
    }

    fn position(&self, key: &Key) -> Option<usize> {
        self.entries.iter().position(|(k, _)| k == key)
    }

    fn get_mut(&mut self, key: &Key) -> Option<&mut Entry> {
        let i = self.position(key)?;
        Some(&mut self.entries[i].1)
    }

    /// An answer for `key` that landed at or after `since` (`None`: any), or a
    /// lookup for it started (returned `true`: the caller runs it, then calls
    /// `finish`) or queued.
    pub fn ask(&mut self, key: &Key, since: Option<Instant>, now: Instant) -> (Reply, bool) {
        let i = match self.position(key) {
            Some(i) => i,
            None if self.make_room() => {
                self.entries.push((
                    key.clone(),
                    Entry {
                        answer: None,
                        work: Work::Idle,
                        asked: now,
                    },
                ));
                self.entries.len() - 1
            }
            None => return (Reply::Pending { last: None }, false),
        };
        let e = &mut self.entries[i].1;
        e.asked = now;
        if let Some(a) = &e.answer
            && since.is_none_or(|s| a.at >= s)
        {
            return (Reply::Fresh(a.clone()), false);
        }
        let last = e.answer.clone();
        let mut start = false;
        if e.work == Work::Idle {
            if self.running < self.max_threads {
                e.work = Work::Running;
                self.running += 1;
                start = true;
            } else {
                e.work = Work::Queued;
                self.queue.push(key.clone());
            }
        }
        (Reply::Pending { last }, start)
    }

    /// Drops the least recently asked idle name when the table is full; false
    /// when every name is being looked up or waits for a thread.
    fn make_room(&mut self) -> bool {
        if self.entries.len() < self.max_entries {
            return true;
        }
        let oldest = (self.entries.iter().enumerate())
            .filter(|(_, (_, e))| e.work == Work::Idle)
            .min_by_key(|(_, (_, e))| e.asked)
            .map(|(i, _)| i);
        oldest.map(|i| self.entries.swap_remove(i)).is_some()
    }

    /// A lookup of `key` landed. Returns the next queued name for the same
    /// thread to look up (the thread ends on `None`).
    pub fn finish(
        &mut self,
        key: &Key,
        result: Result<SocketAddr, String>,
        now: Instant,
    ) -> Option<Key> {
        if let Some(e) = self.get_mut(key) {
            e.answer = Some(Answer { result, at: now });
            e.work = Work::Idle;
        }
        while !self.queue.is_empty() {
            let next = self.queue.remove(0);
            if let Some(e) = self.get_mut(&next)
                && e.work == Work::Queued
            {
                e.work = Work::Running;
                return Some(next);
            }
        }
        self.running = self.running.saturating_sub(1);
        None
    }

    /// What `ask` would answer, without starting anything.
    pub fn peek(&self, key: &Key, since: Option<Instant>) -> Reply {
        let answer = (self.position(key)).and_then(|i| self.entries[i].1.answer.clone());
        match answer {
            Some(a) if since.is_none_or(|s| a.at >= s) => Reply::Fresh(a),
            last => Reply::Pending { last },
        }
    }

    /// Lookups running now.
    pub fn running(&self) -> usize {
        self.running
    }

    /// Names in the table.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);
/// Signalled whenever a lookup lands (for `wait`).
static LANDED: Condvar = Condvar::new();

fn with_table<T>(f: impl FnOnce(&mut Table) -> T) -> T {
    let mut g = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(|| Table::new(MAX_THREADS, MAX_ENTRIES)))
}

/// Asks for `host:port` without blocking: an answer that landed at or after
/// `since` (`None`: any), or `Pending` while a lookup runs in the background.
pub fn ask(host: &str, port: u16, since: Option<Instant>) -> Reply {
    if host.len() > MAX_HOST {
        return Reply::Fresh(Answer {
            result: Err(format!("host name longer than {MAX_HOST} bytes")),
            at: Instant::now(),
        });
    }
    let key = (host.to_string(), port);
    let (reply, start) = with_table(|t| t.ask(&key, since, Instant::now()));
    if start {
        spawn(key);
    }
    reply
}

/// `ask`, waiting until `until` at most for the answer to land.
pub fn wait(host: &str, port: u16, since: Option<Instant>, until: Instant) -> Reply {
    let reply = ask(host, port, since);
    if matches!(reply, Reply::Fresh(_)) {
        return reply;
    }
    let key = (host.to_string(), port);
    // Looked at and waited on under one lock: a landing between the two is not missed.
    let mut g = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let reply = g
            .get_or_insert_with(|| Table::new(MAX_THREADS, MAX_ENTRIES))
            .peek(&key, since);
        let left = until.saturating_duration_since(Instant::now());
        if matches!(reply, Reply::Fresh(_)) || left.is_zero() {
            return reply;
        }
        g = LANDED
            .wait_timeout(g, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// One thread looks up `key`, then whatever waits in the queue, and ends.
fn spawn(mut key: Key) {
    loop {
        let k = key.clone();
        let started = std::thread::Builder::new()
            .name("lookup".into())
            .spawn(move || {
                let mut key = k;
                loop {
                    let result = resolve(&key.0, key.1);
                    let next = with_table(|t| t.finish(&key, result, Instant::now()));
                    LANDED.notify_all();
                    match next {
                        Some(n) => key = n,
                        None => break,
                    }
                }
            });
        let Err(e) = started else { return };
        // No thread: the name fails now, and the queue is not left without one.
        let next =
            with_table(|t| t.finish(&key, Err(format!("no lookup thread: {e}")), Instant::now()));
        LANDED.notify_all();
        match next {
            Some(n) => key = n,
            None => return,
        }
    }
}

/// The system resolver's first address for `host:port`.
fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let t = Instant::now();
    let r = (host, port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())
        .and_then(|mut a| a.next().ok_or_else(|| "no address".to_string()));
    log::debug!("lookup {host}: {r:?} in {:?}", t.elapsed());
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> Key {
        (format!("h{n}.example"), 51820)
    }
    fn addr() -> SocketAddr {
        "192.0.2.1:51820".parse().unwrap()
    }

    #[test]
    fn at_most_max_threads_run_and_the_queue_drains_in_order() {
        let t0 = Instant::now();
        let mut t = Table::new(2, 16);
        let started: Vec<bool> = (0..5).map(|n| t.ask(&key(n), None, t0).1).collect();
        assert_eq!(started, [true, true, false, false, false]);
        assert_eq!(t.running(), 2);
        // A finished thread takes the next queued name, in order.
        assert_eq!(t.finish(&key(0), Ok(addr()), t0), Some(key(2)));
        assert_eq!(t.finish(&key(1), Ok(addr()), t0), Some(key(3)));
        assert_eq!(t.running(), 2);
        assert_eq!(t.finish(&key(2), Ok(addr()), t0), Some(key(4)));
        assert_eq!(t.finish(&key(3), Ok(addr()), t0), None);
        assert_eq!(t.finish(&key(4), Ok(addr()), t0), None);
        assert_eq!(t.running(), 0);
    }

    #[test]
    fn one_lookup_in_flight_per_name() {
        let t0 = Instant::now();
        let mut t = Table::new(4, 16);
        assert_eq!(
            t.ask(&key(0), None, t0),
            (Reply::Pending { last: None }, true)
        );
        for _ in 0..10 {
            assert_eq!(
                t.ask(&key(0), None, t0),
                (Reply::Pending { last: None }, false)
            );
        }
        assert_eq!(t.running(), 1);
        // Queued names are queued once too.
        let mut t = Table::new(1, 16);
        t.ask(&key(0), None, t0);
        for _ in 0..10 {
            t.ask(&key(1), None, t0);
        }
        assert_eq!(t.finish(&key(0), Ok(addr()), t0), Some(key(1)));
        assert_eq!(t.finish(&key(1), Ok(addr()), t0), None);
    }

    #[test]
    fn answers_are_kept_with_their_time() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(10);
        let mut t = Table::new(4, 16);
        t.ask(&key(0), None, t0);
        t.finish(&key(0), Ok(addr()), t1);
        let fresh = Reply::Fresh(Answer {
            result: Ok(addr()),
            at: t1,
        });
        // Any answer, or one landed since a time before it: no new lookup.
        assert_eq!(t.ask(&key(0), None, t1), (fresh.clone(), false));
        assert_eq!(t.ask(&key(0), Some(t0), t1), (fresh, false));
        // Asked for a newer one: the old one comes along as `last`, one lookup starts.
        let later = t1 + Duration::from_secs(1);
        let (reply, start) = t.ask(&key(0), Some(later), later);
        assert!(start);
        let Reply::Pending { last: Some(last) } = reply else {
            panic!("{reply:?}")
        };
        assert_eq!((last.result, last.at), (Ok(addr()), t1));
        // A failure is an answer too (callers decide whether to keep an address).
        t.finish(&key(0), Err("no".into()), later);
        assert!(matches!(
            t.ask(&key(0), Some(later), later),
            (Reply::Fresh(Answer { result: Err(_), .. }), false)
        ));
    }

    #[test]
    fn the_table_is_bounded() {
        let t0 = Instant::now();
        let mut t = Table::new(2, 4);
        for n in 0..4 {
            let at = t0 + Duration::from_secs(n as u64);
            if t.ask(&key(n), None, at).1 {
                // Idle again at once: only the two running ones stay busy otherwise.
                let next = t.finish(&key(n), Ok(addr()), at);
                assert_eq!(next, None);
            }
        }
        assert_eq!(t.len(), 4);
        // Full: the least recently asked idle name (h0) makes room.
        let later = t0 + Duration::from_secs(10);
        t.ask(&key(1), None, later);
        assert!(t.ask(&key(9), None, later).1);
        assert_eq!(t.len(), 4);
        assert!(t.ask(&key(0), None, later).1, "h0 was dropped");
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn a_table_of_busy_names_refuses_new_ones() {
        let t0 = Instant::now();
        let mut t = Table::new(1, 3);
        for n in 0..3 {
            t.ask(&key(n), None, t0);
        }
        // One running, two queued: nothing to drop, nothing started or queued.
        assert_eq!(
            t.ask(&key(7), None, t0),
            (Reply::Pending { last: None }, false)
        );
        assert_eq!(t.len(), 3);
        assert_eq!(t.finish(&key(0), Ok(addr()), t0), Some(key(1)));
    }

    #[test]
    fn a_lookup_lands_in_the_background() {
        // The loopback name needs no DNS server; the answer comes by `wait`.
        let until = Instant::now() + Duration::from_secs(5);
        let r = wait("localhost", 9, None, until);
        let Reply::Fresh(a) = r else { panic!("{r:?}") };
        assert!(a.result.is_ok_and(|a| a.ip().is_loopback()));
        let long = "a".repeat(MAX_HOST + 1);
        assert!(matches!(
            ask(&long, 1, None),
            Reply::Fresh(Answer { result: Err(_), .. })
        ));
    }
}
