//! The resolver proper: its state (what one policy makes of it: rules, routes,
//! who may ask) and its parts, each a file of `resolver/`: `query` (who asks,
//! which rule the name matches for that client, block, cache hit), `forward`
//! (a miss asked the way its traffic leaves, rerouted by its CNAME chain),
//! `sets` (the answer's addresses into the rule's nft sets before it leaves),
//! `reload` (a new policy in place), `listen` (the UDP and TCP sockets) and
//! `stats` (the counters).

mod forward;
mod listen;
mod query;
mod reload;
mod sets;
mod stats;

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

pub use listen::{TCP_IDLE, TCP_MAX_CONNECTIONS, TCP_QUERY_MAX, TCP_WRITE};
pub use stats::{Counter, Stats, StatsSnapshot};

use super::{
    access::Networks,
    cache::{Cache, FastMap},
    limit::{CLIENT_BURST, CLIENT_RATE, Limiter},
    rules::{DomainList, Rules, load_lists},
    upstream::{Forwarder, OverCap, resolv_conf},
    wire::{self, Query},
};
use crate::{
    policy::{Policy, Target, dns::BlockAnswer},
    sys::nftnl::NftSock,
};
use sets::{Memo, SetNames};

/// Per-try wait for an upstream resolver, and the whole budget of a query.
const ATTEMPT: Duration = Duration::from_millis(800);
const BUDGET: Duration = Duration::from_millis(2000);
const CACHE_BYTES: usize = 4 << 20;

/// How names of one route are resolved: index 0 is direct, `i + 1` upstream `i`.
struct State {
    policy: Arc<Policy>,
    /// Client by address, when every active client's addresses are single
    /// hosts (the usual case): one lookup instead of a scan of all clients.
    hosts: Option<FastMap<IpAddr, usize>>,
    rules: Rules,
    /// The bypass guard's DoH names (`server.doh_list`; empty: the shipped ones).
    doh: Vec<Arc<DomainList>>,
    routes: Vec<Arc<Forwarder>>,
    ttl_min: u32,
    ttl_max: u32,
    block_null: bool,
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
    /// Forwards refused by the routes' in-flight caps (shared by every route).
    over_cap: OverCap,
    /// Problems found while loading (lists that failed, …).
    pub problems: Mutex<Vec<String>>,
}

fn build_state(policy: &Arc<Policy>, over_cap: &OverCap) -> (State, Vec<String>) {
    let (lists, mut problems) = load_lists(policy);
    let rules = Rules::build(policy, &lists);
    let mut doh = Vec::new();
    for l in &policy.dns.doh_lists {
        match DomainList::load(l) {
            Ok(names) => doh.push(Arc::new(names)),
            Err(e) => problems.push(format!("doh_list {}: {e}", l.name)),
        }
    }
    if doh.is_empty() && !policy.dns.doh_lists.is_empty() {
        problems.push("no doh_list could be read: the shipped DoH names are refused".into());
    }
    let dns = &policy.dns;
    let mut direct = dns.direct_servers.clone();
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
        over_cap.clone(),
    ))];
    for (i, own) in dns.upstream_servers.iter().enumerate() {
        // No resolver of its own: the WAN's, but through the tunnel all the same.
        let servers = if own.is_empty() {
            direct.clone()
        } else {
            own.clone()
        };
        let mark = policy.marks.of(Target::Upstream(i));
        routes.push(Arc::new(Forwarder::new(
            servers,
            Some(mark),
            ATTEMPT,
            BUDGET,
            over_cap.clone(),
        )));
    }
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
            doh,
            routes,
            ttl_min: dns.ttl_min,
            ttl_max: dns.ttl_max,
            block_null: dns.block_answer == BlockAnswer::Null,
        },
        problems,
    )
}

impl Resolver {
    pub fn new(policy: Arc<Policy>) -> Arc<Self> {
        let over_cap = OverCap::default();
        let (state, problems) = build_state(&policy, &over_cap);
        for p in &problems {
            // Where the user sees it (the daemon's stderr goes to the system log).
            eprintln!("wgsplit: dns: {p}");
        }
        let networks = Networks::new(policy.dns.listen_networks.clone());
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
            over_cap,
            problems: Mutex::new(problems),
        })
    }

    /// Sets each client's rate limit (queries/s, burst): `dns-serve` takes it
    /// from the command line (the benchmarks measure the resolver, not it).
    pub fn set_client_rate(&self, rate: u32, burst: u32) {
        let mut l = self.limiter.lock().unwrap();
        (l.rate, l.burst) = (rate, burst);
    }

    /// The addresses `serve` listens on (server addresses and `dns_listen`).
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.state.read().unwrap().policy.dns.listen.clone()
    }
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
