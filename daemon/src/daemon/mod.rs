//! `wgsplit daemon`, the composition root: apply, then keep the kernel true —
//! re-apply on SIGHUP, on a config change, on request from a service, and repair
//! whatever someone removed.
//!
//! The services (rule lists, the DNS resolver, health, traffic, the REST API)
//! are started in [`services`]; each gets a [`ServiceContext`] with the current
//! config and a way to ask for a re-apply.

pub mod services;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use tokio::{
    signal::unix::{SignalKind, signal},
    sync::{Notify, watch},
};

use crate::{
    config::{self, Config},
    engine::{
        Engine, ServiceContext,
        apply::{self, DesiredCache, LiveInputs},
    },
    policy,
    sys::nft,
    util::say,
};

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// How often the daemon checks the kernel against the config (repairs).
const VERIFY_EVERY: Duration = Duration::from_secs(2);
const POLL_CONFIG_EVERY: Duration = Duration::from_millis(500);

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(path: PathBuf, config: Config) -> Result<(), String> {
    let rt = apply::runtime()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, run_daemon(path, config))
}

async fn run_daemon(path: PathBuf, config: Config) -> Result<(), String> {
    let engine = Engine::new(config.server.backend.unwrap_or_default())?;
    let policy = policy::compile(&config, crate::util::time::now_unix());
    // The resolver's input: the policy alone, sent with the same reload.
    let (policy_tx, policy_rx) = watch::channel(Arc::new(policy.clone()));
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
        apply::apply_once(
            &engine,
            &cur,
            &mut cache,
            LiveInputs::default(),
            "start",
            None,
        )
        .await;
    }
    // Health and endpoints, as the monitor last published them.
    let (live_tx, live) = watch::channel(LiveInputs::default());
    for (name, fut) in services::all(&sctx, live_tx, policy_rx) {
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
                // Only a change is published: the services (resolver, lists)
                // reload and log on each one, and a health switch's re-apply
                // request re-reads an unchanged file.
                let cur = tx.borrow().clone();
                if cur.0 != c || cur.1 != p {
                    policy_tx.send_replace(Arc::new(p.clone()));
                    tx.send_replace(Arc::new((c, p)));
                }
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
            // A signal or a request re-reads the file: its mtime is seen then,
            // so the poll does not read (and log) the same change again.
            _ = hup.recv() => {
                seen_mtime = mtime(&path);
                ("SIGHUP", reload("SIGHUP"))
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = reapply.notified() => {
                seen_mtime = mtime(&path);
                ("re-apply request", reload("re-apply request"))
            }
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
        let inputs = live.borrow().clone();
        apply::apply_once(&engine, &cur, &mut cache, inputs, why, read_ms).await;
    }
    say("stopping (kernel state left in place; 'wgsplit down' removes it)");
    Ok(())
}
