//! The kernel side of an answer: its addresses into the nft sets of the rule
//! it matched, before the answer leaves, over one long-lived netlink socket;
//! a memo of what was written skips rewrites that would not extend an
//! element's life.

use std::{
    net::IpAddr,
    sync::{Arc, atomic::Ordering::Relaxed},
    time::{Duration, Instant},
};

use super::{Resolver, State};
use crate::{
    dns::{cache::FastMap, rules::Matched},
    policy,
    sys::nftnl::{Elem, NftSock, Op},
};

/// Elements we remember having put in the kernel (to skip needless refreshes).
const MEMO_MAX: usize = 16_384;
/// How long we trust that an element we wrote is still in the kernel.
const MEMO_TRUST: Duration = Duration::from_secs(30);
/// (set id, address) → (when we last wrote the element, when it expires there).
pub(super) type Memo = FastMap<(u32, IpAddr), (Instant, Instant)>;

/// (client, rule) → its two sets (IPv4, IPv6); ids are never reused, so the
/// memo of a set that is gone cannot be taken for another's.
#[derive(Default)]
pub(super) struct SetNames {
    pub(super) map: FastMap<(usize, usize), RuleSets>,
    next_id: u32,
}

/// A rule's sets: ids (for `memo`) and names, IPv4 then IPv6.
pub(super) struct RuleSets {
    pub(super) ids: [u32; 2],
    pub(super) names: [Arc<str>; 2],
}

impl Resolver {
    /// What `f` takes from the client's rule's sets (one lookup, names
    /// made the first time).
    pub(super) fn sets<R>(
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
    pub(super) fn insert(
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
}
