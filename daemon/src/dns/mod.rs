//! The resolver: answers the clients' DNS, resolves each name the way its traffic
//! will leave, and puts the answer's addresses into the matching rule's nft set
//! before the answer goes back.

pub mod cache;
pub mod cli;
pub mod matcher;
pub mod resolver;
pub mod rules;
pub mod upstream;
pub mod wire;

pub use resolver::{Resolver, StatsSnapshot};
