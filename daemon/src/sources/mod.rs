//! Rule sources at scale: GeoIP databases and domain-category lists, read
//! streaming, reduced to what the config uses, kept small in the lists folder,
//! and loaded into the kernel (GeoIP interval sets) or handed to the resolver
//! (domain entries).
//!
//! - [`ranges`]: merged address ranges, CIDR ↔ range, diffs for atomic updates;
//! - GeoIP readers: [`mmdb`] (DB-IP / GeoIP2 country), [`geoipdat`] (v2fly
//!   protobuf), [`plain`] (CSV ranges, per-country CIDR files); [`geoip`] picks one
//!   and extracts the countries the rules use;
//! - domain readers: [`v2fly`] (source text with `include:` and `@attr`),
//!   [`geosite`] (v2fly `geosite.dat` / `dlc.dat`), [`domains`] (plain and dnsmasq
//!   lists, and the one entry point the resolver calls);
//! - [`protobuf`]: the streaming protobuf walker both `.dat` readers use;
//! - [`confine`]: which folders lists live in and how downloads are written
//!   (size cap, `sha256` pin, no symlinks); [`sha256`]: the digest.

pub mod confine;
pub mod domains;
pub mod geoip;
pub mod geoipdat;
pub mod geosite;
pub mod kernel;
pub mod mmdb;
pub mod nft;
pub mod plain;
pub mod protobuf;
pub mod ranges;
pub mod sha256;
pub mod update;
pub mod v2fly;

use std::{fmt, fs::File, path::Path};

/// Opens a source file (a list, a GeoIP database) for reading: a regular file
/// only. The open is non-blocking, so a path naming a FIFO (whose open(2)
/// would wait for a writer for ever) cannot hang the daemon; a FIFO, a device
/// (`/dev/urandom` never ends) or a folder is then refused. O_NONBLOCK has no
/// effect on a regular file's reads, so it stays set.
pub fn open_regular(path: &Path) -> Result<File, SourceError> {
    open_regular_with(path, 0)
}

/// [`open_regular`] with more open(2) flags (`O_NOFOLLOW` for a `file://`
/// source already resolved).
pub fn open_regular_with(path: &Path, flags: libc::c_int) -> Result<File, SourceError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e: std::io::Error| SourceError::Io(format!("{}: {e}", path.display()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | flags)
        .open(path)
        .map_err(io)?;
    if !f.metadata().map_err(io)?.is_file() {
        return Err(SourceError::Io(format!(
            "{}: is not a regular file",
            path.display()
        )));
    }
    Ok(f)
}

/// Why a source could not be read. `Format` means the file is not what it
/// claims (corrupt, truncated, wrong type): an update keeps the old copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    Io(String),
    Format(String),
    /// Well-formed, but fails a sanity check (too few entries, missing country…).
    Check(String),
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Format(e) => write!(f, "bad format: {e}"),
            Self::Check(e) => write!(f, "rejected: {e}"),
        }
    }
}

impl std::error::Error for SourceError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_read() {
        let dir = std::env::temp_dir().join(format!("wgsplit-open-regular-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo(3) on a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // No writer: a blocking open would hang here.
        let t = std::time::Instant::now();
        let e = open_regular(&fifo).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        for p in [Path::new("/dev/urandom"), dir.as_path()] {
            let e = open_regular(p).unwrap_err().to_string();
            assert!(e.contains("not a regular file"), "{}: {e}", p.display());
        }
        // A list read through it says why, naming the file.
        let e = plain::for_each_line(&fifo, |_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("fifo") && e.contains("not a regular file"),
            "{e}"
        );
        let file = dir.join("list.txt");
        std::fs::write(&file, "1.2.3.0/24\n").unwrap();
        assert!(open_regular(&file).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
