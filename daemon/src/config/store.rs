//! One writer at a time: every edit of the config (CLI or API, any process)
//! takes an exclusive lock, re-reads the file, edits, validates the whole
//! result and writes it atomically. A failed edit leaves the file untouched.

use std::{
    fmt, fs,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use super::{Config, Problem};
use crate::{config, util::lock::FileLock};

/// Why an edit was refused. The API maps these to 404, 409, 400 and 500.
#[derive(Debug)]
pub enum EditError {
    NotFound(String),
    Conflict(String),
    Invalid(Vec<Problem>),
    Io(String),
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound(m) | Self::Conflict(m) | Self::Io(m) => write!(f, "{m}"),
            Self::Invalid(problems) => write!(f, "{}", config::ProblemList(problems)),
        }
    }
}

impl std::error::Error for EditError {}

impl From<config::Error> for EditError {
    fn from(e: config::Error) -> Self {
        match e {
            config::Error::Invalid(p) => Self::Invalid(p),
            config::Error::Json(m) => Self::Invalid(vec![json_problem(&m)]),
            other => Self::Io(other.to_string()),
        }
    }
}

/// `clients[0].enabled: invalid type …` → a Problem on that path.
fn json_problem(message: &str) -> Problem {
    match message.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') && !path.is_empty() && path != "." => {
            Problem::new(path, rest)
        }
        _ => Problem::new("body", message),
    }
}

pub struct Store {
    path: PathBuf,
    lock_path: PathBuf,
    /// Threads of one process; the file lock covers other processes.
    inner: Mutex<()>,
    /// The last config read, and the file's identity then: readers (the API)
    /// skip the parse while the file is unchanged.
    cache: Mutex<Option<(Stamp, Arc<Config>)>>,
}

/// What identifies one version of the file: an atomic write always makes a
/// new inode, and an edit in place changes the size or the mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).ok()?;
    Some(Stamp {
        ino: m.ino(),
        len: m.len(),
        mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
    })
}

/// The lock file for a config: under /var/lock (or /tmp), named after the
/// config's path, so it never lands in /etc/config where uci would read it.
fn lock_path_for(path: &Path) -> PathBuf {
    let abs = fs::canonicalize(path)
        .or_else(|_| std::env::current_dir().map(|d| d.join(path)))
        .unwrap_or_else(|_| path.to_path_buf());
    // FNV-1a of the path.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in abs.as_os_str().as_encoded_bytes() {
        h = (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let dir = if Path::new("/var/lock").is_dir() {
        "/var/lock"
    } else {
        "/tmp"
    };
    PathBuf::from(format!("{dir}/wgsplit-{h:016x}.lock"))
}

impl Store {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            lock_path: lock_path_for(path),
            inner: Mutex::new(()),
            cache: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn load(&self) -> Result<Config, EditError> {
        config::load(&self.path).map_err(EditError::from)
    }

    /// The current config, parsed again only when the file changed.
    pub fn shared(&self) -> Result<Arc<Config>, EditError> {
        let before = stamp(&self.path);
        if let Some((st, c)) = &*self.cache.lock().unwrap_or_else(|e| e.into_inner())
            && Some(*st) == before
        {
            return Ok(c.clone());
        }
        let c = Arc::new(self.load()?);
        // Cache only if the file did not change while it was read.
        if let Some(st) = before.filter(|b| stamp(&self.path) == Some(*b)) {
            *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some((st, c.clone()));
        }
        Ok(c)
    }

    /// Runs `f` on the current config under the lock; if it succeeds and the
    /// result validates, writes it. Returns `f`'s value and the new config.
    pub fn edit<T>(
        &self,
        f: impl FnOnce(&mut Config) -> Result<T, EditError>,
    ) -> Result<(T, Config), EditError> {
        let _inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let _lock = FileLock::exclusive(&self.lock_path)
            .map_err(|e| EditError::Io(format!("{}: {e}", self.lock_path.display())))?;
        let mut config = self.load()?;
        let value = f(&mut config)?;
        let config = config::check(config)?;
        config::save(&self.path, &config)?;
        Ok((value, config))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clients::{NewClient, add_client, tests::example};

    fn temp_config(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wsa-store-{tag}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("wgsplit");
        config::save(&path, &example()).unwrap();
        path
    }

    #[test]
    fn failed_edit_writes_nothing() {
        let path = temp_config("fail");
        let before = fs::read(&path).unwrap();
        let store = Store::new(&path);
        let e = store
            .edit(|c| {
                c.clients[0].address = vec!["10.9.9.9/32".into()];
                Ok(())
            })
            .unwrap_err();
        assert!(e.to_string().contains("alice.address"), "{e}");
        assert_eq!(fs::read(&path).unwrap(), before);
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let path = temp_config("race");
        let store = Arc::new(Store::new(&path));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..5 {
                        store
                            .edit(|c| {
                                add_client(
                                    c,
                                    NewClient {
                                        name: format!("t{t}_{i}"),
                                        ..Default::default()
                                    },
                                )
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let c = store.load().unwrap();
        assert_eq!(c.clients.len(), 3 + 40);
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
