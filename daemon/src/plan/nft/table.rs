//! The `table inet wgsplit` as data: sets (with the elements the engine owns),
//! chains and their rule texts. `desired` builds one; `diff` compares it with
//! what the kernel holds.

use std::collections::{BTreeMap, BTreeSet};

use super::element::{Element, set_digest};
use crate::plan::fnv64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SetKind {
    /// `type ipv4_addr; flags interval` (CIDR sets, GeoIP sets).
    Net4,
    Net6,
    /// `type ipv4_addr : verdict; flags interval` (the client maps).
    Map4,
    Map6,
    /// `type ipv4_addr; flags timeout` (DNS-learned, filled by the resolver).
    Dns4,
    Dns6,
}

impl SetKind {
    pub fn is_map(self) -> bool {
        matches!(self, Self::Map4 | Self::Map6)
    }

    fn addr_type(self) -> &'static str {
        match self {
            Self::Net4 | Self::Map4 | Self::Dns4 => "ipv4_addr",
            _ => "ipv6_addr",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Self::Dns4 | Self::Dns6 => "timeout",
            _ => "interval",
        }
    }

    /// The declaration inside `add set|map inet wgsplit NAME { … }`.
    pub fn declaration(self) -> String {
        if matches!(self, Self::Dns4 | Self::Dns6) {
            return crate::plan::guard::learned_declaration(self.addr_type());
        }
        let data = if self.is_map() { " : verdict" } else { "" };
        format!("type {}{data}; flags {};", self.addr_type(), self.flag())
    }

    /// A comparable signature: (type, map data, flags), as nft's JSON listing shows them.
    pub fn signature(self) -> String {
        let data = if self.is_map() { "verdict" } else { "" };
        format!("{}|{data}|{}", self.addr_type(), self.flag())
    }
}

#[derive(Debug, Clone)]
pub struct NftSet {
    pub kind: SetKind,
    /// `None`: filled by someone else (the resolver, rule sources); the engine
    /// creates the set and never touches its elements.
    pub elements: Option<BTreeSet<Element>>,
    /// `set_digest` of the elements, computed once (the planner, the record
    /// and the daemon's memory of the last apply all compare it).
    digest: std::sync::OnceLock<u64>,
}

/// Equal when kind and elements are (whether the digest was computed yet or not).
impl PartialEq for NftSet {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.elements == other.elements
    }
}

impl Eq for NftSet {}

impl NftSet {
    /// Digests the elements right away: they were just built and are still in
    /// the cache (walking 50k elements again at plan time, cold, cost ~1 ms).
    pub fn new(kind: SetKind, elements: Option<BTreeSet<Element>>) -> Self {
        let digest = std::sync::OnceLock::new();
        if let Some(els) = &elements {
            let _ = digest.set(set_digest(els));
        }
        Self {
            kind,
            elements,
            digest,
        }
    }

    /// The digest of the elements the engine owns (`None`: filled by others).
    pub fn digest(&self) -> Option<u64> {
        let els = self.elements.as_ref()?;
        Some(*self.digest.get_or_init(|| set_digest(els)))
    }
}

/// A base chain's hook: (type, hook, priority).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseChain {
    pub ty: &'static str,
    pub hook: &'static str,
    pub priority: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftChain {
    pub base: Option<BaseChain>,
    /// Rule texts, in order (without the fingerprint comment).
    pub rules: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NftState {
    pub sets: BTreeMap<String, NftSet>,
    pub chains: BTreeMap<String, NftChain>,
}

/// The fingerprint comment of a rule text.
pub fn fingerprint(rule: &str) -> String {
    format!("wgs:{:016x}", fnv64(rule.as_bytes()))
}
