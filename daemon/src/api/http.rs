//! The pure half of the API's HTTP: reading a request head from bytes, the
//! body limit of each route, the same-origin test for cookie-authorised
//! writes, ETags and `If-Match`, and query strings. Nothing here does I/O,
//! allocates more than its input, or depends on the rest of the crate (the
//! fuzz target `http_request` includes this file as it is).

use std::fmt;

/// Longest request head (request line and headers) read; a longer one is a 431.
pub const MAX_HEAD: usize = 16 * 1024;
/// Most header lines in one request.
pub const MAX_HEADERS: usize = 64;
/// Largest body of any route: `PUT /api/config` (a whole config).
pub const MAX_BODY: usize = 1 << 20;
/// Largest body of the other writes (one client, upstream, rule, import).
pub const MAX_WRITE_BODY: usize = 64 * 1024;
/// Largest body of the unauthenticated login (`{"token": "…"}`).
pub const MAX_LOGIN_BODY: usize = 4 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other(String),
}

impl Method {
    fn from_token(t: &str) -> Self {
        match t {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            "OPTIONS" => Self::Options,
            other => Self::Other(other.to_string()),
        }
    }

    /// Methods that change something: they need a same-origin check when a
    /// cookie authorises them.
    pub fn is_write(&self) -> bool {
        !matches!(self, Self::Get | Self::Head | Self::Options)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Other(m) => m,
        })
    }
}

/// A request head as read: everything before the body.
#[derive(Debug, Clone)]
pub struct Head {
    pub method: Method,
    /// The request target as sent (`/api/x?y=z`).
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// Bytes of the head, including the blank line that ends it.
    pub len: usize,
    /// The declared body length (0 when none is declared).
    pub content_length: u64,
    /// Who sent it (the server fills it in; `None` in tests and parsers).
    pub peer: Option<std::net::SocketAddr>,
}

impl Head {
    /// The first header of that name (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// `Expect: 100-continue`: the client waits for a go-ahead before the body.
    pub fn expects_continue(&self) -> bool {
        self.header("Expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    }
}

/// Why a head was refused; each maps to one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// Longer than [`MAX_HEAD`] or more than [`MAX_HEADERS`] lines: 431.
    TooLarge,
    /// Not HTTP/1.x as we read it: 400, saying what.
    Malformed(&'static str),
    /// `Transfer-Encoding` (chunked bodies): 411, send `Content-Length`.
    NeedsLength,
}

impl HeadError {
    pub fn status(&self) -> u16 {
        match self {
            Self::TooLarge => 431,
            Self::Malformed(_) => 400,
            Self::NeedsLength => 411,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::TooLarge => format!(
                "the request head is larger than {MAX_HEAD} bytes or has more than {MAX_HEADERS} headers"
            ),
            Self::Malformed(what) => format!("bad request: {what}"),
            Self::NeedsLength => {
                "Transfer-Encoding is not accepted: send the body with Content-Length".into()
            }
        }
    }
}

/// Where the head ends (just past its blank line), if it is in `buf`.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(nl) = buf[i..].iter().position(|&b| b == b'\n') {
        let next = i + nl + 1;
        match buf.get(next..) {
            Some([b'\n', ..]) => return Some(next + 1),
            Some([b'\r', b'\n', ..]) => return Some(next + 2),
            _ => i = next,
        }
    }
    None
}

/// Reads a request head from the start of `buf`: `Ok(None)` while the blank
/// line that ends it has not arrived (and `buf` is still under [`MAX_HEAD`]).
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, HeadError> {
    let window = &buf[..buf.len().min(MAX_HEAD)];
    let Some(len) = head_end(window) else {
        return if buf.len() >= MAX_HEAD {
            Err(HeadError::TooLarge)
        } else {
            Ok(None)
        };
    };
    let text = std::str::from_utf8(&window[..len])
        .map_err(|_| HeadError::Malformed("the head is not UTF-8"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed(
            "the request line is not 'METHOD /path HTTP/1.1'",
        ));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(HeadError::Malformed("the method is not a word in capitals"));
    }
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(HeadError::Malformed(
            "the target is not a path starting with '/'",
        ));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(HeadError::Malformed(
            "the version is not HTTP/1.0 or HTTP/1.1",
        ));
    }
    let mut headers = Vec::new();
    let mut content_length: Option<u64> = None;
    for line in lines.take_while(|l| !l.is_empty()) {
        if headers.len() == MAX_HEADERS {
            return Err(HeadError::TooLarge);
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(HeadError::Malformed("a header line has no ':'"));
        };
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(HeadError::Malformed("a header name is not a token"));
        }
        if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Err(HeadError::Malformed(
                "a header value has a control character",
            ));
        }
        let value = value.trim_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("Transfer-Encoding") {
            return Err(HeadError::NeedsLength);
        }
        if name.eq_ignore_ascii_case("Content-Length") {
            let n = parse_length(value)
                .ok_or(HeadError::Malformed("Content-Length is not a number"))?;
            if content_length.is_some_and(|m| m != n) {
                return Err(HeadError::Malformed("two different Content-Length headers"));
            }
            content_length = Some(n);
        }
        headers.push((name.to_string(), value.to_string()));
    }
    Ok(Some(Head {
        method: Method::from_token(method),
        target: target.to_string(),
        headers,
        len,
        content_length: content_length.unwrap_or(0),
        peer: None,
    }))
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Decimal digits only (no sign, no spaces), and no overflow.
fn parse_length(v: &str) -> Option<u64> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// The path's segments, empty ones dropped (`/api//clients/` → api, clients).
pub fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// The largest body a route takes; a larger declared length is refused (413)
/// before anything is read or allocated.
pub fn body_limit(method: &Method, segs: &[&str]) -> usize {
    match (method, segs) {
        (Method::Put, ["api", "config"]) => MAX_BODY,
        (Method::Post, ["api", "session"]) => MAX_LOGIN_BODY,
        (Method::Post | Method::Put | Method::Patch, _) => MAX_WRITE_BODY,
        _ => 0,
    }
}

/// Routes answered without the token: the API's description, logging in, and
/// one-time download links.
pub fn is_public(method: &Method, segs: &[&str]) -> bool {
    matches!(
        (method, segs),
        (Method::Get, ["api", "openapi.json"])
            | (Method::Post, ["api", "session"])
            // A one-time download link: its 256-bit id is the credential.
            | (Method::Get, ["api", "dl", _])
    )
}

/// The `host[:port]` of an `Origin` or `Referer` (scheme://authority/…).
fn authority_of(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    // Credentials in a URL are never part of the origin.
    (!authority.is_empty() && !authority.contains('@')).then_some(authority)
}

/// Whether a browser request came from a page of this API's own origin: its
/// `Origin` (or, without one, its `Referer`) names the host the request was
/// sent to (`Host`). No header, `Origin: null`, or another host: not same-origin.
pub fn same_origin(origin: Option<&str>, referer: Option<&str>, host: Option<&str>) -> bool {
    let Some(host) = host.filter(|h| !h.is_empty()) else {
        return false;
    };
    let from = match origin {
        Some(o) => authority_of(o),
        None => referer.and_then(authority_of),
    };
    from.is_some_and(|a| a.eq_ignore_ascii_case(host))
}

/// A strong ETag for some bytes (the config as JSON): FNV-1a, 64 bits, quoted.
/// It guards against lost updates, not against forgery.
pub fn etag_of(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

/// `If-Match` against the current ETag: `*` or any listed strong tag equal
/// to it. Weak tags (`W/"…"`) never match (a strong comparison, RFC 9110).
pub fn if_match_allows(if_match: &str, etag: &str) -> bool {
    if_match
        .split(',')
        .map(|t| t.trim_matches([' ', '\t']))
        .any(|t| t == "*" || t == etag)
}

/// `a=1&b=x%20y` → pairs (`+` is a space; a bad escape stays as it is).
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            x => out.push(x),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// The response head: status line, the given headers (any with CR or LF in
/// them dropped, so nothing can split the response), length, and
/// `Connection: close` (one request per connection).
pub fn response_head(status: u16, headers: &[(&str, &str)], body_len: usize) -> String {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        if !k.contains(['\r', '\n']) && !v.contains(['\r', '\n']) {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str(&format!(
        "Content-Length: {body_len}\r\nConnection: close\r\n\r\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str) -> Head {
        parse_head(s.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn heads() {
        let h = head("GET /api/x?y=1 HTTP/1.1\r\nHost: a:1\r\nX-Y:  z \r\n\r\nBODY");
        assert_eq!(h.method, Method::Get);
        assert_eq!((h.path(), h.query()), ("/api/x", "y=1"));
        assert_eq!(h.header("host"), Some("a:1"));
        assert_eq!(h.header("x-y"), Some("z"));
        assert_eq!(h.len, 48);
        assert_eq!(h.content_length, 0);
        // Bare LF line ends are read too.
        assert_eq!(head("GET / HTTP/1.0\nA: b\n\n").len, 21);
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n")
                .unwrap()
                .map(|h| h.len),
            None
        );
    }

    #[test]
    fn lengths() {
        let h = head("POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n");
        assert_eq!(h.content_length, 99_999_999_999);
        for bad in [
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ] {
            assert!(
                matches!(parse_head(bad.as_bytes()), Err(HeadError::Malformed(_))),
                "{bad}"
            );
        }
        assert_eq!(
            parse_head(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap_err(),
            HeadError::NeedsLength
        );
    }

    #[test]
    fn limits_of_the_head() {
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(
            parse_head(long.as_bytes()).unwrap_err(),
            HeadError::TooLarge
        );
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "A: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(
            parse_head(many.as_bytes()).unwrap_err(),
            HeadError::TooLarge
        );
        for bad in [
            "GET http://x/ HTTP/1.1\r\n\r\n",
            "GET / HTTP/2\r\n\r\n",
            "get / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nA b\r\n\r\n",
            "GET / HTTP/1.1\r\n folded\r\n\r\n",
            "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n",
        ] {
            assert!(parse_head(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn route_limits() {
        assert_eq!(body_limit(&Method::Put, &["api", "config"]), MAX_BODY);
        assert_eq!(
            body_limit(&Method::Post, &["api", "clients"]),
            MAX_WRITE_BODY
        );
        assert_eq!(
            body_limit(&Method::Post, &["api", "session"]),
            MAX_LOGIN_BODY
        );
        assert_eq!(body_limit(&Method::Get, &["api", "openapi.json"]), 0);
        assert_eq!(body_limit(&Method::Delete, &["api", "clients", "x"]), 0);
        assert!(is_public(&Method::Get, &segments("/api//openapi.json/")));
        assert!(!is_public(&Method::Post, &["api", "clients"]));
    }

    #[test]
    fn origins() {
        let h = Some("192.168.1.1:8080");
        assert!(same_origin(Some("http://192.168.1.1:8080"), None, h));
        assert!(same_origin(None, Some("http://192.168.1.1:8080/x?y"), h));
        assert!(same_origin(Some("HTTP://Router"), None, Some("router")));
        assert!(!same_origin(Some("http://evil.example"), None, h));
        assert!(!same_origin(Some("http://192.168.1.1:8081"), None, h));
        assert!(!same_origin(
            Some("null"),
            Some("http://192.168.1.1:8080/"),
            h
        ));
        assert!(!same_origin(None, None, h));
        assert!(!same_origin(Some("http://192.168.1.1:8080"), None, None));
        assert!(!same_origin(Some("http://x@192.168.1.1:8080"), None, h));
        assert!(!same_origin(Some("file://192.168.1.1:8080"), None, h));
    }

    #[test]
    fn etags() {
        let t = etag_of(b"{}");
        assert_eq!(t.len(), 18);
        assert_ne!(t, etag_of(b"{ }"));
        assert!(if_match_allows(&t, &t));
        assert!(if_match_allows("*", &t));
        assert!(if_match_allows(&format!("\"0\", {t}"), &t));
        assert!(!if_match_allows(&format!("W/{t}"), &t));
        assert!(!if_match_allows("\"0000000000000000\"", &t));
    }

    #[test]
    fn queries_and_responses() {
        let q = parse_query("client=alice&dest=a%2Eb+c&split");
        assert_eq!(q[1], ("dest".into(), "a.b c".into()));
        assert_eq!(q[2], ("split".into(), String::new()));
        assert_eq!(percent_decode("100%"), "100%");
        let r = response_head(200, &[("A", "b"), ("Evil", "x\r\nSet-Cookie: y")], 3);
        assert_eq!(
            r,
            "HTTP/1.1 200 OK\r\nA: b\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
        );
    }
}
