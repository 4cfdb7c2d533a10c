//! A cache miss on its way upstream: asked the way its rule's traffic leaves,
//! asked again once another way when its CNAME chain leads elsewhere, the
//! set insert done as the answer arrives, and the answer cached under the
//! route that resolved it.

use std::{
    sync::{Arc, atomic::Ordering::Relaxed},
    time::{Duration, Instant},
};

use super::{Resolver, State, block_answer, query::Ctx};
use crate::{
    dns::{
        cache::{Entry, Key},
        rules::Matched,
        upstream::Check,
        wire::{self, Query},
    },
    policy::Target,
};

impl Resolver {
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
            let a = wire::parse_answer(b, &q).ok()?;
            if let Some(c) = client
                && let Some(m) = me.chain_match(&state, c, matched, &a.cnames)
                && m.target != Target::Block
                && (always || m.target.route() == Some(route))
            {
                me.insert(&state, c, m, &a.addrs, 0, Some(received));
            }
            Some(a)
        })
    }

    /// Asks `route`'s resolvers (over TCP too when a TCP client's answer came
    /// back truncated): the answer and what it says, or `None` (SERVFAIL).
    pub(super) async fn ask(
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
        if tcp && reply.as_ref().is_some_and(|r| r.answer.truncated) {
            reply = fwd.query(request, q, true, check).await;
        }
        let Some(reply) = reply else {
            self.stats.upstream_failures.fetch_add(1, Relaxed);
            return None;
        };
        Some((reply.bytes, reply.answer))
    }

    pub(super) async fn forward(self: &Arc<Self>, request: &[u8], ctx: Ctx, tcp: bool) -> Vec<u8> {
        let Ctx {
            q,
            state,
            client,
            matched,
            route,
            key,
        } = ctx;
        let check = self.check(&state, &q, client, matched, route, false);
        // Boxed, as the rare second ask below is: every miss spawns a task
        // holding this future, and small pieces stay on the allocator's fast
        // path (a task past ~1 KiB took a large-chunk search and a sweep of the
        // free lists on each miss: ~5% of a miss's CPU, measured).
        let Some((mut bytes, mut a)) =
            Box::pin(self.ask(&state, route, request, &q, tcp, check)).await
        else {
            self.stats.servfail.fetch_add(1, Relaxed);
            return wire::error_answer(request, &q, wire::RCODE_SERVFAIL);
        };
        // Cached under the route that resolved it (valid for every client whose
        // traffic for this chain goes that way), unless a config change
        // replaced that route's resolvers while we waited.
        if self.route_current(&state, route) {
            self.store(&key, &bytes, &a);
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
                match Box::pin(self.ask(&state, r, request, &q, tcp, check)).await {
                    Some(x) => {
                        (bytes, a) = x;
                        if self.route_current(&state, r) {
                            self.store(
                                &Key {
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
    fn store(&self, key: &Key, bytes: &[u8], a: &wire::Answer) {
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
            self.cache
                .lock()
                .unwrap()
                .insert(key.clone(), entry, negative, now);
        }
    }
}
