//! A request as the routes see it, and what they answer: JSON bodies read
//! with the failing field named, errors turned into their status (a 500
//! never quotes a file), the config's ETag.

use std::{cell::RefCell, collections::HashMap};

use serde_json::{Value, json};

use super::{
    http::{self, Method},
    server,
};
use crate::{
    clients::EditError,
    config::{Config, Problem},
};

/// The config's ETag: of its JSON form, which is deterministic (the model
/// has no hash maps), so a read and a later check under the lock agree.
pub(super) fn config_etag(c: &Config) -> String {
    http::etag_of(&serde_json::to_vec(c).unwrap_or_default())
}

pub(super) struct RequestCtx<'a> {
    pub(super) method: &'a Method,
    pub(super) path: &'a str,
    pub(super) query: &'a HashMap<String, String>,
    pub(super) cookie: Option<&'a str>,
    /// `If-Match`: writes succeed only while the config's ETag is one of these.
    pub(super) if_match: Option<&'a str>,
    pub(super) body: &'a [u8],
    /// The config's ETag, for the answer's `ETag` header.
    pub(super) etag: RefCell<Option<String>>,
}

impl RequestCtx<'_> {
    pub(super) fn tag(&self, c: &Config) {
        self.etag.replace(Some(config_etag(c)));
    }
}

/// `a=1&b=x%20y` → map (last value wins; `+` is a space).
pub(super) fn parse_query(q: &str) -> HashMap<String, String> {
    http::parse_query(q).into_iter().collect()
}

pub(super) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
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

pub(super) enum ApiError {
    Edit(EditError),
    Status(u16, String),
}

impl From<EditError> for ApiError {
    fn from(e: EditError) -> Self {
        Self::Edit(e)
    }
}

impl ApiError {
    pub(super) fn into_reply(self) -> Reply {
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
                        let mut v = json!({
                            "path": p.path,
                            "field": p.path.rsplit('.').next().unwrap_or(&p.path),
                            "message": p.message,
                        });
                        if let Some((code, args)) = crate::util::msgcode::classify(&p.message) {
                            v["code"] = code.into();
                            v["args"] = args.into();
                        }
                        v
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

pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) content_type: &'static str,
    pub(super) body: Vec<u8>,
    pub(super) headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub(super) fn json(status: u16, v: Value) -> Self {
        let mut body = serde_json::to_vec_pretty(&v).unwrap_or_default();
        body.push(b'\n');
        Self::raw(status, "application/json", body)
    }

    pub(super) fn raw(status: u16, content_type: &'static str, body: Vec<u8>) -> Self {
        Self {
            status,
            content_type,
            body,
            headers: Vec::new(),
        }
    }

    pub(super) fn error(status: u16, message: impl Into<String>) -> Self {
        // with the message's code and arguments where it has them (util::msgcode);
        // `problems` only ever comes from Invalid below, in the Problem shape
        let mut body = crate::util::msgcode::error_json(&message.into());
        if let Some(o) = body.as_object_mut() {
            o.remove("problems");
        }
        Self::json(status, body)
    }

    pub(super) fn into_response(self) -> server::Response {
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
