//! The resolver: answers the clients' DNS, resolves each name the way its traffic
//! will leave, and puts the answer's addresses into the matching rule's nft set
//! before the answer goes back.

pub mod matcher;
pub mod rules;
