//! What the routes do beyond a line or two: an edit under the writer lock
//! (with `If-Match`) and the re-apply after it, the whole config replaced, a
//! wg-quick import, and the status, explain and metrics views.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{
    Api, http, metrics,
    reply::{ApiError, Reply, RequestCtx, config_etag},
};
use crate::{
    clients::{self, EditError, import, live},
    config::{self, Config, Problem},
};

impl Api {
    /// One edit under the writer lock, then the engine re-applies. With
    /// `If-Match`, the config must still be the one the client read (checked
    /// under the lock, so no concurrent write slips in between): else 409.
    pub(super) fn write<T>(
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

    pub(super) fn reload(&self) -> Result<(), ApiError> {
        (self.hooks.reload)().map_err(|e| {
            ApiError::Status(
                500,
                format!("the config was written, but applying it failed: {e}"),
            )
        })
    }

    pub(super) fn status(&self) -> Result<Reply, ApiError> {
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

    pub(super) fn put_config(&self, ctx: &RequestCtx) -> Result<Reply, ApiError> {
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

    pub(super) fn import(&self, ctx: &RequestCtx) -> Result<Reply, ApiError> {
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

    pub(super) fn explain(&self, ctx: &RequestCtx) -> Result<Reply, ApiError> {
        let (Some(client), Some(dest)) = (ctx.query.get("client"), ctx.query.get("dest")) else {
            return Err(ApiError::Edit(EditError::Invalid(vec![Problem::new(
                "client",
                "required: /api/explain?client=NAME&dest=DESTINATION",
            )])));
        };
        let c = self.store.shared()?;
        clients::client_index(&c, client)?;
        match &self.hooks.explain {
            Some(f) => f(&c, client, dest, &(self.hooks.health)())
                .map(|v| Reply::json(200, v))
                .map_err(|e| ApiError::Edit(EditError::Invalid(vec![Problem::new("dest", e)]))),
            None => Err(ApiError::Status(
                503,
                "explain is not available in this build".into(),
            )),
        }
    }

    pub(super) fn metrics(&self) -> String {
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
