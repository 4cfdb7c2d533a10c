//! The planner: a valid config (and what the kernel looks like now) in, a list of
//! printable operations out. Pure: nothing here touches the kernel, so every
//! decision is unit-tested without root. `sys` observes and applies.
//!
//! Layout of what is planned: see daemon/DESIGN.md (nft table, marks,
//! routing tables, rules).

pub mod desired;
pub mod diff;
pub mod guard;
pub mod nft;
pub mod offload;

/// Our nftables table: `table inet wgsplit` (ours alone: fw4 reloads never touch it).
pub const NFT_TABLE: &str = "wgsplit";

pub use desired::*;
pub use diff::*;

/// The `protocol` number our ip rules and routes carry, so `down` and the diff
/// find exactly what wgsplit created (iproute2 shows it as `proto 87`).
pub const RT_PROTO: u8 = 87;

/// The interface alias (IFLA_IFALIAS) that marks a link as created by wgsplit.
pub const LINK_ALIAS: &str = "wgsplit";

/// A stable 64-bit FNV-1a hash (rule fingerprints kept in nft rule comments).
pub fn fnv64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests;
