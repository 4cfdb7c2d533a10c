//! `wgsplit dns-serve`: the resolver alone, for tests and benchmarks (the daemon
//! runs the same resolver beside the engine). Not in the help text.
//!
//! `wgsplit [--config PATH] dns-serve [--listen IP:PORT]... [--stats FILE]`
//! SIGHUP reloads the config; SIGUSR1 writes the counters (JSON) to FILE;
//! SIGTERM/SIGINT write them and exit.

use std::{net::SocketAddr, path::PathBuf};

use lexopt::{Arg, Parser, ValueExt};
use tokio::signal::unix::{SignalKind, signal};

use crate::dns::Resolver;
use crate::{
    cli::{CmdResult, Context},
    policy,
};

pub fn serve_command(parser: &mut Parser, ctx: &Context) -> CmdResult {
    let mut listen: Vec<SocketAddr> = Vec::new();
    let mut stats: Option<PathBuf> = None;
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Arg::Long("listen") => {
                let v = parser.value().map_err(|e| e.to_string())?;
                let v = v.string().map_err(|e| e.to_string())?;
                listen.push(
                    v.parse()
                        .map_err(|_| format!("--listen: '{v}' is not IP:PORT"))?,
                );
            }
            Arg::Long("stats") => {
                stats = Some(PathBuf::from(parser.value().map_err(|e| e.to_string())?));
            }
            other => return Err(other.unexpected().to_string().into()),
        }
    }
    let config = ctx.load()?;
    let policy = policy::compile(&config, crate::util::time::now_unix());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let resolver = Resolver::new(&config, &policy);
        if listen.is_empty() {
            listen = resolver.listen_addrs();
        }
        let write_stats = |r: &Resolver| {
            let json = serde_json::to_string(&r.stats()).unwrap_or_default();
            match &stats {
                Some(p) => {
                    let _ = std::fs::write(p, json + "\n");
                }
                None => println!("{json}"),
            }
        };
        let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
        let mut usr1 = signal(SignalKind::user_defined1()).map_err(|e| e.to_string())?;
        let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
        let serve = resolver.clone().serve_on(&listen);
        tokio::pin!(serve);
        eprintln!("dns-serve: listening on {listen:?}");
        loop {
            tokio::select! {
                r = &mut serve => return r.map_err(|e| e.to_string().into()),
                _ = hup.recv() => match ctx.load() {
                    Ok(c) => {
                        resolver.update(&c, &policy::compile(&c, crate::util::time::now_unix()));
                        eprintln!("dns-serve: reloaded");
                    }
                    Err(e) => eprintln!("dns-serve: reload failed, keeping the old config: {e}"),
                },
                _ = usr1.recv() => write_stats(&resolver),
                _ = term.recv() => { write_stats(&resolver); return Ok(()); }
                _ = int.recv() => { write_stats(&resolver); return Ok(()); }
            }
        }
    })
}
