//! What the kernel holds of our table, as far as the diff needs it, and the
//! observed form of a desired table right after it was applied.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    element::Element,
    table::{BaseChain, NftState, fingerprint},
};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedNft {
    pub sets: BTreeMap<String, ObservedSet>,
    pub chains: BTreeMap<String, ObservedChain>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedSet {
    /// `SetKind::signature` form.
    pub signature: String,
    /// What the engine knows of the set's elements (see `SetElements`).
    pub elements: SetElements,
}

/// The elements of an observed set, as far as the engine knows them: it never
/// reads elements back from the kernel, it remembers what it wrote (`sys` keeps
/// a record, trusted while the set's handle is the one recorded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetElements {
    /// Not known (not written by the engine, or recreated since): the diff
    /// flushes the set and writes it whole.
    Unknown,
    /// Exactly these elements.
    Known(BTreeSet<Element>),
    /// Elements whose `set_digest` is this. Enough to tell "unchanged" without
    /// holding 50k elements; when the desired set differs, the diff needs them
    /// `Known` to stay minimal (`sys` loads them), else it rewrites the set.
    Digest(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedChain {
    pub base: Option<BaseChain>,
    /// The comment of each rule, in order (`None` for rules without one).
    pub comments: Vec<Option<String>>,
}

/// The observed form of a desired table, as if it had just been applied (what
/// the daemon keeps in memory between applies, and what tests diff against).
/// Elements are kept as digests: `sys` reads a changed set's old elements from
/// its record when it needs them.
pub fn as_observed(d: &NftState) -> ObservedNft {
    ObservedNft {
        sets: d
            .sets
            .iter()
            .map(|(n, s)| {
                (
                    n.clone(),
                    ObservedSet {
                        signature: s.kind.signature(),
                        elements: s.digest().map_or(SetElements::Unknown, SetElements::Digest),
                    },
                )
            })
            .collect(),
        chains: d
            .chains
            .iter()
            .map(|(n, c)| {
                (
                    n.clone(),
                    ObservedChain {
                        base: c.base.clone(),
                        comments: c.rules.iter().map(|r| Some(fingerprint(r))).collect(),
                    },
                )
            })
            .collect(),
    }
}
