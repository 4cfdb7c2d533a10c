//! tiny_http, the server the API ran on before `server.rs`, as the oracle of
//! our request-head parsing (`http.rs`): the project replaced it to save flash,
//! and keeps it as a dev-dependency so that it checks what replaced it.
//!
//! Every case of the corpus is sent as raw bytes over a loopback socket to a
//! `tiny_http::Server` and given to [`http::parse_head`]; the method, target
//! (path and query), headers and body each side read must be equal. Where the
//! two differ by design (we refuse chunked bodies, cap the head, are stricter
//! about the request line and header bytes), the case names the difference and
//! both outcomes, so a change on either side fails here.

use std::{
    io::{ErrorKind, Read, Write},
    net::{Shutdown, SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use super::http::{self, MAX_BODY, MAX_HEAD, MAX_HEADERS};

/// Longest wait for tiny_http to parse, answer or close one case; every
/// socket operation is bounded by it.
const CASE_DEADLINE: Duration = Duration::from_secs(1);
/// Granularity of the wait: the server and the client socket are polled in turn.
const POLL: Duration = Duration::from_millis(2);
/// What tiny_http answers to a request it parsed (we only read its parse).
const ORACLE_ANSWER: u16 = 204;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Parsed {
    method: String,
    /// Path and query, as sent.
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Parsed(Parsed),
    /// Refused with this status.
    Refused(u16),
    /// tiny_http: the connection closed without an answer (a line it cannot
    /// read, or the head never ended before the client's EOF).
    Closed,
    /// Ours: the head has not ended yet (`parse_head` returns `Ok(None)`).
    Incomplete,
    /// tiny_http: neither a parse, an answer nor a close within [`CASE_DEADLINE`].
    Hung,
}

/// An outcome without its content, for the documented differences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Parsed,
    Refused(u16),
    Closed,
    Incomplete,
    Hung,
}

impl Outcome {
    fn kind(&self) -> Kind {
        match self {
            Self::Parsed(_) => Kind::Parsed,
            Self::Refused(s) => Kind::Refused(*s),
            Self::Closed => Kind::Closed,
            Self::Incomplete => Kind::Incomplete,
            Self::Hung => Kind::Hung,
        }
    }
}

enum Expect {
    /// Both parse to the same request, or both refuse with the same status.
    Same,
    /// A difference by design. When both sides parse, their parses must differ.
    Differ {
        ours: Kind,
        theirs: Kind,
        why: &'static str,
    },
}

struct Case {
    name: &'static str,
    raw: Vec<u8>,
    expect: Expect,
}

fn same(name: &'static str, raw: impl Into<Vec<u8>>) -> Case {
    Case {
        name,
        raw: raw.into(),
        expect: Expect::Same,
    }
}

fn differ(
    name: &'static str,
    raw: impl Into<Vec<u8>>,
    ours: Kind,
    theirs: Kind,
    why: &'static str,
) -> Case {
    Case {
        name,
        raw: raw.into(),
        expect: Expect::Differ { ours, theirs, why },
    }
}

/// A head of exactly `total` bytes: a GET whose one padding header fills it.
fn head_of_len(total: usize) -> Vec<u8> {
    let start = "GET /api/status HTTP/1.1\r\nHost: r\r\nX-Pad: ";
    let end = "\r\n\r\n";
    let pad = total - start.len() - end.len();
    format!("{start}{}{end}", "a".repeat(pad)).into_bytes()
}

/// A GET with `n` header lines.
fn with_headers(n: usize) -> Vec<u8> {
    let mut s = String::from("GET /api/status HTTP/1.1\r\n");
    for i in 0..n {
        s.push_str(&format!("X-H{i}: {i}\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

fn corpus() -> Vec<Case> {
    use Kind::{Closed, Hung, Incomplete, Parsed, Refused};
    let mut cases = vec![
        same(
            "plain GET",
            "GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
        ),
        same("HEAD", "HEAD /api/status HTTP/1.1\r\nHost: r\r\n\r\n"),
        same(
            "OPTIONS",
            "OPTIONS /api/clients HTTP/1.1\r\nHost: r\r\n\r\n",
        ),
        same(
            "DELETE",
            "DELETE /api/clients/laptop HTTP/1.1\r\nHost: r\r\nAuthorization: Bearer t0k\r\n\r\n",
        ),
        same(
            "other method in capitals",
            "PROPFIND /api HTTP/1.1\r\nHost: r\r\n\r\n",
        ),
        same("no headers at all", "GET / HTTP/1.1\r\n\r\n"),
        same(
            "query string",
            "GET /api/explain?client=laptop&dst=example.org HTTP/1.1\r\nHost: r\r\n\r\n",
        ),
        same(
            "percent escapes stay raw",
            "GET /api/clients/a%20b%2Fc?q=%E2%9C%93+x&e= HTTP/1.1\r\nHost: r\r\n\r\n",
        ),
        same(
            "empty segments and dots stay raw",
            "GET /api//clients/./x/../y? HTTP/1.1\r\n\r\n",
        ),
        same(
            "header names in any case",
            "GET / HTTP/1.1\r\nhost: r\r\nAUTHORIZATION: Bearer x\r\nCoOkIe: wgsplit_session=abc\r\n\r\n",
        ),
        same(
            "repeated headers kept in order",
            "GET / HTTP/1.1\r\nCookie: a=1\r\nX-Forwarded-For: 10.0.0.1\r\nCookie: b=2\r\nX-Forwarded-For: 10.0.0.2\r\n\r\n",
        ),
        same(
            "spaces and tabs around values",
            "GET / HTTP/1.1\r\nHost:r\r\nOrigin:  \t http://r:8080 \t \r\nIf-Match:\t\"abc\", W/\"d\"  \r\n\r\n",
        ),
        same(
            "empty value",
            "GET / HTTP/1.1\r\nX-Empty:\r\nX-Blank:   \r\n\r\n",
        ),
        same(
            "colon inside the value",
            "GET / HTTP/1.1\r\nReferer: http://r:8080/luci?x=a:b\r\n\r\n",
        ),
        same(
            "POST with a body",
            "POST /api/clients HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"name\":\"phone\"}\n",
        ),
        same(
            "PUT with the same Content-Length twice",
            "PUT /api/config HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n{}",
        ),
        same(
            "PATCH, zero length",
            "PATCH /api/clients/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        ),
        same(
            "Content-Length with spaces around",
            "POST /api/session HTTP/1.1\r\nContent-Length:   4 \r\n\r\nabcd",
        ),
        same(
            "Expect: 100-continue",
            "PUT /api/config HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
        ),
        same("HTTP/1.0", "GET /metrics HTTP/1.0\r\n\r\n"),
        same(
            "HTTP/1.0 keep-alive",
            "GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        ),
        same(
            "HTTP/1.1 close",
            "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n",
        ),
        same("request line with two spaces", "GET  / HTTP/1.1\r\n\r\n"),
        same(
            "header name with a space before ':'",
            "GET / HTTP/1.1\r\nHost : r\r\n\r\n",
        ),
        same(
            "header line without ':'",
            "GET / HTTP/1.1\r\nHost r\r\n\r\n",
        ),
        same(
            "obsolete line folding",
            "GET / HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n",
        ),
        same(
            "empty line before the request line",
            "\r\nGET / HTTP/1.1\r\n\r\n",
        ),
        same("no version", "GET /\r\n\r\n"),
        same("unknown version", "GET / HTTP/1.2\r\n\r\n"),
        same("head exactly MAX_HEAD bytes", head_of_len(MAX_HEAD)),
        same("exactly MAX_HEADERS headers", with_headers(MAX_HEADERS)),
        // Keep-alive: the parse of the first request agrees; what follows it
        // is checked by `pipelined_requests_are_served_by_them_not_us`.
        same(
            "HTTP/1.1 keep-alive",
            "GET /api/status HTTP/1.1\r\nConnection: keep-alive\r\n\r\n",
        ),
        // The differences, by design.
        differ(
            "chunked body",
            "POST /api/clients HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            Refused(411),
            Parsed,
            "no chunked decoding: a body has a declared length, checked against the route's limit before it is read",
        ),
        differ(
            "Transfer-Encoding beside Content-Length",
            "POST /api/clients HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            Refused(411),
            Parsed,
            "the request-smuggling shape: refused outright rather than one header ignored",
        ),
        differ(
            "head one byte over MAX_HEAD",
            head_of_len(MAX_HEAD + 1),
            Refused(431),
            Parsed,
            "the head is capped at MAX_HEAD (tiny_http reads any length)",
        ),
        differ(
            "MAX_HEADERS + 1 headers",
            with_headers(MAX_HEADERS + 1),
            Refused(431),
            Parsed,
            "at most MAX_HEADERS header lines (tiny_http keeps any number)",
        ),
        differ(
            "two different Content-Length",
            "POST /api/clients HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            Refused(400),
            Parsed,
            "ambiguous length refused (tiny_http takes the first)",
        ),
        differ(
            "Content-Length not a number",
            "POST /api/clients HTTP/1.1\r\nContent-Length: ten\r\n\r\n",
            Refused(400),
            Parsed,
            "a bad length is an error, not 'no body'",
        ),
        differ(
            "Content-Length with a sign",
            "POST /api/session HTTP/1.1\r\nContent-Length: +4\r\n\r\nabcd",
            Refused(400),
            Parsed,
            "digits only (Rust's integer parse takes '+4')",
        ),
        differ(
            "method in lower case",
            "get / HTTP/1.1\r\n\r\n",
            Refused(400),
            Parsed,
            "methods are case-sensitive tokens; ours must be capitals",
        ),
        differ(
            "asterisk target",
            "OPTIONS * HTTP/1.1\r\n\r\n",
            Refused(400),
            Parsed,
            "only origin-form targets ('/…'): the API has no server-wide OPTIONS",
        ),
        differ(
            "absolute-form target",
            "GET http://r/api/status HTTP/1.1\r\n\r\n",
            Refused(400),
            Parsed,
            "only origin-form targets: we are not a proxy",
        ),
        differ(
            "DEL in the target",
            "GET /a\x7fb HTTP/1.1\r\n\r\n",
            Refused(400),
            Parsed,
            "targets are visible ASCII only",
        ),
        differ(
            "trailing space after the version",
            "GET / HTTP/1.1 \r\n\r\n",
            Refused(400),
            Parsed,
            "exactly three words, one space apart (tiny_http trims the line)",
        ),
        differ(
            "HTTP/0.9",
            "GET / HTTP/0.9\r\n\r\n",
            Refused(400),
            Parsed,
            "only HTTP/1.0 and HTTP/1.1",
        ),
        differ(
            "HTTP/2.0 in an HTTP/1 request line",
            "GET / HTTP/2.0\r\n\r\n",
            Refused(400),
            Hung,
            "tiny_http 0.12 neither answers (505) nor closes: the connection stays open until the client leaves",
        ),
        differ(
            "header name not a token",
            "GET / HTTP/1.1\r\nX(y): z\r\n\r\n",
            Refused(400),
            Parsed,
            "header names are tokens (RFC 9110)",
        ),
        differ(
            "control character in a value",
            "GET / HTTP/1.1\r\nX-A: a\x01b\r\n\r\n",
            Refused(400),
            Parsed,
            "no control characters but tab in values",
        ),
        differ(
            "UTF-8 in a value",
            "GET / HTTP/1.1\r\nX-Name: caf\u{e9}\r\n\r\n",
            Parsed,
            Closed,
            "UTF-8 is read (client names); tiny_http drops a non-ASCII line without an answer",
        ),
        differ(
            "Latin-1 in a value",
            b"GET / HTTP/1.1\r\nX-Name: caf\xe9\r\n\r\n".to_vec(),
            Refused(400),
            Closed,
            "not UTF-8 is a 400 that says so; tiny_http closes silently",
        ),
        differ(
            "bare LF line ends",
            "GET /api/status HTTP/1.1\nHost: r\n\n",
            Parsed,
            Closed,
            "LF alone ends a line for us (RFC 9112 allows it); tiny_http waits for CRLF until EOF",
        ),
        differ(
            "head never ends",
            "GET / HTTP/1.1\r\nHost: r\r\n",
            Incomplete,
            Closed,
            "we wait (HEAD_TIMEOUT in server.rs); tiny_http gives up at EOF",
        ),
        differ(
            "Expect other than 100-continue",
            "GET / HTTP/1.1\r\nExpect: something\r\n\r\n",
            Parsed,
            Refused(417),
            "an unknown expectation is ignored (RFC 9110 allows either)",
        ),
    ];
    // A body larger than tiny_http's eager buffer (1 KiB) is read lazily by it:
    // both paths must give the same bytes.
    let big = "x".repeat(4000);
    cases.push(same(
        "POST with a 4000-byte body",
        format!("POST /api/clients/import HTTP/1.1\r\nContent-Length: 4000\r\n\r\n{big}"),
    ));
    cases
}

fn ours(raw: &[u8]) -> Outcome {
    match http::parse_head(raw) {
        Ok(Some(head)) => {
            let declared = usize::try_from(head.content_length).expect("length fits usize");
            let body = raw[head.len..].iter().take(declared).copied().collect();
            Outcome::Parsed(Parsed {
                method: head.method.to_string(),
                target: head.target,
                headers: head.headers,
                body,
            })
        }
        Ok(None) => Outcome::Incomplete,
        Err(e) => Outcome::Refused(e.status()),
    }
}

/// Sends `raw` to tiny_http and returns every request it parsed from it, then
/// its refusal if it sent one, or `[Closed]` / `[Hung]` when it did neither
/// (closed the connection / by the deadline).
fn theirs(server: &tiny_http::Server, addr: SocketAddr, raw: &[u8]) -> Vec<Outcome> {
    let mut client =
        TcpStream::connect_timeout(&addr, CASE_DEADLINE).expect("connect to tiny_http");
    client.set_write_timeout(Some(CASE_DEADLINE)).unwrap();
    client.set_read_timeout(Some(POLL)).unwrap();
    client.write_all(raw).expect("send the case");
    // EOF after the case: tiny_http stops reading where the bytes stop.
    client.shutdown(Shutdown::Write).unwrap();

    let deadline = Instant::now() + CASE_DEADLINE;
    let mut parsed = Vec::new();
    let mut answers = Vec::new();
    let mut buf = [0u8; 4096];
    let mut hung = false;
    loop {
        if Instant::now() >= deadline {
            hung = true;
            break;
        }
        if let Some(mut rq) = server.recv_timeout(POLL).expect("tiny_http recv") {
            let mut body = Vec::new();
            rq.as_reader()
                .take(MAX_BODY as u64)
                .read_to_end(&mut body)
                .expect("tiny_http body");
            parsed.push(Outcome::Parsed(Parsed {
                method: rq.method().to_string(),
                target: rq.url().to_string(),
                headers: rq
                    .headers()
                    .iter()
                    .map(|h| (h.field.to_string(), h.value.to_string()))
                    .collect(),
                body,
            }));
            rq.respond(tiny_http::Response::empty(ORACLE_ANSWER)).ok();
            continue;
        }
        match client.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answers.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break, // reset: no more answers
        }
    }
    // Status lines of everything it answered: ours to its parses (204), its
    // go-ahead for a body (100), and a refusal.
    let text = String::from_utf8_lossy(&answers);
    let refusals = text
        .split("\r\n")
        .filter_map(|l| l.strip_prefix("HTTP/1.")?.get(2..5)?.parse::<u16>().ok())
        .filter(|s| *s != ORACLE_ANSWER && *s != 100)
        .map(Outcome::Refused);
    parsed.extend(refusals);
    if parsed.is_empty() {
        parsed.push(if hung { Outcome::Hung } else { Outcome::Closed });
    }
    parsed
}

fn oracle() -> (tiny_http::Server, SocketAddr) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind tiny_http on loopback");
    let addr = server.server_addr().to_ip().expect("an IP address");
    (server, addr)
}

#[test]
fn tiny_http_agrees_with_our_head_parser_or_the_difference_is_by_design() {
    let (server, addr) = oracle();
    let started = Instant::now();
    let mut failures = Vec::new();
    for case in corpus() {
        let ours = ours(&case.raw);
        let theirs = theirs(&server, addr, &case.raw);
        let first = theirs[0].clone();
        match case.expect {
            Expect::Same => {
                if ours != first {
                    failures.push(format!(
                        "{}: expected the same outcome\n  ours:   {ours:?}\n  theirs: {first:?}",
                        case.name
                    ));
                }
                if let Outcome::Parsed(p) = &ours {
                    check_header_lookups(case.name, &case.raw, p, &mut failures);
                }
            }
            Expect::Differ {
                ours: want_ours,
                theirs: want_theirs,
                why,
            } => {
                if ours.kind() != want_ours || first.kind() != want_theirs {
                    failures.push(format!(
                        "{}: the documented difference ({why}) changed\n  ours:   {ours:?} (documented {want_ours:?})\n  theirs: {first:?} (documented {want_theirs:?})",
                        case.name
                    ));
                } else if ours == first {
                    failures.push(format!(
                        "{}: documented as a difference ({why}) but both now give {ours:?}",
                        case.name
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!(
        "oracle corpus: {} cases in {:?}",
        corpus().len(),
        started.elapsed()
    );
}

/// The lookups the API makes (`Head::header`, first match, any case) give what
/// tiny_http's first header of that name holds.
fn check_header_lookups(name: &str, raw: &[u8], theirs: &Parsed, failures: &mut Vec<String>) {
    let head = http::parse_head(raw).unwrap().unwrap();
    for wanted in [
        "authorization",
        "Cookie",
        "ORIGIN",
        "Referer",
        "Host",
        "If-Match",
        "Content-Length",
        "Expect",
        "Connection",
    ] {
        let from_them = theirs
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(wanted))
            .map(|(_, v)| v.as_str());
        if head.header(wanted) != from_them {
            failures.push(format!(
                "{name}: header {wanted}: ours {:?}, theirs {from_them:?}",
                head.header(wanted)
            ));
        }
    }
    // The router splits the target in path and query; split theirs the same way.
    let (path, query) = theirs
        .target
        .split_once('?')
        .unwrap_or((&theirs.target, ""));
    if (head.path(), head.query()) != (path, query) {
        failures.push(format!(
            "{name}: path/query ours {:?} {:?}, theirs {path:?} {query:?}",
            head.path(),
            head.query()
        ));
    }
}

/// Pipelining: tiny_http serves every request on a keep-alive connection; we
/// read one request per connection (server.rs) and the parse stops at its end.
#[test]
fn pipelined_requests_are_served_by_them_not_us() {
    let (server, addr) = oracle();
    let first = "GET /api/a HTTP/1.1\r\nConnection: keep-alive\r\n\r\n";
    let raw = format!("{first}GET /api/b?x=1 HTTP/1.1\r\nConnection: close\r\n\r\n");
    let theirs = theirs(&server, addr, raw.as_bytes());
    let targets: Vec<_> = theirs
        .iter()
        .map(|o| match o {
            Outcome::Parsed(p) => p.target.as_str(),
            other => panic!("tiny_http: {other:?}"),
        })
        .collect();
    assert_eq!(targets, ["/api/a", "/api/b?x=1"]);
    let head = http::parse_head(raw.as_bytes()).unwrap().unwrap();
    assert_eq!(head.target, "/api/a");
    assert_eq!(
        head.len,
        first.len(),
        "our parse ends with the first request"
    );
    assert_eq!(ours(raw.as_bytes()), theirs[0]);
}
