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

use std::fmt;

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
