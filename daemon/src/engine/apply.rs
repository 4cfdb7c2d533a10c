//! "Apply now", for every front end: the engine's inputs built in one place, the
//! daemon's apply (with its desired-state cache) and the one-shot apply of a
//! command that exits after it.

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};

use super::{Engine, ONE_SHOT_WAIT, Report, resolve_endpoints};
use crate::{
    config::Config,
    plan::{Desired, Inputs},
    policy::{self, Policy},
    sys::thread_cpu_ms,
    util::say,
};

/// What the running system knows that the config does not: upstream health
/// (upstream → up?; missing means up) and endpoints as last resolved (empty:
/// the engine looks them up itself, see `resolve_endpoints`).
#[derive(Debug, Clone, Default)]
pub struct LiveInputs {
    pub health: BTreeMap<String, bool>,
    pub endpoints: BTreeMap<String, SocketAddr>,
}

/// The planner's inputs for `config`: the CIDR lists read from their files, and
/// what the running system knows.
pub fn inputs(config: &Config, live: LiveInputs) -> Inputs {
    Inputs {
        health: live.health,
        endpoints: live.endpoints,
        list_cidrs: crate::sources::plain::list_cidrs(config),
        learned_hold: crate::util::paths::learned_hold(),
    }
}

/// A tokio runtime for one command (or the daemon's main loop): one thread.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))
}

/// The desired state of `config` now, with `live` inputs, for a one-shot
/// command. With no live endpoints, host names are looked up, waiting at most
/// `wait` for them (`ONE_SHOT_WAIT` for a command that changes the kernel;
/// a read-only one needs none: a peer without an endpoint plans no change).
pub fn desired_now(config: &Config, live: LiveInputs, wait: Duration) -> (Policy, Desired) {
    let policy = policy::compile(config, crate::util::time::now_unix());
    let mut inputs = inputs(config, live);
    if inputs.endpoints.is_empty() {
        inputs.endpoints = resolve_endpoints(config, wait);
    }
    let desired = Engine::desired(&policy, &inputs);
    (policy, desired)
}

/// One apply of `config` by a command that exits after it.
pub fn apply_now(config: &Config, live: LiveInputs) -> Result<Report, String> {
    runtime()?.block_on(async {
        let engine = Engine::new_one_shot(config.server.backend.unwrap_or_default())?;
        let (_, desired) = desired_now(config, live, ONE_SHOT_WAIT);
        engine.apply(&desired).await
    })
}

/// The desired state of the last apply and what it was built from. The periodic
/// check reuses it while nothing it depends on changed: rebuilding 50k elements
/// every 2 s would cost a router's CPU for nothing.
#[derive(Default)]
pub struct DesiredCache {
    built_from: Option<BuiltFrom>,
    desired: Option<Desired>,
}

/// The config (by identity), the inputs and the active clients a desired state came from.
type BuiltFrom = (Arc<(Config, Policy)>, Inputs, Vec<bool>);

/// Which clients are active at `now` (enabled and not expired): the only part of
/// the compiled policy that moves with the clock.
pub fn active_clients(config: &Config, now: i64) -> Vec<bool> {
    config
        .clients
        .iter()
        .map(|c| policy::client_active(c, now))
        .collect()
}

/// One apply of the daemon: the desired state (rebuilt only when something it
/// depends on changed), then a full apply (start, repair) or an incremental one.
/// `read_ms`: what reading and compiling the config took before this apply, when
/// it was read for it (reported with the apply: a config change costs both).
pub async fn apply_once(
    engine: &Engine,
    current: &Arc<(Config, Policy)>,
    cache: &mut DesiredCache,
    live: LiveInputs,
    why: &str,
    read_ms: Option<f64>,
) {
    let t0 = std::time::Instant::now();
    let cpu0 = thread_cpu_ms();
    let config = &current.0;
    let mut inputs = inputs(config, live);
    if inputs.endpoints.is_empty() {
        // No map from the health monitor yet (the start, or no upstream
        // resolves): what the lookups know now, never waiting for one (this is
        // the daemon's only thread for DNS and the API too). A changed address
        // is a changed input.
        inputs.endpoints = resolve_endpoints(config, Duration::ZERO);
    }
    let now = crate::util::time::now_unix();
    let active = active_clients(config, now);
    let unchanged = cache
        .built_from
        .as_ref()
        .is_some_and(|(c, i, a)| Arc::ptr_eq(c, current) && *i == inputs && *a == active);
    if !unchanged || cache.desired.is_none() {
        // Expiry moves with the clock: compile again for a new build.
        let policy = policy::compile(config, now);
        cache.desired = Some(Engine::desired(&policy, &inputs));
        cache.built_from = Some((current.clone(), inputs, active));
    }
    let desired = cache.desired.as_ref().expect("built above");
    let desired_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let desired_cpu = thread_cpu_ms() - cpu0;
    // Periodic checks read the kernel; changes plan against what we applied last.
    let result = if why == "repair" || why == "start" {
        engine.apply(desired).await
    } else {
        engine.apply_incremental(desired).await
    };
    match result {
        Ok(r) if r.ops.is_empty() => {}
        Ok(r) => {
            let read = read_ms.map_or(String::new(), |ms| {
                format!("; config read and compiled in {ms:.1} ms")
            });
            say(&format!(
                "{why}: applied {} changes in {:.1} ms (kernel {:.1} ms, {} netlink requests, \
                 cpu {:.1} ms; desired state built in {desired_ms:.1} ms, cpu {desired_cpu:.1} ms{read})",
                r.ops.len(),
                r.millis,
                r.kernel_ms,
                r.netlink_requests,
                r.cpu_ms
            ));
            for op in &r.ops {
                for line in op.to_string().lines().take(12) {
                    eprintln!("    {line}");
                }
            }
        }
        Err(e) => say(&format!("{why}: apply failed: {e}")),
    }
}
