//! The nftables side of the plan: the desired `table inet wgsplit` as data, and the
//! difference between two of them as one transaction.
//!
//! - `names`: the names of our chains and sets, and quoting for nft text;
//! - `element`: set elements as typed values (their nft text, their digest);
//! - `table`: the table as data (sets, chains, rule texts);
//! - `cidr_runs` and `desired`: the table built from the compiled policy;
//! - `observed`: what the kernel holds, as far as the diff needs it;
//! - `diff` and `batch`: the difference, as one transaction.
//!
//! Set elements are diffed against what the engine applied last (kept by `sys`);
//! sets whose elements others fill (DNS-learned, GeoIP) are never touched.

mod batch;
mod cidr_runs;
mod desired;
mod diff;
mod element;
mod names;
mod observed;
mod table;

pub use batch::{ELEMENTS_PER_LINE, ElementChange, NftBatch, NftCommand};
pub use cidr_runs::{disjoint_ranges, is_pure_cidr};
pub use desired::desired;
pub use diff::diff;
pub use element::{AddrRange, BadElement, Element, set_digest};
pub use names::{cidr_set_name, client_chain, mark_chain, net_set_name, nft_quoted};
pub use observed::{ObservedChain, ObservedNft, ObservedSet, SetElements, as_observed};
pub use table::{BaseChain, NftChain, NftSet, NftState, SetKind, fingerprint};
