//! A WireGuard interface's peers as the rest of wgsplit reads them: by base64
//! key, online or not, with counters (the CLI's tables, the API, health).

use std::{
    collections::HashMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::{config::Backend, util::keys};

/// A peer is online when its last handshake is this recent (WireGuard
/// re-handshakes every 2 minutes while traffic flows; 180 s is REJECT_AFTER_TIME).
pub const ONLINE_SECS: u64 = 180;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerInfo {
    pub online: bool,
    pub handshake_age: Option<u64>,
    pub rx: u64,
    pub tx: u64,
    pub endpoint: Option<String>,
}

/// Seconds since the last handshake. The kernel reports a timestamp;
/// boringtun's UAPI reports the age itself, which `sys::wg` hands on as a
/// time since the epoch.
pub fn handshake_age(t: Option<SystemTime>, userspace: bool) -> Option<u64> {
    let t = t?;
    let since_epoch = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
    if userspace {
        Some(since_epoch)
    } else {
        Some(
            SystemTime::now()
                .duration_since(t)
                .unwrap_or(Duration::ZERO)
                .as_secs(),
        )
    }
}

/// Reads every peer of a WireGuard interface.
pub fn device_peers(ifname: &str, backend: Backend) -> Result<HashMap<String, PeerInfo>, String> {
    let dev = super::device(ifname, backend)?;
    let userspace = backend == Backend::Userspace;
    Ok(dev
        .peers
        .into_iter()
        .map(|p| {
            let age = handshake_age(p.last_handshake, userspace);
            (
                keys::encode(&p.public_key),
                PeerInfo {
                    online: age.is_some_and(|a| a <= ONLINE_SECS),
                    handshake_age: age,
                    rx: p.rx_bytes,
                    tx: p.tx_bytes,
                    endpoint: p.endpoint.map(|e| e.to_string()),
                },
            )
        })
        .collect())
}
