//! The forwarder's defences against forged answers and query floods, as pure
//! parts (no sockets, no clock of their own): random bytes from the OS in
//! batches, bounded ID draws, 0x20 letter-case randomisation and the compare
//! that goes with it, the verdict on an arriving answer, the per-server memory
//! of whether an upstream keeps the case we sent, and the fixed-capacity table
//! of in-flight questions that coalesces identical ones and caps the rest.
//!
//! Why each exists: an off-path forger must guess the source port (see
//! `upstream.rs`), the 16-bit ID and the letter case of every letter of the
//! name, all within one round trip; identical questions in flight share one
//! upstream query, so a burst of them does not give the forger more tickets;
//! and the table's capacity is what stops a flood of unique names from growing
//! memory or exhausting the ID space.

use std::{
    hash::{Hash, RandomState},
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use heapless::index_map::IndexMap;

use super::wire::Query;

/// Questions in flight per route (unique questions: coalesced ones share a
/// slot). Beyond it a query is answered SERVFAIL at once and counted. At a
/// typical upstream round trip of 20–100 ms this is 10–50k misses a second; a
/// silent upstream holds each slot for the time budget, so a flood of unique
/// names fills it and stops there. A power of two (the table's layout).
pub const MAX_INFLIGHT: usize = 1024;
/// Clients waiting on one in-flight question besides the one that asked it
/// first; more identical questions at once are answered SERVFAIL.
pub const MAX_WAITERS: usize = 64;
/// Random IDs tried for a query before giving up (only IDs already in flight
/// on the same socket collide, and a socket carries at most a handful).
pub const MAX_ID_DRAWS: usize = 4;
/// Consecutive answers with the right ID and port but the name in the wrong
/// letter case after which a server is taken to lower-case names and is sent
/// names without 0x20 for `CASE_RECHECK`.
pub const CASE_STRIKES: u32 = 3;
/// How long a server that lower-cases names is spared 0x20 before it is tried
/// again (an upstream's software changes rarely).
pub const CASE_RECHECK: Duration = Duration::from_secs(15 * 60);
/// OS random bytes fetched per `getrandom` call (one call per ~15 queries).
pub const RANDOM_BATCH: usize = 512;
/// Random bytes the 0x20 bits of the longest name need (255 bytes, one bit each).
pub const CASE_BITS_BYTES: usize = 32;

const HEADER: usize = 12;

/// Random bytes from the OS generator, fetched in batches so a query does not
/// pay a system call each. Never reused: each byte is handed out once.
pub struct RandomBytes {
    buf: [u8; RANDOM_BATCH],
    used: usize,
}

impl Default for RandomBytes {
    fn default() -> Self {
        Self {
            buf: [0; RANDOM_BATCH],
            used: RANDOM_BATCH,
        }
    }
}

impl RandomBytes {
    /// Fills `out` (at most `RANDOM_BATCH` bytes) from the batch, refilling it
    /// with `refill` when it runs out. `false` when the OS generator failed.
    pub fn fill_with(&mut self, out: &mut [u8], refill: impl FnOnce(&mut [u8]) -> bool) -> bool {
        debug_assert!(out.len() <= RANDOM_BATCH);
        if RANDOM_BATCH - self.used < out.len() {
            if !refill(&mut self.buf) {
                return false;
            }
            self.used = 0;
        }
        out.copy_from_slice(&self.buf[self.used..self.used + out.len()]);
        // Handed out once: wipe what was given.
        self.buf[self.used..self.used + out.len()].fill(0);
        self.used += out.len();
        true
    }

    /// `fill_with` from the kernel's generator (getrandom).
    pub fn fill(&mut self, out: &mut [u8]) -> bool {
        self.fill_with(out, |b| {
            rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, b).is_ok()
        })
    }
}

/// The first of up to `MAX_ID_DRAWS` candidate IDs (two bytes each of
/// `random`) that `taken` does not hold; `None` when all collide (the caller
/// answers SERVFAIL rather than loop).
pub fn draw_id(random: &[u8; 2 * MAX_ID_DRAWS], mut taken: impl FnMut(u16) -> bool) -> Option<u16> {
    random
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .find(|&id| !taken(id))
}

/// 0x20: sets the case of every letter of a wire-format name from one random
/// bit each (`bits`, least significant first; `case_bits_bytes(name.len())`
/// of them give every position its own bit). Length bytes are at most 63,
/// below every letter, so they are never touched.
pub fn scramble_case(name: &mut [u8], bits: &[u8]) {
    if bits.is_empty() {
        return;
    }
    for (i, c) in name.iter_mut().enumerate() {
        if c.is_ascii_alphabetic() {
            let bit = bits[(i / 8) % bits.len()] >> (i % 8) & 1;
            *c = if bit == 1 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
        }
    }
}

/// Random bytes a name of `len` wire bytes needs for 0x20: one bit per
/// position, at most `CASE_BITS_BYTES` (a name is at most 255 bytes). Drawing
/// only these keeps the OS generator's cost per query small.
pub fn case_bits_bytes(len: usize) -> usize {
    len.div_ceil(8).min(CASE_BITS_BYTES)
}

/// What we sent on one upstream query, to judge what comes back.
pub struct Sent<'a> {
    pub server: SocketAddr,
    pub id: u16,
    /// The question section as sent: name (letter case as scrambled), type, class.
    pub question: &'a [u8],
    /// The name's case was scrambled: only an exact echo is our answer.
    pub exact_case: bool,
}

/// The verdict on a datagram arriving on a query's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// From the server we asked, our ID, our question (case included).
    Accept,
    /// Everything right except the letter case of the name: a server that
    /// lower-cases names, or a forger who guessed port and ID but not the case.
    /// Not accepted; the query is asked again without 0x20.
    CaseMismatch,
    /// Someone else's, stale, or forged: ignored.
    Reject,
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Judges an answer: server address and port, ID, a response to a standard
/// query with exactly one question, and that question byte for byte (the
/// name's case only when `exact_case`; type and class always exactly).
pub fn judge(answer: &[u8], from: SocketAddr, sent: &Sent) -> Verdict {
    if from.port() != sent.server.port() || canonical(from.ip()) != canonical(sent.server.ip()) {
        return Verdict::Reject;
    }
    let q = sent.question;
    let Some(head) = answer.get(..HEADER) else {
        return Verdict::Reject;
    };
    let Some(echo) = answer.get(HEADER..HEADER + q.len()) else {
        return Verdict::Reject;
    };
    let id = u16::from_be_bytes([head[0], head[1]]);
    let response = head[2] & 0x80 != 0;
    let opcode = (head[2] >> 3) & 0xf;
    let one_question = head[4] == 0 && head[5] == 1;
    if id != sent.id || !response || opcode != 0 || !one_question || q.len() < 5 {
        return Verdict::Reject;
    }
    let (name, tail) = q.split_at(q.len() - 4);
    let (echo_name, echo_tail) = echo.split_at(q.len() - 4);
    if tail != echo_tail || !name.eq_ignore_ascii_case(echo_name) {
        return Verdict::Reject;
    }
    if name == echo_name || !sent.exact_case {
        Verdict::Accept
    } else {
        Verdict::CaseMismatch
    }
}

/// Whether one server keeps the letter case of the names we send.
#[derive(Debug, Clone, Default)]
pub struct CaseMemory {
    /// Its last answers echoed our case exactly: another case now is a forgery.
    trusted: bool,
    strikes: u32,
    off_until: Option<Instant>,
}

impl CaseMemory {
    /// Scramble the case of names sent to this server now?
    pub fn scramble(&self, now: Instant) -> bool {
        self.off_until.is_none_or(|t| now >= t)
    }

    /// An answer echoed the scrambled case exactly: the server keeps case.
    pub fn kept(&mut self) {
        self.trusted = true;
        self.strikes = 0;
        self.off_until = None;
    }

    /// An answer with our port and ID came back with the name in another
    /// case. `true`: ask again at once without 0x20 (a server not known to
    /// keep case may lower-case names). `false`: ignore it and keep waiting (a
    /// server that keeps case did not send it: a forger who hit port and ID;
    /// asking again without 0x20 would hand it an easier second try). After
    /// `CASE_STRIKES` in a row with no exact echo between (a forger would have
    /// to hit port and ID that often within the round trips in between),
    /// 0x20 is off for this server for `CASE_RECHECK`: it changed its ways.
    pub fn mismatch(&mut self, now: Instant) -> bool {
        let ask_again = !self.trusted;
        self.strikes += 1;
        if self.strikes >= CASE_STRIKES {
            self.strikes = 0;
            self.trusted = false;
            self.off_until = Some(now + CASE_RECHECK);
        }
        ask_again
    }
}

/// What identifies a question for coalescing: the same as the cache's key
/// within one route (name in lowercase, type, class, EDNS or not), and the
/// transport (a TCP retry is never merged with a UDP question).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlightKey {
    /// Shared: the table and the flight's leader hold one copy.
    name: Arc<[u8]>,
    qtype: u16,
    qclass: u16,
    edns: bool,
    tcp: bool,
}

impl FlightKey {
    pub fn new(q: &Query, tcp: bool) -> Self {
        Self {
            name: q.wire_name.as_slice().into(),
            qtype: q.qtype,
            qclass: q.qclass,
            edns: q.edns.is_some(),
            tcp,
        }
    }
}

/// What `Flights::join` decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Join {
    /// First to ask: send the query, then `finish` and hand the answer on.
    Leader,
    /// The same question is in flight: wait for its answer.
    Follower,
    /// The table (or this question's waiters) is full: answer SERVFAIL now.
    Full,
}

/// The in-flight questions of one route: fixed capacity (`MAX_INFLIGHT`),
/// keyed with a per-process random hash key (a client choosing names cannot
/// make them collide).
pub struct Flights<W> {
    map: IndexMap<FlightKey, Vec<W>, RandomState, MAX_INFLIGHT>,
}

impl<W> Default for Flights<W> {
    fn default() -> Self {
        Self {
            map: IndexMap::default(),
        }
    }
}

impl<W> Flights<W> {
    /// Joins the flight for `key`: leads a new one, waits on one in flight
    /// (the waiter `make` makes is kept: a leader needs none), or is refused.
    pub fn join(&mut self, key: &FlightKey, make: impl FnOnce() -> W) -> Join {
        if let Some(waiters) = self.map.get_mut(key) {
            if waiters.len() >= MAX_WAITERS {
                return Join::Full;
            }
            waiters.push(make());
            return Join::Follower;
        }
        match self.map.insert(key.clone(), Vec::new()) {
            Ok(_) => Join::Leader,
            Err(_) => Join::Full,
        }
    }

    /// Ends the flight for `key`: its waiters, to be answered.
    pub fn finish(&mut self, key: &FlightKey) -> Vec<W> {
        self.map.swap_remove(key).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::wire::{self, tests::query};

    #[test]
    fn random_bytes_are_batched_and_never_handed_out_twice() {
        let mut r = RandomBytes::default();
        let calls = std::cell::Cell::new(0u8);
        let refill = |b: &mut [u8]| {
            calls.set(calls.get() + 1);
            for (i, x) in b.iter_mut().enumerate() {
                *x = (i as u8).wrapping_add(calls.get());
            }
            true
        };
        let mut a = [0u8; 100];
        assert!(r.fill_with(&mut a, refill));
        let mut b = [0u8; 100];
        assert!(r.fill_with(&mut b, refill));
        assert_ne!(a, b, "the second draw continues the batch");
        assert_eq!(b[0], 101);
        // 512 bytes serve five draws of 100; the sixth refills.
        for _ in 0..3 {
            assert!(r.fill_with(&mut a, refill));
        }
        assert_eq!(calls.get(), 1);
        assert!(r.fill_with(&mut a, refill));
        assert_eq!(calls.get(), 2);
        // A failing generator is reported, not papered over.
        let mut r = RandomBytes::default();
        assert!(!r.fill_with(&mut a, |_| false));
        // The real one works and differs draw to draw.
        let mut r = RandomBytes::default();
        let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
        assert!(r.fill(&mut x) && r.fill(&mut y));
        assert_ne!(x, y);
    }

    #[test]
    fn id_draws_are_bounded() {
        let r = [0, 1, 0, 2, 0, 3, 0, 4];
        assert_eq!(draw_id(&r, |_| false), Some(1));
        assert_eq!(draw_id(&r, |id| id < 3), Some(3));
        // Every candidate taken (a full ID space): a refusal, not a loop.
        assert_eq!(draw_id(&r, |_| true), None);
        let mut calls = 0;
        let taken = |_| {
            calls += 1;
            true
        };
        let _ = draw_id(&r, taken);
        assert_eq!(calls, MAX_ID_DRAWS);
    }

    #[test]
    fn case_scrambling_changes_letters_only() {
        let q = query(1, "www-1.Example.com", 1, false);
        let name = &q[12..q.len() - 4];
        let mut all_up = name.to_vec();
        scramble_case(&mut all_up, &[0xff; CASE_BITS_BYTES]);
        assert_eq!(&all_up[..], b"\x05WWW-1\x07EXAMPLE\x03COM\x00");
        let mut all_low = name.to_vec();
        scramble_case(&mut all_low, &[0; CASE_BITS_BYTES]);
        assert_eq!(&all_low[..], b"\x05www-1\x07example\x03com\x00");
        let mut mixed = name.to_vec();
        scramble_case(&mut mixed, &[0b1010_1010; CASE_BITS_BYTES]);
        assert!(mixed.eq_ignore_ascii_case(name) && mixed != all_up && mixed != all_low);
        // Label lengths up to 63 are never letters.
        let mut lens: Vec<u8> = (0..64).collect();
        scramble_case(&mut lens, &[0xff; CASE_BITS_BYTES]);
        assert_eq!(lens, (0..64).collect::<Vec<u8>>());
    }

    #[test]
    fn the_case_bits_drawn_give_every_position_its_own_bit() {
        assert_eq!(case_bits_bytes(1), 1);
        assert_eq!(case_bits_bytes(8), 1);
        assert_eq!(case_bits_bytes(9), 2);
        assert_eq!(case_bits_bytes(255), CASE_BITS_BYTES);
        assert_eq!(case_bits_bytes(10_000), CASE_BITS_BYTES);
        // 19 wire bytes, 3 random bytes: the last letter has a bit of its own
        // (position 17: byte 2, bit 1), not one shared with the first letters.
        let q = query(1, "www-1.example.com", 1, false);
        let mut name = q[12..q.len() - 4].to_vec();
        assert_eq!(case_bits_bytes(name.len()), 3);
        scramble_case(&mut name, &[0, 0, 0b0000_0010]);
        assert_eq!(&name[..], b"\x05www-1\x07example\x03coM\x00");
    }

    fn answer_to(sent_request: &[u8]) -> Vec<u8> {
        wire::tests::answer(sent_request, None, &[([6, 6, 6, 6], 300)], None)
    }

    #[test]
    fn answers_match_on_server_port_id_and_question() {
        let server: SocketAddr = "10.64.0.1:53".parse().unwrap();
        let mut req = query(0xbeef, "victim.example", wire::TYPE_A, false);
        let end = req.len();
        scramble_case(&mut req[12..end - 4], &[0b0110_0101; CASE_BITS_BYTES]);
        let question = req[12..end].to_vec();
        let sent = Sent {
            server,
            id: 0xbeef,
            question: &question,
            exact_case: true,
        };
        let good = answer_to(&req);
        assert_eq!(judge(&good, server, &sent), Verdict::Accept);
        let mapped: SocketAddr = "[::ffff:10.64.0.1]:53".parse().unwrap();
        assert_eq!(judge(&good, mapped, &sent), Verdict::Accept);
        // Wrong server, wrong port.
        assert_eq!(
            judge(&good, "10.64.0.2:53".parse().unwrap(), &sent),
            Verdict::Reject
        );
        assert_eq!(
            judge(&good, "10.64.0.1:54".parse().unwrap(), &sent),
            Verdict::Reject
        );
        // Wrong ID.
        let mut bad = good.clone();
        bad[1] ^= 1;
        assert_eq!(judge(&bad, server, &sent), Verdict::Reject);
        // Not a response; another opcode; two questions.
        for (at, bit) in [(2, 0x80), (2, 0x08), (5, 0x02)] {
            let mut bad = good.clone();
            bad[at] ^= bit;
            assert_eq!(judge(&bad, server, &sent), Verdict::Reject, "byte {at}");
        }
        // Another name, another type or class (even one differing by 0x20 in a
        // type byte, which a case-blind compare would take).
        let other = answer_to(&query(0xbeef, "victim.exampl3", wire::TYPE_A, false));
        assert_eq!(judge(&other, server, &sent), Verdict::Reject);
        let mut t = good.clone();
        t[end - 3] ^= 0x20;
        assert_eq!(judge(&t, server, &sent), Verdict::Reject);
        // The forger's lowercase guess: the case gives it away.
        let lower = answer_to(&query(0xbeef, "victim.example", wire::TYPE_A, false));
        assert_eq!(judge(&lower, server, &sent), Verdict::CaseMismatch);
        // Without 0x20 (a lower-casing server) the case is not compared.
        let plain = Sent {
            exact_case: false,
            ..sent
        };
        assert_eq!(judge(&lower, server, &plain), Verdict::Accept);
        // Every truncation is a rejection, never a panic.
        for cut in 0..end {
            assert_eq!(judge(&good[..cut], server, &plain), Verdict::Reject);
        }
    }

    #[test]
    fn a_lowercasing_server_loses_0x20_for_a_while_a_forger_cannot_flip_it() {
        let t0 = Instant::now();
        let mut m = CaseMemory::default();
        assert!(m.scramble(t0));
        // Not yet known to keep case: a mismatch is asked again without 0x20.
        assert!(m.mismatch(t0));
        m.kept();
        // Known to keep case: a mismatch is a forgery, ignored; strikes
        // interrupted by a genuine exact echo never add up.
        for _ in 0..10 {
            for _ in 0..CASE_STRIKES - 1 {
                assert!(!m.mismatch(t0));
            }
            m.kept();
            assert!(m.scramble(t0));
        }
        for _ in 0..CASE_STRIKES {
            assert!(!m.mismatch(t0));
        }
        // A server that took to lower-casing: 0x20 off for a while, then tried
        // again (not trusted until it echoes exactly once more).
        assert!(!m.scramble(t0));
        assert!(!m.scramble(t0 + CASE_RECHECK - Duration::from_secs(1)));
        assert!(m.scramble(t0 + CASE_RECHECK));
        assert!(m.mismatch(t0 + CASE_RECHECK));
    }

    fn key(name: &str, qtype: u16, tcp: bool) -> FlightKey {
        FlightKey::new(
            &wire::parse_query(&query(1, name, qtype, false)).unwrap(),
            tcp,
        )
    }

    #[test]
    fn identical_questions_share_a_flight() {
        let mut f = Flights::default();
        let k = key("a.example", 1, false);
        assert_eq!(f.join(&k, || 0), Join::Leader);
        // Another case, the same question.
        assert_eq!(f.join(&key("A.Example", 1, false), || 1), Join::Follower);
        assert_eq!(f.join(&k, || 2), Join::Follower);
        // Another type, or TCP: flights of their own.
        assert_eq!(f.join(&key("a.example", 28, false), || 3), Join::Leader);
        assert_eq!(f.join(&key("a.example", 1, true), || 4), Join::Leader);
        assert_eq!(f.finish(&k), vec![1, 2]);
        assert_eq!(f.len(), 2);
        // Finished: the next one leads again.
        assert_eq!(f.join(&k, || 5), Join::Leader);
        assert!(f.finish(&key("nothing.example", 1, false)).is_empty());
        // A flight's waiters are capped.
        for i in 0..MAX_WAITERS {
            assert_eq!(f.join(&k, || i), Join::Follower);
        }
        assert_eq!(f.join(&k, || 99), Join::Full);
    }

    #[test]
    fn in_flight_questions_are_capped() {
        let mut f = Flights::default();
        for i in 0..MAX_INFLIGHT {
            assert_eq!(
                f.join(&key(&format!("n{i}.example"), 1, false), || ()),
                Join::Leader
            );
        }
        assert_eq!(
            f.join(&key("one-more.example", 1, false), || ()),
            Join::Full
        );
        // Joining one in flight still works at the cap.
        assert_eq!(f.join(&key("n7.example", 1, false), || ()), Join::Follower);
        f.finish(&key("n7.example", 1, false));
        assert_eq!(
            f.join(&key("one-more.example", 1, false), || ()),
            Join::Leader
        );
        assert_eq!(f.len(), MAX_INFLIGHT);
    }
}
