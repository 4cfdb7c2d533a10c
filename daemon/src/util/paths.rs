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

/// `$WGSPLIT_API_TOKEN_FILE`, else /etc/wgsplit/api.token.
pub fn api_token() -> PathBuf {
    var_path("WGSPLIT_API_TOKEN_FILE", DEFAULT_TOKEN)
}

/// Where the daemon keeps runtime state (a tmpfs on routers): health, traffic history.
pub fn run_dir() -> PathBuf {
    var_path("WGSPLIT_RUN_DIR", "/var/run/wgsplit")
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

/// How often the health monitor looks (`$WGSPLIT_HEALTH_EVERY`, seconds; 5).
pub fn health_every() -> Duration {
    var_secs("WGSPLIT_HEALTH_EVERY", Duration::from_secs(5))
}

/// How often the traffic collector samples (`$WGSPLIT_STATS_EVERY`, seconds; 30).
pub fn stats_every() -> Duration {
    var_secs("WGSPLIT_STATS_EVERY", Duration::from_secs(30))
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
