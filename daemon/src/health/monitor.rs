//! The health monitor thread inside the daemon: every few seconds it reads each
//! upstream's handshake, probes through the tunnel, decides states, logs every
//! switch and asks the engine to re-apply when a route changed.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::sync::watch;

use super::{Change, Observation, State, Tracker, UpstreamHealth, probe};
use crate::{
    config::{Config, store::Store, types::parse_resolver},
    engine::apply::LiveInputs,
    sys::lookup::{self, Reply},
};

/// Host names are resolved at the first round and again only when the
/// upstream's handshake goes stale (a provider's address changed), at most every
/// [`RESOLVE_EVERY`]; an address that fails to resolve keeps the old one.
pub const RESOLVE_EVERY: Duration = Duration::from_secs(30);

/// Should a host name be looked up again? Never looked up; or the handshake
/// is stale (or missing) and the last lookup is older than [`RESOLVE_EVERY`].
pub fn needs_resolve(last: Option<Duration>, handshake_age: Option<u64>) -> bool {
    match last {
        None => true,
        Some(since) => {
            handshake_age.is_none_or(|a| a > super::STALE_SECS) && since >= RESOLVE_EVERY
        }
    }
}

/// What a round did to the endpoints: lines to log, and whether an address moved
/// (then the engine must re-apply the peer's endpoint).
#[derive(Default)]
struct EndpointChanges {
    lines: Vec<String>,
    moved: bool,
}

/// The monitor's lookups: when each upstream's name was last asked for
/// (`needs_resolve`'s clock), and the asks whose answer has not landed yet
/// (upstream → the time an answer must be newer than; `None`: any).
#[derive(Default)]
struct Lookups {
    asked: HashMap<String, Instant>,
    waiting: HashMap<String, Option<Instant>>,
}

/// Keeps the endpoint map current without waiting for a lookup: starts the
/// ones `needs_resolve` wants (in the background, `sys::lookup`) and takes the
/// answers that have landed since, this round or a later one.
fn refresh_endpoints(
    config: &Config,
    obs: &HashMap<String, Observation>,
    lookups: &mut Lookups,
    map: &mut BTreeMap<String, SocketAddr>,
) -> EndpointChanges {
    let mut changes = EndpointChanges::default();
    let known = |n: &String| config.upstreams.iter().any(|u| &u.name == n);
    map.retain(|n, _| known(n));
    lookups.asked.retain(|n, _| known(n));
    lookups.waiting.retain(|n, _| known(n));
    let now = Instant::now();
    for u in &config.upstreams {
        let Some((host, port)) = u
            .endpoint
            .as_deref()
            .and_then(|e| crate::config::types::parse_endpoint(e).ok())
        else {
            continue;
        };
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            map.insert(u.name.clone(), SocketAddr::new(ip, port));
            continue;
        }
        let age = obs.get(&u.name).and_then(|o| o.handshake_age);
        let last = lookups.asked.get(&u.name).map(|t| t.elapsed());
        if needs_resolve(last, age) {
            // The first time, an answer from the daemon's start (the engine asked
            // then) will do; after that, only a new one.
            let since = match last {
                None => now.checked_sub(RESOLVE_EVERY),
                Some(_) => Some(now),
            };
            lookups.asked.insert(u.name.clone(), now);
            lookups.waiting.entry(u.name.clone()).or_insert(since);
        }
        let Some(&since) = lookups.waiting.get(&u.name) else {
            continue;
        };
        let Reply::Fresh(answer) = lookup::ask(&host, port, since) else {
            continue;
        };
        lookups.waiting.remove(&u.name);
        let Ok(addr) = answer.result else {
            changes.lines.push(format!(
                "upstream {}: cannot resolve {host}; keeping the last address",
                u.name
            ));
            continue;
        };
        match map.insert(u.name.clone(), addr) {
            Some(old) if old != addr => {
                changes.moved = true;
                changes.lines.push(format!(
                    "upstream {}: {host} re-resolved (handshake stale): {old} -> {addr}",
                    u.name
                ));
            }
            Some(_) => {}
            // A first address: the peer was set without one.
            None => {
                changes.moved = true;
                log::info!("upstream {}: {host} resolved: {addr}", u.name);
            }
        }
    }
    changes
}

pub fn interval() -> Duration {
    crate::util::paths::health_every()
}

/// Probe time-out: a little under the interval, at most 2 s.
fn probe_timeout() -> Duration {
    interval().mul_f64(0.8).min(Duration::from_secs(2))
}

/// One round of observations from the kernel and the probes.
pub fn observe(config: &Config) -> HashMap<String, Observation> {
    let backend = config.server.backend.unwrap_or_default();
    let mut out = HashMap::new();
    for u in &config.upstreams {
        let ifname = u.interface_or_default();
        let mut o = Observation {
            enabled: u.enabled_or_default(),
            ..Default::default()
        };
        if o.enabled {
            match crate::sys::wg::peers::device_peers(&ifname, backend) {
                Ok(peers) => {
                    o.interface_present = true;
                    o.handshake_age = u
                        .public_key
                        .as_deref()
                        .and_then(|k| peers.get(k))
                        .and_then(|p| p.handshake_age);
                }
                Err(e) => {
                    // There but not answering (a busy userspace device): the
                    // probe through it decides, not "interface missing".
                    o.interface_present = crate::sys::wg::present(&ifname, backend);
                    log::debug!("upstream {}: {e}", u.name);
                }
            }
            let target: Option<SocketAddr> = u.dns.first().and_then(|d| parse_resolver(d).ok());
            if o.interface_present
                && let Some(server) = target
            {
                // Bound to the interface only: no mark, so the lookup can't be
                // steered by our own ip rules (which point elsewhere while the
                // upstream is down); the kernel sends it out that interface.
                o.probe = Some(probe::dns_probe(server, &ifname, 0, probe_timeout()));
            }
        }
        out.insert(u.name.clone(), o);
    }
    out
}

/// The planner's view: an upstream is "up" unless it is down.
pub fn to_planner(health: &HashMap<String, UpstreamHealth>) -> BTreeMap<String, bool> {
    health
        .iter()
        .map(|(n, h)| (n.clone(), h.state != State::Down))
        .collect()
}

/// Runs until the process ends. Publishes what the planner needs (health and
/// endpoints) on `live`, the states for the API in `shared`; `reapply` asks the
/// engine for a new apply when a route or an endpoint changed.
pub fn run(
    store: Arc<Store>,
    shared: Arc<Mutex<HashMap<String, UpstreamHealth>>>,
    live: watch::Sender<LiveInputs>,
    reapply: Arc<dyn Fn() + Send + Sync>,
) {
    let mut tracker = Tracker::default();
    let mut lookups = Lookups::default();
    let mut endpoints = BTreeMap::new();
    loop {
        let started = std::time::Instant::now();
        if let Ok(config) = store.load() {
            let obs = observe(&config);
            let changes: Vec<Change> =
                tracker.observe(&config, &obs, crate::util::time::now_unix());
            for c in &changes {
                crate::util::say(&c.to_string());
            }
            let moved = refresh_endpoints(&config, &obs, &mut lookups, &mut endpoints);
            for m in &moved.lines {
                crate::util::say(m);
            }
            let planner = to_planner(&tracker.current);
            let routing_changed = live.borrow().health != planner;
            live.send_replace(LiveInputs {
                health: planner,
                endpoints: endpoints.clone(),
            });
            *shared.lock().unwrap_or_else(|e| e.into_inner()) = tracker.current.clone();
            if let Err(e) = super::write_state(&tracker.current) {
                log::debug!("health state file: {e}");
            }
            if routing_changed || moved.moved {
                reapply();
            }
        }
        std::thread::sleep(interval().saturating_sub(started.elapsed()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_only_when_stale() {
        assert!(needs_resolve(None, Some(5)));
        assert!(!needs_resolve(Some(Duration::from_secs(600)), Some(5)));
        assert!(needs_resolve(Some(Duration::from_secs(31)), Some(200)));
        assert!(needs_resolve(Some(Duration::from_secs(31)), None));
        assert!(!needs_resolve(Some(Duration::from_secs(3)), None));
    }

    #[test]
    fn a_first_address_lands_in_a_later_round_and_asks_for_a_re_apply() {
        let mut config =
            crate::config::parse_valid(include_str!("../../../examples/wgsplit.conf")).unwrap();
        config.upstreams.truncate(1);
        // The loopback name needs no DNS server; a port no other test asks for.
        config.upstreams[0].endpoint = Some("localhost:51999".into());
        let (mut lookups, mut map) = (Lookups::default(), BTreeMap::new());
        let obs = HashMap::new();
        let mut rounds = Vec::new();
        for _ in 0..100 {
            let c = refresh_endpoints(&config, &obs, &mut lookups, &mut map);
            rounds.push(c.moved);
            if c.moved {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The first round only started the lookup (it never waits for one).
        assert!(!rounds[0]);
        assert_eq!(rounds.last(), Some(&true), "never landed");
        let name = &config.upstreams[0].name;
        assert!(map[name].ip().is_loopback() && map[name].port() == 51999);
        // Known and not stale: no lookup, no change.
        let c = refresh_endpoints(&config, &obs, &mut lookups, &mut map);
        assert!(!c.moved && c.lines.is_empty());
        assert!(lookups.waiting.is_empty());
    }
}
