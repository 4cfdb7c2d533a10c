//! `wgsplit overview --json`: what the LuCI pages poll, in one run of the CLI.
//! The kernel-side status (the members of `status --json`), every client with
//! its live peer data (as `client list --json`) and every upstream with its
//! health (as `upstream list --json`). The rpcd plugin ran those three apart:
//! three processes and three kernel reads every 5 s for each open page.

use lexopt::Parser;
use serde_json::{Value, json};

use super::{CmdResult, Context, positional_and_flags};
use crate::{
    clients::live,
    config::Config,
    engine::{
        Engine,
        apply::{self, LiveInputs},
    },
    plan,
};

pub fn cmd_overview(parser: &mut Parser, ctx: &Context) -> CmdResult {
    let (args, flags) = positional_and_flags(parser, &["json"])?;
    if !args.is_empty() || !flags.iter().any(|f| f == "json") {
        return Err("usage: wgsplit overview --json".into());
    }
    let config = ctx.load()?;
    let status = status_value(&config)?;
    let stats = live::peer_stats(&config);
    let clients: Vec<Value> = config
        .clients
        .iter()
        .map(|c| live::client_json(&config, c, &stats))
        .collect();
    let health = live::upstream_health(&config);
    let upstreams: Vec<Value> = config
        .upstreams
        .iter()
        .map(|u| live::upstream_json(u, &health))
        .collect();
    let v = json!({ "status": status, "clients": clients, "upstreams": upstreams });
    println!("{}", serde_json::to_string(&v).unwrap_or_default());
    Ok(())
}

/// The members `status --json` prints (cli/engine.rs builds them for that
/// command; tests/openwrt compares the two answers so they stay the same).
fn status_value(config: &Config) -> Result<Value, String> {
    let rt = apply::runtime()?;
    rt.block_on(async {
        let engine = Engine::new_one_shot(config.server.backend.unwrap_or_default())?;
        let (policy, desired) = apply::desired_now(config, LiveInputs::default());
        let obs = engine.observe(Some(&desired)).await?;
        let pending = plan::plan(&desired, &obs).map(|o| o.len()).unwrap_or(0);
        let interfaces: Vec<Value> = desired
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
        Ok::<Value, String>(json!({
            "table": obs.nft.is_some(),
            "interfaces": interfaces,
            "clients": clients,
            "rules": obs.rules.len(),
            "routes": obs.routes.len(),
            "pending_changes": pending,
            "lists": crate::sources::update::status_json(config),
        }))
    })
}
