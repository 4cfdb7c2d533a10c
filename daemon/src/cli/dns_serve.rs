//! `wgsplit dns-serve`: the resolver alone, for tests and benchmarks (the daemon
//! runs the same resolver beside the engine). Not in the help text.
//!
//! `wgsplit [--config PATH] dns-serve [--listen IP:PORT]... [--stats FILE]
//!  [--client-rate QPS[/BURST]]`
//! SIGHUP reloads the config; SIGUSR1 writes the counters (JSON) to FILE;
//! SIGTERM/SIGINT write them and exit. `--client-rate` replaces the per-client
//! rate limit (the benchmarks measure the resolver, from one client).
//!
//! As in the daemon, the resolver runs on a thread of its own: the signals are
//! handled on this one whatever the query load.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use lexopt::{Arg, Parser, ValueExt};
use tokio::signal::unix::{SignalKind, signal};

use crate::dns::{Resolver, on_own_thread};
use crate::{
    cli::{CmdResult, Context},
    policy,
};

pub fn serve_command(parser: &mut Parser, ctx: &Context) -> CmdResult {
    let mut listen: Vec<SocketAddr> = Vec::new();
    let mut stats: Option<PathBuf> = None;
    let mut client_rate: Option<(u32, u32)> = None;
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
            Arg::Long("client-rate") => {
                let v = parser.value().map_err(|e| e.to_string())?;
                let v = v.string().map_err(|e| e.to_string())?;
                client_rate = Some(parse_rate(&v).ok_or_else(|| {
                    format!("--client-rate: '{v}' is not QPS or QPS/BURST (whole numbers > 0)")
                })?);
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
        let resolver = Resolver::new(Arc::new(policy));
        if let Some((rate, burst)) = client_rate {
            resolver.set_client_rate(rate, burst);
        }
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
        let serving = resolver.clone();
        let addrs = listen.clone();
        let mut serve = on_own_thread(move || async move {
            serving
                .serve_on_owned(addrs)
                .await
                .map_err(|e| e.to_string())
        })?;
        eprintln!("dns-serve: listening on {listen:?}");
        loop {
            tokio::select! {
                r = &mut serve => {
                    return r.unwrap_or_else(|_| Err("resolver thread ended".into())).map_err(Into::into)
                }
                _ = hup.recv() => match ctx.load() {
                    Ok(c) => {
                        resolver.update(Arc::new(policy::compile(&c, crate::util::time::now_unix())));
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

/// `QPS` or `QPS/BURST` (the burst defaults to five seconds' worth).
fn parse_rate(text: &str) -> Option<(u32, u32)> {
    let (rate, burst) = match text.split_once('/') {
        Some((r, b)) => (r.parse().ok()?, b.parse().ok()?),
        None => {
            let r: u32 = text.parse().ok()?;
            (r, r.saturating_mul(5))
        }
    };
    (rate > 0 && burst > 0).then_some((rate, burst))
}

#[cfg(test)]
mod tests {
    #[test]
    fn parse_rate() {
        assert_eq!(super::parse_rate("200"), Some((200, 1000)));
        assert_eq!(super::parse_rate("10/3"), Some((10, 3)));
        assert_eq!(super::parse_rate("0"), None);
        assert_eq!(super::parse_rate("5/x"), None);
    }
}
