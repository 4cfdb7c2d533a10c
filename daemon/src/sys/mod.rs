//! The only code that talks to the kernel.

pub mod nftnl;
