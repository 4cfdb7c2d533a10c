//! The rule-sources service of `wgsplit daemon`: loads the countries the rules
//! use into the shared sets once the engine has created them, reloads when the
//! config changes or a set is re-created (its kernel handle changes), and runs
//! the scheduled `lists update` (`config geoip … option update_hours`).
//! Blocking work (files, netlink, downloads) runs on tokio's blocking pool.

use std::{collections::BTreeMap, time::Duration};

use crate::{
    config::Config,
    engine::ServiceContext,
    sources::{geoip, kernel, nft, update},
    sys::nftdump,
    util::time::now_unix,
};

/// How often set handles are checked (one tiny netlink query per set).
const CHECK_EVERY: Duration = Duration::from_secs(2);

fn say(msg: &str) {
    crate::util::say(&format!("lists: {msg}"));
}

/// The handle of every geo set the config needs (`None`: not created yet).
fn handles(config: &Config) -> BTreeMap<String, Option<u64>> {
    geoip::used_countries(config)
        .iter()
        .flat_map(|cc| [geoip::set_name(cc, false), geoip::set_name(cc, true)])
        .map(|s| {
            let h = nftdump::set_handle(
                crate::sys::nft_consts::NFPROTO_INET,
                crate::plan::NFT_TABLE,
                &s,
            )
            .ok()
            .flatten();
            (s, h)
        })
        .collect()
}

/// Extracts what is missing from a local database, then syncs every used country.
fn sync(config: &Config) -> Result<(), String> {
    let missing = update::missing_countries(config);
    if let Some(path) = config.geoip.as_ref().and_then(|g| g.path.clone())
        && !missing.is_empty()
        && std::path::Path::new(&path).exists()
    {
        let p = std::path::Path::new(&path);
        let fmt = geoip::detect(p, config.geoip.as_ref().and_then(|g| g.format));
        let data = geoip::extract(p, fmt, Some(&missing)).map_err(|e| format!("{path}: {e}"))?;
        let dir = update::lists_dir(config);
        for (cc, set) in &data {
            geoip::store(&dir, cc, set).map_err(|e| e.to_string())?;
        }
    }
    let mut io = nft::NftIo::open().map_err(|e| e.to_string())?;
    let (reports, failed) = kernel::sync_all(
        &mut io,
        &update::lists_dir(config),
        &geoip::used_countries(config),
    )?;
    for r in reports.iter().filter(|r| r.added + r.deleted > 0) {
        say(&format!(
            "{}: {} ranges (+{} -{}) in {:.1} ms",
            r.set,
            r.ranges,
            r.added,
            r.deleted,
            r.took.as_secs_f64() * 1e3
        ));
    }
    for (cc, e) in failed {
        say(&format!("geoip {cc}: {e}"));
    }
    Ok(())
}

fn scheduled_update(config: &Config) -> bool {
    match update::run(config, now_unix(), false, true) {
        Ok(update::Run::Done { out, state_error }) => {
            if let Some(e) = state_error {
                say(&format!("lists state: {e}"));
            }
            for m in &out.messages {
                say(m);
            }
            true
        }
        // "Update now" or the CLI is at it; the next tick looks again.
        Ok(update::Run::Busy | update::Run::NotDue) => false,
        Err(e) => {
            say(&format!("lists update: {e}"));
            false
        }
    }
}

/// "Update now" (`POST /api/lists/update`): what `wgsplit lists update` does,
/// then the country sets loaded. Returns the run's messages and how many
/// sources failed (their previous data stays in use); `None` while another
/// update runs.
pub fn update_now(config: &Config) -> Result<Option<(Vec<String>, usize)>, String> {
    let (out, state_error) = match update::run(config, now_unix(), false, false) {
        Ok(update::Run::Done { out, state_error }) => (out, state_error),
        Ok(_) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    if let Some(e) = state_error {
        return Err(format!("lists state: {e}"));
    }
    if config.geoip.is_some() {
        sync(config)?;
    }
    Ok(Some((out.messages, out.failed)))
}

/// `GET /api/lists`: each source (GeoIP, then the lists) with where it comes
/// from and its last update, as `wgsplit lists show` tells them.
pub fn sources_json(config: &Config) -> serde_json::Value {
    use serde_json::json;
    let state = update::read_state(&update::lists_dir(config));
    let last = |s: Option<&update::SourceState>| {
        s.map(|s| {
            let mut v = json!({
                "ok": s.ok,
                "at": s.attempted,
                "updated": s.updated,
                "message": s.error,
                "entries": s.entries,
                "countries": s.countries.len(),
            });
            // the message's code and args, for a page in another language
            if let (Some(e), serde_json::Value::Object(o)) = (&s.error, &mut v) {
                o.extend(update::error_fields(e));
            }
            v
        })
    };
    let mut sources = Vec::new();
    if let Some(g) = &config.geoip {
        sources.push(json!({
            "name": "geoip", "kind": "geoip", "url": g.url, "path": g.path,
            "countries": geoip::used_countries(config),
            "last": last(state.geoip.as_ref()),
        }));
    }
    for l in &config.lists {
        sources.push(json!({
            "name": l.name, "kind": "list", "url": l.url, "path": l.path,
            "last": last(state.lists.get(&l.name)),
        }));
    }
    json!({ "sources": sources })
}

pub async fn serve(ctx: ServiceContext) -> Result<(), String> {
    let mut rx = ctx.current.clone();
    let mut seen: BTreeMap<String, Option<u64>> = BTreeMap::new();
    let mut tick = tokio::time::interval(CHECK_EVERY);
    let mut force = true;
    loop {
        // The shared config, not a copy of it (a big config is megabytes).
        let current = rx.borrow_and_update().clone();
        let cfg = current.clone();
        let (now_handles, updated) =
            tokio::task::spawn_blocking(move || (handles(&cfg.0), scheduled_update(&cfg.0)))
                .await
                .map_err(|e| e.to_string())?;
        if force || updated || now_handles != seen {
            let cfg = current.clone();
            match tokio::task::spawn_blocking(move || sync(&cfg.0))
                .await
                .map_err(|e| e.to_string())?
            {
                Ok(()) => {
                    seen = now_handles;
                    force = false;
                }
                Err(e) => say(&format!("loading the country sets: {e}")),
            }
        }
        tokio::select! {
            r = rx.changed() => {
                if r.is_err() {
                    return Ok(());
                }
                force = true;
            }
            _ = tick.tick() => {}
        }
    }
}
