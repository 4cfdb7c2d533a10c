//! The engine's commands: `apply`, `down`, `status`, `explain`.

use lexopt::Parser;
use serde_json::{Value, json};

use super::{CmdResult, Context, Failure, positional_and_flags};
use crate::{
    config,
    engine::{
        self, Engine,
        apply::{self, LiveInputs},
    },
    plan::{self, Op},
    policy,
};

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
    let rt = apply::runtime()?;
    rt.block_on(async {
        let engine = Engine::new_one_shot(config.server.backend.unwrap_or_default())?;
        let (_, desired) =
            apply::desired_now(&config, LiveInputs::default(), engine::ONE_SHOT_WAIT);
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
    let rt = apply::runtime()?;
    rt.block_on(async {
        let engine = Engine::new(config::Backend::Kernel)?;
        let ops = engine.down().await?;
        print_ops(&ops);
        println!("down: removed {} objects", ops.len());
        for f in runtime_files() {
            if std::fs::remove_file(&f).is_ok() {
                println!("    removed {}", f.display());
            }
        }
        // The run folder too, when nothing else is left in it.
        let _ = std::fs::remove_dir(crate::util::paths::run_dir());
        Ok::<(), String>(())
    })?;
    Ok(())
}

/// The files wgsplit keeps while it runs in this network namespace, which `down`
/// removes with the rest: the apply lock, the daemon's health and traffic
/// history, a namespace's own API token; and the run folder, once empty.
fn runtime_files() -> Vec<std::path::PathBuf> {
    let run = crate::util::paths::run_dir();
    let mut files = vec![
        crate::sys::nft::state_path().with_extension("lock"),
        crate::health::state_path(),
        run.join("stats.bin"),
    ];
    if crate::util::paths::api_token().starts_with(&run) {
        files.push(crate::util::paths::api_token());
    }
    files
}

/// The upstreams' health as the daemon records it: state, since when, the way
/// their traffic takes now. Empty without a daemon (nothing checks health then).
fn health_json(config: &config::Config) -> Vec<serde_json::Value> {
    let health = crate::health::read_state().unwrap_or_default();
    config
        .upstreams
        .iter()
        .map(|u| {
            let h = health.get(&u.name);
            let way = match h.map(|h| &h.route) {
                None | Some(crate::health::Route::Own) => format!("upstream {}", u.name),
                Some(crate::health::Route::Block) => "blocked (kill switch)".into(),
                Some(crate::health::Route::Direct) => "direct".into(),
                Some(crate::health::Route::Failover(f)) => format!("upstream {f} (failover)"),
            };
            serde_json::json!({
                "name": u.name,
                "state": h.map_or("unknown".into(), |h| format!("{:?}", h.state).to_lowercase()),
                "since": h.map(|h| h.since),
                "reasons": h.map(|h| h.reasons.clone()).unwrap_or_default(),
                "traffic_goes": way,
            })
        })
        .collect()
}

/// `3h 2m` / `42s`: how long a state has lasted.
fn lasted(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// What `status --json` prints (and `overview --json` carries as its
/// `status`): the kernel's state beside the config's, upstream health, lists.
pub fn status_value(config: &config::Config) -> Result<Value, String> {
    let rt = apply::runtime()?;
    rt.block_on(async {
        let engine = Engine::new_one_shot(config.server.backend.unwrap_or_default())?;
        // Read-only: no wait for host names (a peer without an endpoint plans
        // no change to the one in the kernel).
        let (policy, desired) =
            apply::desired_now(config, LiveInputs::default(), std::time::Duration::ZERO);
        let obs = engine.observe(Some(&desired)).await?;
        let pending = plan::plan(&desired, &obs).map(|o| o.len()).unwrap_or(0);
        let ifaces: Vec<Value> = desired
            .wg
            .iter()
            .map(|w| {
                let l = obs.links.get(&w.name);
                json!({
                    "interface": w.name,
                    "role": w.role,
                    "present": l.is_some(),
                    "up": l.is_some_and(|l| l.up),
                    "peers": obs.wg.get(&w.name).map_or(0, |d| d.peers.len()),
                })
            })
            .collect();
        let clients: Vec<Value> = policy
            .clients
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "active": c.active,
                    "expired": c.expired,
                    "rules": c.rules.len(),
                })
            })
            .collect();
        Ok(json!({
            "table": obs.nft.is_some(),
            "interfaces": ifaces,
            "clients": clients,
            "rules": obs.rules.len(),
            "routes": obs.routes.len(),
            "pending_changes": pending,
            "upstreams": health_json(config),
            "lists": if config.lists.is_empty() && config.geoip.is_none() {
                Value::Null
            } else {
                crate::sources::update::status_json(config)
            },
        }))
    })
}

/// `wgsplit status [--json]`: interfaces, upstream state, clients, drift.
pub fn cmd_status(parser: &mut Parser, ctx: &Context) -> CmdResult {
    let (args, flags) = positional_and_flags(parser, &["json"])?;
    if !args.is_empty() {
        return Err("usage: wgsplit status [--json]".into());
    }
    let config = ctx.load()?;
    let v = status_value(&config)?;
    if flags.iter().any(|f| f == "json") {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    println!(
        "table inet {}: {}",
        plan::NFT_TABLE,
        if v["table"].as_bool() == Some(true) {
            "present"
        } else {
            "absent"
        }
    );
    for i in v["interfaces"].as_array().into_iter().flatten() {
        println!(
            "{:<16} {:<22} link {} peers={}",
            text(&i["interface"]),
            text(&i["role"]),
            if i["up"].as_bool() == Some(true) {
                "up"
            } else {
                "DOWN"
            },
            i["peers"]
        );
    }
    for u in v["upstreams"].as_array().into_iter().flatten() {
        let since = u["since"]
            .as_i64()
            .filter(|t| *t > 0 && u["state"] != "unknown")
            .map(|t| format!(" for {}", lasted(crate::util::time::now_unix() - t)))
            .unwrap_or_default();
        println!(
            "upstream {:<16} health {}{since}; its traffic goes {}",
            text(&u["name"]),
            text(&u["state"]),
            text(&u["traffic_goes"])
        );
    }
    for c in v["clients"].as_array().into_iter().flatten() {
        println!(
            "client {:<16} {}",
            text(&c["name"]),
            if c["active"].as_bool() == Some(true) {
                "active"
            } else {
                "inactive"
            }
        );
    }
    println!("ip rules: {}, routes: {}", v["rules"], v["routes"]);
    println!(
        "pending changes: {} (0: the kernel matches the config)",
        v["pending_changes"]
    );
    if !v["lists"].is_null() {
        for l in crate::sources::update::status_lines(&config) {
            println!("{l}");
        }
    }
    Ok(())
}

/// `wgsplit explain CLIENT DEST [--json] [--config-only]`: from the live state
/// (the kernel's sets, the daemon's health record) unless `--config-only`.
pub fn cmd_explain(parser: &mut Parser, ctx: &Context) -> CmdResult {
    let (args, flags) = positional_and_flags(parser, &["json", "config-only"])?;
    let [client, dest] = args.as_slice() else {
        return Err(Failure {
            message: "usage: wgsplit explain CLIENT DEST [--json] [--config-only]   \
                      (DEST: address, [v6], addr:port/proto, [v6]:port, or domain)"
                .into(),
            code: 2,
        });
    };
    let config = ctx.load()?;
    let policy = policy::compile(&config, crate::util::time::now_unix());
    let live = (!flags.iter().any(|f| f == "config-only")).then(|| {
        let health = crate::health::read_state().unwrap_or_default();
        crate::clients::live::explain_state(&config, &policy, client, dest, &health)
    });
    let e = crate::explain::explain_live(&policy, client, dest, live.as_ref())?;
    if flags.iter().any(|f| f == "json") {
        println!("{}", serde_json::to_string_pretty(&e).unwrap_or_default());
    } else {
        print!("{e}");
    }
    Ok(())
}
