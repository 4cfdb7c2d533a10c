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
//! the pure request reading in `http.rs`.

pub mod auth;
pub mod http;
pub mod metrics;
pub mod server;

#[cfg(test)]
mod oracle_tests;

use std::{cell::RefCell, collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use http::{Head, Method};
use serde_json::{Value, json};

use crate::{
    clients::{self, EditError, NewClient, conf, import, live, qr},
    config::{self, Config, Problem, Rule, Upstream, store::Store},
    health::UpstreamHealth,
};

pub const OPENAPI: &str = include_str!("openapi.json");

/// When the peers were read, and what they were.
type PeerCache = Arc<std::sync::Mutex<Option<(std::time::Instant, Arc<live::PeerStats>)>>>;
type HistoryFn = dyn Fn(&str) -> Option<Value> + Send + Sync;
type ExplainFn = dyn Fn(&Config, &str, &str) -> Result<Value, String> + Send + Sync;

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
            explain: Some(Box::new(|config, client, dest| {
                let policy = crate::policy::compile(config, crate::util::time::now_unix());
                crate::explain::explain(&policy, client, dest)
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
        let server = server::Server::start(listen, self.clone())
            .map_err(|e| format!("API on {listen}: {e}"))?;
        Ok(Handle {
            addr: server.addr,
            server,
        })
    }

    /// How the request is authorised: the token, a session cookie, or not.
    fn authorization(&self, head: &Head) -> Option<Via> {
        if let Some(token) = head
            .header("Authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .map(str::trim)
        {
            return auth::constant_time_eq(token.as_bytes(), self.token.as_bytes())
                .then_some(Via::Token);
        }
        session_cookie(head.header("Cookie"))
            .is_some_and(|s| self.sessions.valid(s))
            .then_some(Via::Cookie)
    }

    fn route(&self, ctx: &RequestCtx) -> Reply {
        let segs = http::segments(ctx.path);
        let m = ctx.method;
        // Public: the API's own description, and logging in.
        match (m, segs.as_slice()) {
            (Method::Get, ["api", "openapi.json"]) => {
                return Reply::raw(200, "application/json", OPENAPI.as_bytes().to_vec());
            }
            (Method::Post, ["api", "session"]) => return self.login(ctx),
            _ => {}
        }
        self.dispatch(ctx, m, &segs)
            .unwrap_or_else(ApiError::into_reply)
    }

    fn dispatch(&self, ctx: &RequestCtx, m: &Method, segs: &[&str]) -> Result<Reply, ApiError> {
        match (m, segs) {
            (Method::Delete, ["api", "session"]) => {
                if let Some(s) = session_cookie(ctx.cookie) {
                    self.sessions.remove(s);
                }
                Ok(Reply::json(200, json!({"ok": true})))
            }
            (Method::Get, ["metrics"]) => Ok(Reply::raw(
                200,
                "text/plain; version=0.0.4",
                self.metrics().into_bytes(),
            )),
            (Method::Get, ["api", "status"]) => self.status(),
            (Method::Post, ["api", "reload"]) => {
                self.reload().map(|_| Reply::json(200, json!({"ok": true})))
            }
            (Method::Get, ["api", "config"]) => {
                let c = self.store.shared()?;
                ctx.tag(&c);
                Ok(Reply::json(
                    200,
                    serde_json::to_value(&*c).unwrap_or(Value::Null),
                ))
            }
            (Method::Put, ["api", "config"]) => self.put_config(ctx),
            (Method::Get, ["api", "explain"]) => self.explain(ctx),

            (Method::Get, ["api", "clients"]) => {
                let c = self.store.shared()?;
                let stats = self.peers(&c);
                let list: Vec<Value> = c
                    .clients
                    .iter()
                    .map(|x| live::client_json(&c, x, &stats))
                    .collect();
                Ok(Reply::json(200, Value::Array(list)))
            }
            (Method::Post, ["api", "clients"]) => {
                let new: NewClient = parse_body(ctx.body)?;
                let (client, c) = self.write(ctx, |c| clients::add_client(c, new))?;
                let stats = self.peers(&c);
                Ok(Reply::json(201, live::client_json(&c, &client, &stats)))
            }
            (Method::Get, ["api", "clients", name]) => {
                let c = self.store.shared()?;
                ctx.tag(&c);
                let i = clients::client_index(&c, name)?;
                let stats = self.peers(&c);
                Ok(Reply::json(
                    200,
                    live::client_json(&c, &c.clients[i], &stats),
                ))
            }
            (Method::Patch, ["api", "clients", name]) => {
                let patch: Value = parse_body(ctx.body)?;
                let (client, c) = self.write(ctx, |c| clients::patch_client(c, name, &patch))?;
                let stats = self.peers(&c);
                Ok(Reply::json(200, live::client_json(&c, &client, &stats)))
            }
            (Method::Delete, ["api", "clients", name]) => {
                let ((_, rules), _) = self.write(ctx, |c| clients::remove_client(c, name))?;
                Ok(Reply::json(
                    200,
                    json!({"removed": name, "rules_removed": rules}),
                ))
            }
            (Method::Post, ["api", "clients", name, verb @ ("enable" | "disable")]) => {
                let on = *verb == "enable";
                self.write(ctx, |c| clients::set_client_enabled(c, name, on))?;
                Ok(Reply::json(200, json!({"name": name, "enabled": on})))
            }
            (Method::Get, ["api", "clients", name, "config"]) => {
                let c = self.store.shared()?;
                let text = conf::render(&c, name, flag(ctx, "split"))?;
                let mut r = Reply::raw(200, "text/plain; charset=utf-8", text.into_bytes());
                r.headers.push((
                    "Content-Disposition",
                    format!("attachment; filename=\"{name}.conf\""),
                ));
                Ok(r)
            }
            (Method::Get, ["api", "clients", name, file @ ("qr.svg" | "qr.png")]) => {
                let c = self.store.shared()?;
                let text = conf::render(&c, name, flag(ctx, "split"))?;
                let (format, mime) = if *file == "qr.svg" {
                    (qr::Format::Svg, "image/svg+xml")
                } else {
                    (qr::Format::Png, "image/png")
                };
                let bytes = qr::render(&text, format).map_err(|e| ApiError::Status(500, e))?;
                Ok(Reply::raw(200, mime, bytes))
            }
            (Method::Get, ["api", "clients", name, "history"]) => {
                let c = self.store.shared()?;
                clients::client_index(&c, name)?;
                match self.hooks.history.as_ref().and_then(|h| h(name)) {
                    Some(v) => Ok(Reply::json(200, v)),
                    None => Err(ApiError::Status(
                        503,
                        "no traffic history: it is collected by 'wgsplit daemon'".into(),
                    )),
                }
            }

            (Method::Get, ["api", "upstreams"]) => {
                let c = self.store.shared()?;
                let health = (self.hooks.health)();
                let list: Vec<Value> = c
                    .upstreams
                    .iter()
                    .map(|u| live::upstream_json(u, &health))
                    .collect();
                Ok(Reply::json(200, Value::Array(list)))
            }
            (Method::Post, ["api", "upstreams"]) => {
                let up: Upstream = parse_body(ctx.body)?;
                let (_, c) = self.write(ctx, |c| clients::add_upstream(c, up.clone()))?;
                let i = clients::upstream_index(&c, &up.name)?;
                Ok(Reply::json(
                    201,
                    live::upstream_json(&c.upstreams[i], &(self.hooks.health)()),
                ))
            }
            (Method::Post, ["api", "upstreams", "import"]) => self.import(ctx),
            (Method::Get, ["api", "upstreams", name]) => {
                let c = self.store.shared()?;
                ctx.tag(&c);
                let i = clients::upstream_index(&c, name)?;
                let mut v = live::upstream_json(&c.upstreams[i], &(self.hooks.health)());
                v["used_by"] = json!(clients::upstream_users(&c, name));
                Ok(Reply::json(200, v))
            }
            (Method::Patch, ["api", "upstreams", name]) => {
                let patch: Value = parse_body(ctx.body)?;
                let (u, _) = self.write(ctx, |c| clients::patch_upstream(c, name, &patch))?;
                Ok(Reply::json(
                    200,
                    live::upstream_json(&u, &(self.hooks.health)()),
                ))
            }
            (Method::Delete, ["api", "upstreams", name]) => {
                self.write(ctx, |c| clients::remove_upstream(c, name))?;
                Ok(Reply::json(200, json!({"removed": name})))
            }
            (Method::Post, ["api", "upstreams", name, verb @ ("enable" | "disable")]) => {
                let on = *verb == "enable";
                self.write(ctx, |c| clients::set_upstream_enabled(c, name, on))?;
                Ok(Reply::json(200, json!({"name": name, "enabled": on})))
            }

            (Method::Get, ["api", "rules"]) => {
                let c = self.store.shared()?;
                let list: Vec<Value> = c
                    .rules
                    .iter()
                    .enumerate()
                    .map(|(i, r)| rule_json(i, r))
                    .collect();
                Ok(Reply::json(200, Value::Array(list)))
            }
            (Method::Post, ["api", "rules"]) => {
                let rule: Rule = parse_body(ctx.body)?;
                let position = match ctx.query.get("position") {
                    None => None,
                    Some(p) => Some(p.parse::<usize>().map_err(|_| {
                        ApiError::Edit(EditError::Invalid(vec![Problem::new(
                            "position",
                            format!("'{p}' is not a position (0, 1, …)"),
                        )]))
                    })?),
                };
                let (i, c) = self.write(ctx, |c| clients::add_rule(c, rule, position))?;
                Ok(Reply::json(201, rule_json(i, &c.rules[i])))
            }
            (Method::Get, ["api", "rules", id]) => {
                let c = self.store.shared()?;
                ctx.tag(&c);
                let i = clients::rule_index(&c, id)?;
                Ok(Reply::json(200, rule_json(i, &c.rules[i])))
            }
            (Method::Patch, ["api", "rules", id]) => {
                let patch: Value = parse_body(ctx.body)?;
                let (r, c) = self.write(ctx, |c| clients::patch_rule(c, id, &patch))?;
                let i = c.rules.iter().position(|x| x == &r).unwrap_or_default();
                Ok(Reply::json(200, rule_json(i, &r)))
            }
            (Method::Delete, ["api", "rules", id]) => {
                let (r, _) = self.write(ctx, |c| clients::remove_rule(c, id))?;
                Ok(Reply::json(200, json!({"removed": rule_json(0, &r)})))
            }
            _ => Err(ApiError::Status(
                if known_path(segs) { 405 } else { 404 },
                format!("no route for {} {}", m, ctx.path),
            )),
        }
    }

    /// One edit under the writer lock, then the engine re-applies. With
    /// `If-Match`, the config must still be the one the client read (checked
    /// under the lock, so no concurrent write slips in between): else 409.
    fn write<T>(
        &self,
        ctx: &RequestCtx,
        f: impl FnOnce(&mut Config) -> Result<T, EditError>,
    ) -> Result<(T, Config), ApiError> {
        let out = self.store.edit(|c| {
            if let Some(wanted) = ctx.if_match {
                let now = config_etag(c);
                if !http::if_match_allows(wanted, &now) {
                    return Err(EditError::Conflict(format!(
                        "If-Match: the config changed since it was read (its ETag is now {now}); read it again and retry"
                    )));
                }
            }
            f(c)
        })?;
        ctx.tag(&out.1);
        self.reload()?;
        Ok(out)
    }

    fn reload(&self) -> Result<(), ApiError> {
        (self.hooks.reload)().map_err(|e| {
            ApiError::Status(
                500,
                format!("the config was written, but applying it failed: {e}"),
            )
        })
    }

    fn login(&self, ctx: &RequestCtx) -> Reply {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Login {
            token: String,
        }
        let login: Login = match parse_body(ctx.body) {
            Ok(l) => l,
            Err(e) => return e.into_reply(),
        };
        if !auth::constant_time_eq(login.token.as_bytes(), self.token.as_bytes()) {
            return Reply::error(401, "wrong token");
        }
        let id = self.sessions.create();
        let mut r = Reply::json(
            200,
            json!({"ok": true, "expires_in": auth::SESSION_TTL.as_secs()}),
        );
        r.headers.push((
            "Set-Cookie",
            format!(
                "wgsplit_session={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
                auth::SESSION_TTL.as_secs()
            ),
        ));
        r
    }

    fn status(&self) -> Result<Reply, ApiError> {
        let c = self.store.shared()?;
        let stats = self.peers(&c);
        let now = crate::util::time::now_unix();
        let health = (self.hooks.health)();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        let mut online = 0;
        for x in &c.clients {
            *counts.entry(live::client_state(x, now)).or_default() += 1;
            if live::client_peer(&c, x, &stats).is_some_and(|p| p.online) {
                online += 1;
            }
        }
        let v = json!({
            "server": {
                "interface": c.server.interface_or_default(),
                "listen_port": c.server.listen_port_or_default(),
                "address": c.server.address,
                "address6": c.server.address6,
                "live": stats.available,
                "note": if stats.available { Value::Null } else { json!(stats.note) },
            },
            "clients": {
                "total": c.clients.len(),
                "enabled": counts.get("enabled").copied().unwrap_or(0),
                "disabled": counts.get("disabled").copied().unwrap_or(0),
                "expired": counts.get("expired").copied().unwrap_or(0),
                "online": online,
            },
            "upstreams": c.upstreams.iter().map(|u| live::upstream_json(u, &health)).collect::<Vec<_>>(),
            "rules": c.rules.len(),
        });
        Ok(Reply::json(200, v))
    }

    fn put_config(&self, ctx: &RequestCtx) -> Result<Reply, ApiError> {
        let text = std::str::from_utf8(ctx.body)
            .map_err(|_| ApiError::Status(400, "the body is not UTF-8".into()))?;
        let new = config::from_json(text).map_err(EditError::from)?;
        let (_, c) = self.write(ctx, |c| {
            *c = new;
            Ok(())
        })?;
        Ok(Reply::json(
            200,
            json!({"ok": true, "clients": c.clients.len(), "upstreams": c.upstreams.len(), "rules": c.rules.len()}),
        ))
    }

    fn import(&self, ctx: &RequestCtx) -> Result<Reply, ApiError> {
        let name = ctx.query.get("name").ok_or_else(|| {
            ApiError::Edit(EditError::Invalid(vec![Problem::new(
                "name",
                "required: POST /api/upstreams/import?name=NAME with the wg-quick file as the body",
            )]))
        })?;
        let text = std::str::from_utf8(ctx.body)
            .map_err(|_| ApiError::Status(400, "the body is not UTF-8".into()))?;
        let on_down = match ctx.query.get("on_down") {
            None => None,
            Some(d) => Some(serde_json::from_value(json!(d)).map_err(|_| {
                ApiError::Edit(EditError::Invalid(vec![Problem::new(
                    "on_down",
                    format!("'{d}' is not one of: block, direct, failover"),
                )]))
            })?),
        };
        let failover = ctx.query.get("failover").cloned();
        let (imp, c) = self.write(ctx, |c| {
            let mut imp = import::parse_wg_quick(c, name, text)?;
            imp.upstream.on_down = on_down;
            imp.upstream.failover = failover;
            clients::add_upstream(c, imp.upstream.clone())?;
            Ok(imp)
        })?;
        let i = clients::upstream_index(&c, name)?;
        let mut v = live::upstream_json(&c.upstreams[i], &(self.hooks.health)());
        v["notes"] = json!(imp.notes);
        Ok(Reply::json(201, v))
    }

    fn explain(&self, ctx: &RequestCtx) -> Result<Reply, ApiError> {
        let (Some(client), Some(dest)) = (ctx.query.get("client"), ctx.query.get("dest")) else {
            return Err(ApiError::Edit(EditError::Invalid(vec![Problem::new(
                "client",
                "required: /api/explain?client=NAME&dest=DESTINATION",
            )])));
        };
        let c = self.store.shared()?;
        clients::client_index(&c, client)?;
        match &self.hooks.explain {
            Some(f) => f(&c, client, dest)
                .map(|v| Reply::json(200, v))
                .map_err(|e| ApiError::Edit(EditError::Invalid(vec![Problem::new("dest", e)]))),
            None => Err(ApiError::Status(
                503,
                "explain is not available in this build".into(),
            )),
        }
    }

    fn metrics(&self) -> String {
        let c = self.store.shared().ok();
        let mut out = String::new();
        if let Some(c) = &c {
            let stats = live::peer_stats(c);
            metrics::clients(&mut out, c, &stats);
            metrics::upstreams(&mut out, c, &(self.hooks.health)());
        }
        self.counters.write(&mut out);
        for hook in &self.hooks.metrics {
            out.push_str(&hook());
        }
        out
    }
}

/// How a request was authorised.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    Token,
    Cookie,
}

/// The config's ETag: of its JSON form, which is deterministic (the model
/// has no hash maps), so a read and a later check under the lock agree.
fn config_etag(c: &Config) -> String {
    http::etag_of(&serde_json::to_vec(c).unwrap_or_default())
}

fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|c| {
        c.starts_with("application/json") || c.starts_with("application/merge-patch+json")
    })
}

impl server::Handler for Api {
    type Pass = ();

    /// Everything decided from the head alone, before a byte of the body is
    /// read: the token (or session), the origin of a cookie's write, the body's
    /// type, and the route's body limit (the server enforces it).
    fn before_body(&self, head: &Head) -> Result<(usize, ()), server::Response> {
        let segs = http::segments(head.path());
        let limit = http::body_limit(&head.method, &segs);
        if http::is_public(&head.method, &segs) {
            return Ok((limit, ()));
        }
        let Some(via) = self.authorization(head) else {
            let mut r = Reply::error(
                401,
                "missing or wrong token: send 'Authorization: Bearer <token>' (the token is in the API token file)",
            );
            r.headers.push(("WWW-Authenticate", "Bearer".into()));
            return Err(r.into_response());
        };
        // A browser sends the cookie with requests any site makes, so a cookie
        // authorises a write only from a page of the API's own origin.
        // Logging out is exempt: ending a session harms nobody.
        if via == Via::Cookie
            && head.method.is_write()
            && !matches!(
                (&head.method, segs.as_slice()),
                (Method::Delete, ["api", "session"])
            )
            && !http::same_origin(
                head.header("Origin"),
                head.header("Referer"),
                head.header("Host"),
            )
        {
            return Err(Reply::error(
                403,
                "a write authorised by the session cookie must come from the API's own origin (Origin or Referer naming the Host); scripts send the token instead",
            )
            .into_response());
        }
        // Bodies of writes must be JSON (a form post from another site can't be),
        // except the wg-quick text of an upstream import.
        let import = matches!(segs.as_slice(), ["api", "upstreams", "import"]);
        if matches!(head.method, Method::Post | Method::Patch | Method::Put)
            && head.content_length > 0
            && !import
            && !is_json(head.header("Content-Type"))
        {
            return Err(
                Reply::error(415, "send the body as Content-Type: application/json")
                    .into_response(),
            );
        }
        Ok((limit, ()))
    }

    fn respond(&self, head: &Head, _: (), body: Vec<u8>) -> server::Response {
        let query = parse_query(head.query());
        let ctx = RequestCtx {
            method: &head.method,
            path: head.path(),
            query: &query,
            cookie: head.header("Cookie"),
            if_match: head.header("If-Match"),
            body: &body,
            etag: RefCell::new(None),
        };
        let mut reply = self.route(&ctx);
        if let Some(tag) = ctx.etag.take()
            && (200..300).contains(&reply.status)
        {
            reply.headers.push(("ETag", tag));
        }
        log::debug!("API {} {} -> {}", head.method, ctx.path, reply.status);
        reply.into_response()
    }

    fn record(&self, status: u16, elapsed: Duration) {
        self.counters.record(status, elapsed);
    }

    fn note(&self, message: &str) {
        crate::util::say(message);
    }
}

struct RequestCtx<'a> {
    method: &'a Method,
    path: &'a str,
    query: &'a HashMap<String, String>,
    cookie: Option<&'a str>,
    /// `If-Match`: writes succeed only while the config's ETag is one of these.
    if_match: Option<&'a str>,
    body: &'a [u8],
    /// The config's ETag, for the answer's `ETag` header.
    etag: RefCell<Option<String>>,
}

impl RequestCtx<'_> {
    fn tag(&self, c: &Config) {
        self.etag.replace(Some(config_etag(c)));
    }
}

fn flag(ctx: &RequestCtx, name: &str) -> bool {
    ctx.query
        .get(name)
        .is_some_and(|v| matches!(v.as_str(), "" | "1" | "true" | "yes"))
}

fn session_cookie(cookie: Option<&str>) -> Option<&str> {
    cookie?
        .split(';')
        .map(str::trim)
        .find_map(|c| c.strip_prefix("wgsplit_session="))
}

fn known_path(segs: &[&str]) -> bool {
    matches!(
        segs,
        ["metrics"]
            | [
                "api",
                "status"
                    | "reload"
                    | "config"
                    | "explain"
                    | "clients"
                    | "upstreams"
                    | "rules"
                    | "session"
                    | "openapi.json"
            ]
            | ["api", "clients" | "upstreams" | "rules", _]
            | [
                "api",
                "clients",
                _,
                "enable" | "disable" | "config" | "qr.svg" | "qr.png" | "history"
            ]
            | ["api", "upstreams", _, "enable" | "disable"]
    )
}

fn rule_json(index: usize, r: &Rule) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    v["index"] = json!(index);
    v
}

/// `a=1&b=x%20y` → map (last value wins; `+` is a space).
pub fn parse_query(q: &str) -> HashMap<String, String> {
    http::parse_query(q).into_iter().collect()
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::Status(400, "a JSON body is required".into()));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let path = if inner.is_syntax() || inner.is_eof() {
            "body".to_string()
        } else if path == "." || path.is_empty() {
            // A missing field is reported at the top: name it from the message.
            let m = inner.to_string();
            m.split('`')
                .nth(1)
                .map(String::from)
                .unwrap_or_else(|| "body".into())
        } else {
            path
        };
        ApiError::Edit(EditError::Invalid(vec![Problem::new(
            &path,
            inner.to_string(),
        )]))
    })
}

enum ApiError {
    Edit(EditError),
    Status(u16, String),
}

impl From<EditError> for ApiError {
    fn from(e: EditError) -> Self {
        Self::Edit(e)
    }
}

impl ApiError {
    fn into_reply(self) -> Reply {
        match self {
            Self::Status(s, m) => Reply::error(s, m),
            Self::Edit(EditError::NotFound(m)) => Reply::error(404, m),
            Self::Edit(EditError::Conflict(m)) => Reply::error(409, m),
            Self::Edit(EditError::Io(m)) => {
                // The message may quote the file it failed on: it goes to the
                // log, never into an answer.
                crate::util::say(&format!("API: {m}"));
                Reply::error(
                    500,
                    "reading or writing the config failed; the daemon's log says why",
                )
            }
            Self::Edit(EditError::Invalid(problems)) => {
                let list: Vec<Value> = problems
                    .iter()
                    .map(|p| {
                        json!({
                            "path": p.path,
                            "field": p.path.rsplit('.').next().unwrap_or(&p.path),
                            "message": p.message,
                        })
                    })
                    .collect();
                let message = problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                Reply::json(400, json!({"error": message, "problems": list}))
            }
        }
    }
}

struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(status: u16, v: Value) -> Self {
        let mut body = serde_json::to_vec_pretty(&v).unwrap_or_default();
        body.push(b'\n');
        Self::raw(status, "application/json", body)
    }

    fn raw(status: u16, content_type: &'static str, body: Vec<u8>) -> Self {
        Self {
            status,
            content_type,
            body,
            headers: Vec::new(),
        }
    }

    fn error(status: u16, message: impl Into<String>) -> Self {
        Self::json(status, json!({"error": message.into()}))
    }

    fn into_response(self) -> server::Response {
        let mut headers = vec![
            ("Content-Type", self.content_type.to_string()),
            ("Cache-Control", "no-store".to_string()),
            ("X-Content-Type-Options", "nosniff".to_string()),
        ];
        headers.extend(self.headers);
        server::Response {
            status: self.status,
            headers,
            body: self.body,
        }
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
    use super::*;

    #[test]
    fn queries_and_openapi() {
        let q = parse_query("client=alice&dest=a%2Eb+c&split");
        assert_eq!(q["dest"], "a.b c");
        assert_eq!(q["split"], "");
        assert_eq!(http::percent_decode("100%"), "100%");
        let doc: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        assert!(doc["paths"]["/api/clients"]["post"].is_object());
    }

    #[test]
    fn openapi_paths_are_routes() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for p in paths.keys() {
            let segs: Vec<&str> = p
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| if s.starts_with('{') { "x" } else { s })
                .collect();
            assert!(known_path(&segs), "{p} is documented but not routed");
        }
        // And every route family is documented.
        for p in [
            "/api/status",
            "/api/clients/{name}/qr.png",
            "/api/upstreams/import",
            "/api/rules/{id}",
            "/metrics",
            "/api/explain",
        ] {
            assert!(paths.contains_key(p), "{p} is not documented");
        }
    }

    #[test]
    fn cookies() {
        assert_eq!(
            session_cookie(Some("a=b; wgsplit_session=xyz")),
            Some("xyz")
        );
        assert_eq!(session_cookie(Some("a=b")), None);
    }
}
