//! The services `wgsplit daemon` runs beside the engine, wired together here:
//! the rule lists, the DNS resolver, and on threads of their own the traffic
//! collector (history, quotas), the upstream health monitor and the REST API.
//! They talk to the engine through the [`ServiceContext`]: the current config
//! and one way to ask for a re-apply. The resolver reads only the policy (its
//! own channel, sent with every reload) and publishes itself on a `watch`
//! channel the API reads its counters from.

use tokio::sync::watch;

use std::{
    collections::HashMap,
    future::Future,
    path::{Path, PathBuf},
    pin::Pin,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::{
    api,
    clients::{
        self, live,
        stats::{Collector, QuotaEvent},
    },
    config::store::Store,
    dns,
    engine::{ServiceContext, apply::LiveInputs},
    health,
    policy::Policy,
};

pub struct Running {
    pub api: Option<api::Handle>,
    /// The built-in pages, when `server.ui_listen` is set.
    pub ui: Option<api::Handle>,
    pub collector: Arc<Mutex<Collector>>,
}

fn stats_interval() -> Duration {
    crate::util::paths::stats_every()
}

pub fn stats_path() -> PathBuf {
    health::run_dir().join("stats.bin")
}

const FLUSH_EVERY: Duration = Duration::from_secs(300);

/// One collector round: sample, then enforce quotas. Returns whether the
/// config changed.
pub fn collect_once(store: &Store, collector: &Mutex<Collector>) -> bool {
    let Ok(config) = store.load() else {
        return false;
    };
    let Ok(peers) = live::device_peers(
        config.server.interface_or_default(),
        live::wg_backend(&config),
    ) else {
        return false;
    };
    let events = collector.lock().unwrap_or_else(|e| e.into_inner()).sample(
        &config,
        &peers,
        crate::util::time::now_unix(),
    );
    let mut changed = false;
    for ev in events {
        let (name, on) = match &ev {
            QuotaEvent::Spent {
                client,
                used,
                quota,
            } => {
                crate::util::say(&format!(
                    "client {client}: monthly quota spent ({} of {}): disabled until the month ends",
                    crate::util::fmt::human_bytes(*used),
                    crate::util::fmt::human_bytes(*quota)
                ));
                (client.clone(), false)
            }
            QuotaEvent::NewMonth { client } => {
                crate::util::say(&format!(
                    "client {client}: a new month, quota renewed: enabled again"
                ));
                (client.clone(), true)
            }
        };
        match store.edit(|c| clients::set_client_enabled(c, &name, on)) {
            Ok(_) => changed = true,
            Err(e) => crate::util::say(&format!("client {name}: {e}")),
        }
    }
    changed
}

/// Starts the collector, the health monitor and (unless `api_listen` is
/// `None`… it is always on in the daemon) the API.
pub fn start(
    config_path: &Path,
    live: watch::Sender<LiveInputs>,
    reapply: Arc<dyn Fn() + Send + Sync>,
    extra: api::Hooks,
) -> Result<Running, String> {
    let store = Arc::new(Store::new(config_path));
    let health = Arc::new(Mutex::new(HashMap::new()));
    let collector = Arc::new(Mutex::new(
        Collector::load(&stats_path()).unwrap_or_default(),
    ));

    {
        let (store, health, reapply) = (store.clone(), health.clone(), reapply.clone());
        std::thread::Builder::new()
            .name("health".into())
            .spawn(move || health::monitor::run(store, health, live, reapply))
            .map_err(|e| e.to_string())?;
    }
    {
        let (store, collector, reapply) = (store.clone(), collector.clone(), reapply.clone());
        std::thread::Builder::new()
            .name("stats".into())
            .spawn(move || {
                let mut flushed = Instant::now();
                loop {
                    if collect_once(&store, &collector) {
                        reapply();
                    }
                    if flushed.elapsed() >= FLUSH_EVERY {
                        flushed = Instant::now();
                        let c = collector.lock().unwrap_or_else(|e| e.into_inner());
                        if let Err(e) = c.save(&stats_path()) {
                            crate::util::say(&format!(
                                "traffic history {}: {e}",
                                stats_path().display()
                            ));
                        }
                    }
                    std::thread::sleep(stats_interval());
                }
            })
            .map_err(|e| e.to_string())?;
    }

    let hooks = {
        let (h, col, st, re) = (
            health.clone(),
            collector.clone(),
            store.clone(),
            reapply.clone(),
        );
        api::Hooks {
            reload: Box::new(move || {
                re();
                Ok(())
            }),
            health: Box::new(move || h.lock().unwrap_or_else(|e| e.into_inner()).clone()),
            history: Some(Box::new(move |name| {
                let config = st.load().ok()?;
                col.lock().unwrap_or_else(|e| e.into_inner()).history_json(
                    &config,
                    name,
                    crate::util::time::now_unix(),
                )
            })),
            ..extra
        }
    };
    let (api, handle) = api::start(config_path, None, hooks)?;
    let ui = match store.load().ok().and_then(|c| c.server.ui_listen) {
        Some(listen) => {
            let addr = listen
                .parse()
                .map_err(|_| format!("server.ui_listen: '{listen}' is not address:port"))?;
            // The pages failing to listen (the port taken) must not take the
            // API, health and stats down with them: said, and left off.
            match api::ui::start(api, addr) {
                Ok(ui) => Some(ui),
                Err(e) => {
                    crate::util::say(&format!("web UI: not started: {e}"));
                    None
                }
            }
        }
        None => None,
    };
    Ok(Running {
        api: Some(handle),
        ui,
        collector,
    })
}

impl Drop for Running {
    fn drop(&mut self) {
        self.flush();
        // Open API connections are closed, not left to the process's exit.
        if let Some(api) = self.api.take() {
            api.stop();
        }
        if let Some(ui) = self.ui.take() {
            ui.stop();
        }
    }
}

impl Running {
    /// Keeps the history across a daemon restart (tmpfs: not across reboots).
    pub fn flush(&self) {
        let c = self.collector.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = c.save(&stats_path()) {
            crate::util::say(&format!("traffic history {}: {e}", stats_path().display()));
        }
    }
}

/// The API's `/metrics` part for the resolver: its counters, once the DNS
/// service has published it (nothing before).
fn dns_metrics(resolver: dns::Published) -> Box<dyn Fn() -> String + Send + Sync> {
    Box::new(move || {
        let mut out = String::new();
        if let Some(r) = &*resolver.borrow() {
            api::metrics::dns(&mut out, &r.stats());
        }
        out
    })
}

/// The clients' service: starts the threads and lives as long as the daemon.
pub async fn serve(
    ctx: ServiceContext,
    live: watch::Sender<LiveInputs>,
    resolver: dns::Published,
) -> Result<(), String> {
    let notify = ctx.reapply.clone();
    let reapply: Arc<dyn Fn() + Send + Sync> = Arc::new(move || notify.notify_one());
    let hooks = api::Hooks {
        metrics: vec![dns_metrics(resolver)],
        ..api::Hooks::default()
    };
    let running = start(&ctx.config_path, live, reapply, hooks)?;
    if let Some(h) = &running.api {
        crate::util::say(&format!("API listening on http://{}", h.addr));
    }
    if let Some(h) = &running.ui {
        crate::util::say(&format!("web pages on http://{}", h.addr));
    }
    // `running` is dropped (and the history flushed) when the daemon stops.
    std::future::pending::<()>().await;
    drop(running);
    Ok(())
}

pub type Service = Pin<Box<dyn Future<Output = Result<(), String>>>>;

/// Every service of the daemon, one line each. The health monitor (in the
/// clients' service) publishes the planner's live inputs on `live`; the
/// resolver follows `policy` and publishes itself to the API.
pub fn all(
    ctx: &ServiceContext,
    live: watch::Sender<LiveInputs>,
    policy: watch::Receiver<Arc<Policy>>,
) -> Vec<(&'static str, Service)> {
    let (resolver_tx, resolver) = watch::channel(None);
    vec![
        ("lists", Box::pin(crate::lists::serve(ctx.clone()))),
        ("dns", Box::pin(dns::serve(policy, resolver_tx))),
        ("clients", Box::pin(serve(ctx.clone(), live, resolver))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/metrics` gets the resolver's counters through the channel the DNS
    /// service publishes on: nothing before it has a resolver, its live
    /// counters after.
    #[test]
    fn the_api_reads_the_published_resolver() {
        let (publish, published) = watch::channel(None);
        let hook = dns_metrics(published);
        assert_eq!(hook(), "");
        let config =
            crate::config::parse_valid(include_str!("../../../examples/wgsplit.conf")).unwrap();
        let resolver = dns::Resolver::new(Arc::new(crate::policy::compile(&config, 0)));
        publish.send_replace(Some(resolver.clone()));
        // A query from nobody: counted (and refused).
        let query = [
            0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'x', 0, 0, 1, 0, 1,
        ];
        resolver.answer_locally(&query, "192.0.2.9:5000".parse().unwrap());
        let text = hook();
        assert!(text.contains("wgsplit_dns_queries_total 1\n"), "{text}");
        assert!(text.contains("wgsplit_dns_refused_total 1\n"), "{text}");
    }
}
