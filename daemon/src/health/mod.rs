//! Upstream health: the handshake age and an active probe through the tunnel
//! decide up / degraded / down; a down upstream's traffic then follows its
//! `on_down` policy (block, direct, or the failover upstream while that one is
//! up). The decision is pure ([`Tracker::observe`]); `probe` does the I/O.

pub mod monitor;
pub mod probe;

use std::{collections::HashMap, path::PathBuf};

use serde::{Deserialize, Serialize};

use crate::{
    config::Config,
    policy::{UpstreamRoute, upstream_route},
};

/// A handshake older than this is stale (WireGuard re-keys every 120 s while
/// traffic flows; keepalives make traffic).
pub const STALE_SECS: u64 = 180;
/// Without a probe, a handshake older than this means down.
pub const DEAD_SECS: u64 = 300;
/// Consecutive failed probes before an upstream is down.
pub const FAILS_TO_DOWN: u32 = 3;
/// Consecutive good probes before a down upstream is up again.
pub const OKS_TO_UP: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum State {
    #[default]
    Unknown,
    Up,
    Degraded,
    Down,
}

/// Where a down (or up) upstream's traffic goes now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "upstream")]
pub enum Route {
    /// Through the upstream itself.
    Own,
    Block,
    Direct,
    Failover(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamHealth {
    pub state: State,
    pub reasons: Vec<String>,
    pub handshake_age: Option<u64>,
    /// The last probe's round trip in milliseconds.
    pub probe_ms: Option<u64>,
    /// Unix seconds when `state` last changed.
    pub since: i64,
    pub route: Route,
}

/// One round of observations of an upstream.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub enabled: bool,
    pub interface_present: bool,
    pub handshake_age: Option<u64>,
    /// `None`: no probe target (the upstream has no `dns`).
    pub probe: Option<Result<u64, String>>,
}

#[derive(Debug, Clone, Default)]
struct Counters {
    fails: u32,
    oks: u32,
}

/// Keeps the per-upstream counters between rounds and decides states.
#[derive(Debug, Default)]
pub struct Tracker {
    counters: HashMap<String, Counters>,
    pub current: HashMap<String, UpstreamHealth>,
}

/// A change worth logging: `eu1: up → down (3 probes failed); traffic: failover to us1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub upstream: String,
    pub from: State,
    pub to: State,
    pub route: Route,
    pub reasons: Vec<String>,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = |s: State| format!("{s:?}").to_lowercase();
        write!(
            f,
            "upstream {}: {} -> {}",
            self.upstream,
            st(self.from),
            st(self.to)
        )?;
        if !self.reasons.is_empty() {
            write!(f, " ({})", self.reasons.join("; "))?;
        }
        match &self.route {
            Route::Own => Ok(()),
            Route::Block => write!(f, "; its traffic is blocked"),
            Route::Direct => write!(f, "; its traffic goes direct"),
            Route::Failover(u) => write!(f, "; its traffic fails over to {u}"),
        }
    }
}

impl Tracker {
    /// Decides one upstream's state from an observation.
    fn state_of(&mut self, name: &str, o: &Observation) -> (State, Vec<String>) {
        let prev = self.current.get(name).map(|h| h.state).unwrap_or_default();
        let c = self.counters.entry(name.to_string()).or_default();
        if !o.enabled {
            return (State::Down, vec!["disabled".into()]);
        }
        if !o.interface_present {
            return (State::Down, vec!["interface missing".into()]);
        }
        let mut reasons = Vec::new();
        let stale = match o.handshake_age {
            None => {
                reasons.push("no handshake yet".into());
                true
            }
            Some(a) if a > STALE_SECS => {
                reasons.push(format!("last handshake {a} s ago"));
                true
            }
            Some(_) => false,
        };
        match &o.probe {
            Some(Ok(_)) => {
                c.fails = 0;
                c.oks += 1;
                if prev == State::Down && c.oks < OKS_TO_UP {
                    reasons.push(format!("probe ok {}/{OKS_TO_UP}", c.oks));
                    return (State::Down, reasons);
                }
                (State::Up, Vec::new())
            }
            Some(Err(e)) => {
                c.oks = 0;
                c.fails += 1;
                reasons.push(format!("probe failed ({e})"));
                if c.fails >= FAILS_TO_DOWN || (stale && c.fails >= 2) {
                    (State::Down, reasons)
                } else {
                    (State::Degraded, reasons)
                }
            }
            None => match o.handshake_age {
                Some(a) if a <= STALE_SECS => (State::Up, Vec::new()),
                Some(a) if a <= DEAD_SECS => (State::Degraded, reasons),
                _ => (State::Down, reasons),
            },
        }
    }

    /// Takes one round of observations (every upstream of `config`) and returns
    /// the changes: state transitions and traffic re-routes.
    pub fn observe(
        &mut self,
        config: &Config,
        observations: &HashMap<String, Observation>,
        now: i64,
    ) -> Vec<Change> {
        let mut states: HashMap<String, (State, Vec<String>)> = HashMap::new();
        for u in &config.upstreams {
            let o = observations.get(&u.name).cloned().unwrap_or_default();
            states.insert(u.name.clone(), self.state_of(&u.name, &o));
        }
        let mut changes = Vec::new();
        let mut next = HashMap::new();
        for u in &config.upstreams {
            let (state, reasons) = states[&u.name].clone();
            let route = route_for(config, &u.name, &|n| states.get(n).map(|s| s.0));
            let o = observations.get(&u.name);
            let prev = self.current.get(&u.name);
            let since = match prev {
                Some(p) if p.state == state => p.since,
                _ => now,
            };
            if prev.map(|p| (p.state, &p.route)) != Some((state, &route)) {
                changes.push(Change {
                    upstream: u.name.clone(),
                    from: prev.map(|p| p.state).unwrap_or_default(),
                    to: state,
                    route: route.clone(),
                    reasons: reasons.clone(),
                });
            }
            next.insert(
                u.name.clone(),
                UpstreamHealth {
                    state,
                    reasons,
                    handshake_age: o.and_then(|o| o.handshake_age),
                    probe_ms: o
                        .and_then(|o| o.probe.as_ref())
                        .and_then(|p| p.as_ref().ok().copied()),
                    since,
                    route,
                },
            );
        }
        self.counters
            .retain(|n, _| config.upstreams.iter().any(|u| &u.name == n));
        self.current = next;
        changes
    }
}

/// Where `name`'s traffic goes given every upstream's state: its own tunnel
/// unless it is down; then `on_down` (a failover target must itself be up or
/// degraded, else the kill switch holds).
/// The decision is `policy::upstream_route`'s, the planner's too: an upstream is
/// up when enabled and not down (no state yet counts as up, as for the planner).
pub fn route_for(config: &Config, name: &str, state: &dyn Fn(&str) -> Option<State>) -> Route {
    let Some(i) = config.upstreams.iter().position(|u| u.name == name) else {
        return Route::Block;
    };
    let upstreams = crate::policy::upstreams(config);
    let up = |j: usize| {
        let u = &upstreams[j];
        u.enabled && state(&u.name) != Some(State::Down)
    };
    match upstream_route(&upstreams, i, &up) {
        UpstreamRoute::Own => Route::Own,
        UpstreamRoute::Block => Route::Block,
        UpstreamRoute::Direct => Route::Direct,
        UpstreamRoute::Failover(f) => Route::Failover(config.upstreams[f].name.clone()),
    }
}

/// Where the daemon keeps runtime state (a tmpfs on routers).
pub fn run_dir() -> PathBuf {
    crate::util::paths::run_dir()
}

pub fn state_path() -> PathBuf {
    run_dir().join("health.json")
}

pub fn write_state(health: &HashMap<String, UpstreamHealth>) -> std::io::Result<()> {
    let dir = run_dir();
    std::fs::create_dir_all(&dir)?;
    let text = serde_json::to_vec_pretty(health).map_err(std::io::Error::other)?;
    crate::util::fs::write_atomic(&state_path(), &text)
}

pub fn read_state() -> Option<HashMap<String, UpstreamHealth>> {
    let text = std::fs::read(state_path()).ok()?;
    serde_json::from_slice(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{clients::tests::example, config::OnDown};

    fn obs(age: Option<u64>, probe: Option<Result<u64, String>>) -> Observation {
        Observation {
            enabled: true,
            interface_present: true,
            handshake_age: age,
            probe,
        }
    }

    fn round(
        t: &mut Tracker,
        c: &Config,
        us1: Observation,
        eu1: Observation,
        now: i64,
    ) -> Vec<Change> {
        let m: HashMap<String, Observation> =
            [("us1".to_string(), us1), ("eu1".to_string(), eu1)].into();
        t.observe(c, &m, now)
    }

    #[test]
    fn failover_and_switch_back() {
        // eu1: on_down failover to us1; us1: on_down block.
        let c = example();
        let mut t = Tracker::default();
        let ok = || obs(Some(5), Some(Ok(12)));
        let bad = || obs(Some(5), Some(Err("timeout".into())));
        let ch = round(&mut t, &c, ok(), ok(), 0);
        assert_eq!(ch.len(), 2);
        assert_eq!(t.current["eu1"].state, State::Up);
        // One failure: degraded, traffic stays.
        let ch = round(&mut t, &c, ok(), bad(), 10);
        assert_eq!(t.current["eu1"].state, State::Degraded);
        assert_eq!(t.current["eu1"].route, Route::Own);
        assert_eq!(ch.len(), 1);
        round(&mut t, &c, ok(), bad(), 20);
        let ch = round(&mut t, &c, ok(), bad(), 30);
        assert_eq!(t.current["eu1"].state, State::Down);
        assert_eq!(t.current["eu1"].route, Route::Failover("us1".into()));
        assert_eq!(
            ch[0].to_string(),
            "upstream eu1: degraded -> down (probe failed (timeout)); its traffic fails over to us1"
        );
        // us1 dies too: the kill switch holds for both.
        for i in 0..3 {
            round(&mut t, &c, bad(), bad(), 40 + i);
        }
        assert_eq!(t.current["us1"].route, Route::Block);
        assert_eq!(t.current["eu1"].route, Route::Block);
        // Both come back; eu1 needs two good probes.
        let ch = round(&mut t, &c, ok(), ok(), 50);
        assert_eq!(t.current["eu1"].state, State::Down);
        assert_eq!(t.current["eu1"].route, Route::Block, "us1 also needs two");
        assert!(ch.is_empty(), "{ch:?}");
        round(&mut t, &c, ok(), ok(), 60);
        assert_eq!(t.current["eu1"].state, State::Up);
        assert_eq!(t.current["eu1"].route, Route::Own);
        assert_eq!(t.current["eu1"].since, 60);
    }

    #[test]
    fn handshake_only_and_missing_pieces() {
        let c = example();
        let mut t = Tracker::default();
        round(&mut t, &c, obs(Some(100), None), obs(Some(250), None), 0);
        assert_eq!(t.current["us1"].state, State::Up);
        assert_eq!(t.current["eu1"].state, State::Degraded);
        round(&mut t, &c, obs(None, None), Observation::default(), 0);
        assert_eq!(t.current["us1"].state, State::Down);
        assert_eq!(t.current["us1"].reasons, vec!["no handshake yet"]);
        assert_eq!(t.current["eu1"].reasons, vec!["disabled"]);
        // Stale handshake and two failed probes: down sooner.
        let mut t = Tracker::default();
        let stale = || obs(Some(400), Some(Err("timeout".into())));
        round(&mut t, &c, stale(), stale(), 0);
        round(&mut t, &c, stale(), stale(), 0);
        assert_eq!(t.current["us1"].state, State::Down);
    }

    #[test]
    fn direct_policy() {
        let mut c = example();
        c.upstreams[0].on_down = Some(OnDown::Direct);
        let r = route_for(&c, "us1", &|_| Some(State::Down));
        assert_eq!(r, Route::Direct);
        assert_eq!(route_for(&c, "us1", &|_| Some(State::Degraded)), Route::Own);
    }

    /// What health reports and what the planner's ip rule does for eu1
    /// (on_down failover to us1) agree in every combination of states, the
    /// failover's own down, disabled and unknown states included.
    #[test]
    fn health_and_planner_agree_on_a_down_upstream() {
        use crate::plan::{self, Inputs, TABLE_MAIN, upstream_table};
        let states = [
            None,
            Some(State::Up),
            Some(State::Degraded),
            Some(State::Down),
        ];
        for us1_enabled in [true, false] {
            for eu1 in states {
                for us1 in states {
                    let mut c = example();
                    c.upstreams[0].enabled = Some(us1_enabled);
                    let state = |n: &str| if n == "eu1" { eu1 } else { us1 };
                    let route = route_for(&c, "eu1", &state);
                    let mut health = std::collections::BTreeMap::new();
                    for (n, s) in [("eu1", eu1), ("us1", us1)] {
                        if let Some(s) = s {
                            health.insert(n.to_string(), s != State::Down);
                        }
                    }
                    let policy = crate::policy::compile(&c, 0);
                    let inputs = Inputs {
                        health,
                        ..Inputs::default()
                    };
                    let desired = plan::desired(&policy, &inputs);
                    let mark = policy.marks.of(crate::policy::Target::Upstream(1));
                    let table = desired
                        .rules
                        .iter()
                        .find(|r| r.mark == mark && !r.v6)
                        .map(|r| r.table)
                        .unwrap();
                    let expected = match &route {
                        Route::Own | Route::Block => upstream_table(&policy, 1),
                        Route::Direct => TABLE_MAIN,
                        Route::Failover(f) => {
                            assert_eq!(f, "us1");
                            upstream_table(&policy, 0)
                        }
                    };
                    assert_eq!(
                        table, expected,
                        "eu1 {eu1:?}, us1 {us1:?} (enabled {us1_enabled}): health says {route:?}"
                    );
                    if !us1_enabled || us1 == Some(State::Down) {
                        assert_ne!(route, Route::Failover("us1".into()), "a dead failover");
                    }
                }
            }
        }
    }
}
