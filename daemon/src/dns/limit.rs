//! Per-client query rate limits: one token bucket per client (a configured
//! client by its identity, any other allowed source by its address: an IPv4
//! address or an IPv6 /64), in a table of fixed capacity, so one client
//! flooding the resolver cannot take the CPU, the upstream capacity or the
//! memory the others need. Pure: time comes in as milliseconds.

use std::net::IpAddr;

use super::cache::FastState;

/// Sustained queries per second one client may send. A phone browsing asks
/// a few names a second; a page or an app starting asks 50–150 names at once,
/// three queries each (A, AAAA, HTTPS): this is ~40× a busy phone's average, and
/// what it refills in one second is more than such a burst.
pub const CLIENT_RATE: u32 = 200;
/// Queries one client may send at once after being quiet (5 s of `CLIENT_RATE`):
/// a device waking up and re-resolving everything it had (~300 names with their
/// A/AAAA/HTTPS queries) stays well inside it.
pub const CLIENT_BURST: u32 = 1000;
/// Sources with a bucket of their own at a time. Configured clients are never
/// pushed out by others; an IPv6 host counts once per /64, so a LAN host cannot
/// fill the table by rotating its addresses.
pub const SOURCES: usize = 1024;
/// Sources that found no free slot (the table full of busy buckets) share one
/// bucket of this rate: still answered, never more than this together.
pub const OVERFLOW_RATE: u32 = CLIENT_RATE;
/// Senders that get no answers (not clients, not on a `dns_listen` network)
/// share one bucket for their REFUSED replies: a spoofed flood cannot turn
/// the resolver into a reflector of more than this many small packets a second.
pub const REFUSED_RATE: u32 = 20;
/// How often, at most, a full table is swept for idle buckets (a bucket that
/// refilled to its burst holds nothing a fresh one would not).
pub const SWEEP_EVERY_MS: u64 = 1000;

/// Tokens are counted in thousandths of a query, so a refill of `rate`
/// queries per second is exact per millisecond.
const MILLI: u64 = 1000;

/// Who a bucket belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A configured client, by its index in the compiled policy (all its
    /// addresses share the bucket).
    Client(u32),
    /// Any other allowed sender: an IPv4 address.
    V4(u32),
    /// Any other allowed sender: the /64 of an IPv6 address.
    V6(u64),
}

impl Source {
    /// The key of a sender that is not a configured client.
    pub fn of_addr(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Source::V4(u32::from(v4)),
            IpAddr::V6(v6) => Source::V6((u128::from(v6) >> 64) as u64),
        }
    }

    /// An address inside the source's network (for re-checking it after a
    /// config change); `None` for a client.
    pub fn addr(self) -> Option<IpAddr> {
        match self {
            Source::Client(_) => None,
            Source::V4(v) => Some(IpAddr::V4(v.into())),
            Source::V6(n) => Some(IpAddr::V6((u128::from(n) << 64).into())),
        }
    }
}

/// A token bucket: `rate` queries a second, at most `burst` at once.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    milli_tokens: u64,
    stamp_ms: u64,
}

impl Bucket {
    pub fn full(burst: u32, now_ms: u64) -> Self {
        Self {
            milli_tokens: u64::from(burst) * MILLI,
            stamp_ms: now_ms,
        }
    }

    fn refill(&mut self, rate: u32, burst: u32, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.stamp_ms);
        self.stamp_ms = self.stamp_ms.max(now_ms);
        self.milli_tokens = self
            .milli_tokens
            .saturating_add(elapsed.saturating_mul(u64::from(rate)))
            .min(u64::from(burst) * MILLI);
    }

    /// Takes one query's token, if there is one.
    pub fn take(&mut self, rate: u32, burst: u32, now_ms: u64) -> bool {
        self.refill(rate, burst, now_ms);
        if self.milli_tokens >= MILLI {
            self.milli_tokens -= MILLI;
            true
        } else {
            false
        }
    }

    /// Refilled to its burst by `now_ms`: forgetting it changes nothing.
    fn idle(&self, rate: u32, burst: u32, now_ms: u64) -> bool {
        let mut b = *self;
        b.refill(rate, burst, now_ms);
        b.milli_tokens >= u64::from(burst) * MILLI
    }
}

type Table = heapless::index_map::IndexMap<Source, Bucket, FastState, SOURCES>;

/// The verdict on one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Over the client's rate: dropped.
    Limited,
}

/// The buckets of all sources, in a table that never grows.
pub struct Limiter {
    table: Box<Table>,
    overflow: Bucket,
    refused: Bucket,
    last_sweep_ms: u64,
    pub rate: u32,
    pub burst: u32,
}

impl Limiter {
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            table: Box::default(),
            overflow: Bucket::full(burst, 0),
            refused: Bucket::full(REFUSED_RATE, 0),
            last_sweep_ms: 0,
            rate,
            burst,
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Charges one query to `source`.
    pub fn check(&mut self, source: Source, now_ms: u64) -> Verdict {
        let (rate, burst) = (self.rate, self.burst);
        let pass = |ok: bool| if ok { Verdict::Pass } else { Verdict::Limited };
        if let Some(b) = self.table.get_mut(&source) {
            return pass(b.take(rate, burst, now_ms));
        }
        if self.table.is_full() {
            self.make_room(matches!(source, Source::Client(_)), now_ms);
        }
        let mut fresh = Bucket::full(burst, now_ms);
        let ok = fresh.take(rate, burst, now_ms);
        if self.table.insert(source, fresh).is_err() {
            // No room: the shared bucket of everyone else without one.
            return pass(self.overflow.take(OVERFLOW_RATE, burst, now_ms));
        }
        pass(ok)
    }

    /// A REFUSED reply to a sender that gets no answers may go out.
    pub fn may_refuse(&mut self, now_ms: u64) -> bool {
        self.refused.take(REFUSED_RATE, REFUSED_RATE, now_ms)
    }

    /// Frees a slot: idle buckets first (at most once per `SWEEP_EVERY_MS`, so
    /// a spray of new sources costs no scan per packet); for a configured
    /// client, failing that, any other sender's slot.
    fn make_room(&mut self, for_client: bool, now_ms: u64) {
        if now_ms.saturating_sub(self.last_sweep_ms) >= SWEEP_EVERY_MS {
            self.last_sweep_ms = now_ms;
            let (rate, burst) = (self.rate, self.burst);
            self.table.retain(|_, b| !b.idle(rate, burst, now_ms));
        }
        if self.table.is_full() && for_client {
            let victim = self
                .table
                .keys()
                .find(|k| !matches!(k, Source::Client(_)))
                .copied();
            if let Some(v) = victim {
                self.table.swap_remove(&v);
            }
        }
    }

    /// After a config change: buckets of clients that are gone are freed, the
    /// others follow their client to its new index; other senders' buckets are
    /// kept while `allowed` still admits them. `client_now` maps an old client
    /// index to its new one.
    pub fn retain(
        &mut self,
        client_now: impl Fn(u32) -> Option<u32>,
        allowed: impl Fn(IpAddr) -> bool,
    ) {
        let mut moved = Vec::new();
        self.table.retain(|k, b| match *k {
            Source::Client(i) => {
                if let Some(n) = client_now(i).filter(|&n| n != i) {
                    moved.push((n, *b));
                    return false;
                }
                client_now(i).is_some()
            }
            other => other.addr().is_some_and(&allowed),
        });
        for (n, b) in moved {
            // Room: each was removed above.
            let _ = self.table.insert(Source::Client(n), b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let mut b = Bucket::full(10, 0);
        assert!((0..10).all(|_| b.take(5, 10, 0)));
        assert!(!b.take(5, 10, 0), "burst spent");
        // 5/s: one token per 200 ms.
        assert!(!b.take(5, 10, 199));
        assert!(b.take(5, 10, 200));
        assert!(!b.take(5, 10, 200));
        // Never more than the burst, however long the pause.
        let n = (0..100).filter(|_| b.take(5, 10, 1_000_000)).count();
        assert_eq!(n, 10);
        // A clock that goes back grants nothing.
        assert!(!b.take(5, 10, 10));
    }

    #[test]
    fn one_flooding_client_does_not_limit_another() {
        let mut l = Limiter::new(CLIENT_RATE, CLIENT_BURST);
        let flood = Source::Client(0);
        let phone = Source::Client(1);
        let mut passed = 0;
        // 45,000 queries a second for 2 s from one client: it gets its burst
        // and its rate, nothing more.
        for i in 0..90_000u64 {
            if l.check(flood, i / 45) == Verdict::Pass {
                passed += 1;
            }
        }
        let expected = CLIENT_BURST as u64 + 2 * CLIENT_RATE as u64;
        assert!(passed <= expected && passed + 2 >= expected, "{passed}");
        // Meanwhile the other client is not limited at all.
        assert!((0..CLIENT_BURST).all(|_| l.check(phone, 2000) == Verdict::Pass));
    }

    #[test]
    fn the_table_never_grows_and_clients_keep_their_slots() {
        let mut l = Limiter::new(10, 10);
        for c in 0..8 {
            assert_eq!(l.check(Source::Client(c), 0), Verdict::Pass);
        }
        // A spray of spoofed LAN sources, all busy: the table fills, then they
        // share the overflow bucket.
        let mut passed = 0;
        for a in 0..100_000u32 {
            let s = Source::V4(0x0a00_0000 + a);
            for _ in 0..10 {
                l.check(s, 1);
            }
            if l.check(s, 1) == Verdict::Pass {
                passed += 1;
            }
        }
        assert_eq!(l.len(), SOURCES);
        assert_eq!(passed, 0, "busy sprayers get nothing more");
        // A new client still gets a slot of its own (a sender is pushed out).
        assert_eq!(l.check(Source::Client(99), 2), Verdict::Pass);
        assert!(l.table.contains_key(&Source::Client(99)));
        assert!((0..8).all(|c| l.table.contains_key(&Source::Client(c))));
        // Once they go quiet, the sweep frees their slots.
        assert_eq!(l.check(Source::V4(1), 10_000), Verdict::Pass);
        assert!(l.len() < 20, "{}", l.len());
    }

    #[test]
    fn config_change_frees_removed_clients_and_moves_the_rest() {
        let mut l = Limiter::new(10, 10);
        for _ in 0..10 {
            l.check(Source::Client(0), 0);
            l.check(Source::Client(1), 0);
            l.check(Source::Client(2), 0);
        }
        l.check(Source::of_addr("192.168.1.20".parse().unwrap()), 0);
        l.check(Source::of_addr("10.9.9.9".parse().unwrap()), 0);
        l.check(Source::of_addr("fd00:1:2:3::77".parse().unwrap()), 0);
        // Client 0 removed, 1 → 0, 2 stays; only 192.168.1.0/24 and fd00:1:2:3::/64 allowed.
        l.retain(
            |i| match i {
                1 => Some(0),
                2 => Some(2),
                _ => None,
            },
            |ip| match ip {
                IpAddr::V4(v4) => v4.octets()[..3] == [192, 168, 1],
                IpAddr::V6(v6) => v6.segments()[..4] == [0xfd00, 1, 2, 3],
            },
        );
        let mut keys: Vec<_> = l.table.keys().copied().collect();
        keys.sort_by_key(|k| format!("{k:?}"));
        assert_eq!(
            keys,
            [
                Source::Client(0),
                Source::Client(2),
                Source::V4(0xc0a8_0114),
                Source::V6(0xfd00_0001_0002_0003)
            ]
        );
        // The moved bucket kept its state: client 1 (now 0) had spent its burst.
        assert_eq!(l.check(Source::Client(0), 0), Verdict::Limited);
    }

    #[test]
    fn refusals_are_rate_limited_together() {
        let mut l = Limiter::new(10, 10);
        let n = (0..10_000).filter(|_| l.may_refuse(0)).count();
        assert_eq!(n, REFUSED_RATE as usize);
        assert!(l.may_refuse(1000 / REFUSED_RATE as u64));
    }

    #[test]
    fn ipv6_hosts_count_per_64() {
        let a = Source::of_addr("2001:db8:1:2::1".parse().unwrap());
        let b = Source::of_addr("2001:db8:1:2:dead:beef::9".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, Source::of_addr("2001:db8:1:3::1".parse().unwrap()));
    }
}
