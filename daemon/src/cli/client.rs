//! `wgsplit client …` and `wgsplit upstream …`: argument handling and output.
//! The edits themselves are the pure functions in `clients`.

use std::{io::Write, path::PathBuf};

use lexopt::Parser;
use tokio::signal::unix::{SignalKind, signal};

use super::args::{Args, CmdResult, Context, Failure, read_input, usage};
use crate::{
    clients::{self, EditError, NewClient, conf, import, qr},
    config::{Client, Config, OnDown, Upstream, store::Store},
};

/// Prints to stdout; a closed pipe (`| head`, `| grep -q`) is not an error.
macro_rules! out {
    ($($t:tt)*) => {{
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}
macro_rules! outln {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

pub const CLIENT_HELP: &str = "\
Usage: wgsplit client <command>

  add NAME [--upstream U] [--default direct|proxy|block] [--expires DATE]
           [--address CIDR]... [--psk] [--public-key KEY] [--description TEXT]
           [--quota SIZE] [--dns-guard on|off] [--disabled]
                              new client: keys made here, next free addresses
  list [--json]               every client, its state and traffic
  show NAME [--json]          one client
  next-address [--taken CIDR]...
                              the addresses `add` would give a new client now, as JSON;
                              --taken: more addresses to treat as used (a form's unsaved clients)
  history NAME                its traffic (5-minute buckets, 7 days) and this month's use
                              against its quota, as JSON
  set NAME [--upstream U|none] [--default D] [--expires DATE|never]
           [--description TEXT] [--quota SIZE|none] [--dns-guard on|off]
  enable NAME | disable NAME  bring the peer back / take it off the interface
  rename OLD NEW              rename (its rules follow)
  remove NAME                 delete the client and its rules
  conf NAME [--split]         print its wg-quick config (--split: only proxied CIDRs)
  qr NAME [--format ansi|svg|png] [--split] [--output FILE]
                              the config as a QR code for the WireGuard apps
";

pub const UPSTREAM_HELP: &str = "\
Usage: wgsplit upstream <command>

  import NAME FILE|- [--on-down block|direct|failover] [--failover U]
                              add an upstream from a provider's wg-quick file
  list [--json]               every upstream
  show NAME [--json]          one upstream
  set NAME [--on-down block|direct|failover] [--failover U|none] [--endpoint HOST:PORT]
  enable NAME | disable NAME
  remove NAME                 delete it (refused while clients or rules use it)
";

fn choice<T: serde::de::DeserializeOwned>(
    option: &str,
    value: &str,
    names: &str,
) -> Result<T, Failure> {
    serde_json::from_value(serde_json::Value::String(value.to_string()))
        .map_err(|_| usage(format!("--{option}: '{value}' is not one of: {names}")))
}

/// `--dns-guard on|off` → is the guard on?
fn dns_guard(value: &str) -> Result<bool, Failure> {
    match value {
        "on" | "1" => Ok(true),
        "off" | "0" => Ok(false),
        v => Err(usage(format!("--dns-guard: '{v}' is not one of: on, off"))),
    }
}

/// `none` / `never` clear an option.
fn optional(value: &str) -> Option<String> {
    match value {
        "none" | "never" | "" => None,
        v => Some(v.to_string()),
    }
}

fn store(ctx: &Context) -> Store {
    Store::new(&ctx.config_path)
}

/// After a write: tell the running daemon, or apply it here.
fn written(ctx: &Context, config: &Config, what: &str) -> CmdResult {
    eprintln!("{what}");
    super::daemon_link::after_write(&ctx.config_path, config).map_err(Failure::from)
}

pub fn client_command(parser: &mut Parser, ctx: &Context) -> CmdResult {
    let args = Args::parse(
        parser,
        &[
            "upstream",
            "default",
            "expires",
            "address",
            "public-key",
            "description",
            "quota",
            "format",
            "output",
            "taken",
            "dns-guard",
        ],
        &["psk", "disabled", "json", "split", "help"],
    )?;
    let pos: Vec<&str> = args.positional.iter().map(String::as_str).collect();
    if args.flag("help") || pos.is_empty() {
        out!("{CLIENT_HELP}");
        return Ok(());
    }
    match pos.as_slice() {
        ["add", name] => {
            let new = NewClient {
                name: name.to_string(),
                upstream: args.one("upstream").map(String::from),
                default: args
                    .one("default")
                    .map(|d| choice("default", d, "direct, proxy, block"))
                    .transpose()?,
                expires: args.one("expires").map(String::from),
                address: args.all("address"),
                psk: args.flag("psk"),
                public_key: args.one("public-key").map(String::from),
                description: args.one("description").map(String::from),
                quota: args.one("quota").map(String::from),
                enabled: args.flag("disabled").then_some(false),
                // On is the default: written only when off.
                dns_guard: args
                    .one("dns-guard")
                    .map(dns_guard)
                    .transpose()?
                    .filter(|on| !on),
            };
            let (client, config) = store(ctx).edit(|c| clients::add_client(c, new))?;
            written(
                ctx,
                &config,
                &format!(
                    "added client {}: {}",
                    client.name,
                    client.address.join(", ")
                ),
            )
        }
        ["list"] => {
            let config = ctx.load()?;
            let stats = clients::live::peer_stats(&config);
            if args.flag("json") {
                let list: Vec<_> = config
                    .clients
                    .iter()
                    .map(|c| clients::live::client_json(&config, c, &stats))
                    .collect();
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                );
                return Ok(());
            }
            out!("{}", client_table(&config, &stats));
            Ok(())
        }
        ["show", name] => {
            let config = ctx.load()?;
            let c = &config.clients[clients::client_index(&config, name)?];
            let stats = clients::live::peer_stats(&config);
            let json = clients::live::client_json(&config, c, &stats);
            if args.flag("json") {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&json).unwrap_or_default()
                );
            } else {
                out!("{}", client_details(&config, c, &json));
            }
            Ok(())
        }
        ["next-address"] => {
            // For the LuCI page: it adds clients in its own uci session before
            // they reach the file, so it names their addresses with --taken.
            let mut config = ctx.load()?;
            let taken = args.all("taken");
            if !taken.is_empty() {
                config.clients.push(Client {
                    address: taken,
                    ..Client::default()
                });
            }
            let addrs =
                clients::alloc::allocate(&config).map_err(|p| Failure::from(p.to_string()))?;
            outln!("{}", serde_json::to_string(&addrs).unwrap_or_default());
            Ok(())
        }
        ["history", name] => {
            // What `GET /api/clients/NAME/history` answers, read from the file
            // the daemon flushes its samples to (every 5 minutes and when it
            // stops): for the LuCI pages, whose rpcd plugin runs the CLI.
            // No file yet (no daemon ran): an empty history.
            let config = ctx.load()?;
            clients::client_index(&config, name)?;
            let stats = clients::stats::Collector::load(&crate::daemon::services::stats_path())
                .unwrap_or_default();
            let now = crate::util::time::now_unix();
            let json = stats
                .history_json(&config, name, now)
                .ok_or_else(|| Failure::from(format!("no client named '{name}'")))?;
            outln!("{}", serde_json::to_string(&json).unwrap_or_default());
            Ok(())
        }
        ["set", name] => {
            let (_, config) = store(ctx).edit(|c| {
                let i = clients::client_index(c, name)?;
                let client = &mut c.clients[i];
                if let Some(u) = args.one("upstream") {
                    client.upstream = optional(u);
                }
                if let Some(d) = args.one("default") {
                    client.default =
                        Some(choice("default", d, "direct, proxy, block").map_err(|f| {
                            EditError::Invalid(vec![crate::config::Problem::new(
                                &format!("{name}.default"),
                                f.message,
                            )])
                        })?);
                }
                if let Some(e) = args.one("expires") {
                    client.expires = optional(e);
                }
                if let Some(d) = args.one("description") {
                    client.description = optional(d);
                }
                if let Some(q) = args.one("quota") {
                    client.quota = optional(q);
                }
                if let Some(g) = args.one("dns-guard") {
                    // On is the default: written only when off.
                    let on = dns_guard(g).map_err(|f| {
                        EditError::Invalid(vec![crate::config::Problem::new(
                            &format!("{name}.dns_guard"),
                            f.message,
                        )])
                    })?;
                    client.dns_guard = (!on).then_some(false);
                }
                Ok(())
            })?;
            written(ctx, &config, &format!("updated client {name}"))
        }
        [verb @ ("enable" | "disable"), name] => {
            let on = *verb == "enable";
            let (_, config) = store(ctx).edit(|c| clients::set_client_enabled(c, name, on))?;
            written(ctx, &config, &format!("{verb}d client {name}"))
        }
        ["rename", old, new] => {
            let (_, config) = store(ctx).edit(|c| clients::rename_client(c, old, new))?;
            written(ctx, &config, &format!("renamed client {old} to {new}"))
        }
        ["remove", name] => {
            let ((_, rules), config) = store(ctx).edit(|c| clients::remove_client(c, name))?;
            written(
                ctx,
                &config,
                &format!("removed client {name} and its {rules} rule(s)"),
            )
        }
        ["conf", name] => {
            let config = ctx.load()?;
            out!("{}", conf::render(&config, name, args.flag("split"))?);
            Ok(())
        }
        ["qr", name] => {
            let config = ctx.load()?;
            let format = qr::Format::parse(args.one("format").unwrap_or("ansi")).map_err(usage)?;
            let text = conf::render(&config, name, args.flag("split"))?;
            let bytes = qr::render(&text, format)?;
            match args.one("output") {
                Some(path) if path != "-" => {
                    crate::util::fs::write_atomic(&PathBuf::from(path), &bytes)
                        .map_err(|e| format!("{path}: {e}"))?;
                    eprintln!("wrote {path}");
                }
                _ => std::io::stdout()
                    .write_all(&bytes)
                    .map_err(|e| e.to_string())?,
            }
            Ok(())
        }
        _ => Err(usage(format!(
            "unknown or incomplete client command: {}\n{CLIENT_HELP}",
            pos.join(" ")
        ))),
    }
}

fn state_word(config: &Config, c: &Client) -> &'static str {
    if crate::policy::client_expired(c, crate::util::time::now_unix()) {
        "expired"
    } else if !c.enabled_or_default() {
        "disabled"
    } else if config.server.private_key.is_none() {
        "invalid"
    } else {
        "enabled"
    }
}

fn client_table(config: &Config, stats: &clients::live::PeerStats) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "ADDRESS".into(),
        "UPSTREAM".into(),
        "DEFAULT".into(),
        "STATE".into(),
        "HANDSHAKE".into(),
        "RX".into(),
        "TX".into(),
    ]];
    for c in &config.clients {
        let peer = clients::live::client_peer(config, c, stats);
        rows.push([
            c.name.clone(),
            // Every address, IPv6 too, without spaces: one cell for awk/cut.
            c.address.join(","),
            c.upstream.clone().unwrap_or_else(|| "-".into()),
            format!("{:?}", c.default_or_default()).to_lowercase(),
            match (state_word(config, c), peer) {
                ("enabled", Some(p)) if p.online => "online".into(),
                ("enabled", Some(_)) => "offline".into(),
                ("enabled", None) if stats.available => "not applied".into(),
                (w, _) => w.into(),
            },
            crate::util::fmt::human_age(peer.and_then(|p| p.handshake_age)),
            peer.map_or("-".into(), |p| crate::util::fmt::human_bytes(p.rx)),
            peer.map_or("-".into(), |p| crate::util::fmt::human_bytes(p.tx)),
        ]);
    }
    let mut widths = [0usize; 8];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    if !stats.available {
        out.push_str(&format!("({})\n", stats.note));
    }
    out
}

fn client_details(config: &Config, c: &Client, json: &serde_json::Value) -> String {
    let mut out = format!("client {}\n", c.name);
    let get = |k: &str| json.get(k).cloned().unwrap_or(serde_json::Value::Null);
    out.push_str(&format!(
        "  state:       {}\n",
        get("state").as_str().unwrap_or("-")
    ));
    out.push_str(&format!("  address:     {}\n", c.address.join(", ")));
    out.push_str(&format!(
        "  public key:  {}\n",
        get("public_key").as_str().unwrap_or("-")
    ));
    out.push_str(&format!(
        "  upstream:    {}\n",
        c.upstream.as_deref().unwrap_or("-")
    ));
    out.push_str(&format!(
        "  default:     {}\n",
        format!("{:?}", c.default_or_default()).to_lowercase()
    ));
    if let Some(e) = &c.expires {
        out.push_str(&format!("  expires:     {e}\n"));
    }
    if let Some(q) = &c.quota {
        out.push_str(&format!("  quota:       {q} a month\n"));
    }
    if let Some(d) = &c.description {
        out.push_str(&format!("  description: {d}\n"));
    }
    out.push_str(&format!(
        "  psk:         {}\n",
        if c.preshared_key.is_some() {
            "yes"
        } else {
            "no"
        }
    ));
    if let Some(p) = json.get("peer").filter(|p| !p.is_null()) {
        out.push_str(&format!(
            "  endpoint:    {}\n",
            p.get("endpoint").and_then(|e| e.as_str()).unwrap_or("-")
        ));
        out.push_str(&format!(
            "  handshake:   {}\n",
            crate::util::fmt::human_age(p.get("handshake_age").and_then(|v| v.as_u64()))
        ));
        out.push_str(&format!(
            "  traffic:     rx {}, tx {}\n",
            crate::util::fmt::human_bytes(p.get("rx").and_then(|v| v.as_u64()).unwrap_or(0)),
            crate::util::fmt::human_bytes(p.get("tx").and_then(|v| v.as_u64()).unwrap_or(0))
        ));
    }
    let rules: Vec<_> = config.rules.iter().filter(|r| r.client == c.name).collect();
    out.push_str(&format!("  rules:       {}\n", rules.len()));
    for (i, r) in rules.iter().enumerate() {
        let mut matches: Vec<String> = Vec::new();
        matches.extend(r.domain.iter().cloned());
        matches.extend(r.cidr.iter().cloned());
        matches.extend(r.geoip.iter().map(|g| format!("geoip:{g}")));
        matches.extend(r.list.iter().map(|l| format!("list:{l}")));
        matches.extend(r.port.iter().map(|p| format!("port:{p}")));
        out.push_str(&format!(
            "    {}. {:?}{} {}{}\n",
            i + 1,
            r.action,
            r.upstream
                .as_deref()
                .map(|u| format!(" via {u}"))
                .unwrap_or_default(),
            matches.join(" "),
            if r.enabled_or_default() {
                ""
            } else {
                " (disabled)"
            }
        ));
    }
    out
}

pub fn upstream_command(parser: &mut Parser, ctx: &Context) -> CmdResult {
    let args = Args::parse(
        parser,
        &["on-down", "failover", "endpoint"],
        &["json", "help"],
    )?;
    let pos: Vec<&str> = args.positional.iter().map(String::as_str).collect();
    if args.flag("help") || pos.is_empty() {
        out!("{UPSTREAM_HELP}");
        return Ok(());
    }
    let on_down = args
        .one("on-down")
        .map(|d| choice::<OnDown>("on-down", d, "block, direct, failover"))
        .transpose()?;
    match pos.as_slice() {
        ["import", name, file] => {
            let text = read_input(file)?;
            let ((up, notes), config) = store(ctx).edit(|c| {
                let mut imp = import::parse_wg_quick(c, name, &text)?;
                imp.upstream.on_down = on_down;
                imp.upstream.failover = args.one("failover").map(String::from);
                clients::add_upstream(c, imp.upstream.clone())?;
                Ok((imp.upstream, imp.notes))
            })?;
            for n in &notes {
                eprintln!("note: {n}");
            }
            written(
                ctx,
                &config,
                &format!(
                    "imported upstream {} ({}, endpoint {})",
                    up.name,
                    up.interface_or_default(),
                    up.endpoint.as_deref().unwrap_or("-")
                ),
            )
        }
        ["list"] => {
            let config = ctx.load()?;
            let health = clients::live::upstream_health(&config);
            if args.flag("json") {
                let list: Vec<_> = config
                    .upstreams
                    .iter()
                    .map(|u| clients::live::upstream_json(u, &health))
                    .collect();
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                );
                return Ok(());
            }
            outln!(
                "{:<16} {:<15} {:<32} {:<9} {:<8} STATE",
                "NAME",
                "INTERFACE",
                "ENDPOINT",
                "ON_DOWN",
                "ENABLED"
            );
            for u in &config.upstreams {
                let j = clients::live::upstream_json(u, &health);
                outln!(
                    "{:<16} {:<15} {:<32} {:<9} {:<8} {}",
                    u.name,
                    u.interface_or_default(),
                    u.endpoint.as_deref().unwrap_or("-"),
                    format!("{:?}", u.on_down_or_default()).to_lowercase(),
                    if u.enabled_or_default() { "yes" } else { "no" },
                    j.get("health")
                        .and_then(|h| h.get("state"))
                        .and_then(|s| s.as_str())
                        .unwrap_or("unknown")
                );
            }
            Ok(())
        }
        ["show", name] => {
            let config = ctx.load()?;
            let u = &config.upstreams[clients::upstream_index(&config, name)?];
            let health = clients::live::upstream_health(&config);
            let mut j = clients::live::upstream_json(u, &health);
            j["used_by"] = serde_json::json!(clients::upstream_users(&config, name));
            outln!("{}", serde_json::to_string_pretty(&j).unwrap_or_default());
            Ok(())
        }
        ["set", name] => {
            let (_, config) = store(ctx).edit(|c| {
                let i = clients::upstream_index(c, name)?;
                let u: &mut Upstream = &mut c.upstreams[i];
                if on_down.is_some() {
                    u.on_down = on_down;
                }
                if let Some(f) = args.one("failover") {
                    u.failover = optional(f);
                }
                if let Some(e) = args.one("endpoint") {
                    u.endpoint = Some(e.to_string());
                }
                Ok(())
            })?;
            written(ctx, &config, &format!("updated upstream {name}"))
        }
        [verb @ ("enable" | "disable"), name] => {
            let on = *verb == "enable";
            let (_, config) = store(ctx).edit(|c| clients::set_upstream_enabled(c, name, on))?;
            written(ctx, &config, &format!("{verb}d upstream {name}"))
        }
        ["remove", name] => {
            let (_, config) = store(ctx).edit(|c| clients::remove_upstream(c, name))?;
            written(ctx, &config, &format!("removed upstream {name}"))
        }
        _ => Err(usage(format!(
            "unknown or incomplete upstream command: {}\n{UPSTREAM_HELP}",
            pos.join(" ")
        ))),
    }
}

pub const API_HELP: &str = "\
Usage: wgsplit api [--listen ADDR:PORT]

Serves the REST API alone: config edits through HTTP, live peer data read from
the kernel, but nothing applied (that is 'wgsplit daemon', which serves the same
API). The token file is $WGSPLIT_API_TOKEN_FILE or /etc/wgsplit/api.token.
";

/// `wgsplit api`: the API without the engine, until interrupted.
pub fn api_command(parser: &mut Parser, ctx: &Context) -> CmdResult {
    let args = Args::parse(parser, &["listen"], &["help"])?;
    if args.flag("help") || !args.positional.is_empty() {
        out!("{API_HELP}");
        return Ok(());
    }
    let listen = args
        .one("listen")
        .map(|l| {
            l.parse()
                .map_err(|_| usage(format!("--listen: '{l}' is not address:port")))
        })
        .transpose()?;
    // The handlers go in before the socket opens: a SIGTERM from procd (or a
    // test) at any moment after "listening" ends the server cleanly, closing
    // its connections, and the process exits 0 through main (the default
    // action would kill it mid-request, and skip exit-time work).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (mut term, mut int) = rt
        .block_on(async {
            Ok::<_, std::io::Error>((
                signal(SignalKind::terminate())?,
                signal(SignalKind::interrupt())?,
            ))
        })
        .map_err(|e| format!("signal handlers: {e}"))?;
    let (_api, handle) = crate::api::start(&ctx.config_path, listen, crate::api::Hooks::default())?;
    eprintln!("API listening on http://{}", handle.addr);
    let name = rt.block_on(async {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    });
    handle.stop();
    eprintln!("API stopped ({name})");
    Ok(())
}
