//! wgsplit: per-client split tunnelling for WireGuard on the router.
//!
//! `config` is the model and its storage; `plan` turns a config into desired
//! kernel state and diffs it (pure); `sys` is the only code that touches the
//! kernel; `dns` answers queries and fills the sets; `api` serves HTTP.

pub mod api;
pub mod cli;
pub mod clients;
pub mod config;
pub mod daemon;
pub mod dns;
pub mod explain;
pub mod health;
pub mod plan;
pub mod policy;
pub mod sources;
pub mod sys;
pub mod util;
