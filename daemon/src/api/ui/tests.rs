//! The pages' listener over real sockets on loopback: assets (gzip or not),
//! first-run setup, login and its limit, the cookie on the API, other origins.

use std::{
    io::{Read, Write},
    net::TcpStream,
};

use super::*;
use crate::config::store::Store;

/// CRC-32 (IEEE), bit by bit: only to check the gzip trailers below.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn gzip_assets_are_current() {
    assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    for a in &ASSETS {
        let g = a.gzip;
        let raw = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("ui")
                .join(if a.path == "/" {
                    "index.html"
                } else {
                    &a.path[1..]
                }),
        )
        .unwrap();
        // gzip, deflate, and no file name or time inside (reproducible: `gzip -9n`).
        assert_eq!(&g[..3], &[0x1f, 0x8b, 8], "{}", a.path);
        assert_eq!(g[3] & 0x08, 0, "{}: a file name is stored", a.path);
        assert_eq!(&g[4..8], &[0, 0, 0, 0], "{}: a time is stored", a.path);
        // The trailer: CRC-32 and length of the text it was made from. A
        // stale .gz (the text edited, compress.sh not run) fails here.
        let n = g.len();
        let crc = u32::from_le_bytes(g[n - 8..n - 4].try_into().unwrap());
        let len = u32::from_le_bytes(g[n - 4..].try_into().unwrap());
        assert_eq!(
            len as usize,
            raw.len(),
            "{}: run daemon/ui/compress.sh",
            a.path
        );
        assert_eq!(crc, crc32(&raw), "{}: run daemon/ui/compress.sh", a.path);
        assert!(g.len() < raw.len(), "{}", a.path);
    }
}

#[test]
fn only_local_hosts_may_set_up() {
    for ok in [
        "192.168.1.1:8080",
        "192.168.1.1",
        "[fe80::1]:8080",
        "[::1]",
        "localhost:8080",
        "router:8080",
        "OpenWrt.LAN",
        "router.lan.:80",
        "gw.home.arpa",
    ] {
        assert!(local_host(ok), "{ok}");
    }
    for bad in [
        "evil.example:8080",
        "evil.example",
        "lan.evil.example",
        "evil-lan:x:80",
        "[not-ip]:80",
        "",
        ":8080",
        "1.2.3.4.nip.io",
    ] {
        assert!(!local_host(bad), "{bad}");
    }
}

struct Fixture {
    dir: PathBuf,
    handle: Handle,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fixture(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("wsui-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("wgsplit");
    // An interface that exists nowhere: the peers read nothing.
    let text = include_str!("../../../../examples/wgsplit.conf")
        .replace("option interface 'wg0'", "option interface 'wsui-none0'");
    std::fs::write(&config, text).unwrap();
    let api = Arc::new(Api::new(
        Arc::new(Store::new(&config)),
        "t".repeat(64),
        super::super::Hooks::default(),
    ));
    let mut ui = Ui::new(api, dir.join("secret/ui.password"));
    ui.iterations = password::MIN_ITERATIONS;
    let server = server::Server::start("127.0.0.1:0".parse().unwrap(), Arc::new(ui)).unwrap();
    Fixture {
        dir,
        handle: Handle {
            addr: server.addr,
            server,
        },
    }
}

/// One request; the answer's status, head and body.
fn ask(
    f: &Fixture,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(f.handle.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| *k == "Host") {
        req.push_str(&format!("Host: {}\r\n", f.handle.addr));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&out[..end]).to_string();
    let status = head[9..12].parse().unwrap();
    (status, head, out[end..].to_vec())
}

fn cookie_of(head: &str) -> String {
    let line = head
        .lines()
        .find(|l| l.starts_with("Set-Cookie: "))
        .unwrap_or_else(|| panic!("no cookie in {head}"));
    line["Set-Cookie: ".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn the_pages_setup_login_and_origins() {
    let f = fixture("flow");
    let origin = format!("http://{}", f.handle.addr);
    let json = ("Content-Type", "application/json");
    let same = ("Origin", origin.as_str());
    let other = ("Origin", "http://evil.example");

    // The page, gzipped (the only form embedded), with its policy.
    let (s, head, body) = ask(&f, "GET", "/", &[("Accept-Encoding", "gzip")], "");
    assert_eq!(s, 200);
    assert!(head.contains("Content-Encoding: gzip"), "{head}");
    assert!(
        head.contains("Content-Security-Policy: default-src 'none'"),
        "{head}"
    );
    assert_eq!(body, ASSETS[0].gzip);
    let (s, head, body) = ask(&f, "GET", "/ui.js", &[], "");
    assert_eq!(s, 200);
    assert!(head.contains("Content-Encoding: gzip"), "{head}");
    assert_eq!(body, ASSETS[1].gzip);

    // First run: setup is due; nothing else works without a login.
    let (_, _, body) = ask(&f, "GET", "/api/ui/state", &[], "");
    assert!(String::from_utf8_lossy(&body).contains("\"setup_needed\": true"));
    assert_eq!(ask(&f, "GET", "/api/clients", &[], "").0, 401);
    assert_eq!(
        ask(
            &f,
            "POST",
            "/api/ui/login",
            &[json, same],
            r#"{"password":"whatever1"}"#
        )
        .0,
        409
    );
    // Setup from another origin, without an origin, or as a form: refused.
    let pw = r#"{"password":"s3cret-pass"}"#;
    assert_eq!(ask(&f, "POST", "/api/ui/setup", &[json, other], pw).0, 403);
    assert_eq!(ask(&f, "POST", "/api/ui/setup", &[json], pw).0, 403);
    // A DNS-rebinding page: same origin to the browser, but a public name.
    let rebound = ask(
        &f,
        "POST",
        "/api/ui/setup",
        &[
            json,
            ("Host", "evil.example:80"),
            ("Origin", "http://evil.example:80"),
        ],
        pw,
    );
    assert_eq!(rebound.0, 403, "{}", rebound.1);
    assert_eq!(
        ask(
            &f,
            "POST",
            "/api/ui/setup",
            &[("Content-Type", "text/plain"), same],
            pw
        )
        .0,
        415
    );
    // Too short: 400 naming the field.
    let (s, _, body) = ask(
        &f,
        "POST",
        "/api/ui/setup",
        &[json, same],
        r#"{"password":"short"}"#,
    );
    assert_eq!(s, 400);
    assert!(String::from_utf8_lossy(&body).contains("\"field\": \"password\""));
    // The setup: a session cookie, HttpOnly and SameSite=Strict; once only.
    let (s, head, _) = ask(&f, "POST", "/api/ui/setup", &[json, same], pw);
    assert_eq!(s, 200, "{head}");
    assert!(head.contains("HttpOnly; SameSite=Strict"), "{head}");
    assert!(!head.contains("Secure"), "{head}");
    let stored = std::fs::read_to_string(f.dir.join("secret/ui.password")).unwrap();
    assert!(!stored.contains("s3cret-pass") && stored.starts_with("pbkdf2-sha256$"));
    assert_eq!(
        ask(
            &f,
            "POST",
            "/api/ui/setup",
            &[json, same],
            r#"{"password":"takeover!!"}"#
        )
        .0,
        409
    );

    // Log in: wrong is 401, right gives a cookie (Secure behind a TLS proxy).
    assert_eq!(
        ask(
            &f,
            "POST",
            "/api/ui/login",
            &[json, same],
            r#"{"password":"wrong-pass"}"#
        )
        .0,
        401
    );
    let (s, head, _) = ask(
        &f,
        "POST",
        "/api/ui/login",
        &[json, same, ("X-Forwarded-Proto", "https")],
        pw,
    );
    assert_eq!(s, 200);
    assert!(head.contains("; Secure"), "{head}");
    let cookie = cookie_of(&head);
    let with = ("Cookie", cookie.as_str());

    // The cookie reads the API; writes only from this origin.
    assert_eq!(ask(&f, "GET", "/api/clients", &[with], "").0, 200);
    let add = r#"{"name":"eve","upstream":"us1"}"#;
    assert_eq!(
        ask(&f, "POST", "/api/clients", &[with, json, other], add).0,
        403
    );
    assert_eq!(ask(&f, "POST", "/api/clients", &[with, json], add).0, 403);
    assert_eq!(
        ask(&f, "POST", "/api/clients", &[with, json, same], add).0,
        201
    );
    // A one-time link: made by a write (same origin only), used once
    // without any credential, then 404; a made-up id is 404 too.
    assert_eq!(
        ask(&f, "POST", "/api/clients/eve/link", &[with, other], "").0,
        403
    );
    let (s, _, body) = ask(&f, "POST", "/api/clients/eve/link", &[with, same], "");
    assert_eq!(s, 201);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let link = v["path"].as_str().unwrap().to_string();
    assert!(
        link.starts_with("/api/dl/") && link.len() == 8 + 64,
        "{link}"
    );
    let (s, head, body) = ask(&f, "GET", &link, &[], "");
    assert_eq!(s, 200, "{head}");
    assert!(head.contains("filename=\"eve.conf\""), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("[Interface]"));
    assert_eq!(ask(&f, "GET", &link, &[], "").0, 404);
    assert_eq!(
        ask(&f, "GET", &format!("/api/dl/{}", "0".repeat(64)), &[], "").0,
        404
    );
    assert_eq!(
        ask(&f, "POST", "/api/clients/nobody/link", &[with, same], "").0,
        404
    );

    // Log out: the cookie stops working.
    assert_eq!(ask(&f, "DELETE", "/api/session", &[with], "").0, 200);
    assert_eq!(ask(&f, "GET", "/api/clients", &[with], "").0, 401);

    // The limit: one wrong login went before; after the rest, even the right
    // password waits, and is told how long.
    for _ in 1..password::MAX_LOGIN_ATTEMPTS {
        assert_eq!(
            ask(
                &f,
                "POST",
                "/api/ui/login",
                &[json, same],
                r#"{"password":"guess-guess"}"#
            )
            .0,
            401
        );
    }
    let (s, head, _) = ask(&f, "POST", "/api/ui/login", &[json, same], pw);
    assert_eq!(s, 429, "{head}");
    assert!(head.contains("Retry-After: "), "{head}");
}

#[test]
fn ui_listen_is_validated() {
    let base = include_str!("../../../../examples/wgsplit.conf");
    let with = |v: &str| {
        base.replacen(
            "config server 'server'\n",
            &format!("config server 'server'\n\toption ui_listen '{v}'\n"),
            1,
        )
    };
    assert!(crate::config::parse_valid(&with("0.0.0.0:8080")).is_ok());
    let e = crate::config::parse_valid(&with("lan:80"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ui_listen") && e.contains("not address:port"),
        "{e}"
    );
    let e = crate::config::parse_valid(&with("127.0.0.1:8274"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("ui_listen") && e.contains("api_listen"), "{e}");
    // Written back as it was read.
    let c = crate::config::parse_valid(&with("[::]:8080")).unwrap();
    assert_eq!(c.server.ui_listen.as_deref(), Some("[::]:8080"));
    assert!(crate::config::to_uci(&c).contains("option ui_listen '[::]:8080'"));
}

#[test]
fn the_api_listener_serves_no_pages() {
    let mut f = fixture("apionly");
    let api = Arc::new(Api::new(
        Arc::new(Store::new(&f.dir.join("wgsplit"))),
        "t".repeat(64),
        super::super::Hooks::default(),
    ));
    let server =
        server::Server::start("127.0.0.1:0".parse().unwrap(), Arc::new(Ui::api_only(api))).unwrap();
    f.handle = Handle {
        addr: server.addr,
        server,
    };
    // Whether the setup is due is public on both listeners.
    assert_eq!(ask(&f, "GET", "/api/ui/state", &[], "").0, 200);
    for path in ["/", "/ui.js", "/api/ui/setup"] {
        let (s, head, _) = ask(&f, "GET", path, &[], "");
        assert_eq!(s, 401, "{path}: {head}");
        assert!(!head.contains("Content-Security-Policy"), "{head}");
    }
    let auth = format!("Bearer {}", "t".repeat(64));
    assert_eq!(
        ask(&f, "GET", "/api/clients", &[("Authorization", &auth)], "").0,
        200
    );
}
