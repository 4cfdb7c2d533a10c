//! The REST API (tiny_http, on its own threads inside `wgsplit daemon`).

pub mod auth;
pub mod client;
