//! A new policy taken in place: rules, lists and routes rebuilt; what stayed
//! kept (forwarders and their queries in flight, cached answers, set memos,
//! rate-limit buckets), what the change made wrong dropped.

use std::sync::{Arc, atomic::Ordering::Relaxed};

use super::{Resolver, build_state, client_of};
use crate::{
    dns::{access::Networks, cache::FastMap, upstream::Forwarder},
    policy::{self, Policy, Target},
};

impl Resolver {
    /// Takes a new policy (reload, or a health change that re-read it): rules,
    /// lists and routes are rebuilt. Only what the change made wrong is
    /// dropped: the cached answers of routes whose resolvers or mark changed
    /// (a route that stayed keeps its forwarder, queries in flight included),
    /// the memory of inserted elements for sets that are gone or whose rule
    /// changed, and the rate-limit buckets of clients and networks that are
    /// gone. The listening addresses stay those `serve` was started with.
    pub fn update(&self, policy: Arc<Policy>) {
        let (mut state, problems) = build_state(&policy, &self.over_cap);
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
        let networks = Networks::new(policy.dns.listen_networks.clone());
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
) -> Option<(Target, &[policy::dns::DomainPattern], &[String])> {
    p.clients[client]
        .rules
        .iter()
        .find(|r| r.pos == pos)
        .map(|r| (r.target, &r.domains[..], &r.lists[..]))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::dns::{
        cache::{Entry, Key, KeyRef},
        limit::CLIENT_BURST,
        resolver::query::Step,
        wire,
    };

    const KEY: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

    fn config(us_dns: &str, with_bob: bool) -> Arc<Policy> {
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
        Arc::new(policy::dns::from_text(&text))
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
        let p = config("10.64.0.1", true);
        let r = Resolver::new(p.clone());
        cache_some(&r, &[0, 1]);
        let fwd_before = r.state.read().unwrap().routes[1].clone();
        // The same config again (what a health change did): nothing dropped,
        // the forwarders kept.
        r.update(p.clone());
        assert_eq!(routes_cached(&r), [5, 5]);
        assert!(Arc::ptr_eq(&fwd_before, &r.state.read().unwrap().routes[1]));
        // The upstream's resolver changed: only its answers go.
        r.update(config("10.64.0.9", true));
        assert_eq!(routes_cached(&r), [5, 0]);
        assert_eq!(r.stats().cache_invalidated, 5);
        assert!(!Arc::ptr_eq(
            &fwd_before,
            &r.state.read().unwrap().routes[1]
        ));
    }

    #[test]
    fn a_removed_clients_state_is_freed() {
        let p = config("10.64.0.1", true);
        let r = Resolver::new(p.clone());
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
        // One token a second: a busy test machine cannot refill it between
        // here and the check after the reload (at 200/s, 5 ms did).
        r.set_client_rate(1, CLIENT_BURST);
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

        r.update(config("10.64.0.1", false));
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

    /// Every miss spawns a task holding `forward`'s future; past ~1 KiB its
    /// memory came from glibc's large-chunk path (a free-list sweep per miss,
    /// ~5% of a miss's CPU in tests/bench/compare.sh), so the big inner
    /// pieces are boxed. This keeps them small.
    #[test]
    fn a_miss_task_and_its_pieces_stay_small() {
        let r = Arc::new(Resolver::new(config("10.64.0.1", true)));
        let request = crate::dns::wire::tests::query(1, "x.test", 1, false);
        let q = crate::dns::wire::parse_query(&request).unwrap();
        let state = r.state.read().unwrap().clone();
        let check: crate::dns::upstream::Check = Arc::new(|_, _| None);
        let ask = r.ask(&state, 0, &request, &q, false, check);
        assert!(
            std::mem::size_of_val(&ask) <= 768,
            "{}",
            std::mem::size_of_val(&ask)
        );
        drop(ask);
        let ctx = super::super::query::Ctx {
            q,
            state,
            client: None,
            matched: None,
            route: 0,
            key: crate::dns::cache::Key {
                route: 0,
                qtype: 1,
                qclass: 1,
                edns: false,
                name: vec![0u8].into(),
            },
        };
        let me = r.clone();
        let task = async move { me.forward(&request, ctx, false).await };
        assert!(
            std::mem::size_of_val(&task) <= 768,
            "{}",
            std::mem::size_of_val(&task)
        );
    }
}
