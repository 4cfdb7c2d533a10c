//! The CLI's side of the API: tell a running daemon that the config changed,
//! or apply the change here when no daemon runs.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use crate::{
    api::auth,
    config::Config,
    engine::apply::{LiveInputs, apply_now},
};

#[derive(Debug)]
pub enum NotifyError {
    /// Nothing listens (or no token exists): no daemon runs.
    NoDaemon,
    Failed(String),
}

/// The address to reach the API at: a wildcard listen address means loopback.
pub fn connect_addr(config: &Config) -> Option<SocketAddr> {
    let mut addr: SocketAddr = config.server.api_listen_or_default().parse().ok()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Some(addr)
}

/// One request over a fresh connection; returns (status, body).
pub fn request(
    addr: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply)?;
    let text = String::from_utf8_lossy(&reply);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// `POST /api/reload` to the daemon of this config.
pub fn notify_reload(config: &Config) -> Result<(), NotifyError> {
    let Some(addr) = connect_addr(config) else {
        return Err(NotifyError::NoDaemon);
    };
    let Ok(token) = auth::read_token(&auth::token_path()) else {
        return Err(NotifyError::NoDaemon);
    };
    match request(addr, &token, "POST", "/api/reload", b"") {
        Ok((200..=299, _)) => Ok(()),
        Ok((status, body)) => Err(NotifyError::Failed(format!(
            "HTTP {status}: {}",
            body.trim()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(NotifyError::NoDaemon),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(NotifyError::NoDaemon),
        Err(e) => Err(NotifyError::Failed(e.to_string())),
    }
}

/// After the CLI wrote the config: a running daemon is told to re-apply
/// (through its API); without one, the engine applies the change here when
/// wgsplit's server interface is up (peers are reconciled one by one, so the
/// other clients' sessions are untouched); otherwise it waits for `wgsplit apply`.
pub fn after_write(_path: &std::path::Path, config: &Config) -> Result<(), String> {
    match notify_reload(config) {
        Ok(()) => {
            eprintln!("the running daemon applies the change");
            return Ok(());
        }
        Err(NotifyError::Failed(e)) => {
            return Err(format!(
                "config written, but the daemon did not apply it: {e}"
            ));
        }
        Err(NotifyError::NoDaemon) => {}
    }
    let ifname = config.server.interface_or_default();
    if crate::sys::wg::peers::device_peers(ifname, config.server.backend.unwrap_or_default())
        .is_err()
    {
        eprintln!("{ifname} is not up: 'wgsplit apply' (or the daemon) brings the kernel in line");
        return Ok(());
    }
    // Upstream health as the daemon last recorded it: down upstreams follow on_down.
    let live = LiveInputs {
        health: crate::health::read_state()
            .map(|h| crate::health::monitor::to_planner(&h))
            .unwrap_or_default(),
        ..LiveInputs::default()
    };
    let report = apply_now(config, live)?;
    eprintln!(
        "applied: {} changes in {:.1} ms",
        report.ops.len(),
        report.millis
    );
    Ok(())
}
