//! Every route of the API, one match arm each: method and path to the work.

use serde_json::{Value, json};

use super::{
    Api, OPENAPI,
    access::session_cookie,
    http::{self, Method},
    reply::{ApiError, Reply, RequestCtx, parse_body},
};
use crate::{
    clients::{self, EditError, NewClient, conf, live, qr},
    config::{Problem, Rule, Upstream},
};

impl Api {
    pub(super) fn route(&self, ctx: &RequestCtx) -> Reply {
        let segs = http::segments(ctx.path);
        let m = ctx.method;
        // Public: the API's own description, and logging in.
        match (m, segs.as_slice()) {
            (Method::Get, ["api", "openapi.json"]) => {
                return Reply::raw(200, "application/json", OPENAPI.as_bytes().to_vec());
            }
            (Method::Post, ["api", "session"]) => return self.login(ctx),
            (Method::Get, ["api", "dl", id]) => return self.download(id),
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
            (Method::Get, ["api", "lists"]) => {
                let c = self.store.shared()?;
                Ok(Reply::json(200, crate::lists::sources_json(&c)))
            }
            (Method::Post, ["api", "lists", "update"]) => {
                let c = self.store.shared()?;
                // The error may quote a file: to the log, not the answer.
                let (messages, failed) = crate::lists::update_now(&c)
                    .map_err(|e| {
                        crate::util::say(&format!("API: lists update: {e}"));
                        ApiError::Status(500, "the update failed; the daemon's log says why".into())
                    })?
                    .ok_or_else(|| {
                        ApiError::Status(
                            409,
                            "an update is running already (scheduled, or from another page); try again when it is done".into(),
                        )
                    })?;
                let mut v = crate::lists::sources_json(&c);
                v["messages"] = json!(messages);
                v["failed"] = json!(failed);
                Ok(Reply::json(200, v))
            }

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
            (Method::Post, ["api", "clients", name, "link"]) => {
                let c = self.store.shared()?;
                let i = clients::client_index(&c, name)?;
                // A client without keys here has no config to hand out.
                conf::render(&c, name, false)?;
                let id = self.links.create(&c.clients[i].name);
                Ok(Reply::json(
                    201,
                    json!({"path": format!("/api/dl/{id}"), "expires_in": super::auth::LINK_TTL.as_secs()}),
                ))
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
}

impl Api {
    /// `GET /api/dl/ID`: the config a one-time link names, once; then (or
    /// after an hour, or for an id never made) 404, the same answer each way.
    fn download(&self, id: &str) -> Reply {
        let gone = || Reply::error(404, "no such link: it was used, or is over an hour old");
        let Some(name) = self.links.take(id) else {
            return gone();
        };
        let Ok(c) = self.store.shared() else {
            return gone();
        };
        match conf::render(&c, &name, false) {
            Ok(text) => {
                let mut r = Reply::raw(200, "text/plain; charset=utf-8", text.into_bytes());
                r.headers.push((
                    "Content-Disposition",
                    format!("attachment; filename=\"{name}.conf\""),
                ));
                r.headers.push(("Cache-Control", "no-store".into()));
                r
            }
            Err(_) => gone(),
        }
    }
}

fn flag(ctx: &RequestCtx, name: &str) -> bool {
    ctx.query
        .get(name)
        .is_some_and(|v| matches!(v.as_str(), "" | "1" | "true" | "yes"))
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
                    | "lists"
            ]
            | ["api", "lists", "update"]
            | ["api", "clients" | "upstreams" | "rules", _]
            | [
                "api",
                "clients",
                _,
                "enable" | "disable" | "config" | "qr.svg" | "qr.png" | "history" | "link"
            ]
            | ["api", "dl", _]
            | ["api", "upstreams", _, "enable" | "disable"]
            // Served by the pages' listener only (api/ui/mod.rs).
            | ["api", "ui", "state" | "setup" | "login"]
    )
}

fn rule_json(index: usize, r: &Rule) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    v["index"] = json!(index);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
