//! The health monitor thread inside the daemon: every few seconds it reads each
//! upstream's handshake, probes through the tunnel, decides states, logs every
//! switch and asks the engine to re-apply when a route changed.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use super::{Change, Observation, State, Tracker, UpstreamHealth, probe};
use crate::{
    clients::{live, store::Store},
    config::{Config, types::parse_resolver},
};

/// Health as the planner takes it (`plan::Inputs::health`): upstream → up?
/// A down upstream whose `on_down` applies is `false`.
static PLANNER_HEALTH: OnceLock<Mutex<BTreeMap<String, bool>>> = OnceLock::new();

fn planner_cell() -> &'static Mutex<BTreeMap<String, bool>> {
    PLANNER_HEALTH.get_or_init(|| Mutex::new(BTreeMap::new()))
}

/// What the engine should plan with now. Empty until the monitor's first round
/// (the planner then treats every upstream as up).
pub fn planner_health() -> BTreeMap<String, bool> {
    planner_cell()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

pub fn interval() -> Duration {
    std::env::var("WGSPLIT_HEALTH_EVERY")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(5))
}

/// Probe time-out: a little under the interval, at most 2 s.
fn probe_timeout() -> Duration {
    interval().mul_f64(0.8).min(Duration::from_secs(2))
}

/// One round of observations from the kernel and the probes.
pub fn observe(config: &Config) -> HashMap<String, Observation> {
    let backend = live::wg_backend(config);
    let mut out = HashMap::new();
    for u in &config.upstreams {
        let ifname = u.interface_or_default();
        let mut o = Observation {
            enabled: u.enabled_or_default(),
            ..Default::default()
        };
        if o.enabled {
            match live::device_peers(&ifname, backend) {
                Ok(peers) => {
                    o.interface_present = true;
                    o.handshake_age = u
                        .public_key
                        .as_deref()
                        .and_then(|k| peers.get(k))
                        .and_then(|p| p.handshake_age);
                }
                Err(e) => log::debug!("upstream {}: {e}", u.name),
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

/// Runs until the process ends. `reapply` asks the engine for a new apply.
pub fn run(
    store: Arc<Store>,
    shared: Arc<Mutex<HashMap<String, UpstreamHealth>>>,
    reapply: Arc<dyn Fn() + Send + Sync>,
) {
    let mut tracker = Tracker::default();
    loop {
        let started = std::time::Instant::now();
        if let Ok(config) = store.load() {
            let obs = observe(&config);
            let changes: Vec<Change> = tracker.observe(&config, &obs, crate::policy::now_unix());
            for c in &changes {
                crate::daemon::say(&c.to_string());
            }
            let planner = to_planner(&tracker.current);
            let routing_changed = {
                let mut cell = planner_cell().lock().unwrap_or_else(|e| e.into_inner());
                let changed = *cell != planner;
                *cell = planner;
                changed
            };
            *shared.lock().unwrap_or_else(|e| e.into_inner()) = tracker.current.clone();
            if let Err(e) = super::write_state(&tracker.current) {
                log::debug!("health state file: {e}");
            }
            if routing_changed {
                reapply();
            }
        }
        std::thread::sleep(interval().saturating_sub(started.elapsed()));
    }
}
