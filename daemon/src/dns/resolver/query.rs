//! The path of a query up to the point where an upstream would be asked: who
//! asks (and may they, this often), parse, match the client's rules, block,
//! cache hit (with the CNAME chain's rule), or hand it on to `forward`.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Arc, atomic::Ordering::Relaxed},
    time::Instant,
};

use super::{Resolver, State, block_answer, client_of};
use crate::{
    dns::{
        cache::{Key, KeyRef},
        limit::{Source, Verdict},
        matcher::NameHashes,
        rules::{Matched, WireText},
        wire::{self, Query, WireError},
    },
    policy::Target,
};

/// What the fast path decided.
pub(super) enum Step {
    Reply(Vec<u8>),
    Drop,
    Forward(Box<Ctx>),
}

/// A query on its way upstream.
pub(super) struct Ctx {
    pub(super) q: Query,
    pub(super) state: Arc<State>,
    pub(super) client: Option<usize>,
    pub(super) matched: Option<Matched>,
    pub(super) route: usize,
    pub(super) key: Key,
}

impl Resolver {
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
    pub(super) fn fast(&self, request: &[u8], src: SocketAddr, tcp: bool, limit: bool) -> Step {
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
            && super::super::bypass::refused(&q.wire_name, &state.doh)
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

    /// The first rule matching the name or any name of its CNAME chain.
    pub(super) fn chain_match(
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
}
