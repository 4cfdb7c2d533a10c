//! The REST API: JSON over HTTP (our own bounded server, `server.rs`) on its own threads inside
//! `wgsplit daemon`, for clients, upstreams, rules, status, stats and
//! `explain`, plus `/metrics` for Prometheus. The OpenAPI document
//! (`openapi.json` beside this file) is served at `/api/openapi.json`.
//!
//! Secure by default: it listens on `server.api_listen` (loopback), every route
//! but the OpenAPI document needs the token (`Authorization: Bearer …`) or a
//! session cookie made with it (writes by cookie only from the same origin);
//! bodies are capped per route before they are read, and in read time; bad
//! input is a 400 naming the field and writes nothing; writes go through the
//! one-writer [`Store`] and honour `If-Match` (the config's ETag). The HTTP
//! itself (connection cap, timeouts, no unbounded buffer) is in `server.rs`,
//! the pure request reading in `http.rs`. Who may ask is decided in
//! `access.rs`, every route is a line of `routes.rs`, the longer work behind
//! them is in `actions.rs`, requests and answers are shaped in `reply.rs`.

mod access;
mod actions;
pub mod auth;
pub mod http;
pub mod metrics;
mod reply;
mod routes;
pub mod server;
pub mod ui;

#[cfg(test)]
mod oracle_tests;

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use serde_json::Value;

use crate::{
    clients::live,
    config::{Config, store::Store},
    health::UpstreamHealth,
};

pub const OPENAPI: &str = include_str!("openapi.json");

/// When the peers were read, and what they were.
type PeerCache = Arc<std::sync::Mutex<Option<(std::time::Instant, Arc<live::PeerStats>)>>>;
type HistoryFn = dyn Fn(&str) -> Option<Value> + Send + Sync;
/// (config, client, destination, upstream health) → the explanation as JSON.
type ExplainFn = dyn Fn(&Config, &str, &str, &HashMap<String, UpstreamHealth>) -> Result<Value, String>
    + Send
    + Sync;

/// What the daemon plugs in: the API itself only edits the config and reads
/// the kernel; applying, status details and `explain` come from the engine.
pub struct Hooks {
    /// Called after every successful write: make the kernel match the config.
    pub reload: Box<dyn Fn() -> Result<(), String> + Send + Sync>,
    /// Upstream health as the monitor last decided it.
    pub health: Box<dyn Fn() -> HashMap<String, UpstreamHealth> + Send + Sync>,
    pub explain: Option<Box<ExplainFn>>,
    /// Per-client traffic history, JSON (from the stats collector).
    pub history: Option<Box<HistoryFn>>,
    /// Extra Prometheus text appended to `/metrics`: the daemon's wiring adds
    /// the DNS resolver's counters (`metrics::dns`).
    pub metrics: Vec<Box<dyn Fn() -> String + Send + Sync>>,
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            reload: Box::new(|| Ok(())),
            health: Box::new(|| crate::health::read_state().unwrap_or_default()),
            // From the live state, as `wgsplit explain --json` answers.
            explain: Some(Box::new(|config, client, dest, health| {
                let policy = crate::policy::compile(config, crate::util::time::now_unix());
                let live = live::explain_state(config, &policy, client, dest, health);
                crate::explain::explain_live(&policy, client, dest, Some(&live))
                    .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
            })),
            history: None,
            metrics: Vec::new(),
        }
    }
}

pub struct Api {
    pub store: Arc<Store>,
    token: String,
    sessions: auth::Sessions,
    links: auth::Links,
    pub hooks: Hooks,
    pub counters: metrics::Counters,
    /// The server's peers as last read, for at most [`PEERS_TTL`]: a dump of
    /// a thousand peers costs milliseconds, and requests come in bursts.
    peer_cache: PeerCache,
    refreshing: Arc<std::sync::atomic::AtomicBool>,
}

pub const PEERS_TTL: Duration = Duration::from_secs(1);
pub const PEERS_STALE: Duration = Duration::from_secs(5);

/// A running API: its address and the server.
pub struct Handle {
    pub addr: SocketAddr,
    server: server::Server,
}

impl Handle {
    /// Stops accepting and closes every open connection.
    pub fn stop(self) {
        self.server.stop();
    }
}

impl Api {
    pub fn new(store: Arc<Store>, token: String, hooks: Hooks) -> Self {
        Self {
            store,
            token,
            sessions: auth::Sessions::default(),
            links: auth::Links::default(),
            hooks,
            counters: metrics::Counters::default(),
            peer_cache: Arc::default(),
            refreshing: Arc::default(),
        }
    }

    /// The server's peers: fresh for [`PEERS_TTL`]; a little older (up to
    /// [`PEERS_STALE`]) they are served while one background thread reads them
    /// again, so a burst of requests never waits on the dump; older still (an
    /// idle API), the request reads them itself.
    fn peers(&self, config: &Config) -> Arc<live::PeerStats> {
        let cache = self.peer_cache.clone();
        {
            let guard = cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((t, p)) = &*guard {
                let age = t.elapsed();
                if age < PEERS_TTL {
                    return p.clone();
                }
                if age < PEERS_STALE {
                    if !self
                        .refreshing
                        .swap(true, std::sync::atomic::Ordering::AcqRel)
                    {
                        let (config, cache, flag) =
                            (config.clone(), cache.clone(), self.refreshing.clone());
                        std::thread::spawn(move || {
                            let p = Arc::new(live::peer_stats(&config));
                            *cache.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some((std::time::Instant::now(), p));
                            flag.store(false, std::sync::atomic::Ordering::Release);
                        });
                    }
                    return p.clone();
                }
            }
        }
        let p = Arc::new(live::peer_stats(config));
        *cache.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((std::time::Instant::now(), p.clone()));
        p
    }

    /// Listens on `listen` and serves until stopped.
    pub fn start(self: Arc<Self>, listen: SocketAddr) -> Result<Handle, String> {
        let server = server::Server::start(listen, Arc::new(ui::Ui::api_only(self.clone())))
            .map_err(|e| format!("API on {listen}: {e}"))?;
        Ok(Handle {
            addr: server.addr,
            server,
        })
    }
}

/// Starts the API for `wgsplit daemon` (or `wgsplit api`): reads or makes the
/// token, then listens on `server.api_listen` unless `listen` overrides it.
pub fn start(
    config_path: &std::path::Path,
    listen: Option<SocketAddr>,
    hooks: Hooks,
) -> Result<(Arc<Api>, Handle), String> {
    let store = Arc::new(Store::new(config_path));
    let config = store.load().map_err(|e| e.to_string())?;
    let listen = match listen {
        Some(l) => l,
        None => config
            .server
            .api_listen_or_default()
            .parse()
            .map_err(|_| "server.api_listen: not address:port".to_string())?,
    };
    let token_path = auth::token_path();
    let token = auth::load_or_create(&token_path)
        .map_err(|e| format!("API token {}: {e}", token_path.display()))?;
    let api = Arc::new(Api::new(store, token, hooks));
    let handle = api.clone().start(listen)?;
    Ok((api, handle))
}

#[cfg(test)]
mod tests {
    use super::{reply::parse_query, *};

    #[test]
    fn queries_and_openapi() {
        let q = parse_query("client=alice&dest=a%2Eb+c&split");
        assert_eq!(q["dest"], "a.b c");
        assert_eq!(q["split"], "");
        assert_eq!(http::percent_decode("100%"), "100%");
        let doc: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        assert!(doc["paths"]["/api/clients"]["post"].is_object());
    }
}
