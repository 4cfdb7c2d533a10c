//! The names of our chains and sets, and how a name from the config is written
//! into nft text. Decided here once: the planner, `explain` and the tests use
//! these (the resolver's and GeoIP set names are `policy`'s).

use crate::{
    config::validate::is_interface_byte,
    policy::{Policy, Target},
};

/// The chain that marks a target's traffic: `mark_direct`, `mark_block`,
/// `mark_up_<upstream>` (the prefix keeps an upstream from being called `direct`).
pub fn mark_chain(policy: &Policy, target: Target) -> String {
    match target {
        Target::Direct => "mark_direct".into(),
        Target::Block => "mark_block".into(),
        Target::Upstream(i) => format!("mark_up_{}", policy.upstreams[i].name),
    }
}

/// A client's own chain (only when it has rules).
pub fn client_chain(name: &str) -> String {
    format!("client_{name}")
}

/// Name of the interval set holding the destinations that the merged run of
/// pure-CIDR rules starting at `pos` sends to one target (`mark_chain` without
/// its `mark_` prefix: `direct`, `block`, `up_<name>`).
pub fn cidr_set_name(client: &str, pos: usize, target: &str, v6: bool) -> String {
    format!("{client}_r{pos}_{target}_v{}", if v6 { 6 } else { 4 })
}

/// Name of the interval set of one rule's CIDRs (a rule that also matches
/// something else: ports, domains, GeoIP).
pub fn net_set_name(client: &str, pos: usize, v6: bool) -> String {
    format!("{client}_r{pos}_net{}", if v6 { 6 } else { 4 })
}

/// An interface name as an nft string. `config check` lets only
/// [`is_interface_byte`]s through; any other byte is still replaced here by
/// `/`, which no Linux interface name holds: a name that got past validation
/// can neither end the string and add statements of its own (`x";drop#`)
/// nor match some other interface.
pub fn nft_quoted(name: &str) -> String {
    let safe: String = name
        .bytes()
        .map(|b| if is_interface_byte(b) { b as char } else { '/' })
        .collect();
    format!("\"{safe}\"")
}
