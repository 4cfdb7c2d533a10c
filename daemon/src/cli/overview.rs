//! `wgsplit overview --json`: what the LuCI pages poll, in one run of the CLI.
//! The kernel-side status (the members of `status --json`), every client with
//! its live peer data (as `client list --json`) and every upstream with its
//! health (as `upstream list --json`). The rpcd plugin ran those three apart:
//! three processes and three kernel reads every 5 s for each open page.

use lexopt::Parser;
use serde_json::{Value, json};

use super::{CmdResult, Context, positional_and_flags};
use crate::clients::live;

pub fn cmd_overview(parser: &mut Parser, ctx: &Context) -> CmdResult {
    let (args, flags) = positional_and_flags(parser, &["json"])?;
    if !args.is_empty() || !flags.iter().any(|f| f == "json") {
        return Err("usage: wgsplit overview --json".into());
    }
    let config = ctx.load()?;
    let status = super::engine::status_value(&config)?;
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
