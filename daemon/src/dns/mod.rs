//! The resolver: answers the clients' DNS, resolves each name the way its traffic
//! will leave, and puts the answer's addresses into the matching rule's nft set
//! before the answer goes back.

pub mod access;
pub mod batch;
pub mod bypass;
pub mod cache;
pub mod forward_guard;
pub mod limit;
pub mod matcher;
pub mod regex;
pub mod resolver;
pub mod rules;
pub mod upstream;
pub mod wire;
#[cfg(test)]
mod wire_oracle;
#[cfg(test)]
mod wire_oracle_tests;

pub use resolver::{Resolver, StatsSnapshot};

use std::sync::Arc;

use tokio::sync::watch;

use crate::policy::Policy;

/// The running resolver as the DNS service publishes it, for whoever reports
/// on it (the API's `/metrics`): `None` until the service has made it.
pub type Published = watch::Receiver<Option<Arc<Resolver>>>;

/// The daemon's DNS service: answers on the policy's addresses and follows
/// its changes (rules, lists and routes in place; listening addresses by
/// re-binding). `policy` carries every new policy; the resolver, once made,
/// is sent on `publish`.
///
/// The resolver runs on an OS thread of its own with a runtime of its own:
/// whatever a query load does to it (CPU, its tasks), the engine, the health
/// checks and the signal handling on the daemon's runtime go on. This future
/// only waits for that thread (it ends when the policy channel closes).
pub async fn serve(
    policy: watch::Receiver<Arc<Policy>>,
    publish: watch::Sender<Option<Arc<Resolver>>>,
) -> Result<(), String> {
    let done = on_own_thread(move || {
        let mut policy = policy;
        let resolver = Resolver::new(policy.borrow_and_update().clone());
        publish.send_replace(Some(resolver.clone()));
        follow_policy(resolver, policy)
    })?;
    done.await
        .unwrap_or_else(|_| Err("dns: resolver thread ended".into()))
}

/// Runs the future `make` returns on a new thread named `dns` with a
/// current-thread runtime; its result arrives on the receiver.
pub fn on_own_thread<F, Fut>(
    make: F,
) -> Result<tokio::sync::oneshot::Receiver<Result<(), String>>, String>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("dns".into())
        .spawn(move || {
            let result = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(make()),
                Err(e) => Err(format!("dns: runtime: {e}")),
            };
            let _ = tx.send(result);
        })
        .map_err(|e| format!("dns: thread: {e}"))?;
    Ok(rx)
}

/// How often the domain lists' files are looked at (one `stat` each).
const LISTS_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// The size and modification time of every domain list file the resolver
/// loads (the rules' and `server.doh_list`'s): a `lists update` (the daemon's
/// schedule, or "update now" from the CLI, LuCI) replaces a file, and the
/// resolver takes it in without a config change.
fn lists_stamp(policy: &Policy) -> Vec<Option<(u64, std::time::SystemTime)>> {
    policy
        .dns
        .lists
        .iter()
        .chain(&policy.dns.doh_lists)
        .map(|l| {
            let m = std::fs::metadata(&l.path).ok()?;
            Some((m.len(), m.modified().ok()?))
        })
        .collect()
}

/// Serves and follows the policy until its channel closes.
async fn follow_policy(
    resolver: Arc<Resolver>,
    mut current: watch::Receiver<Arc<Policy>>,
) -> Result<(), String> {
    let mut stamp = lists_stamp(&current.borrow());
    let mut check = tokio::time::interval(LISTS_CHECK_EVERY);
    loop {
        let addrs = resolver.listen_addrs();
        let serve = resolver.clone().serve_on_owned(addrs.clone());
        tokio::pin!(serve);
        loop {
            tokio::select! {
                _ = check.tick() => {
                    let policy = current.borrow().clone();
                    let now = lists_stamp(&policy);
                    if now != stamp {
                        stamp = now;
                        resolver.update(policy);
                        log::info!("dns: a list file changed, lists reloaded");
                    }
                }
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
                    stamp = lists_stamp(&next);
                    resolver.update(next);
                    log::info!("dns: config reloaded");
                    if resolver.listen_addrs() != addrs {
                        break;
                    }
                }
            }
        }
    }
}
