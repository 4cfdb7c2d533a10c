//! Where list and GeoIP files may live, as `config check` sees it: the text of
//! a `path`, `dir`, `url` or `max_size`. The writes themselves (the folder
//! checked on disk, the download into a new file) are `sources::confine`'s.

use std::path::{Component, Path, PathBuf};

/// The state file `lists update` keeps in each list folder.
pub const LISTS_STATE_FILE: &str = "state.json";

/// wgsplit's folders: `/etc/wgsplit/lists` survives reboots and sysupgrade
/// (the package keeps `/etc/wgsplit/`), `/tmp/wgsplit` is tmpfs (the default
/// GeoIP `dir`, downloads that need not survive a reboot). `/etc/wgsplit`
/// itself is not one: it holds `api.token`.
pub const DEFAULT_ROOTS: [&str; 2] = ["/etc/wgsplit/lists", "/tmp/wgsplit"];
/// `file://` may also read from mounted storage (a USB stick under `/mnt`).
pub const EXTRA_SOURCE_ROOTS: [&str; 1] = ["/mnt"];
/// A download's size cap unless the source sets `max_size` (a DB-IP country
/// mmdb is ~8 MB, dlc.dat ~2.5 MB, Loyalsoldier's geoip.dat ~20 MB).
pub const DEFAULT_MAX_DOWNLOAD: u64 = 32 << 20;
/// The most `max_size` may allow: what a 128 MB router's tmpfs can spare.
pub const MAX_DOWNLOAD: u64 = 96 << 20;
/// Longest a download tool may run before it is killed.
pub const DOWNLOAD_SECONDS: u32 = 600;

/// wgsplit's folders: [`DEFAULT_ROOTS`], or `$WGSPLIT_LIST_ROOTS` (`util::paths`).
pub fn roots() -> Vec<PathBuf> {
    #[allow(unused_mut)]
    let mut roots: Vec<PathBuf> = crate::util::paths::list_roots()
        .unwrap_or_else(|| DEFAULT_ROOTS.iter().map(PathBuf::from).collect());
    // Unit tests write their files under the temp folder (threads of one
    // process cannot each set the variable).
    #[cfg(test)]
    roots.push(std::env::temp_dir());
    roots
}

fn roots_text(roots: &[PathBuf]) -> String {
    roots
        .iter()
        .map(|r| r.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The text check `config check` runs on a list `path`, GeoIP `path` or
/// `dir`: absolute, no `.`/`..`/empty parts, inside one of `roots`. A file
/// (`dir == false`) may not be a root itself nor use a name wgsplit keeps for
/// its own files there (`state.json`, `geo_*`, dot files).
pub fn check_path_in(text: &str, roots: &[PathBuf], dir: bool) -> Result<(), String> {
    if !text.starts_with('/') {
        return Err(format!("'{text}' is not an absolute path"));
    }
    let path = Path::new(text);
    let clean = text.len() < 4096
        && !text.contains('\0')
        && !text[1..]
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..");
    if !clean || path.components().any(|c| c == Component::ParentDir) {
        return Err(format!(
            "'{text}' must be a plain path (no '.', '..' or '//')"
        ));
    }
    let inside = roots
        .iter()
        .any(|r| path.starts_with(r) && (dir || path != r.as_path()));
    if !inside {
        return Err(format!(
            "'{text}' is outside wgsplit's folders ({})",
            roots_text(roots)
        ));
    }
    if !dir {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        if name == LISTS_STATE_FILE || name.starts_with("geo_") || name.starts_with('.') {
            return Err(format!(
                "'{text}': the name is one wgsplit keeps for its own files"
            ));
        }
    }
    Ok(())
}

/// [`check_path_in`] against [`roots`].
pub fn check_path(text: &str, dir: bool) -> Result<(), String> {
    check_path_in(text, &roots(), dir)
}

/// What `lists update` can fetch: http(s), and `file:///` from wgsplit's
/// folders or mounted storage.
pub fn check_url(url: &str) -> Result<(), String> {
    if let Some(path) = url.strip_prefix("file://") {
        let mut allowed = roots();
        allowed.extend(EXTRA_SOURCE_ROOTS.iter().map(PathBuf::from));
        return check_path_in(path, &allowed, false)
            .map_err(|e| format!("file URL: {e}"))
            .and(Ok(()));
    }
    let ok = ["http://", "https://"].iter().any(|p| {
        url.strip_prefix(p)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
    }) && !url.bytes().any(|b| b.is_ascii_control() || b == b' ');
    if ok {
        Ok(())
    } else {
        Err(format!("'{url}' is not an http(s) or file URL"))
    }
}

/// `max_size` as `config check` sees it: a size within [`MAX_DOWNLOAD`].
pub fn check_max_size(text: &str) -> Result<u64, String> {
    let n = crate::config::types::parse_size(text)?;
    if n > MAX_DOWNLOAD {
        return Err(format!(
            "'{text}' is above the hard maximum of {} MiB",
            MAX_DOWNLOAD >> 20
        ));
    }
    Ok(n)
}
