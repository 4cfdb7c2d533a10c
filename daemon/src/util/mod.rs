//! Leaf helpers: they import nothing of the crate.

pub mod fmt;
pub mod fs;
pub mod keys;
pub mod lock;
pub mod log;
pub mod msgcode;
pub mod paths;
pub mod ranges;
pub mod time;

pub use log::say;
