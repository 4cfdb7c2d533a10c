//! The engine's commands (`apply`, `down`, `status`) and the daemon loop: apply,
//! then keep the kernel true — re-apply on SIGHUP, on a config change, on request
//! from a service, and repair whatever someone removed.
//!
//! Other services (the DNS resolver, the REST API) plug in as one line each in
//! [`services`]; they get a [`ServiceContext`] with the current config and a way
//! to ask for a re-apply.

use std::{
    future::Future,
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    time::{Duration, SystemTime},
};

use lexopt::Parser;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::{Notify, watch},
};

use crate::{
    cli::{CmdResult, Context, Failure, positional_and_flags},
    config::{self, Config},
    plan::{self, Inputs, Op},
    policy::{self, Policy},
    sys::{Engine, nft},
    util::say,
};

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::from(format!("tokio: {e}")))
}

fn print_ops(ops: &[Op]) {
    for op in ops {
        println!("{op}");
    }
}

/// `wgsplit apply [--dry-run]`
pub fn cmd_apply(parser: &mut Parser, ctx: &Context) -> CmdResult {
    let (args, flags) = positional_and_flags(parser, &["dry-run", "nft-script"])?;
    if !args.is_empty() {
        return Err("usage: wgsplit apply [--dry-run [--nft-script]]".into());
    }
    let dry = flags.iter().any(|f| f == "dry-run");
    let script = flags.iter().any(|f| f == "nft-script");
    let config = ctx.load()?;
    let rt = runtime()?;
    rt.block_on(async {
        let engine = Engine::new_one_shot(config.server.backend.unwrap_or_default())?;
        let policy = policy::compile(&config, crate::util::time::now_unix());
        let inputs = Inputs {
            list_cidrs: crate::sources::plain::list_cidrs(&config),
            ..Inputs::default()
        };
        let desired = Engine::desired(&config, &policy, inputs);
        if dry && script {
            // The whole nft transaction, as `nft -f` would take it.
            let (_, ops) = engine.plan(&desired).await?;
            for op in &ops {
                if let Op::Nft(b) = op {
                    print!("{}", b.script());
                }
            }
            return Ok(());
        }
        if dry {
            let (_, ops) = engine.plan(&desired).await?;
            print_ops(&ops);
            println!("plan: {} changes", ops.len());
            return Ok(());
        }
        let report = engine.apply(&desired).await?;
        print_ops(&report.ops);
        println!(
            "applied: {} changes in {:.1} ms (observe {:.1} ms, plan {:.1} ms, kernel {:.1} ms; \
             {} netlink requests; cpu {:.1} ms)",
            report.ops.len(),
            report.millis,
            report.observe_ms,
            report.plan_ms,
            report.kernel_ms,
            report.netlink_requests,
            report.cpu_ms
        );
        Ok::<(), String>(())
    })?;
    Ok(())
}

/// `wgsplit down`
pub fn cmd_down(parser: &mut Parser, _ctx: &Context) -> CmdResult {
    let (args, _) = positional_and_flags(parser, &[])?;
    if !args.is_empty() {
        return Err("usage: wgsplit down".into());
    }
    let rt = runtime()?;
    rt.block_on(async {
        let engine = Engine::new(config::Backend::Kernel)?;
        let ops = engine.down().await?;
        print_ops(&ops);
        println!("down: removed {} objects", ops.len());
        Ok::<(), String>(())
    })?;
    Ok(())
}

/// `wgsplit status [--json]`: interfaces, upstream state, clients, drift.
pub fn cmd_status(parser: &mut Parser, ctx: &Context) -> CmdResult {
    let (args, flags) = positional_and_flags(parser, &["json"])?;
    if !args.is_empty() {
        return Err("usage: wgsplit status [--json]".into());
    }
    let config = ctx.load()?;
    let rt = runtime()?;
    let json = flags.iter().any(|f| f == "json");
    rt.block_on(async {
        let engine = Engine::new_one_shot(config.server.backend.unwrap_or_default())?;
        let policy = policy::compile(&config, crate::util::time::now_unix());
        let inputs = Inputs {
            list_cidrs: crate::sources::plain::list_cidrs(&config),
            ..Inputs::default()
        };
        let desired = Engine::desired(&config, &policy, inputs);
        let obs = engine.observe(Some(&desired)).await?;
        let pending = plan::plan(&desired, &obs).map(|o| o.len()).unwrap_or(0);
        let ifaces: Vec<serde_json::Value> = desired
            .wg
            .iter()
            .map(|w| {
                let l = obs.links.get(&w.name);
                serde_json::json!({
                    "interface": w.name,
                    "role": w.role,
                    "present": l.is_some(),
                    "up": l.is_some_and(|l| l.up),
                    "peers": obs.wg.get(&w.name).map_or(0, |d| d.peers.len()),
                })
            })
            .collect();
        let clients: Vec<serde_json::Value> = policy
            .clients
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name,
                    "active": c.active,
                    "expired": c.expired,
                    "rules": c.rules.len(),
                })
            })
            .collect();
        let v = serde_json::json!({
            "table": obs.nft.is_some(),
            "interfaces": ifaces,
            "clients": clients,
            "rules": obs.rules.len(),
            "routes": obs.routes.len(),
            "pending_changes": pending,
            "lists": crate::sources::update::status_json(&config),
        });
        if json {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        } else {
            println!(
                "table inet {}: {}",
                policy::NFT_TABLE,
                if obs.nft.is_some() {
                    "present"
                } else {
                    "absent"
                }
            );
            for i in &ifaces {
                println!(
                    "{:<16} {:<22} {} peers={}",
                    i["interface"].as_str().unwrap_or(""),
                    i["role"].as_str().unwrap_or(""),
                    if i["up"].as_bool() == Some(true) {
                        "up"
                    } else {
                        "DOWN"
                    },
                    i["peers"]
                );
            }
            for c in &clients {
                println!(
                    "client {:<16} {}",
                    c["name"].as_str().unwrap_or(""),
                    if c["active"].as_bool() == Some(true) {
                        "active"
                    } else {
                        "inactive"
                    }
                );
            }
            println!(
                "ip rules: {}, routes: {}",
                obs.rules.len(),
                obs.routes.len()
            );
            println!("pending changes: {pending} (0: the kernel matches the config)");
            for l in crate::sources::update::status_lines(&config) {
                println!("{l}");
            }
        }
        Ok::<(), String>(())
    })?;
    Ok(())
}

/// `wgsplit explain CLIENT DEST [--json]`
pub fn cmd_explain(parser: &mut Parser, ctx: &Context) -> CmdResult {
    let (args, flags) = positional_and_flags(parser, &["json"])?;
    let [client, dest] = args.as_slice() else {
        return Err(Failure {
            message: "usage: wgsplit explain CLIENT DEST [--json]   \
                      (DEST: address, addr:port/proto, or domain)"
                .into(),
            code: 2,
        });
    };
    let config = ctx.load()?;
    let policy = policy::compile(&config, crate::util::time::now_unix());
    let e = crate::explain::explain(&config, &policy, client, dest)?;
    if flags.iter().any(|f| f == "json") {
        println!("{}", serde_json::to_string_pretty(&e).unwrap_or_default());
    } else {
        print!("{e}");
    }
    Ok(())
}

/// What a service gets: the current config (and its compiled policy), and a way
/// to ask the engine to re-apply (e.g. after the API changed the config file).
#[derive(Clone)]
pub struct ServiceContext {
    pub config_path: PathBuf,
    pub current: watch::Receiver<Arc<(Config, Policy)>>,
    pub reapply: Arc<Notify>,
}

pub type Service = Pin<Box<dyn Future<Output = Result<(), String>>>>;

/// The services that run beside the engine. Each is one line:
/// `("name", Box::pin(crate::module::serve(ctx.clone()))),`
pub fn services(ctx: &ServiceContext) -> Vec<(&'static str, Service)> {
    vec![
        (
            "lists",
            Box::pin(crate::sources::service::serve(ctx.clone())),
        ),
        ("dns", Box::pin(crate::dns::serve(ctx.clone()))),
        // ("api", Box::pin(crate::api::serve(ctx.clone()))),
        (
            "clients",
            Box::pin(crate::clients::service::serve(ctx.clone())),
        ),
    ]
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// How often the daemon checks the kernel against the config (repairs).
const VERIFY_EVERY: Duration = Duration::from_secs(2);
const POLL_CONFIG_EVERY: Duration = Duration::from_millis(500);

/// `wgsplit daemon`
pub fn cmd_daemon(parser: &mut Parser, ctx: &Context) -> CmdResult {
    let (args, _) = positional_and_flags(parser, &[])?;
    if !args.is_empty() {
        return Err("usage: wgsplit daemon".into());
    }
    let config = ctx.load()?;
    let rt = runtime()?;
    let local = tokio::task::LocalSet::new();
    local
        .block_on(&rt, run_daemon(ctx.config_path.clone(), config))
        .map_err(Failure::from)
}

/// The desired state of the last apply and what it was built from. The periodic
/// check reuses it while nothing it depends on changed: rebuilding 50k elements
/// every 2 s would cost a router's CPU for nothing.
#[derive(Default)]
struct DesiredCache {
    built_from: Option<BuiltFrom>,
    desired: Option<crate::plan::Desired>,
}

/// The config (by identity), the inputs and the active clients a desired state came from.
type BuiltFrom = (Arc<(Config, Policy)>, Inputs, Vec<bool>);

/// Which clients are active at `now` (enabled and not expired): the only part of
/// the compiled policy that moves with the clock.
fn active_clients(config: &Config, now: i64) -> Vec<bool> {
    config
        .clients
        .iter()
        .map(|c| {
            c.enabled_or_default()
                && c.expires
                    .as_deref()
                    .and_then(|e| config::types::parse_expiry(e).ok())
                    .is_none_or(|t| t >= now)
        })
        .collect()
}

/// `read_ms`: what reading and compiling the config took before this apply, when
/// it was read for it (reported with the apply: a config change costs both).
async fn apply_once(
    engine: &Engine,
    current: &Arc<(Config, Policy)>,
    cache: &mut DesiredCache,
    why: &str,
    read_ms: Option<f64>,
) {
    let t0 = std::time::Instant::now();
    let cpu0 = crate::sys::thread_cpu_ms();
    let config = &current.0;
    // Upstream health from the monitor (clients::service): down upstreams follow on_down.
    let mut inputs = Inputs {
        health: crate::health::monitor::planner_health(),
        endpoints: crate::health::monitor::planner_endpoints(),
        list_cidrs: crate::sources::plain::list_cidrs(config),
    };
    if inputs.endpoints.is_empty() {
        // Host names resolved here (at most once a minute each), so a changed
        // address is a changed input.
        inputs.endpoints = crate::sys::resolve_endpoints(config);
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
        cache.desired = Some(Engine::desired(config, &policy, inputs.clone()));
        cache.built_from = Some((current.clone(), inputs, active));
    }
    let desired = cache.desired.as_ref().expect("built above");
    let desired_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let desired_cpu = crate::sys::thread_cpu_ms() - cpu0;
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

async fn run_daemon(path: PathBuf, config: Config) -> Result<(), String> {
    let engine = Engine::new(config.server.backend.unwrap_or_default())?;
    let policy = policy::compile(&config, crate::util::time::now_unix());
    let (tx, rx) = watch::channel(Arc::new((config, policy)));
    let reapply = Arc::new(Notify::new());
    let mut cache = DesiredCache::default();
    let sctx = ServiceContext {
        config_path: path.clone(),
        current: rx,
        reapply: reapply.clone(),
    };
    {
        let cur = tx.borrow().clone();
        say(&format!(
            "starting: {} upstreams, {} clients, state file {}",
            cur.0.upstreams.len(),
            cur.0.clients.len(),
            nft::state_path().display()
        ));
        apply_once(&engine, &cur, &mut cache, "start", None).await;
    }
    for (name, fut) in services(&sctx) {
        tokio::task::spawn_local(async move {
            if let Err(e) = fut.await {
                say(&format!("service {name} stopped: {e}"));
            }
        });
    }
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut seen_mtime = mtime(&path);
    let mut poll = tokio::time::interval(POLL_CONFIG_EVERY);
    let mut verify = tokio::time::interval(VERIFY_EVERY);
    verify.tick().await;
    // The time the config took to read and compile, when it was (re)read.
    let reload = |why: &str| -> Option<f64> {
        let t = std::time::Instant::now();
        match config::load(&path) {
            Ok(c) => {
                log::debug!("config parsed in {:?}", t.elapsed());
                let p = policy::compile(&c, crate::util::time::now_unix());
                tx.send_replace(Arc::new((c, p)));
                Some(t.elapsed().as_secs_f64() * 1000.0)
            }
            Err(e) => {
                say(&format!(
                    "{why}: config not applied, keeping the previous one:\n{e}"
                ));
                None
            }
        }
    };
    loop {
        let (why, read_ms) = tokio::select! {
            _ = hup.recv() => ("SIGHUP", reload("SIGHUP")),
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = reapply.notified() => ("re-apply request", reload("re-apply request")),
            _ = poll.tick() => {
                let m = mtime(&path);
                if m == seen_mtime {
                    continue;
                }
                seen_mtime = m;
                let Some(ms) = reload("config change") else {
                    continue;
                };
                ("config change", Some(ms))
            }
            _ = verify.tick() => ("repair", None),
        };
        let cur = tx.borrow().clone();
        apply_once(&engine, &cur, &mut cache, why, read_ms).await;
    }
    say("stopping (kernel state left in place; 'wgsplit down' removes it)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_clients_follow_the_clock_as_the_policy_does() {
        let config = config::parse_valid(include_str!("../../examples/wgsplit.conf")).unwrap();
        let expiry = config::types::parse_expiry("2030-12-31").unwrap();
        for now in [0, expiry - 1, expiry, expiry + 1, expiry + 86_400 * 400] {
            let policy = policy::compile(&config, now);
            let from_policy: Vec<bool> = policy.clients.iter().map(|c| c.active).collect();
            assert_eq!(active_clients(&config, now), from_policy, "at {now}");
        }
    }
}
