//! The API's secret: a random token made at first start and kept 0600, compared
//! in constant time; and short-lived sessions for the built-in pages.

use std::{
    collections::HashMap,
    fs,
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Duration, Instant},
};

/// `$WGSPLIT_API_TOKEN_FILE`, else /etc/wgsplit/api.token.
pub fn token_path() -> PathBuf {
    crate::util::paths::api_token()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn read_token(path: &Path) -> std::io::Result<String> {
    let token = fs::read_to_string(path)?.trim().to_string();
    if token.len() < 16 {
        return Err(std::io::Error::other(format!(
            "{}: the token is shorter than 16 characters",
            path.display()
        )));
    }
    Ok(token)
}

/// Reads the token, or makes one (256 random bits, hex) in a new 0600 file.
pub fn load_or_create(path: &Path) -> std::io::Result<String> {
    match read_token(path) {
        Ok(t) => return Ok(t),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let token = random_hex(32);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(format!("{token}\n").as_bytes())?;
    file.sync_all()?;
    Ok(token)
}

/// Compares without an early exit, so timing does not reveal a prefix.
/// Lengths are compared in full: folding their difference into a byte (as
/// this once did) let lengths 256 apart compare equal whenever the shorter
/// one's missing bytes happened to match the padding.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u64::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= u64::from(x ^ y);
    }
    diff == 0
}

pub const SESSION_TTL: Duration = Duration::from_secs(3600);
const MAX_SESSIONS: usize = 64;

/// Sessions made by `POST /api/session` with the token, for browsers.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Instant>>,
}

impl Sessions {
    pub fn create(&self) -> String {
        let id = random_hex(32);
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, t| now.duration_since(*t) < SESSION_TTL);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(id.clone(), now);
        id
    }

    pub fn valid(&self, id: &str) -> bool {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        // Compare against every live session, each in constant time.
        map.iter().fold(false, |found, (k, t)| {
            found
                | (constant_time_eq(k.as_bytes(), id.as_bytes())
                    && now.duration_since(*t) < SESSION_TTL)
        })
    }

    pub fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

/// How long a one-time download link lives, if nobody uses it.
pub const LINK_TTL: Duration = Duration::from_secs(3600);
/// Live links at most: making one more drops the oldest, so a page that asks
/// in a loop holds a bounded map, never a growing one.
pub const MAX_LINKS: usize = 32;

/// One-time download links of clients' configs (`POST
/// /api/clients/NAME/link`): a random 256-bit id naming a client, good for one
/// `GET /api/dl/ID` within [`LINK_TTL`]. Held in memory only: a restart
/// forgets them, which errs on the side of a link that stops working.
#[derive(Default)]
pub struct Links {
    map: Mutex<Vec<(String, String, Instant)>>,
}

impl Links {
    pub fn create(&self, client: &str) -> String {
        self.create_at(client, Instant::now())
    }

    fn create_at(&self, client: &str, now: Instant) -> String {
        let id = random_hex(32);
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|(_, _, t)| now.duration_since(*t) < LINK_TTL);
        if map.len() >= MAX_LINKS {
            // Oldest first: the vector keeps the order they were made in.
            map.remove(0);
        }
        map.push((id.clone(), client.to_string(), now));
        id
    }

    /// The client a live link names, and the link is gone: a second use, or
    /// one after [`LINK_TTL`], finds nothing. Every id is compared in
    /// constant time, as sessions are.
    pub fn take(&self, id: &str) -> Option<String> {
        self.take_at(id, Instant::now())
    }

    fn take_at(&self, id: &str, now: Instant) -> Option<String> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let found = map.iter().enumerate().fold(None, |found, (i, (k, _, _))| {
            if constant_time_eq(k.as_bytes(), id.as_bytes()) {
                Some(i)
            } else {
                found
            }
        })?;
        let (_, client, made) = map.remove(found);
        (now.duration_since(made) < LINK_TTL).then_some(client)
    }

    #[cfg(test)]
    pub fn count(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn token_is_made_once_and_private() {
        let dir = std::env::temp_dir().join(format!("wsa-token-{}", std::process::id()));
        let path = dir.join("sub/api.token");
        let t1 = load_or_create(&path).unwrap();
        assert_eq!(t1.len(), 64);
        assert_eq!(load_or_create(&path).unwrap(), t1);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        fs::write(&path, "short").unwrap();
        assert!(load_or_create(&path).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(!constant_time_eq(&[0u8; 256], &[]));
        // Lengths whose difference is a multiple of 256 (the old fold to a
        // byte lost it), with the missing bytes equal to any padding value.
        for pad in [0u8, 0xff] {
            for extra in [256usize, 512, 65536] {
                let long: Vec<u8> = b"abc"
                    .iter()
                    .copied()
                    .chain(std::iter::repeat_n(pad, extra))
                    .collect();
                assert!(!constant_time_eq(&long, b"abc"), "{pad} {extra}");
                assert!(!constant_time_eq(b"abc", &long), "{pad} {extra}");
            }
        }
        assert!(!constant_time_eq(&[0xff; 256], &[]));
        assert!(!constant_time_eq(&[], &[0xff; 256]));
        let s = Sessions::default();
        let id = s.create();
        assert!(s.valid(&id));
        assert!(!s.valid("nope"));
        s.remove(&id);
        assert!(!s.valid(&id));
    }

    #[test]
    fn links_work_once_within_the_hour_and_are_bounded() {
        let links = Links::default();
        let t0 = Instant::now();
        let a = links.create_at("alice", t0);
        assert_eq!(a.len(), 64);
        assert_eq!(links.take_at("0".repeat(64).as_str(), t0), None);
        assert_eq!(links.take_at(&a, t0).as_deref(), Some("alice"));
        assert_eq!(links.take_at(&a, t0), None, "a second use");
        let b = links.create_at("bob", t0);
        assert_eq!(links.take_at(&b, t0 + LINK_TTL), None, "an hour later");
        // The bound: the oldest goes first.
        let first = links.create_at("c0", t0);
        for i in 1..=MAX_LINKS {
            links.create_at(&format!("c{i}"), t0);
        }
        assert_eq!(links.count(), MAX_LINKS);
        assert_eq!(links.take_at(&first, t0), None);
    }
}
