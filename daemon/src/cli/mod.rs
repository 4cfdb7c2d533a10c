//! The command line: global options, then one subcommand. Parsed with lexopt
//! (a few KB) rather than clap (~300 KB) because flash is the scarce resource.

use std::{io::Read, path::PathBuf, process::ExitCode};

use lexopt::{Arg, Parser, ValueExt};

mod args;
mod client;
pub mod daemon_link;
mod dns_serve;
mod engine;
mod fw4;
mod help;
mod lists;
mod overview;

use crate::{config, util::keys};
pub use args::{CmdResult, Context, Failure, positional_and_flags, read_input};

pub const HELP: &str = "\
wgsplit — per-client split tunnelling for WireGuard on the router

Usage: wgsplit [--config PATH] <command> [arguments]

Config:
  config check              validate the config; print every problem, exit 1 if any
  config export             print the whole config as JSON
  config import FILE|-      validate JSON and write it as the UCI config

Kernel:
  apply [--dry-run]         make the kernel match the config (--dry-run prints the plan)
  down                      remove everything wgsplit created
  daemon                    apply, keep the state true, answer DNS, serve the API
  status [--json]           interfaces, upstream health, clients
  overview --json           status, clients and upstreams in one answer (for the LuCI pages)
  fw4-include               the forward rules fw4 includes for the wgsplit zone (upstream names, marks)
  explain CLIENT DEST       which way DEST (address, addr:port/proto, domain) goes, and why

Rule sources:
  lists update|show|load    fetch and check GeoIP/domain lists, show them, load the country sets

Clients and upstreams:
  client ...                add, list, show, set, enable, disable, rename, remove, conf, qr
  upstream ...              import, list, show, set, enable, disable, remove (see upstream --help)
  api [--listen ADDR]       serve the REST API alone (no kernel changes)

Keys:
  genkey                    print a new private key
  pubkey                    read a private key on stdin, print its public key

Options:
  -c, --config PATH         config file (default $WGSPLIT_CONFIG or /etc/config/wgsplit)
  -h, --help                this help
  -V, --version             the version
  --json-errors             an error as one JSON line on stderr: error, code, args, problems
";

pub fn main() -> ExitCode {
    crate::util::log::init();
    let argv: Vec<String> = std::env::args().collect();
    if let Some(usage) = help::asked(&argv).and_then(help::usage_of) {
        println!("{usage}");
        return ExitCode::SUCCESS;
    }
    let mut parser = Parser::from_env();
    let mut json_errors = false;
    match run(&mut parser, &mut json_errors) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if json_errors {
                // the rpcd plugin's form: pages translate by code (util::msgcode)
                eprintln!("{}", crate::util::msgcode::error_line(&f.message));
            } else if !f.message.is_empty() {
                eprintln!("wgsplit: {}", f.message.trim_end());
            }
            ExitCode::from(f.code)
        }
    }
}

fn run(parser: &mut Parser, json_errors: &mut bool) -> CmdResult {
    let mut config_flag = None;
    let command = loop {
        match parser.next().map_err(|e| e.to_string())? {
            Some(Arg::Long("json-errors")) => *json_errors = true,
            Some(Arg::Short('c') | Arg::Long("config")) => {
                config_flag = Some(PathBuf::from(parser.value().map_err(|e| e.to_string())?));
            }
            Some(Arg::Short('h') | Arg::Long("help")) => {
                print!("{HELP}");
                return Ok(());
            }
            Some(Arg::Short('V') | Arg::Long("version")) => {
                println!("wgsplit {}", env!("CARGO_PKG_VERSION"));
                return Ok(());
            }
            Some(Arg::Value(v)) => break v.string().map_err(|e| e.to_string())?,
            Some(other) => return Err(other.unexpected().to_string().into()),
            None => {
                print!("{HELP}");
                return Err(Failure {
                    message: String::new(),
                    code: 2,
                });
            }
        }
    };
    let ctx = Context {
        config_path: config::resolve_path(config_flag),
    };
    if !matches!(command.as_str(), "daemon" | "api" | "dns-serve") {
        // Piped into `head`, a command ends quietly as Unix tools do (Rust ignores
        // SIGPIPE, and print! would panic). The servers keep it ignored: a client
        // closing its socket must not kill them.
        // SAFETY: signal(2) with a valid signal number and the default action.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    match command.as_str() {
        "config" => config_command(parser, &ctx),
        "lists" => lists::lists_command(parser, &ctx),
        "client" => client::client_command(parser, &ctx),
        "upstream" => client::upstream_command(parser, &ctx),
        "api" => client::api_command(parser, &ctx),
        "genkey" => {
            println!("{}", keys::encode(&keys::generate_private()));
            Ok(())
        }
        "pubkey" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| e.to_string())?;
            let private = config::types::parse_key(&text)?;
            println!("{}", keys::encode(&keys::public_from_private(&private)));
            Ok(())
        }
        // Hidden: the resolver alone, for tests and benchmarks.
        "dns-serve" => dns_serve::serve_command(parser, &ctx),
        "apply" => engine::cmd_apply(parser, &ctx),
        "down" => engine::cmd_down(parser, &ctx),
        "daemon" => cmd_daemon(parser, &ctx),
        "status" => engine::cmd_status(parser, &ctx),
        "overview" => overview::cmd_overview(parser, &ctx),
        "fw4-include" => fw4::cmd_fw4_include(parser, &ctx),
        "explain" => engine::cmd_explain(parser, &ctx),
        "help" => {
            print!("{HELP}");
            Ok(())
        }
        other => Err(Failure {
            message: format!("unknown command '{other}'; see 'wgsplit --help'"),
            code: 2,
        }),
    }
}

fn config_command(parser: &mut Parser, ctx: &Context) -> CmdResult {
    let (args, _) = positional_and_flags(parser, &[])?;
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["check"] => {
            let config = ctx.load()?;
            eprintln!(
                "{}: ok ({} upstreams, {} clients, {} rules)",
                ctx.config_path.display(),
                config.upstreams.len(),
                config.clients.len(),
                config.rules.len()
            );
            Ok(())
        }
        ["export"] => {
            print!("{}", config::to_json(&ctx.load()?));
            Ok(())
        }
        ["import", file] => {
            let text = read_input(file)?;
            let config = config::from_json(&text).map_err(|e| e.to_string())?;
            let config = config::check(config).map_err(|e| e.to_string())?;
            config::save(&ctx.config_path, &config).map_err(|e| e.to_string())?;
            eprintln!("wrote {}", ctx.config_path.display());
            Ok(())
        }
        _ => Err(Failure {
            message: "usage: wgsplit config check | export | import FILE|-".into(),
            code: 2,
        }),
    }
}

/// `wgsplit daemon`
fn cmd_daemon(parser: &mut Parser, ctx: &Context) -> CmdResult {
    let (args, _) = positional_and_flags(parser, &[])?;
    if !args.is_empty() {
        return Err("usage: wgsplit daemon".into());
    }
    let config = ctx.load()?;
    crate::daemon::run(ctx.config_path.clone(), config).map_err(Failure::from)
}
