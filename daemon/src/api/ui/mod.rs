//! The built-in web pages, for routers without LuCI: a second listener
//! (`server.ui_listen`, off when unset) on the same bounded server, serving
//! three hand-written files embedded in the binary (`daemon/ui/`, embedded
//! and sent gzipped only) and, beside them, the whole REST API unchanged,
//! so the page's calls are same-origin and pass the API's own cookie and
//! origin checks.
//!
//! Added here, on this listener only: the first-run setup of an admin password
//! (`POST /api/ui/setup`, only while none is set), logging in with it
//! (`POST /api/ui/login`, rate-limited: [`password::MAX_LOGIN_ATTEMPTS`]) and
//! whether setup is due (`GET /api/ui/state`). A login makes the same session
//! the API's token login does; logging out is the API's `DELETE /api/session`.

pub mod password;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::json;

use super::{
    Api, Handle, auth,
    http::{self, Head, MAX_LOGIN_BODY, Method},
    reply::{Reply, parse_body},
    server::{self, Handler, Response},
};

/// One embedded file: its path, type and its gzip form only
/// (`daemon/ui/compress.sh` makes the `.gz`; a test checks it is current).
/// No plain copy is embedded: every browser takes gzip, and on a router's
/// flash the plain copies would cost as much again as the pages.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub gzip: &'static [u8],
}

pub const ASSETS: [Asset; 3] = [
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        gzip: include_bytes!("../../../ui/index.html.gz"),
    },
    Asset {
        path: "/ui.js",
        content_type: "text/javascript; charset=utf-8",
        gzip: include_bytes!("../../../ui/ui.js.gz"),
    },
    Asset {
        path: "/ui.css",
        content_type: "text/css; charset=utf-8",
        gzip: include_bytes!("../../../ui/ui.css.gz"),
    },
];

/// Only this origin's scripts, styles and images (the QR codes; `data:` for
/// the empty icon that keeps browsers from asking for /favicon.ico); no frames,
/// so no other page can overlay or frame the controls.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The pages' listener: the API plus the pages, the setup and the password login.
/// The API's own listener is one too, with `pages` off: the server is generic
/// over its handler, and one handler type means one copy of it in the binary.
pub struct Ui {
    api: Arc<Api>,
    pages: bool,
    password_path: PathBuf,
    /// PBKDF2 iterations of a new password ([`password::PBKDF2_ITERATIONS`];
    /// tests use the floor, so a debug build's setup stays quick).
    iterations: u32,
    limiter: password::LoginLimiter,
    /// Serve only hosts on the side of the interface holding the listen
    /// address (set by `start` for one non-loopback address; a wildcard
    /// serves everyone, as asked).
    same_side_only: bool,
}

pub enum Pass {
    Asset(&'static Asset),
    State,
    Setup,
    Login,
    /// An API route; `true` once it proved who sent it.
    Api(bool),
}

fn asset_for(method: &Method, path: &str) -> Option<&'static Asset> {
    if *method != Method::Get {
        return None;
    }
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

impl Ui {
    pub fn new(api: Arc<Api>, password_path: PathBuf) -> Self {
        Self {
            api,
            pages: true,
            password_path,
            iterations: password::PBKDF2_ITERATIONS,
            limiter: password::LoginLimiter::default(),
            same_side_only: false,
        }
    }

    /// The API alone, as `server.api_listen` serves it (and, harmless and
    /// documented, whether the pages' setup is due).
    pub fn api_only(api: Arc<Api>) -> Self {
        Self {
            pages: false,
            ..Self::new(api, crate::util::paths::ui_password())
        }
    }

    /// Always gzip (see [`Asset`]): a client that cannot inflate it (a bare
    /// `curl`) gets the bytes as they are, which `gunzip` reads.
    fn asset(asset: &Asset) -> Response {
        let headers = vec![
            ("Content-Type", asset.content_type.to_string()),
            // Revalidated on every load: the files change with the binary.
            ("Cache-Control", "no-cache".to_string()),
            ("Vary", "Accept-Encoding".to_string()),
            ("X-Content-Type-Options", "nosniff".to_string()),
            ("Content-Encoding", "gzip".to_string()),
        ];
        Response {
            status: 200,
            headers,
            body: asset.gzip.to_vec(),
        }
    }

    /// The file's path goes to the log, never into an answer.
    fn file_error(&self, e: &std::io::Error) -> Reply {
        crate::util::say(&format!(
            "UI password {}: {e}",
            self.password_path.display()
        ));
        Reply::error(
            500,
            "reading or writing the password file failed; the daemon's log says why",
        )
    }

    fn setup_needed(&self) -> Result<bool, Reply> {
        password::load(&self.password_path)
            .map(|p| p.is_none())
            .map_err(|e| self.file_error(&e))
    }

    /// `POST /api/ui/setup {"password": …}`: only while no password is set.
    fn setup(&self, head: &Head, body: &[u8]) -> Reply {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Setup {
            password: String,
        }
        let setup: Setup = match parse_body(body) {
            Ok(s) => s,
            Err(e) => return e.into_reply(),
        };
        match self.setup_needed() {
            Ok(true) => {}
            Ok(false) => return Reply::error(409, "the password is set already: log in"),
            Err(r) => return r,
        }
        if let Err(e) = password::check_new(&setup.password) {
            return Reply::json(
                400,
                json!({"error": e, "problems": [{"path": "password", "field": "password", "message": e}]}),
            );
        }
        let line = password::hash_line(&setup.password, self.iterations);
        match password::create(&self.password_path, &line) {
            Ok(()) => self.new_session(head),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Reply::error(409, "the password is set already: log in")
            }
            Err(e) => self.file_error(&e),
        }
    }

    /// `POST /api/ui/login {"password": …}`, at most
    /// [`password::MAX_LOGIN_ATTEMPTS`] a [`password::LOGIN_WINDOW`].
    fn login(&self, head: &Head, body: &[u8]) -> Reply {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Login {
            password: String,
        }
        let login: Login = match parse_body(body) {
            Ok(l) => l,
            Err(e) => return e.into_reply(),
        };
        let line = match password::load(&self.password_path) {
            Ok(Some(l)) => l,
            Ok(None) => return Reply::error(409, "no password is set yet: open the setup page"),
            Err(e) => return self.file_error(&e),
        };
        let source = head.peer.map(|p| p.ip());
        let ticket = match self.limiter.begin(source, Instant::now()) {
            Ok(t) => t,
            Err(wait) => {
                let secs = wait.as_secs().max(1);
                let mut r = Reply::error(
                    429,
                    format!(
                        "too many login attempts: at most {} a minute from one address, {} from all; retry in {secs} s",
                        password::MAX_LOGIN_ATTEMPTS,
                        password::MAX_LOGIN_ATTEMPTS_ALL
                    ),
                );
                r.headers.push(("Retry-After", secs.to_string()));
                return r;
            }
        };
        if login.password.len() > password::MAX_PASSWORD_BYTES
            || !password::verify(&line, &login.password)
        {
            return Reply::error(401, "wrong password");
        }
        self.limiter.forgive(ticket);
        self.new_session(head)
    }

    /// The API's session, as its token login makes it; `Secure` when a TLS
    /// proxy in front says the page was reached over https.
    fn new_session(&self, head: &Head) -> Reply {
        let id = self.api.sessions.create();
        let secure = head
            .header("X-Forwarded-Proto")
            .is_some_and(|p| p.eq_ignore_ascii_case("https"));
        let mut r = Reply::json(
            200,
            json!({"ok": true, "expires_in": auth::SESSION_TTL.as_secs()}),
        );
        r.headers.push((
            "Set-Cookie",
            format!(
                "wgsplit_session={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
                auth::SESSION_TTL.as_secs(),
                if secure { "; Secure" } else { "" }
            ),
        ));
        r
    }
}

/// Name suffixes that only the LAN's own resolver answers for.
pub const LOCAL_SUFFIXES: [&str; 5] = [".lan", ".local", ".home.arpa", ".internal", ".localhost"];

/// Whether `Host` names the router as only a local client would: an IP
/// literal, `localhost`, a name without dots, or one under [`LOCAL_SUFFIXES`].
/// A DNS-rebinding page (its own public name pointed at the router) passes
/// the same-origin check, since to the browser it *is* its own origin; it
/// cannot use such a name, so the first-run setup wants one.
pub fn local_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        return rest
            .split_once(']')
            .is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok());
    } else {
        match host.rsplit_once(':') {
            Some((n, port)) if port.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => host,
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && (name.parse::<std::net::Ipv4Addr>().is_ok()
            || name == "localhost"
            || !name.contains('.')
            || LOCAL_SUFFIXES.iter().any(|s| name.ends_with(s)))
}

fn with_page_headers(mut r: Response) -> Response {
    r.headers.push(("Content-Security-Policy", CSP.to_string()));
    r.headers.push(("X-Frame-Options", "DENY".to_string()));
    r.headers
        .push(("Referrer-Policy", "same-origin".to_string()));
    r
}

impl Handler for Ui {
    type Pass = Pass;

    fn before_body(&self, head: &Head) -> Result<(usize, Pass), Response> {
        let segs = http::segments(head.path());
        if head.method == Method::Get && segs == ["api", "ui", "state"] {
            return Ok((0, Pass::State));
        }
        if !self.pages {
            return Handler::before_body(&*self.api, head)
                .map(|(limit, proved)| (limit, Pass::Api(proved)));
        }
        if let Some(a) = asset_for(&head.method, head.path()) {
            return Ok((0, Pass::Asset(a)));
        }
        let own = match (&head.method, segs.as_slice()) {
            (Method::Post, ["api", "ui", "setup"]) => Pass::Setup,
            (Method::Post, ["api", "ui", "login"]) => Pass::Login,
            _ => {
                return Handler::before_body(&*self.api, head)
                    .map(|(limit, proved)| (limit, Pass::Api(proved)));
            }
        };
        // Unauthenticated writes that make a session: only from this origin's
        // own page (another site could otherwise set the first password, or
        // log a browser in), and only as JSON (no form can post that).
        if !http::same_origin(
            head.header("Origin"),
            head.header("Referer"),
            head.header("Host"),
        ) {
            return Err(Reply::error(
                403,
                "the setup and the login are accepted only from this page's own origin",
            )
            .into_response());
        }
        if matches!(own, Pass::Setup) && !head.header("Host").is_some_and(local_host) {
            return Err(Reply::error(
                403,
                "the first-run setup is accepted only on the router's address or a local name (no dots, or .lan, .local, .home.arpa, .internal): open the page that way",
            )
            .into_response());
        }
        if !head
            .header("Content-Type")
            .is_some_and(|c| c.starts_with("application/json"))
        {
            return Err(
                Reply::error(415, "send the body as Content-Type: application/json")
                    .into_response(),
            );
        }
        Ok((MAX_LOGIN_BODY, own))
    }

    fn authorised(&self, pass: &Pass) -> bool {
        matches!(pass, Pass::Api(true))
    }

    fn respond(&self, head: &Head, pass: Pass, body: Vec<u8>) -> Response {
        let r = match pass {
            Pass::Asset(a) => Self::asset(a),
            Pass::State => match self.setup_needed() {
                Ok(needed) => Reply::json(200, json!({"setup_needed": needed})),
                Err(r) => r,
            }
            .into_response(),
            Pass::Setup => self.setup(head, &body).into_response(),
            Pass::Login => self.login(head, &body).into_response(),
            Pass::Api(proved) => Handler::respond(&*self.api, head, proved, body),
        };
        if self.pages { with_page_headers(r) } else { r }
    }

    fn record(&self, status: u16, elapsed: Duration) {
        Handler::record(&*self.api, status, elapsed);
    }

    fn note(&self, message: &str) {
        Handler::note(&*self.api, message);
    }

    fn admits(&self, peer: SocketAddr, local: SocketAddr) -> bool {
        !self.same_side_only || same_side(peer, local)
    }
}

/// The pages bound to one LAN address are still reached by a WAN neighbour
/// that routes that address to the router (the socket takes any interface's
/// packets): a host is served when the router's route back to it leaves by
/// the interface holding the address, or it is the router itself. A lookup
/// that fails refuses (the next connection asks again).
fn same_side(peer: SocketAddr, local: SocketAddr) -> bool {
    let unmap = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    };
    crate::sys::net::peer_on_side_of(unmap(peer.ip()), unmap(local.ip())).unwrap_or(false)
}

/// Starts the pages on `listen`, beside the API (sharing its sessions).
pub fn start(api: Arc<Api>, listen: SocketAddr) -> Result<Handle, String> {
    let mut ui = Ui::new(api, crate::util::paths::ui_password());
    ui.same_side_only = !listen.ip().is_unspecified() && !listen.ip().is_loopback();
    let ui = Arc::new(ui);
    let server =
        server::Server::start(listen, ui).map_err(|e| format!("server.ui_listen {listen}: {e}"))?;
    Ok(Handle {
        addr: server.addr,
        server,
    })
}

#[cfg(test)]
mod tests;
