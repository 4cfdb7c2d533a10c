//! wgsplit: per-client split tunnelling for WireGuard on the router.
//!
//! The library, in layers (each imports only from those below it; see
//! `daemon/DESIGN.md`, "Rooms"; `tests/lint/layers.py` checks it):
//! - services: `clients` (edits, views, stats), `dns` (the resolver), `health`,
//!   `lists` (rule-list upkeep), over `engine` (observe → plan → apply → record);
//! - pure core: `sources` (rule-data readers), `explain`, `plan` (desired state,
//!   diff), `policy` (the compiled config);
//! - `config` (the model, UCI and JSON, validation, the edit store);
//! - `sys` (the only kernel code) and `util` (leaf helpers).
//!
//! The front ends (`cli`, `api`, `daemon`) are in the binary (`main.rs`).

pub mod clients;
pub mod config;
pub mod dns;
pub mod engine;
pub mod explain;
pub mod health;
pub mod lists;
pub mod plan;
pub mod policy;
pub mod sources;
pub mod sys;
pub mod util;
