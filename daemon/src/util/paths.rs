//! Every runtime path and every environment variable wgsplit reads, in one place:
//! the defaults are OpenWrt's, the variables let tests and benches move them.

use std::{path::PathBuf, time::Duration};

/// The UCI config file.
pub const DEFAULT_CONFIG: &str = "/etc/config/wgsplit";
/// The API's bearer token (created 0600 on the daemon's first start).
pub const DEFAULT_TOKEN: &str = "/etc/wgsplit/api.token";

fn var_path(name: &str, default: &str) -> PathBuf {
    std::env::var_os(name).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

fn var_secs(name: &str, default: Duration) -> Duration {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(default, Duration::from_secs_f64)
}

/// The config file: `--config`, else `$WGSPLIT_CONFIG`, else the UCI default.
pub fn config(flag: Option<PathBuf>) -> PathBuf {
    flag.unwrap_or_else(|| var_path("WGSPLIT_CONFIG", DEFAULT_CONFIG))
}

/// `$WGSPLIT_API_TOKEN_FILE`, else /etc/wgsplit/api.token; for a daemon in a
/// network namespace other than the host's, `api.token` in its own run folder
/// (two daemons on one host must not share a token).
pub fn api_token() -> PathBuf {
    if std::env::var_os("WGSPLIT_API_TOKEN_FILE").is_none()
        && let Some(ns) = other_netns()
    {
        return PathBuf::from(DEFAULT_RUN_DIR).join(ns).join("api.token");
    }
    var_path("WGSPLIT_API_TOKEN_FILE", DEFAULT_TOKEN)
}

/// The runtime folder of a daemon in the host's network namespace.
pub const DEFAULT_RUN_DIR: &str = "/var/run/wgsplit";

/// Where the daemon keeps runtime state (a tmpfs on routers): health, traffic
/// history. `$WGSPLIT_RUN_DIR`, else /var/run/wgsplit, or in a network namespace
/// other than the host's `/var/run/wgsplit/ns-<its inode>`: namespaces share
/// /var/run, and two daemons must not read each other's health.
pub fn run_dir() -> PathBuf {
    if std::env::var_os("WGSPLIT_RUN_DIR").is_none()
        && let Some(ns) = other_netns()
    {
        return PathBuf::from(DEFAULT_RUN_DIR).join(ns);
    }
    var_path("WGSPLIT_RUN_DIR", DEFAULT_RUN_DIR)
}

/// `ns-<inode>` of this process's network namespace when it is not the host's:
/// not pid 1's, or (where pid 1's cannot be read, as in a container) one of the
/// named namespaces `ip netns` keeps in /var/run/netns. `None` in the host's.
fn other_netns() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let mine = std::fs::metadata("/proc/self/ns/net").ok()?.ino();
    let other = match std::fs::metadata("/proc/1/ns/net") {
        Ok(host) => host.ino() != mine,
        Err(_) => std::fs::read_dir("/var/run/netns").is_ok_and(|d| {
            d.filter_map(Result::ok)
                .any(|e| std::fs::metadata(e.path()).is_ok_and(|m| m.ino() == mine))
        }),
    };
    other.then(|| format!("ns-{mine}"))
}

/// Where the engine records the set elements it wrote (a tmpfs: `/run`).
pub fn state_dir() -> PathBuf {
    var_path("WGSPLIT_STATE_DIR", "/run/wgsplit")
}

/// The `nft` program (`$WGSPLIT_NFT`).
pub fn nft_program() -> String {
    std::env::var("WGSPLIT_NFT").unwrap_or_else(|_| "nft".to_string())
}

/// `$WGSPLIT_NFT_ONLY`: every nft change through `nft -f` (benches compare paths).
pub fn nft_only() -> bool {
    std::env::var_os("WGSPLIT_NFT_ONLY").is_some()
}

/// The userspace WireGuard for hosts without the module (`$WG_USERSPACE_IMPLEMENTATION`,
/// the variable wireguard-tools uses too).
pub fn wg_userspace_program() -> String {
    std::env::var("WG_USERSPACE_IMPLEMENTATION").unwrap_or_else(|_| "boringtun-cli".to_string())
}

/// `$WGSPLIT_LEARNED_HOLD`: seconds a DNS-learned element lives after the last
/// new connection to it (0 or unset: the planner's default, plan/guard.rs).
pub fn learned_hold() -> u32 {
    std::env::var("WGSPLIT_LEARNED_HOLD")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// How often the health monitor looks (`$WGSPLIT_HEALTH_EVERY`, seconds; 5).
pub fn health_every() -> Duration {
    var_secs("WGSPLIT_HEALTH_EVERY", Duration::from_secs(5))
}

/// How often the traffic collector samples (`$WGSPLIT_STATS_EVERY`, seconds; 30).
pub fn stats_every() -> Duration {
    var_secs("WGSPLIT_STATS_EVERY", Duration::from_secs(30))
}

/// Longest a list download may take (`$WGSPLIT_DOWNLOAD_SECONDS`, for tests;
/// never more than `max`, the default).
pub fn download_time(max: Duration) -> Duration {
    var_secs("WGSPLIT_DOWNLOAD_SECONDS", max).min(max)
}

/// `$WGSPLIT_LIST_ROOTS`: the folders lists may live in, `:`-separated absolute
/// paths (tests; `None`: the defaults of `sources::confine`).
pub fn list_roots() -> Option<Vec<PathBuf>> {
    let v = std::env::var("WGSPLIT_LIST_ROOTS")
        .ok()
        .filter(|v| !v.is_empty())?;
    Some(
        v.split(':')
            .filter(|r| r.starts_with('/'))
            .map(PathBuf::from)
            .collect(),
    )
}

/// The log level asked for (`$WGSPLIT_LOG`).
pub fn log_level() -> Option<String> {
    std::env::var("WGSPLIT_LOG").ok()
}

/// The built-in pages' admin password hash (`api::ui`): `$WGSPLIT_UI_PASSWORD_FILE`,
/// else beside the API token; made 0600 by the first-run setup.
pub fn ui_password() -> PathBuf {
    var_path("WGSPLIT_UI_PASSWORD_FILE", "/etc/wgsplit/ui.password")
}
