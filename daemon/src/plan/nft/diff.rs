//! The difference between the desired table and the observed one, as one
//! transaction: only chains whose rules differ are rewritten, only elements that
//! differ are written; sets whose elements others fill are never touched.
//!
//! Rules carry a fingerprint of their own text in their comment (`wgs:<hash>`), so
//! a chain's rules are compared without reading nft's listing back into text.

use super::{
    batch::NftBatch,
    element::Element,
    observed::{ObservedNft, SetElements},
    table::{BaseChain, NftState, fingerprint},
};
use crate::plan::NFT_TABLE;

fn base_decl(b: &BaseChain) -> String {
    format!(
        "{{ type {} hook {} priority {}; policy accept; }}",
        b.ty, b.hook, b.priority
    )
}

fn rule_line(chain: &str, rule: &str) -> String {
    format!(
        "add rule inet {NFT_TABLE} {chain} {rule} comment \"{}\"",
        fingerprint(rule)
    )
}

/// The whole table from nothing (also used for a rebuild).
fn create_all(desired: &NftState, b: &mut NftBatch) {
    // Chains before maps: an interval map's `goto` elements must find their chain
    // already declared in the batch (nft 1.0.6 otherwise answers ENOENT).
    for (name, c) in &desired.chains {
        match &c.base {
            Some(base) => b.push(format!(
                "add chain inet {NFT_TABLE} {name} {}",
                base_decl(base)
            )),
            None => b.push(format!("add chain inet {NFT_TABLE} {name}")),
        }
    }
    for (name, set) in &desired.sets {
        let what = if set.kind.is_map() { "map" } else { "set" };
        b.push(format!(
            "add {what} inet {NFT_TABLE} {name} {{ {} }}",
            set.kind.declaration()
        ));
    }
    for (name, set) in &desired.sets {
        if let Some(els) = &set.elements {
            let v: Vec<&Element> = els.iter().collect();
            b.push_elements(true, name, &v);
        }
    }
    for (name, c) in &desired.chains {
        for r in &c.rules {
            b.push(rule_line(name, r));
        }
    }
}

/// The difference from `observed` (`None`: no table) to `desired`, as one batch.
/// Touches only chains whose rules differ and elements that differ.
pub fn diff(desired: &NftState, observed: Option<&ObservedNft>) -> NftBatch {
    let mut b = NftBatch::default();
    let Some(obs) = observed else {
        b.from_nothing = true;
        b.push(format!("add table inet {NFT_TABLE}"));
        create_all(desired, &mut b);
        return b;
    };
    // Things the incremental path can't fix in place (a set of another type, a base
    // chain on another hook): rebuild the whole table in the same transaction.
    let incompatible = desired.sets.iter().any(|(n, s)| {
        obs.sets
            .get(n)
            .is_some_and(|o| o.signature != s.kind.signature())
    }) || desired
        .chains
        .iter()
        .any(|(n, c)| obs.chains.get(n).is_some_and(|o| o.base != c.base));
    if incompatible {
        b.push(format!("add table inet {NFT_TABLE}"));
        b.push(format!("delete table inet {NFT_TABLE}"));
        b.push(format!("add table inet {NFT_TABLE}"));
        create_all(desired, &mut b);
        return b;
    }

    let changed: Vec<&String> = desired
        .chains
        .iter()
        .filter(|(n, c)| {
            obs.chains.get(*n).is_some_and(|o| {
                o.comments.len() != c.rules.len()
                    || o.comments
                        .iter()
                        .zip(&c.rules)
                        .any(|(oc, r)| oc.as_deref() != Some(fingerprint(r).as_str()))
            })
        })
        .map(|(n, _)| n)
        .collect();
    let gone_chains: Vec<&String> = obs
        .chains
        .keys()
        .filter(|n| !desired.chains.contains_key(*n))
        .collect();
    // 1. empty the chains that change or go (drops their references to sets/chains).
    for n in changed.iter().chain(&gone_chains) {
        b.push(format!("flush chain inet {NFT_TABLE} {n}"));
    }
    // 2. elements out, sets gone.
    let mut adds: Vec<(&String, Vec<&Element>)> = Vec::new();
    for (name, set) in &desired.sets {
        let Some(want) = &set.elements else { continue };
        match obs.sets.get(name) {
            None => adds.push((name, want.iter().collect())),
            Some(o) => match &o.elements {
                SetElements::Digest(d) if Some(*d) == set.digest() => {}
                SetElements::Unknown | SetElements::Digest(_) => {
                    // nft finds a map only when asked for a map.
                    let what = if set.kind.is_map() { "map" } else { "set" };
                    b.push(format!("flush {what} inet {NFT_TABLE} {name}"));
                    adds.push((name, want.iter().collect()));
                }
                SetElements::Known(have) => {
                    let del: Vec<&Element> = have.difference(want).collect();
                    b.push_elements(false, name, &del);
                    adds.push((name, want.difference(have).collect()));
                }
            },
        }
    }
    for (name, o) in &obs.sets {
        if !desired.sets.contains_key(name) {
            let what = if o.signature.contains("|verdict|") {
                "map"
            } else {
                "set"
            };
            b.push(format!("delete {what} inet {NFT_TABLE} {name}"));
        }
    }
    // 3. chains gone.
    for n in &gone_chains {
        b.push(format!("delete chain inet {NFT_TABLE} {n}"));
    }
    // 4. new chains, then new sets (see create_all for the order).
    let mut new_chains = Vec::new();
    for (name, c) in &desired.chains {
        if !obs.chains.contains_key(name) {
            new_chains.push(name);
            match &c.base {
                Some(base) => b.push(format!(
                    "add chain inet {NFT_TABLE} {name} {}",
                    base_decl(base)
                )),
                None => b.push(format!("add chain inet {NFT_TABLE} {name}")),
            }
        }
    }
    for (name, set) in &desired.sets {
        if !obs.sets.contains_key(name) {
            let what = if set.kind.is_map() { "map" } else { "set" };
            b.push(format!(
                "add {what} inet {NFT_TABLE} {name} {{ {} }}",
                set.kind.declaration()
            ));
        }
    }
    // 5. elements in (their verdicts may jump to the new chains).
    for (name, els) in adds {
        b.push_elements(true, name, &els);
    }
    // 6. rules of new and changed chains.
    for n in new_chains.into_iter().chain(changed) {
        for r in &desired.chains[n].rules {
            b.push(rule_line(n, r));
        }
    }
    b
}
