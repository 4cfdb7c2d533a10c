//! The `wgsplit` binary: the front ends (the command line, the REST API and the
//! daemon) over the library. They live here, not in the library, so the compiler
//! refuses any library → front-end import.

mod api;
mod cli;
mod daemon;

// The library's modules, under the names the front ends use (`crate::config`, …).
use wgsplit::{
    clients, config, dns, engine, explain, health, lists, plan, policy, sources, sys, util,
};

fn main() -> std::process::ExitCode {
    cli::main()
}
