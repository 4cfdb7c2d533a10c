//! What the kernel and the running daemon say about clients and upstreams:
//! per-peer counters (`sys::wg::device`), health as the daemon
//! last wrote it, and the hand-off of a config change to the daemon.

use std::collections::HashMap;

use serde_json::{Value, json};

pub use crate::sys::wg::peers::{ONLINE_SECS, PeerInfo, device_peers, handshake_age};
use crate::{
    config::{Backend, Client, Config, Upstream, types::parse_key},
    health,
    util::keys,
};

#[derive(Debug, Clone, Default)]
pub struct PeerStats {
    /// Could the server interface be read at all?
    pub available: bool,
    pub note: String,
    /// By base64 public key.
    pub peers: HashMap<String, PeerInfo>,
}

pub fn wg_backend(config: &Config) -> Backend {
    config.server.backend.unwrap_or_default()
}

pub fn peer_stats(config: &Config) -> PeerStats {
    let ifname = config.server.interface_or_default();
    match device_peers(ifname, wg_backend(config)) {
        Ok(peers) => PeerStats {
            available: true,
            note: String::new(),
            peers,
        },
        Err(e) => PeerStats {
            available: false,
            note: format!("no live data: {e}"),
            peers: HashMap::new(),
        },
    }
}

/// The client's public key, given or derived from its private key. Derived
/// keys are remembered: a status page over a thousand clients would otherwise
/// spend a scalar multiplication on each, every time.
pub fn client_public_key(c: &Client) -> Option<String> {
    static DERIVED: std::sync::OnceLock<std::sync::Mutex<HashMap<String, String>>> =
        std::sync::OnceLock::new();
    match (&c.public_key, &c.private_key) {
        (Some(k), _) => Some(k.clone()),
        (None, Some(k)) => {
            let memo = DERIVED.get_or_init(Default::default);
            if let Some(p) = memo.lock().unwrap_or_else(|e| e.into_inner()).get(k) {
                return Some(p.clone());
            }
            let public = parse_key(k)
                .ok()
                .map(|k| keys::encode(&keys::public_from_private(&k)))?;
            let mut m = memo.lock().unwrap_or_else(|e| e.into_inner());
            if m.len() > 100_000 {
                m.clear();
            }
            m.insert(k.clone(), public.clone());
            Some(public)
        }
        _ => None,
    }
}

pub fn client_peer<'a>(_config: &Config, c: &Client, stats: &'a PeerStats) -> Option<&'a PeerInfo> {
    client_public_key(c).and_then(|k| stats.peers.get(&k))
}

/// `enabled`, `disabled` or `expired`, as the policy sees it now.
pub fn client_state(c: &Client, now: i64) -> &'static str {
    if crate::policy::client_expired(c, now) {
        "expired"
    } else if !c.enabled_or_default() {
        "disabled"
    } else {
        "enabled"
    }
}

/// A client as the CLI's `--json` and the API show it: the config fields
/// without the private key, its state and its live peer data.
pub fn client_json(config: &Config, c: &Client, stats: &PeerStats) -> Value {
    let mut v = serde_json::to_value(c).expect("the model always serialises");
    let obj = v.as_object_mut().expect("a client is an object");
    obj.remove("private_key");
    if obj.remove("preshared_key").is_some() {
        obj.insert("psk".into(), json!(true));
    }
    obj.insert("public_key".into(), json!(client_public_key(c)));
    obj.insert(
        "state".into(),
        json!(client_state(c, crate::util::time::now_unix())),
    );
    obj.insert("has_config".into(), json!(c.private_key.is_some()));
    let peer = client_peer(config, c, stats);
    obj.insert(
        "peer".into(),
        match peer {
            Some(p) => json!({
                "online": p.online,
                "handshake_age": p.handshake_age,
                "rx": p.rx,
                "tx": p.tx,
                "endpoint": p.endpoint,
            }),
            None => Value::Null,
        },
    );
    v
}

/// Upstream health as the daemon last recorded it (empty when no daemon runs).
pub fn upstream_health(_config: &Config) -> HashMap<String, health::UpstreamHealth> {
    health::read_state().unwrap_or_default()
}

pub fn upstream_json(u: &Upstream, health: &HashMap<String, health::UpstreamHealth>) -> Value {
    let mut v = serde_json::to_value(u).expect("the model always serialises");
    let obj = v.as_object_mut().expect("an upstream is an object");
    obj.remove("private_key");
    if obj.remove("preshared_key").is_some() {
        obj.insert("psk".into(), json!(true));
    }
    obj.insert("interface".into(), json!(u.interface_or_default()));
    obj.insert(
        "health".into(),
        health
            .get(&u.name)
            .map(|h| serde_json::to_value(h).unwrap_or(Value::Null))
            .unwrap_or(Value::Null),
    );
    v
}

/// What `explain` reads besides the config, for the CLI and the API alike:
/// upstream health (`health`: the daemon's record, or the monitor's own in
/// the daemon) and, for an address, the kernel's sets of the client's rules
/// that could hold it. A set the kernel cannot be asked about stays unread,
/// and explain says what it can't know.
pub fn explain_state(
    _config: &Config,
    policy: &crate::policy::Policy,
    client: &str,
    dest: &str,
    health: &HashMap<String, health::UpstreamHealth>,
) -> crate::explain::Live {
    let mut live = crate::explain::Live::default();
    for (name, h) in health {
        live.upstream_up
            .insert(name.clone(), h.state != health::State::Down);
    }
    let Ok(q) = crate::explain::parse_dest(dest) else {
        return live;
    };
    if let crate::explain::Dest::Addr(ip) = q.dest {
        for set in crate::explain::live::sets_to_read(policy, client, ip) {
            if let Ok(found) = crate::sys::nftget::element_of(&set, ip) {
                let hit = found.map(|f| crate::explain::SetHit {
                    element: f.element,
                    expires_in: f.expires_ms.map(|ms| ms / 1000),
                });
                live.sets.insert(set, hit);
            }
        }
    }
    live
}
