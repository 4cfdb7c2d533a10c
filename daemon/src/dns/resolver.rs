//! The resolver proper: who is asking, which rule the name (or a name in its
//! CNAME chain) matches for that client, which way to resolve it, the set insert
//! before the answer leaves, the cache, and the listening sockets.

use std::{
    io,
    net::{IpAddr, SocketAddr},
    os::fd::AsRawFd,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{Ordering, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use serde::Serialize;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, UdpSocket},
    task::JoinSet,
};

use super::{
    access::Networks,
    batch::{BATCH, RecvBatch, SendBatch},
    cache::{Cache, Entry, FastMap, Key, KeyRef},
    limit::{CLIENT_BURST, CLIENT_RATE, Limiter, Source, Verdict},
    matcher::NameHashes,
    rules::{Matched, Rules, WireText, load_lists},
    upstream::{Check, Forwarder, parse_server, resolv_conf},
    wire::{self, Query, WireError},
};
use crate::{
    config::{BlockAnswer, Config, types::parse_interface_address},
    policy::{self, Policy, Target},
    sys::{
        nftnl::{Elem, NftSock, Op},
        sock,
    },
};

/// Per-try wait for an upstream resolver, and the whole budget of a query.
const ATTEMPT: Duration = Duration::from_millis(800);
const BUDGET: Duration = Duration::from_millis(2000);
const CACHE_BYTES: usize = 4 << 20;
/// Elements we remember having put in the kernel (to skip needless refreshes).
const MEMO_MAX: usize = 16_384;
/// How long we trust that an element we wrote is still in the kernel.
const MEMO_TRUST: Duration = Duration::from_secs(30);
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

/// (set id, address) → (when we last wrote the element, when it expires there).
type Memo = FastMap<(u32, IpAddr), (Instant, Instant)>;

/// (client, rule) → its two sets (IPv4, IPv6); ids are never reused, so the
/// memo of a set that is gone cannot be taken for another's.
#[derive(Default)]
struct SetNames {
    map: FastMap<(usize, usize), RuleSets>,
    next_id: u32,
}

/// A rule's sets: ids (for `memo`) and names, IPv4 then IPv6.
struct RuleSets {
    ids: [u32; 2],
    names: [Arc<str>; 2],
}

/// A monotonic counter: 64-bit where the CPU has 64-bit atomics, 32-bit
/// (wrapping) on 32-bit MIPS, which has none.
#[derive(Debug, Default)]
pub struct Counter(
    #[cfg(target_has_atomic = "64")] std::sync::atomic::AtomicU64,
    #[cfg(not(target_has_atomic = "64"))] std::sync::atomic::AtomicU32,
);

impl Counter {
    #[cfg(target_has_atomic = "64")]
    pub fn fetch_add(&self, v: u64, order: Ordering) -> u64 {
        self.0.fetch_add(v, order)
    }
    #[cfg(target_has_atomic = "64")]
    pub fn load(&self, order: Ordering) -> u64 {
        self.0.load(order)
    }
    #[cfg(not(target_has_atomic = "64"))]
    pub fn fetch_add(&self, v: u64, order: Ordering) -> u64 {
        u64::from(self.0.fetch_add(v as u32, order))
    }
    #[cfg(not(target_has_atomic = "64"))]
    pub fn load(&self, order: Ordering) -> u64 {
        u64::from(self.0.load(order))
    }
}

/// Counters (monotonic) for the API and the tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub queries: Counter,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub malformed: Counter,
    pub servfail: Counter,
    pub upstream_failures: Counter,
    pub blocked: Counter,
    /// Answers asked again another way because their CNAME chain matched a
    /// rule whose traffic leaves elsewhere.
    pub rerouted: Counter,
    pub set_elements: Counter,
    pub set_errors: Counter,
    pub set_skipped: Counter,
    /// Queries dropped because their client was over its rate.
    pub rate_limited: Counter,
    /// Queries from senders that get no answers (not clients, not on a
    /// `dns_listen` network): answered REFUSED, or dropped over `REFUSED_RATE`.
    pub refused: Counter,
    /// TCP connections closed at once because `TCP_MAX_CONNECTIONS` were open.
    pub tcp_rejected: Counter,
    /// Cache entries dropped by config changes (routes whose resolvers changed).
    pub cache_invalidated: Counter,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub queries: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub malformed: u64,
    pub servfail: u64,
    pub upstream_failures: u64,
    pub blocked: u64,
    pub rerouted: u64,
    pub set_elements: u64,
    pub set_errors: u64,
    pub set_skipped: u64,
    pub rate_limited: u64,
    pub refused: u64,
    pub tcp_rejected: u64,
    pub cache_invalidated: u64,
    /// Sources with a rate-limit bucket now (at most `limit::SOURCES`).
    pub rate_sources: usize,
    /// Forwards answered SERVFAIL at once: their route's in-flight table was full.
    pub forwards_over_cap: u64,
    pub cache_entries: usize,
    pub cache_bytes: usize,
    /// Answer received → elements in the kernel, µs (over the last samples).
    pub insert_p50_us: u64,
    pub insert_p99_us: u64,
    pub insert_samples: usize,
}

/// How names of one route are resolved: index 0 is direct, `i + 1` upstream `i`.
struct State {
    policy: Policy,
    /// Client by address, when every active client's addresses are single
    /// hosts (the usual case): one lookup instead of a scan of all clients.
    hosts: Option<FastMap<IpAddr, usize>>,
    rules: Rules,
    routes: Vec<Arc<Forwarder>>,
    ttl_min: u32,
    ttl_max: u32,
    block_null: bool,
    listen: Vec<SocketAddr>,
    /// The `dns_listen` addresses (their networks may ask too).
    extra_listen: Vec<IpAddr>,
}

pub struct Resolver {
    state: RwLock<Arc<State>>,
    cache: Mutex<Cache>,
    nft: Mutex<Option<NftSock>>,
    /// (set id, address) → (when we last wrote its kernel element, when that expires).
    memo: Mutex<Memo>,
    /// (client, rule) → the ids (for `memo`) and names of its sets.
    set_names: Mutex<SetNames>,
    latencies: Mutex<Vec<u32>>,
    /// Per-client token buckets.
    limiter: Mutex<Limiter>,
    /// The `dns_listen` networks (who may ask besides the clients).
    networks: Mutex<Networks>,
    /// The clock of the rate limits.
    epoch: Instant,
    /// One permit per open TCP connection.
    tcp_slots: Arc<tokio::sync::Semaphore>,
    pub stats: Stats,
    /// Problems found while loading (lists that failed, …).
    pub problems: Mutex<Vec<String>>,
}

fn build_state(config: &Config, policy: &Policy) -> (State, Vec<String>) {
    let (lists, problems) = load_lists(config);
    let rules = Rules::build(policy, &lists);
    let s = &config.server;
    let mut direct: Vec<SocketAddr> = s
        .dns_server
        .iter()
        .filter_map(|x| parse_server(x))
        .collect();
    if direct.is_empty() {
        direct = std::fs::read_to_string("/etc/resolv.conf")
            .map(|t| resolv_conf(&t))
            .unwrap_or_default();
    }
    let mut routes = vec![Arc::new(Forwarder::new(
        direct.clone(),
        None,
        ATTEMPT,
        BUDGET,
    ))];
    for (i, u) in config.upstreams.iter().enumerate() {
        let mut servers: Vec<SocketAddr> = u.dns.iter().filter_map(|x| parse_server(x)).collect();
        // No resolver of its own: the WAN's, but through the tunnel all the same.
        if servers.is_empty() {
            servers = direct.clone();
        }
        let mark = policy.marks.of(Target::Upstream(i));
        routes.push(Arc::new(Forwarder::new(
            servers,
            Some(mark),
            ATTEMPT,
            BUDGET,
        )));
    }
    let port = s.dns_port_or_default();
    let mut listen: Vec<SocketAddr> = [s.address.as_deref(), s.address6.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(|a| parse_interface_address(a).ok())
        .map(|n| SocketAddr::new(n.addr(), port))
        .collect();
    let extra_listen: Vec<IpAddr> = s
        .dns_listen
        .iter()
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .collect();
    listen.extend(extra_listen.iter().map(|&ip| SocketAddr::new(ip, port)));
    listen.dedup();
    let mut hosts = FastMap::default();
    let all_hosts = policy.clients.iter().filter(|c| c.active).all(|c| {
        c.addresses.iter().all(|n| {
            hosts.entry(n.addr()).or_insert(c.index);
            n.prefix_len() == n.max_prefix_len()
        })
    });
    (
        State {
            policy: policy.clone(),
            hosts: all_hosts.then_some(hosts),
            rules,
            routes,
            ttl_min: s.ttl_min_or_default(),
            ttl_max: s.ttl_max_or_default().max(s.ttl_min_or_default()),
            block_null: s.block_answer.unwrap_or_default() == BlockAnswer::Null,
            listen,
            extra_listen,
        },
        problems,
    )
}

/// What the fast path decided.
enum Step {
    Reply(Vec<u8>),
    Drop,
    Forward(Box<Ctx>),
}

/// A query on its way upstream.
struct Ctx {
    q: Query,
    state: Arc<State>,
    client: Option<usize>,
    matched: Option<Matched>,
    route: usize,
    key: Key,
}

impl Resolver {
    pub fn new(config: &Config, policy: &Policy) -> Arc<Self> {
        let (state, problems) = build_state(config, policy);
        for p in &problems {
            // Where the user sees it (the daemon's stderr goes to the system log).
            eprintln!("wgsplit: dns: {p}");
        }
        let networks = Networks::new(state.extra_listen.clone());
        Arc::new(Self {
            state: RwLock::new(Arc::new(state)),
            cache: Mutex::new(Cache::new(CACHE_BYTES)),
            nft: Mutex::new(None),
            memo: Mutex::default(),
            set_names: Mutex::default(),
            latencies: Mutex::new(Vec::with_capacity(4096)),
            limiter: Mutex::new(Limiter::new(CLIENT_RATE, CLIENT_BURST)),
            networks: Mutex::new(networks),
            epoch: Instant::now(),
            tcp_slots: Arc::new(tokio::sync::Semaphore::new(TCP_MAX_CONNECTIONS)),
            stats: Stats::default(),
            problems: Mutex::new(problems),
        })
    }

    /// Sets each client's rate limit (queries/s, burst): `dns-serve` takes it
    /// from the command line (the benchmarks measure the resolver, not it).
    pub fn set_client_rate(&self, rate: u32, burst: u32) {
        let mut l = self.limiter.lock().unwrap();
        (l.rate, l.burst) = (rate, burst);
    }

    /// Takes a new config (reload, or a health change that re-read it): rules,
    /// lists and routes are rebuilt. Only what the change made wrong is
    /// dropped: the cached answers of routes whose resolvers or mark changed
    /// (a route that stayed keeps its forwarder, queries in flight included),
    /// the memory of inserted elements for sets that are gone or whose rule
    /// changed, and the rate-limit buckets of clients and networks that are
    /// gone. The listening addresses stay those `serve` was started with.
    pub fn update(&self, config: &Config, policy: &Policy) {
        let (mut state, problems) = build_state(config, policy);
        for p in &problems {
            // Where the user sees it (the daemon's stderr goes to the system log).
            eprintln!("wgsplit: dns: {p}");
        }
        let old = self.state.read().unwrap().clone();
        let kept = same_routes(&old.routes, &state.routes);
        for ((new, old), keep) in state.routes.iter_mut().zip(&old.routes).zip(&kept) {
            if *keep {
                *new = old.clone();
            }
        }
        let moved = client_moves(&old.policy, &state.policy);
        let networks = Networks::new(state.extra_listen.clone());
        {
            let mut limiter = self.limiter.lock().unwrap();
            let new_state = &state;
            limiter.retain(
                |i| moved.get(i as usize).copied().flatten().map(|n| n as u32),
                |ip| networks.contains(ip) || client_of(new_state, ip).is_some(),
            );
        }
        *self.networks.lock().unwrap() = networks;
        {
            // Sets survive when their client (by name) and rule stayed.
            let mut names = self.set_names.lock().unwrap();
            let mut memo = self.memo.lock().unwrap();
            let old_map = std::mem::take(&mut names.map);
            let mut live = std::collections::HashSet::new();
            for ((c, pos), sets) in old_map {
                let Some(n) = moved.get(c).copied().flatten() else {
                    continue;
                };
                if rule_at(&old.policy, c, pos) != rule_at(&state.policy, n, pos) {
                    continue;
                }
                live.extend(sets.ids);
                names.map.insert((n, pos), sets);
            }
            memo.retain(|(id, _), _| live.contains(id));
        }
        let dropped = self
            .cache
            .lock()
            .unwrap()
            .retain_routes(|r| kept.get(r as usize).copied().unwrap_or(false));
        self.stats
            .cache_invalidated
            .fetch_add(dropped as u64, Relaxed);
        *self.state.write().unwrap() = Arc::new(state);
        *self.problems.lock().unwrap() = problems;
    }

    /// The addresses `serve` listens on (server addresses and `dns_listen`).
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.state.read().unwrap().listen.clone()
    }

    pub fn stats(&self) -> StatsSnapshot {
        let s = &self.stats;
        let (entries, bytes) = {
            let c = self.cache.lock().unwrap();
            (c.len(), c.bytes())
        };
        let mut lat = self.latencies.lock().unwrap().clone();
        lat.sort_unstable();
        let pct = |p: usize| {
            lat.get((lat.len() * p / 100).min(lat.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0) as u64
        };
        StatsSnapshot {
            queries: s.queries.load(Relaxed),
            cache_hits: s.cache_hits.load(Relaxed),
            cache_misses: s.cache_misses.load(Relaxed),
            malformed: s.malformed.load(Relaxed),
            servfail: s.servfail.load(Relaxed),
            upstream_failures: s.upstream_failures.load(Relaxed),
            blocked: s.blocked.load(Relaxed),
            rerouted: s.rerouted.load(Relaxed),
            set_elements: s.set_elements.load(Relaxed),
            set_errors: s.set_errors.load(Relaxed),
            set_skipped: s.set_skipped.load(Relaxed),
            rate_limited: s.rate_limited.load(Relaxed),
            refused: s.refused.load(Relaxed),
            tcp_rejected: s.tcp_rejected.load(Relaxed),
            cache_invalidated: s.cache_invalidated.load(Relaxed),
            rate_sources: self.limiter.lock().unwrap().len(),
            forwards_over_cap: super::upstream::forwards_over_cap(),
            cache_entries: entries,
            cache_bytes: bytes,
            insert_p50_us: pct(50),
            insert_p99_us: pct(99),
            insert_samples: lat.len(),
        }
    }

    /// Answers one request from `src` (`tcp`: no UDP size limit). `None`: drop it.
    pub async fn handle(
        self: &Arc<Self>,
        request: &[u8],
        src: SocketAddr,
        tcp: bool,
    ) -> Option<Vec<u8>> {
        match self.fast(request, src, tcp, true) {
            Step::Reply(r) => Some(r),
            Step::Drop => None,
            Step::Forward(ctx) => Some(self.forward(request, *ctx, tcp).await),
        }
    }

    /// The request path up to the point where an upstream would be asked: returns
    /// the answer made locally (error, block, cache hit), or `None` when the packet
    /// is dropped or would be forwarded. For the fuzz target (no rate limit:
    /// it sends far more than a client may).
    #[doc(hidden)]
    pub fn answer_locally(&self, request: &[u8], src: SocketAddr) -> Option<Vec<u8>> {
        match self.fast(request, src, false, false) {
            Step::Reply(r) => Some(r),
            Step::Drop | Step::Forward(_) => None,
        }
    }

    /// Everything that needs no upstream: who asks (and may they, this
    /// often), parse, match, block, cache hit.
    fn fast(&self, request: &[u8], src: SocketAddr, tcp: bool, limit: bool) -> Step {
        self.stats.queries.fetch_add(1, Relaxed);
        let state = self.state.read().unwrap().clone();
        let ip = match src.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let client = client_of(&state, ip);
        let now = Instant::now();
        let source = match client {
            Some(c) => Source::Client(c as u32),
            None if self.may_ask(ip) => Source::of_addr(ip),
            None => return self.refuse(request),
        };
        if limit && self.limiter.lock().unwrap().check(source, self.ms_at(now)) == Verdict::Limited
        {
            self.stats.rate_limited.fetch_add(1, Relaxed);
            return Step::Drop;
        }
        let q = match wire::parse_query(request) {
            Ok(q) => q,
            Err(e) => {
                self.stats.malformed.fetch_add(1, Relaxed);
                return match e {
                    WireError::Opcode => wire::bare_error(request, wire::RCODE_NOTIMP)
                        .map_or(Step::Drop, Step::Reply),
                    WireError::Questions => wire::bare_error(request, wire::RCODE_FORMERR)
                        .map_or(Step::Drop, Step::Reply),
                    _ => Step::Drop,
                };
            }
        };
        // The DNS bypass guard (dns/bypass.rs): the canary and DoH names.
        if client.is_some_and(|c| state.policy.clients[c].dns_guard)
            && super::bypass::refused(&q.wire_name)
        {
            self.stats.blocked.fetch_add(1, Relaxed);
            return Step::Reply(wire::error_answer(request, &q, wire::RCODE_NXDOMAIN));
        }
        let matched = match (client, q.plain) {
            (Some(c), true) => NameHashes::from_wire(&q.wire_name)
                .and_then(|h| state.rules.first(c, &h, &WireText::new(&q.wire_name))),
            _ => None,
        };
        let target = matched
            .map(|m| m.target)
            .or_else(|| client.map(|c| state.policy.clients[c].default))
            .unwrap_or(Target::Direct);
        let Some(route) = target.route() else {
            self.stats.blocked.fetch_add(1, Relaxed);
            return Step::Reply(block_answer(&state, request, &q));
        };
        let mut key = KeyRef {
            route: route as u16,
            qtype: q.qtype,
            qclass: q.qclass,
            edns: q.edns.is_some(),
            name: &q.wire_name,
        };
        let mut hit = self.cache.lock().unwrap().get(&key, now);
        let mut route = route;
        let mut m = None;
        if let (Some(e), Some(c)) = (&hit, client) {
            m = self.chain_match(&state, c, matched, &e.cnames);
            // The cached chain leads this client's traffic another way than the
            // asked name's: its answer is the one resolved that way (cached
            // under that route), or asked that way now. Answers are cached by
            // the route that resolved them, so one client's rerouted answer
            // never reaches another client whose rules send the chain elsewhere.
            if let Some(t) = m.and_then(|m| m.target.route())
                && t != route
            {
                route = t;
                key.route = t as u16;
                hit = self.cache.lock().unwrap().get(&key, now);
                m = hit
                    .as_ref()
                    .and_then(|e| self.chain_match(&state, c, matched, &e.cnames));
            }
        }
        if let Some(e) = hit {
            self.stats.cache_hits.fetch_add(1, Relaxed);
            let age = now.duration_since(e.stored).as_secs() as u32;
            if let (Some(c), Some(m)) = (client, m) {
                if m.target == Target::Block {
                    self.stats.blocked.fetch_add(1, Relaxed);
                    return Step::Reply(block_answer(&state, request, &q));
                }
                self.insert(&state, c, m, &e.addrs, age, None);
            }
            let out = wire::rewrite(&e.bytes, request, &q, &e.ttl_offsets, age);
            if !tcp && out.len() > q.udp_limit() {
                return Step::Reply(wire::truncated(request, &q, wire::RCODE_NOERROR));
            }
            return Step::Reply(out);
        }
        self.stats.cache_misses.fetch_add(1, Relaxed);
        let key = key.to_key();
        Step::Forward(Box::new(Ctx {
            q,
            state,
            client,
            matched,
            route,
            key,
        }))
    }

    /// Milliseconds on the rate limits' clock.
    fn ms_at(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// Is `ip` (not a client) on a `dns_listen` network, or the router? The
    /// interfaces are read again now and then while a listen address has none.
    fn may_ask(&self, ip: IpAddr) -> bool {
        let mut n = self.networks.lock().unwrap();
        n.contains(ip) || (n.rescan_if_due() && n.contains(ip))
    }

    /// A sender that gets no answers: REFUSED (header and question: never
    /// larger than the query, so nothing to amplify), or nothing once the
    /// refusals of all such senders reach `REFUSED_RATE` (a spoofed flood
    /// reflects a trickle at most).
    fn refuse(&self, request: &[u8]) -> Step {
        self.stats.refused.fetch_add(1, Relaxed);
        if !self
            .limiter
            .lock()
            .unwrap()
            .may_refuse(self.ms_at(Instant::now()))
        {
            return Step::Drop;
        }
        match wire::parse_query(request) {
            Ok(q) => Step::Reply(wire::error_answer(request, &q, wire::RCODE_REFUSED)),
            Err(_) => Step::Drop,
        }
    }

    /// The check for answers arriving through `route`: accept an answer to our
    /// question and, right there in the socket's read loop, put its addresses
    /// into the set of the rule its chain matches — when that rule's traffic
    /// goes the way this answer came (`route`), or `always` (the last try).
    fn check(
        self: &Arc<Self>,
        state: &Arc<State>,
        q: &Query,
        client: Option<usize>,
        matched: Option<Matched>,
        route: usize,
        always: bool,
    ) -> Check {
        let me = self.clone();
        let state = state.clone();
        let q = q.clone();
        Arc::new(move |b: &[u8], received: Instant| {
            let Ok(a) = wire::parse_answer(b, &q) else {
                return false;
            };
            if let Some(c) = client
                && let Some(m) = me.chain_match(&state, c, matched, &a.cnames)
                && m.target != Target::Block
                && (always || m.target.route() == Some(route))
            {
                me.insert(&state, c, m, &a.addrs, 0, Some(received));
            }
            true
        })
    }

    /// Asks `route`'s resolvers (over TCP too when a TCP client's answer came
    /// back truncated): the answer and what it says, or `None` (SERVFAIL).
    async fn ask(
        &self,
        state: &State,
        route: usize,
        request: &[u8],
        q: &Query,
        tcp: bool,
        check: Check,
    ) -> Option<(Vec<u8>, wire::Answer)> {
        let fwd = state.routes[route].clone();
        let mut reply = fwd.query(request, q, false, check.clone()).await;
        if tcp
            && reply
                .as_ref()
                .is_some_and(|r| wire::parse_answer(&r.bytes, q).is_ok_and(|a| a.truncated))
        {
            reply = fwd.query(request, q, true, check).await;
        }
        let Some(reply) = reply else {
            self.stats.upstream_failures.fetch_add(1, Relaxed);
            return None;
        };
        let a = wire::parse_answer(&reply.bytes, q).ok()?;
        Some((reply.bytes, a))
    }

    async fn forward(self: &Arc<Self>, request: &[u8], ctx: Ctx, tcp: bool) -> Vec<u8> {
        let Ctx {
            q,
            state,
            client,
            matched,
            route,
            key,
        } = ctx;
        let check = self.check(&state, &q, client, matched, route, false);
        let Some((mut bytes, mut a)) = self.ask(&state, route, request, &q, tcp, check).await
        else {
            self.stats.servfail.fetch_add(1, Relaxed);
            return wire::error_answer(request, &q, wire::RCODE_SERVFAIL);
        };
        // Cached under the route that resolved it (valid for every client whose
        // traffic for this chain goes that way), unless a config change
        // replaced that route's resolvers while we waited.
        if self.route_current(&state, route) {
            self.store(key.clone(), &bytes, &a);
        }
        if let Some(c) = client
            && let Some(m) = self.chain_match(&state, c, matched, &a.cnames)
        {
            // A CNAME into a blocked name blocks the answer (nothing was inserted).
            if m.target == Target::Block {
                self.stats.blocked.fetch_add(1, Relaxed);
                return block_answer(&state, request, &q);
            }
            // The chain leads to a name whose traffic goes another way than the
            // asked name's (`video.example.org CNAME edge.netflix.com`, netflix
            // through an upstream): ask again, once, the way that traffic goes,
            // so the client gets (and the set holds) the addresses that exit's
            // resolver gives. That answer is served, whatever its own chain.
            if let Some(r) = m.target.route()
                && r != route
            {
                self.stats.rerouted.fetch_add(1, Relaxed);
                let check = self.check(&state, &q, client, matched, r, true);
                match self.ask(&state, r, request, &q, tcp, check).await {
                    Some(x) => {
                        (bytes, a) = x;
                        if self.route_current(&state, r) {
                            self.store(
                                Key {
                                    route: r as u16,
                                    ..key.clone()
                                },
                                &bytes,
                                &a,
                            );
                        }
                    }
                    None => {
                        self.stats.servfail.fetch_add(1, Relaxed);
                        return wire::error_answer(request, &q, wire::RCODE_SERVFAIL);
                    }
                }
                if self
                    .chain_match(&state, c, matched, &a.cnames)
                    .is_some_and(|m| m.target == Target::Block)
                {
                    self.stats.blocked.fetch_add(1, Relaxed);
                    return block_answer(&state, request, &q);
                }
            }
        }
        let out = wire::rewrite(&bytes, request, &q, &[], 0);
        if !tcp && out.len() > q.udp_limit() {
            return wire::truncated(request, &q, a.rcode);
        }
        out
    }

    /// Is `state`'s `route` still the resolver's (not replaced by a reload)?
    fn route_current(&self, state: &State, route: usize) -> bool {
        let now = self.state.read().unwrap();
        now.routes
            .get(route)
            .is_some_and(|f| Arc::ptr_eq(f, &state.routes[route]))
    }

    /// Caches an upstream answer (positive, or negative by its SOA).
    fn store(&self, key: Key, bytes: &[u8], a: &wire::Answer) {
        let now = Instant::now();
        let cacheable =
            !a.truncated && matches!(a.rcode, wire::RCODE_NOERROR | wire::RCODE_NXDOMAIN);
        if let (true, Some(ttl)) = (cacheable, a.cache_ttl) {
            let negative = a.addrs.is_empty() && a.cnames.is_empty();
            let entry = Entry {
                bytes: bytes.into(),
                ttl_offsets: a.ttl_offsets.clone().into_boxed_slice(),
                stored: now,
                expires: now + Duration::from_secs(ttl as u64),
                addrs: a.addrs.clone().into_boxed_slice(),
                cnames: a.cnames.clone().into_boxed_slice(),
            };
            self.cache.lock().unwrap().insert(key, entry, negative, now);
        }
    }

    /// The first rule matching the name or any name of its CNAME chain.
    fn chain_match(
        &self,
        state: &State,
        client: usize,
        name_match: Option<Matched>,
        cnames: &[String],
    ) -> Option<Matched> {
        let mut best = name_match;
        for c in cnames {
            if let Some(m) =
                NameHashes::from_lower(c.as_bytes()).and_then(|h| state.rules.first(client, &h, c))
                && best.is_none_or(|b| m.pos < b.pos)
            {
                best = Some(m);
            }
        }
        best
    }

    /// What `f` takes from the client's rule's sets (one lookup, names
    /// made the first time).
    fn sets<R>(
        &self,
        state: &State,
        client: usize,
        pos: usize,
        f: impl FnOnce(&RuleSets) -> R,
    ) -> R {
        let mut names = self.set_names.lock().unwrap();
        let id = names.next_id;
        let mut fresh = false;
        let sets = names.map.entry((client, pos)).or_insert_with(|| {
            fresh = true;
            let name = &state.policy.clients[client].name;
            RuleSets {
                ids: [id, id + 1],
                names: [false, true].map(|v6| policy::dns_set_name(name, pos, v6).into()),
            }
        });
        let r = f(sets);
        if fresh {
            names.next_id += 2;
        }
        r
    }

    /// Puts the answer's addresses into the rule's sets (refreshing existing
    /// elements), unless the kernel already holds them at least as long.
    fn insert(
        &self,
        state: &State,
        client: usize,
        m: Matched,
        addrs: &[(IpAddr, u32)],
        age: u32,
        received: Option<Instant>,
    ) {
        if addrs.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let [id4, id6] = self.sets(state, client, m.pos, |s| s.ids);
        {
            let mut memo = self.memo.lock().unwrap();
            if memo.len() > MEMO_MAX {
                memo.retain(|_, (_, exp)| *exp > now);
                if memo.len() > MEMO_MAX / 2 {
                    // Release the memory too (clear() keeps the capacity).
                    *memo = FastMap::default();
                }
            }
            for &(ip, ttl) in addrs {
                let secs = ttl.saturating_sub(age).clamp(state.ttl_min, state.ttl_max);
                let until = now + Duration::from_secs(secs as u64);
                let k = (if ip.is_ipv6() { id6 } else { id4 }, ip);
                // Written recently and already there for long enough (a second of
                // slack): skip. "Recently" bounds how long an element someone else
                // removed (a set re-created by a repair) stays missing.
                if memo.get(&k).is_some_and(|(at, e)| {
                    now.duration_since(*at) < MEMO_TRUST && *e + Duration::from_secs(1) >= until
                }) {
                    self.stats.set_skipped.fetch_add(1, Relaxed);
                    continue;
                }
                memo.insert(k, (now, until));
                let e = Elem::with_timeout(ip, secs as u64 * 1000);
                if ip.is_ipv6() { v6.push(e) } else { v4.push(e) }
            }
        }
        if v4.is_empty() && v6.is_empty() {
            return;
        }
        let [set4, set6] = self.sets(state, client, m.pos, |s| s.names.clone());
        let mut ops = Vec::with_capacity(2);
        if !v4.is_empty() {
            ops.push(Op::Refresh {
                set: &set4,
                elems: &v4,
            });
        }
        if !v6.is_empty() {
            ops.push(Op::Refresh {
                set: &set6,
                elems: &v6,
            });
        }
        let n = (v4.len() + v6.len()) as u64;
        let mut nft = self.nft.lock().unwrap();
        if nft.is_none() {
            match NftSock::open() {
                Ok(s) => *nft = Some(s),
                Err(e) => {
                    self.set_failed(&ops, (id4, id6), &format!("netlink socket: {e}"));
                    return;
                }
            }
        }
        let sock = nft.as_mut().unwrap();
        match sock.apply(&ops) {
            Ok(()) => {
                self.stats.set_elements.fetch_add(n, Relaxed);
                if let Some(t) = received {
                    let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    let mut l = self.latencies.lock().unwrap();
                    if l.len() >= 10_000 {
                        l.clear();
                    }
                    l.push(us);
                }
            }
            Err(e) => {
                drop(nft);
                self.set_failed(&ops, (id4, id6), &e.to_string());
            }
        }
    }

    fn set_failed(&self, ops: &[Op], (id4, id6): (u32, u32), why: &str) {
        let n = self.stats.set_errors.fetch_add(1, Relaxed);
        // Forget what we thought was inserted, so the next answer retries.
        let mut memo = self.memo.lock().unwrap();
        for op in ops {
            if let Op::Refresh { elems, .. } = op {
                for e in *elems {
                    memo.remove(&(if e.key.is_ipv6() { id6 } else { id4 }, e.key));
                }
            }
        }
        if n < 10 || n.is_power_of_two() {
            eprintln!(
                "wgsplit: dns: set insert failed ({} errors so far): {why}",
                n + 1
            );
        }
    }

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

/// For each new route: is it the old route of the same index (same
/// resolvers, same mark), so that what it answered still holds?
fn same_routes(old: &[Arc<Forwarder>], new: &[Arc<Forwarder>]) -> Vec<bool> {
    new.iter()
        .enumerate()
        .map(|(i, f)| {
            old.get(i)
                .is_some_and(|o| o.servers == f.servers && o.mark == f.mark)
        })
        .collect()
}

/// For each old client index: its index in the new policy (same name, active
/// in both), or `None` (removed, renamed or no longer active).
fn client_moves(old: &Policy, new: &Policy) -> Vec<Option<usize>> {
    let by_name: FastMap<&str, usize> = new
        .clients
        .iter()
        .enumerate()
        .filter(|(_, n)| n.active)
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    old.clients
        .iter()
        .map(|c| by_name.get(c.name.as_str()).copied().filter(|_| c.active))
        .collect()
}

/// What a client's rule at `pos` matches and where it sends it (a set whose
/// rule changed may have been emptied or re-created: its memo is dropped).
fn rule_at(
    p: &Policy,
    client: usize,
    pos: usize,
) -> Option<(Target, &[crate::config::types::DomainPattern], &[String])> {
    p.clients[client]
        .rules
        .iter()
        .find(|r| r.pos == pos)
        .map(|r| (r.target, &r.domains[..], &r.lists[..]))
}

/// The active client a source address belongs to.
fn client_of(state: &State, ip: IpAddr) -> Option<usize> {
    match &state.hosts {
        Some(h) => h.get(&ip).copied(),
        None => state.policy.client_by_addr(ip).map(|c| c.index),
    }
}

fn block_answer(state: &State, request: &[u8], q: &Query) -> Vec<u8> {
    if state.block_null {
        wire::null_answer(request, q, state.ttl_min)
    } else {
        wire::error_answer(request, q, wire::RCODE_NXDOMAIN)
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

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

    fn config(us_dns: &str, with_bob: bool) -> (Config, Policy) {
        let mut text = format!(
            "config server 'server'
	option address '10.8.0.1/24'
	option private_key '{KEY}'
	list dns_server '10.99.0.53'
config upstream 'us'
	option private_key '{KEY}'
	list address '10.64.0.2/32'
	option public_key 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='
	option endpoint '192.0.2.1:51820'
	list dns '{us_dns}'
config client 'alice'
	option public_key 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='
	list address '10.8.0.2/32'
config rule
	option client 'alice'
	option action 'proxy'
	option upstream 'us'
	list domain 'netflix.com'
"
        );
        if with_bob {
            // Before alice in the file: removing him moves alice's index.
            text = text.replace(
                "config client 'alice'",
                "config client 'bob'
	option public_key 'TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0='
	list address '10.8.0.3/32'
config rule
	option client 'bob'
	option action 'proxy'
	option upstream 'us'
	list domain 'netflix.com'
config client 'alice'",
            );
        }
        let c = crate::config::parse_valid(&text).unwrap();
        let p = policy::compile(&c, 0);
        (c, p)
    }

    fn cache_some(r: &Resolver, routes: &[u16]) {
        let now = Instant::now();
        let mut c = r.cache.lock().unwrap();
        for &route in routes {
            for i in 0..5 {
                let key = Key {
                    route,
                    qtype: 1,
                    qclass: 1,
                    edns: false,
                    name: format!("\x01n{i}\x00").into_bytes().into(),
                };
                let entry = Entry {
                    bytes: vec![0; 40].into(),
                    ttl_offsets: Box::new([]),
                    stored: now,
                    expires: now + Duration::from_secs(300),
                    addrs: Box::new([]),
                    cnames: Box::new([]),
                };
                c.insert(key, entry, false, now);
            }
        }
    }

    fn routes_cached(r: &Resolver) -> Vec<usize> {
        let c = r.cache.lock().unwrap();
        (0..2u16)
            .map(|route| {
                (0..5)
                    .filter(|i| {
                        let name = format!("\x01n{i}\x00").into_bytes();
                        let k = KeyRef {
                            route,
                            qtype: 1,
                            qclass: 1,
                            edns: false,
                            name: &name,
                        };
                        c.map_contains(&k)
                    })
                    .count()
            })
            .collect()
    }

    #[test]
    fn reload_drops_only_the_changed_routes_answers() {
        let (c, p) = config("10.64.0.1", true);
        let r = Resolver::new(&c, &p);
        cache_some(&r, &[0, 1]);
        let fwd_before = r.state.read().unwrap().routes[1].clone();
        // The same config again (what a health change did): nothing dropped,
        // the forwarders kept.
        r.update(&c, &p);
        assert_eq!(routes_cached(&r), [5, 5]);
        assert!(Arc::ptr_eq(&fwd_before, &r.state.read().unwrap().routes[1]));
        // The upstream's resolver changed: only its answers go.
        let (c2, p2) = config("10.64.0.9", true);
        r.update(&c2, &p2);
        assert_eq!(routes_cached(&r), [5, 0]);
        assert_eq!(r.stats().cache_invalidated, 5);
        assert!(!Arc::ptr_eq(
            &fwd_before,
            &r.state.read().unwrap().routes[1]
        ));
    }

    #[test]
    fn a_removed_clients_state_is_freed() {
        let (c, p) = config("10.64.0.1", true);
        let r = Resolver::new(&c, &p);
        let query = |name: &str| {
            let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
            for l in name.split('.') {
                q.push(l.len() as u8);
                q.extend_from_slice(l.as_bytes());
            }
            q.extend_from_slice(&[0, 0, 1, 0, 1]);
            q
        };
        let state = r.state.read().unwrap().clone();
        let (bob, alice) = (0, 1);
        assert_eq!(state.policy.clients[bob].name, "bob");
        // Both asked (a bucket each) and had sets filled (set names, memo).
        for src in ["10.8.0.2:5000", "10.8.0.3:5000"] {
            r.fast(&query("x.example"), src.parse().unwrap(), false, true);
        }
        for c in [bob, alice] {
            let ids = r.sets(&state, c, 0, |s| s.ids);
            r.memo.lock().unwrap().insert(
                (ids[0], "198.51.100.1".parse().unwrap()),
                (Instant::now(), Instant::now()),
            );
        }
        assert_eq!(r.stats().rate_sources, 2);
        // Spend alice's burst: her bucket must follow her to her new index.
        let mut limited = 0;
        for _ in 0..2 * CLIENT_BURST {
            r.fast(
                &query("x.example"),
                "10.8.0.2:5000".parse().unwrap(),
                false,
                true,
            );
        }
        limited += r.stats().rate_limited;
        assert!(limited >= CLIENT_BURST as u64 - 1, "{limited}");

        let (c2, p2) = config("10.64.0.1", false);
        r.update(&c2, &p2);
        assert_eq!(r.stats().rate_sources, 1, "bob's bucket freed");
        assert_eq!(
            r.set_names.lock().unwrap().map.len(),
            1,
            "bob's sets forgotten"
        );
        assert_eq!(
            r.memo.lock().unwrap().len(),
            1,
            "bob's inserted elements forgotten"
        );
        let names = r.set_names.lock().unwrap();
        assert_eq!(&*names.map[&(0, 0)].names[0], "alice_r0_dns4");
        drop(names);
        // Alice (now index 0) is still over her rate.
        let before = r.stats().rate_limited;
        r.fast(
            &query("x.example"),
            "10.8.0.2:5000".parse().unwrap(),
            false,
            true,
        );
        assert_eq!(r.stats().rate_limited, before + 1);
        // Bob's address is nobody now: refused.
        let refused = r.stats().refused;
        match r.fast(
            &query("x.example"),
            "10.8.0.3:5000".parse().unwrap(),
            false,
            true,
        ) {
            Step::Reply(a) => assert_eq!(a[3] & 0xf, wire::RCODE_REFUSED),
            _ => panic!("a non-client gets REFUSED"),
        }
        assert_eq!(r.stats().refused, refused + 1);
    }
}
