//! Where list and GeoIP files may live, and how a download is written there.
//!
//! A config editor (a LuCI user with the wgsplit ACL, an API token holder)
//! must not get a root file write out of `lists update`. So:
//! - every list `path` and GeoIP `path`/`dir` lies inside wgsplit's own
//!   folders ([`DEFAULT_ROOTS`], or `WGSPLIT_LIST_ROOTS` for tests), checked by
//!   `config check` on the text and again before each write on the real
//!   folder (a symlinked folder leading elsewhere, or one another user owns or
//!   may write, is refused);
//! - a download goes into a new file created next to its target (`O_EXCL |
//!   O_NOFOLLOW`, so nothing planted there is written through), no larger than
//!   the source's cap, hashed on the way for the `sha256` pin, then renamed
//!   over the target; an existing target must be a file wgsplit wrote
//!   itself (its inode is recorded in the state file), never a symlink;
//! - `file://` copies only from those folders and [`EXTRA_SOURCE_ROOTS`].

use std::{
    fs::{self, File, OpenOptions},
    io::{Read, Write},
    os::unix::{
        fs::{DirBuilderExt, MetadataExt, OpenOptionsExt},
        process::ExitStatusExt,
    },
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
        mpsc::{self, RecvTimeoutError},
    },
    thread,
    time::Duration,
};

use super::{SourceError, sha256::Sha256};
use crate::config::confine::DOWNLOAD_SECONDS;
pub use crate::config::confine::{
    DEFAULT_MAX_DOWNLOAD, DEFAULT_ROOTS, EXTRA_SOURCE_ROOTS, MAX_DOWNLOAD, check_max_size,
    check_path, check_path_in, check_url, roots,
};

/// The limits of one source's download.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Bytes; 0 means [`DEFAULT_MAX_DOWNLOAD`].
    pub max_bytes: u64,
    /// Lowercase hex SHA-256 the download must have.
    pub sha256: Option<String>,
}

impl Limits {
    /// From a source's `max_size` and `sha256` options (validated by
    /// `config check`; a bad value here falls back to the default).
    pub fn of(max_size: Option<&str>, sha256: Option<&str>) -> Self {
        let max_bytes = max_size
            .and_then(|s| crate::config::types::parse_size(s).ok())
            .unwrap_or(DEFAULT_MAX_DOWNLOAD)
            .min(MAX_DOWNLOAD);
        Self {
            max_bytes,
            sha256: sha256.map(str::to_ascii_lowercase),
        }
    }

    fn cap(&self) -> u64 {
        if self.max_bytes == 0 {
            DEFAULT_MAX_DOWNLOAD
        } else {
            self.max_bytes.min(MAX_DOWNLOAD)
        }
    }
}

/// The inode of a file, as recorded for files wgsplit wrote: `dev:ino`.
pub fn identity(meta: &fs::Metadata) -> String {
    format!("{}:{}", meta.dev(), meta.ino())
}

/// Checks that `dir` is a real folder of ours inside a root: its resolved
/// path lies inside a resolved root, it is owned by our user and nobody else
/// may write to it (else another user could swap what we are about to write).
/// Creates it (0755) when missing.
pub fn own_dir(dir: &Path) -> Result<PathBuf, SourceError> {
    let refuse = |why: &str| SourceError::Io(format!("{}: {why}", dir.display()));
    let roots = roots();
    if !roots.iter().any(|r| dir.starts_with(r)) {
        return Err(refuse("outside wgsplit's folders"));
    }
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| refuse(&e.to_string()))?;
    }
    let real = fs::canonicalize(dir).map_err(|e| refuse(&e.to_string()))?;
    let inside = roots.iter().any(|r| {
        fs::canonicalize(r)
            .map(|r| real.starts_with(r))
            .unwrap_or(false)
    });
    if !inside {
        return Err(refuse("leads outside wgsplit's folders (a symbolic link?)"));
    }
    let meta = fs::metadata(&real).map_err(|e| refuse(&e.to_string()))?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o022 != 0 {
        return Err(refuse(
            "must be a folder owned by wgsplit's user and writable by nobody else",
        ));
    }
    Ok(real)
}

/// Checks a target before anything is written: its folder is ours, and the
/// file is absent or a regular file wgsplit wrote (`recorded`: its identity
/// from the last write), never a symlink or a file someone else put there.
pub fn check_target(path: &Path, recorded: Option<&str>) -> Result<(), SourceError> {
    let refuse = |why: &str| SourceError::Io(format!("{}: {why}", path.display()));
    let parent = path.parent().ok_or_else(|| refuse("no folder"))?;
    own_dir(parent)?;
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(refuse(&e.to_string())),
        Ok(m) if m.file_type().is_symlink() => Err(refuse(
            "is a symbolic link; wgsplit does not write through one",
        )),
        Ok(m) if !m.is_file() => Err(refuse("is not a regular file")),
        Ok(m) if recorded != Some(identity(&m).as_str()) => Err(refuse(
            "exists and was not written by wgsplit; remove it to let wgsplit download it",
        )),
        Ok(_) => Ok(()),
    }
}

/// A new file next to its target, removed unless [`Part::commit`]ted.
pub struct Part {
    pub path: PathBuf,
    target: PathBuf,
    file: Option<File>,
    done: bool,
}

impl Part {
    /// Creates `.<name>.<pid>.<n>.part` in the target's folder: `O_EXCL` and
    /// `O_NOFOLLOW`, so a planted file or link is never opened.
    pub fn create(target: &Path) -> Result<Self, SourceError> {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = target.parent().unwrap_or(Path::new("/"));
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = dir.join(format!(
            ".{name}.{}.{}.part",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| SourceError::Io(format!("{}: {e}", path.display())))?;
        Ok(Self {
            path,
            target: target.to_path_buf(),
            file: Some(file),
            done: false,
        })
    }

    /// Copies `from` in, at most `limits` bytes, and checks the pin. Returns
    /// the size (0 is the caller's to refuse, see [`nonempty`]).
    fn fill(
        &mut self,
        from: &mut dyn Read,
        limits: &Limits,
        what: &str,
    ) -> Result<u64, SourceError> {
        let cap = limits.cap();
        let file = self.file.as_mut().expect("open until commit");
        let mut hash = Sha256::default();
        let mut buf = vec![0u8; 64 * 1024];
        let mut size: u64 = 0;
        loop {
            let n = from
                .read(&mut buf)
                .map_err(|e| SourceError::Io(format!("{what}: {e}")))?;
            if n == 0 {
                break;
            }
            size += n as u64;
            if size > cap {
                return Err(SourceError::Check(format!(
                    "{what}: larger than {cap} bytes (max_size)"
                )));
            }
            hash.update(&buf[..n]);
            file.write_all(&buf[..n])
                .map_err(|e| SourceError::Io(format!("{}: {e}", self.path.display())))?;
        }
        if let Some(want) = &limits.sha256 {
            let got = hash.hex();
            if &got != want {
                return Err(SourceError::Check(format!(
                    "{what}: sha256 is {got}, the pinned sha256 is {want}"
                )));
            }
        }
        file.sync_all()
            .map_err(|e| SourceError::Io(format!("{}: {e}", self.path.display())))?;
        Ok(size)
    }

    /// Renames the part over its target; returns the identity to record.
    pub fn commit(mut self) -> Result<String, SourceError> {
        self.commit_to(&self.target.clone())
    }

    /// Renames the part over `target` (a file in the same folder).
    pub fn commit_to(&mut self, target: &Path) -> Result<String, SourceError> {
        let file = self.file.take().expect("committed once");
        let meta = file
            .metadata()
            .map_err(|e| SourceError::Io(format!("{}: {e}", self.path.display())))?;
        drop(file);
        fs::rename(&self.path, target)
            .map_err(|e| SourceError::Io(format!("{}: {e}", target.display())))?;
        self.done = true;
        Ok(identity(&meta))
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Downloads `url` into a new [`Part`] next to `target` (see the module
/// comment). `what` names the source in errors: its file, so that the
/// messages (util::msgcode's) hold no word a front end cannot translate.
pub fn download(
    url: &str,
    target: &Path,
    limits: &Limits,
    what: &str,
) -> Result<Part, SourceError> {
    check_url(url).map_err(|e| SourceError::Check(format!("{what}: url: {e}")))?;
    let mut part = Part::create(target)?;
    if let Some(path) = url.strip_prefix("file://") {
        let mut file = open_source(Path::new(path))?;
        nonempty(part.fill(&mut file, limits, what)?, what)?;
        return Ok(part);
    }
    // The whole download, not each read: the tools' own timeouts are idle
    // timeouts, and a server sending a byte a minute would hold the update
    // (and the lists service waiting on it) for ever.
    let deadline = crate::util::paths::download_time(Duration::from_secs(DOWNLOAD_SECONDS.into()));
    let secs = deadline.as_secs().max(1).to_string();
    let cap = limits.cap().to_string();
    // Each tool writes to stdout: wgsplit itself writes the file, so the cap
    // holds while downloading and no tool opens a path.
    let tools: [(&str, Vec<&str>); 3] = [
        ("uclient-fetch", vec!["-q", "-T", "60", "-O", "-", url]),
        ("wget", vec!["-q", "-T", "60", "-O", "-", url]),
        (
            "curl",
            vec!["-fsSL", "--max-time", &secs, "--max-filesize", &cap, url],
        ),
    ];
    let (tool, args) = tools
        .iter()
        .find(|(t, _)| on_path(t))
        .ok_or_else(|| SourceError::Io("no download tool (uclient-fetch, wget or curl)".into()))?;
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| SourceError::Io(format!("{tool}: {e}")))?;
    let mut out = child.stdout.take().expect("piped");
    let child = Arc::new(Mutex::new(child));
    let (done, wait) = mpsc::channel::<()>();
    let watchdog = {
        let child = child.clone();
        thread::spawn(move || {
            let late = wait.recv_timeout(deadline) == Err(RecvTimeoutError::Timeout);
            if late {
                // Its stdout ends with it, which ends `fill` below.
                let _ = lock(&child).kill();
            }
            late
        })
    };
    let filled = part.fill(&mut out, limits, what);
    drop(out);
    drop(done);
    if watchdog.join().unwrap_or(false) {
        let _ = lock(&child).wait();
        return Err(SourceError::Io(format!(
            "{what}: {tool} did not finish within {secs} s; stopped"
        )));
    }
    let mut child = lock(&child);
    if filled.is_err() {
        // Over the cap (or a write failed): stop the tool now.
        let _ = child.kill();
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.by_ref().take(4096).read_to_string(&mut err);
    }
    let status = child
        .wait()
        .map_err(|e| SourceError::Io(format!("{tool}: {e}")))?;
    // Over the cap or a bad pin first (the tool was stopped for it); a tool
    // that failed before sending a byte is its failure, not "empty".
    let size = filled?;
    if !status.success() {
        // A number, as a shell shows it (128 + the signal for a killed tool):
        // the message is one of util::msgcode's, with the tool's words last.
        let code = status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(-1);
        let said = err.lines().map(str::trim).rfind(|l| !l.is_empty());
        return Err(SourceError::Io(match said {
            Some(said) => format!("{tool} could not fetch {url} (exit status {code}): {said}"),
            None => format!("{tool} could not fetch {url} (exit status {code})"),
        }));
    }
    nonempty(size, what)?;
    Ok(part)
}

/// An empty download is refused: an update keeps the previous copy.
fn nonempty(size: u64, what: &str) -> Result<(), SourceError> {
    if size == 0 {
        return Err(SourceError::Check(format!("{what}: empty")));
    }
    Ok(())
}

/// Opens a `file://` source after resolving it: the real file must still lie
/// inside an allowed folder (a symlink there may not lead elsewhere).
fn open_source(path: &Path) -> Result<File, SourceError> {
    let refuse = |why: String| SourceError::Io(format!("{}: {why}", path.display()));
    let real = fs::canonicalize(path).map_err(|e| refuse(e.to_string()))?;
    let mut allowed = roots();
    allowed.extend(EXTRA_SOURCE_ROOTS.iter().map(PathBuf::from));
    let inside = allowed.iter().any(|r| {
        fs::canonicalize(r)
            .map(|r| real.starts_with(r))
            .unwrap_or(false)
    });
    if !inside {
        return Err(refuse("leads outside the folders file:// may read".into()));
    }
    // A regular file only, opened without waiting (see `open_regular`), and no
    // symlink swapped in since it was resolved.
    super::open_regular_with(&real, libc::O_NOFOLLOW)
}

fn lock(child: &Mutex<std::process::Child>) -> std::sync::MutexGuard<'_, std::process::Child> {
    child.lock().unwrap_or_else(|e| e.into_inner())
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots() -> Vec<PathBuf> {
        DEFAULT_ROOTS.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn paths_stay_inside_the_roots() {
        let r = roots();
        for ok in [
            "/etc/wgsplit/lists/ads.txt",
            "/tmp/wgsplit/lists/geosite.dat",
            "/tmp/wgsplit/x/y.conf",
        ] {
            assert_eq!(check_path_in(ok, &r, false), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("/etc/rc.local", "outside"),
            ("/etc/wgsplit/api.token", "outside"),
            ("/etc/wgsplit/lists", "outside"),
            ("/etc/wgsplit/lists/../../rc.local", "plain path"),
            ("/tmp/wgsplit//x", "plain path"),
            ("/tmp/wgsplit/./x", "plain path"),
            ("/tmp/wgsplitx/y", "outside"),
            ("tmp/wgsplit/x", "absolute"),
            ("/tmp/wgsplit/lists/state.json", "its own files"),
            ("/tmp/wgsplit/lists/geo_us.txt", "its own files"),
            ("/tmp/wgsplit/lists/.x.part", "its own files"),
        ] {
            let e = check_path_in(bad, &r, false).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert_eq!(check_path_in("/tmp/wgsplit", &r, true), Ok(()));
        assert!(check_path_in("/tmp", &r, true).is_err());
    }

    #[test]
    fn urls() {
        assert!(check_url("https://example.org/dlc.dat").is_ok());
        assert!(check_url("http://127.0.0.1:8000/a").is_ok());
        assert!(check_url("file:///mnt/usb/ru.conf").is_ok());
        assert!(check_url("file:///etc/wgsplit/lists/a.txt").is_ok());
        for bad in [
            "file:///etc/shadow",
            "file:///mnt/../etc/shadow",
            "file:///etc/wgsplit/api.token",
            "ftp://example.org/x",
            "https:///etc/shadow",
            "https://example.org/a b",
            "http://",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    use crate::sources::mmdb::tests::tempfile_path::TempPath;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn folder() -> TempPath {
        let d = TempPath::new("confine");
        fs::create_dir(&d.0).unwrap();
        fs::set_permissions(&d.0, fs::Permissions::from_mode(0o755)).unwrap();
        d
    }

    #[test]
    fn targets_wgsplit_did_not_write_are_refused() {
        let d = folder();
        let target = d.0.join("list.txt");
        assert!(check_target(&target, None).is_ok(), "absent: fine");
        fs::write(&target, "mine\n").unwrap();
        let e = check_target(&target, None).unwrap_err().to_string();
        assert!(e.contains("not written by wgsplit"), "{e}");
        let code = |e: &str| crate::util::msgcode::classify(e).map(|c| c.0);
        assert_eq!(code(&e), Some("list_not_ours"), "{e}");
        let id = identity(&fs::metadata(&target).unwrap());
        assert!(check_target(&target, Some(&id)).is_ok(), "recorded: fine");
        let link = d.0.join("link.txt");
        symlink("/etc/passwd", &link).unwrap();
        let e = check_target(&link, Some(&id)).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(code(&e), Some("list_target_link"), "{e}");
        // A folder others may write to is not wgsplit's.
        fs::set_permissions(&d.0, fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_target(&target, Some(&id)).unwrap_err().to_string();
        assert!(e.contains("writable by nobody else"), "{e}");
        assert_eq!(code(&e), Some("list_dir_not_own"), "{e}");
    }

    #[test]
    fn downloads_are_capped_pinned_and_left_nowhere() {
        let d = folder();
        let src = d.0.join("src.txt");
        fs::write(&src, vec![b'a'; 5000]).unwrap();
        let url = format!("file://{}", src.display());
        let target = d.0.join("out.txt");
        let parts = || {
            fs::read_dir(&d.0)
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".part")
                })
                .count()
        };
        let small = Limits {
            max_bytes: 4096,
            sha256: None,
        };
        let e = download(&url, &target, &small, "t")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("larger than 4096 bytes"), "{e}");
        // a page translates it by its code (the lists state carries it)
        let code = |e: &str| crate::util::msgcode::classify(e).map(|c| c.0);
        assert_eq!(code(&e), Some("download_too_large"), "{e}");
        assert_eq!(parts(), 0);
        let pinned = Limits {
            max_bytes: 0,
            sha256: Some("0".repeat(64)),
        };
        let e = download(&url, &target, &pinned, "t")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("sha256 is"), "{e}");
        assert_eq!(code(&e), Some("download_sha256"), "{e}");
        assert_eq!(parts(), 0);
        assert!(!target.exists());
        let mut h = Sha256::default();
        h.update(&[b'a'; 5000]);
        let good = Limits {
            max_bytes: 5000,
            sha256: Some(h.hex()),
        };
        let part = download(&url, &target, &good, "t").unwrap();
        assert_eq!(parts(), 1);
        let id = part.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap().len(), 5000);
        assert_eq!(id, identity(&fs::metadata(&target).unwrap()));
        assert_eq!(parts(), 0);
    }

    #[test]
    fn file_sources_may_not_lead_outside() {
        let d = folder();
        let link = d.0.join("shadow");
        symlink("/etc/passwd", &link).unwrap();
        let url = format!("file://{}", link.display());
        let e = download(&url, &d.0.join("x.txt"), &Limits::default(), "t")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("leads outside"), "{e}");
    }

    #[test]
    fn a_fifo_source_is_refused_not_waited_on() {
        // Opening a FIFO for reading waits for a writer: a `file://` source
        // that is one (a crafted USB stick under /mnt) would hold the update.
        let d = folder();
        let fifo = d.0.join("fifo");
        let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        let url = format!("file://{}", fifo.display());
        let target = d.0.join("x.txt");
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let r = download(&url, &target, &Limits::default(), "t").map(|_| ());
            let _ = tx.send(r.map_err(|e| e.to_string()));
        });
        let got = rx.recv_timeout(Duration::from_secs(2));
        let e = got.expect("waited on a FIFO").unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        // Unblock the thread still waiting (on the old code), if any.
        let _ = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo);
    }

    #[test]
    fn sizes() {
        assert_eq!(check_max_size("20M"), Ok(20 << 20));
        assert!(check_max_size("97M").is_err());
        assert!(check_max_size("lots").is_err());
        assert_eq!(Limits::of(Some("1G"), None).max_bytes, MAX_DOWNLOAD);
        assert_eq!(Limits::of(None, None).max_bytes, DEFAULT_MAX_DOWNLOAD);
    }
}
