//! Who may ask, decided from the head alone before a byte of the body is
//! read: the token or a session cookie (made by logging in with the token),
//! a cookie's write only from the API's own origin, JSON bodies; then the
//! request is routed. The server calls in here (`server::Handler`).

use std::{cell::RefCell, time::Duration};

use super::{
    Api, auth,
    http::{self, Head, Method},
    reply::{Reply, RequestCtx, parse_body, parse_query},
    server,
};
use serde_json::json;

impl Api {
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

    pub(super) fn login(&self, ctx: &RequestCtx) -> Reply {
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
}

/// How a request was authorised.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    Token,
    Cookie,
}

fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|c| {
        c.starts_with("application/json") || c.starts_with("application/merge-patch+json")
    })
}

impl server::Handler for Api {
    /// Whether the request proved who sent it (token or session); public
    /// routes pass without.
    type Pass = bool;

    /// Everything decided from the head alone, before a byte of the body is
    /// read: the token (or session), the origin of a cookie's write, the body's
    /// type, and the route's body limit (the server enforces it).
    fn before_body(&self, head: &Head) -> Result<(usize, bool), server::Response> {
        let segs = http::segments(head.path());
        let limit = http::body_limit(&head.method, &segs);
        if http::is_public(&head.method, &segs) {
            return Ok((limit, false));
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
        Ok((limit, true))
    }

    fn authorised(&self, pass: &bool) -> bool {
        *pass
    }

    fn respond(&self, head: &Head, _: bool, body: Vec<u8>) -> server::Response {
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

pub(super) fn session_cookie(cookie: Option<&str>) -> Option<&str> {
    cookie?
        .split(';')
        .map(str::trim)
        .find_map(|c| c.strip_prefix("wgsplit_session="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies() {
        assert_eq!(
            session_cookie(Some("a=b; wgsplit_session=xyz")),
            Some("xyz")
        );
        assert_eq!(session_cookie(Some("a=b")), None);
    }
}
