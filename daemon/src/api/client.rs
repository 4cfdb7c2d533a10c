//! The CLI's side of the API: tell a running daemon that the config changed.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use crate::config::Config;

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
    let Ok(token) = super::auth::read_token(&super::auth::token_path()) else {
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
