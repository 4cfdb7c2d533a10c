//! `wgsplit lists update | show | load`.

use lexopt::Parser;

use crate::sources::{
    geoip,
    kernel::{self, SetIo},
    nft, update,
};
use crate::{
    cli::{CmdResult, Context, Failure, positional_and_flags},
    config::Config,
    util::time::now_unix,
};

pub const USAGE: &str = "\
usage: wgsplit lists update [--no-kernel]   fetch/extract what the rules use, check it, swap the kernel sets
       wgsplit lists show [--json]          sources, extracted countries and lists, last update
       wgsplit lists load                   load the extracted countries into the kernel sets
       wgsplit lists entries NAME... [--count]  the domain entries of lists (or just how many)
       wgsplit lists match FILE NAME...     how many names of FILE (one a line) the lists match, and how fast";

pub fn lists_command(parser: &mut Parser, ctx: &Context) -> CmdResult {
    let (args, flags) = positional_and_flags(parser, &["json", "no-kernel", "count"])?;
    let config = ctx.load()?;
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["update"] => run_update(&config, !flags.iter().any(|f| f == "no-kernel")),
        ["show"] => show(&config, flags.iter().any(|f| f == "json")),
        ["load"] => match load(&config, true)? {
            true => Ok(()),
            false => Err("some countries were not loaded".into()),
        },
        ["match", file, names @ ..] if !names.is_empty() => match_names(&config, file, names),
        ["entries", names @ ..] if !names.is_empty() => {
            entries(&config, names, flags.iter().any(|f| f == "count"))
        }
        _ => Err(Failure {
            message: USAGE.into(),
            code: 2,
        }),
    }
}

/// Extracts countries never extracted yet from a local `path` (no download).
fn extract_missing(config: &Config) -> Result<(), String> {
    let Some(g) = &config.geoip else {
        return Ok(());
    };
    let missing = update::missing_countries(config);
    let Some(path) = g
        .path
        .as_deref()
        .filter(|p| std::path::Path::new(p).exists())
    else {
        return Ok(());
    };
    if missing.is_empty() {
        return Ok(());
    }
    let path = std::path::Path::new(path);
    let data = geoip::extract(path, geoip::detect(path, g.format), Some(&missing))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let dir = update::lists_dir(config);
    for (cc, set) in &data {
        geoip::store(&dir, cc, set).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Loads the stored countries into the kernel; returns whether all went in.
fn load(config: &Config, verbose: bool) -> Result<bool, Failure> {
    extract_missing(config)?;
    let countries = geoip::used_countries(config);
    if countries.is_empty() {
        if verbose {
            eprintln!("no rule uses geoip");
        }
        return Ok(true);
    }
    let mut io = nft::NftIo::open().map_err(|e| format!("nftables: {e}"))?;
    let (reports, missing) = kernel::sync_all(
        &mut io as &mut dyn SetIo,
        &update::lists_dir(config),
        &countries,
    )?;
    for r in &reports {
        if r.missing {
            eprintln!(
                "{}: no such set in table inet wgsplit (run 'wgsplit apply')",
                r.set
            );
        } else {
            eprintln!(
                "{}: {} ranges (+{} -{}) in {:.1} ms (reading the set back: {:.1} ms)",
                r.set,
                r.ranges,
                r.added,
                r.deleted,
                r.took.as_secs_f64() * 1e3,
                r.read.as_secs_f64() * 1e3
            );
        }
    }
    for (cc, e) in &missing {
        eprintln!("geoip {cc}: {e}");
    }
    Ok(missing.is_empty() && reports.iter().all(|r| !r.missing))
}

fn list_named<'a>(config: &'a Config, name: &str) -> Result<&'a crate::config::List, String> {
    config
        .lists
        .iter()
        .find(|l| l.name == name)
        .ok_or_else(|| format!("no list named '{name}'"))
}

fn entries(config: &Config, names: &[&str], count_only: bool) -> CmdResult {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for name in names {
        let list = list_named(config, name)?;
        let t = std::time::Instant::now();
        let n = crate::sources::domains::for_each(list, &mut |e| {
            if !count_only {
                let _ = writeln!(out, "{e}");
            }
        })
        .map_err(|e| format!("list {name}: {e}"))?;
        eprintln!(
            "list {name}: {n} entries in {:.1} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    out.flush().map_err(|e| e.to_string())?;
    Ok(())
}

fn match_names(config: &Config, file: &str, names: &[&str]) -> CmdResult {
    use std::io::BufRead;

    use crate::dns::{matcher::NameHashes, rules::DomainList};
    let t = std::time::Instant::now();
    let mut sets = Vec::new();
    for name in names {
        let list = list_named(config, name)?;
        // The resolver's own loader: names, keywords and regexps as it matches them.
        let set = DomainList::load(list).map_err(|e| format!("list {name}: {e}"))?;
        eprintln!(
            "list {name}: {} names ({} KB), {} keywords, {} regexps{}",
            set.names.len(),
            set.names.memory() / 1024,
            set.keywords.len(),
            set.regexps.len(),
            set.skipped().map(|s| format!("; {s}")).unwrap_or_default()
        );
        sets.push(set);
    }
    let load = t.elapsed();
    let queries: Vec<String> =
        std::io::BufReader::new(std::fs::File::open(file).map_err(|e| format!("{file}: {e}"))?)
            .lines()
            .map_while(Result::ok)
            .map(|q| q.trim().trim_end_matches('.').to_ascii_lowercase())
            .collect();
    let t = std::time::Instant::now();
    let mut hits = 0usize;
    let mut h = NameHashes::default();
    for q in &queries {
        if h.set_lower(q.as_bytes()) && sets.iter().any(|s| s.matches(&h, q)) {
            hits += 1;
        }
    }
    let took = t.elapsed();
    println!(
        "loaded in {:.1} ms; {} of {} names matched in {:.1} ms ({:.2} M names/s)",
        load.as_secs_f64() * 1e3,
        hits,
        queries.len(),
        took.as_secs_f64() * 1e3,
        queries.len() as f64 / took.as_secs_f64() / 1e6
    );
    Ok(())
}

fn run_update(config: &Config, kernel: bool) -> CmdResult {
    // Waits for an update in progress (the daemon's schedule, "update now").
    let update::Run::Done { out, state_error } =
        update::run(config, now_unix(), true, false).map_err(|e| e.to_string())?
    else {
        // A waiting run is never busy, nor a forced one "not due".
        return Err("lists update: did not run".to_string().into());
    };
    if let Some(e) = state_error {
        return Err(e.to_string().into());
    }
    for m in &out.messages {
        eprintln!("{m}");
    }
    if kernel && config.geoip.is_some() {
        load(config, false)?;
    }
    if out.failed > 0 {
        return Err(format!(
            "{} source(s) failed; the previous data stays in use",
            out.failed
        )
        .into());
    }
    Ok(())
}

fn show(config: &Config, json: bool) -> CmdResult {
    let dir = update::lists_dir(config);
    let state = update::read_state(&dir);
    let countries = geoip::used_countries(config);
    if json {
        let v = serde_json::json!({
            "dir": dir,
            "countries": countries,
            "state": update::state_json(&state),
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("plain data"));
        return Ok(());
    }
    match &config.geoip {
        None if countries.is_empty() => println!("geoip: not configured"),
        None => println!("geoip: not configured, but rules use {countries:?}"),
        Some(g) => {
            println!(
                "geoip: {} ({:?}){}, folder {}, update every {} h",
                g.path.as_deref().unwrap_or("(download only)"),
                geoip::detect(
                    std::path::Path::new(g.url.as_deref().or(g.path.as_deref()).unwrap_or("")),
                    g.format
                ),
                g.url
                    .as_deref()
                    .map(|u| format!(" from {u}"))
                    .unwrap_or_default(),
                dir.display(),
                g.update_hours_or_default()
            );
            if let Some(s) = &state.geoip {
                println!("  last update: {}", describe(s));
            }
            for cc in &countries {
                match geoip::stored(&dir, cc) {
                    Ok(Some(c)) => println!(
                        "  {cc}: {} IPv4 + {} IPv6 ranges -> {}, {}",
                        c.v4.len(),
                        c.v6.len(),
                        geoip::set_name(cc, false),
                        geoip::set_name(cc, true)
                    ),
                    Ok(None) => println!("  {cc}: not extracted yet"),
                    Err(e) => println!("  {cc}: {e}"),
                }
            }
        }
    }
    for l in &config.lists {
        println!(
            "list {}: {:?}{} {}{}",
            l.name,
            l.format.unwrap_or_default(),
            l.category
                .as_deref()
                .map(|c| format!(" '{c}'"))
                .unwrap_or_default(),
            l.path,
            l.url
                .as_deref()
                .map(|u| format!(" from {u}"))
                .unwrap_or_default(),
        );
        if config.server.doh_list.contains(&l.name) {
            println!("  the DNS bypass guard's DoH endpoints (server.doh_list)");
        }
        if let Some(s) = state.lists.get(&l.name) {
            println!("  last update: {}", describe(s));
        }
    }
    if config.server.doh_list.is_empty() {
        println!(
            "doh: the shipped DoH endpoints ({} names, {} addresses); server.doh_list names lists to use instead",
            crate::dns::bypass::DOH_NAMES.len(),
            crate::plan::guard::DOH_V4.len() + crate::plan::guard::DOH_V6.len()
        );
    }
    Ok(())
}

fn describe(s: &update::SourceState) -> String {
    let when = |t: i64| crate::util::fmt::format_time(t);
    if s.ok {
        format!(
            "ok at {}{}",
            when(s.attempted),
            s.entries
                .map(|n| format!(", {n} entries"))
                .unwrap_or_default()
        )
    } else {
        format!(
            "FAILED at {}: {}; using data from {}",
            when(s.attempted),
            s.error.as_deref().unwrap_or("?"),
            s.updated.map_or("never".into(), when)
        )
    }
}
