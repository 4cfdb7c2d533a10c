//! Advisory file locks (`flock`) between the daemon, its API threads and CLI
//! commands run beside it.

use std::{
    fs, io,
    os::{fd::AsRawFd, unix::fs::OpenOptionsExt},
    path::Path,
};

/// An exclusive `flock`, released when dropped (the file closes).
pub struct FileLock {
    _file: fs::File,
}

impl FileLock {
    /// Waits for the lock.
    pub fn exclusive(path: &Path) -> io::Result<Self> {
        Self::take(path, libc::LOCK_EX)?.ok_or_else(|| io::ErrorKind::WouldBlock.into())
    }

    /// The lock if nobody holds it, `None` if someone does.
    pub fn try_exclusive(path: &Path) -> io::Result<Option<Self>> {
        Self::take(path, libc::LOCK_EX | libc::LOCK_NB)
    }

    fn take(path: &Path, how: libc::c_int) -> io::Result<Option<Self>> {
        // O_NOFOLLOW: a symlink planted at the lock's path is not followed.
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        // SAFETY: flock on a descriptor we own; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), how) } != 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(None),
                _ => Err(e),
            };
        }
        Ok(Some(Self { _file: file }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time() {
        let dir = std::env::temp_dir().join(format!("wgsplit-lock-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.lock");
        let held = FileLock::exclusive(&path).unwrap();
        assert!(FileLock::try_exclusive(&path).unwrap().is_none());
        drop(held);
        assert!(FileLock::try_exclusive(&path).unwrap().is_some());
        // A symlink at the path is refused, not followed.
        let link = dir.join("link.lock");
        std::os::unix::fs::symlink(dir.join("elsewhere"), &link).unwrap();
        assert!(FileLock::try_exclusive(&link).is_err());
        assert!(!dir.join("elsewhere").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
