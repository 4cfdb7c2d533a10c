//! The resolver: answers the clients' DNS, resolves each name the way its traffic
//! will leave, and puts the answer's addresses into the matching rule's nft set
//! before the answer goes back.

pub mod batch;
pub mod cache;
pub mod cli;
pub mod forward_guard;
pub mod matcher;
pub mod regex;
pub mod resolver;
pub mod rules;
pub mod upstream;
pub mod wire;

pub use resolver::{Resolver, StatsSnapshot};

use std::sync::{Arc, OnceLock};

static CURRENT: OnceLock<Arc<Resolver>> = OnceLock::new();

/// The daemon's resolver, once `serve` started it (for the API's counters).
pub fn current() -> Option<Arc<Resolver>> {
    CURRENT.get().cloned()
}

/// The daemon's DNS service: answers on the configured addresses and follows
/// config reloads (rules, lists and routes in place; listening addresses by
/// re-binding).
pub async fn serve(ctx: crate::daemon::ServiceContext) -> Result<(), String> {
    let mut current = ctx.current.clone();
    let first = current.borrow_and_update().clone();
    let resolver = Resolver::new(&first.0, &first.1);
    let _ = CURRENT.set(resolver.clone());
    loop {
        let addrs = resolver.listen_addrs();
        let serve = resolver.clone().serve_on_owned(addrs.clone());
        tokio::pin!(serve);
        loop {
            tokio::select! {
                r = &mut serve => {
                    // A socket failed (or could not bind): say so, try again soon.
                    log::warn!("dns: {}", r.err().map_or("listeners stopped".to_string(), |e| e.to_string()));
                    eprintln!("wgsplit: dns: listeners stopped, retrying in 5 s");
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    break;
                }
                changed = current.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let next = current.borrow_and_update().clone();
                    resolver.update(&next.0, &next.1);
                    log::info!("dns: config reloaded");
                    if resolver.listen_addrs() != addrs {
                        break;
                    }
                }
            }
        }
    }
}
