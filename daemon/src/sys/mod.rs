//! The only code that touches the kernel: observe it, apply a plan to it (rolling
//! back on failure), remove what wgsplit created.

pub mod net;
pub mod nft;
pub mod nftelem;
pub mod nftnl;
pub mod wg;

use std::{
    collections::BTreeMap,
    fmt,
    net::{SocketAddr, ToSocketAddrs},
    time::Instant,
};

use crate::{
    config::{Backend, Config, types::parse_endpoint},
    plan::{self, Desired, Inputs, Observed, Op, nft::NftState},
    policy::Policy,
};

/// A failed apply: which step, why, and whether the rollback worked.
#[derive(Debug)]
pub struct ApplyError {
    pub step: String,
    pub reason: String,
    pub rollback: Vec<String>,
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step failed: {}\n  reason: {}", self.step, self.reason)?;
        if self.rollback.is_empty() {
            write!(f, "\n  rolled back: the kernel is as it was before")
        } else {
            write!(f, "\n  rollback incomplete:")?;
            for r in &self.rollback {
                write!(f, "\n    {r}")?;
            }
            Ok(())
        }
    }
}

/// What an apply did.
#[derive(Debug, Default)]
pub struct Report {
    pub ops: Vec<Op>,
    pub millis: f64,
}

pub struct Engine {
    pub net: net::Net,
    pub backend: Backend,
}

/// Resolves upstream endpoints (host names through the system resolver).
pub fn resolve_endpoints(config: &Config) -> BTreeMap<String, SocketAddr> {
    let mut out = BTreeMap::new();
    for u in &config.upstreams {
        let Some(ep) = u.endpoint.as_deref() else {
            continue;
        };
        let Ok((host, port)) = parse_endpoint(ep) else {
            continue;
        };
        let addr = host
            .parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, port))
            .or_else(|| {
                (host.as_str(), port)
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut a| a.next())
            });
        match addr {
            Some(a) => {
                out.insert(u.name.clone(), a);
            }
            None => log::warn!("upstream {}: cannot resolve endpoint {ep}", u.name),
        }
    }
    out
}

impl Engine {
    pub fn new(backend: Backend) -> Result<Self, String> {
        Ok(Self {
            net: net::Net::new()?,
            backend,
        })
    }

    /// Reads everything the plan compares. `wg_names`: the WireGuard devices to read.
    pub async fn observe(&self, desired: Option<&Desired>) -> Result<Observed, String> {
        let links = self.net.links().await?;
        let names: BTreeMap<u32, String> =
            links.iter().map(|(n, l)| (l.index, n.clone())).collect();
        let mut obs = Observed {
            rules: self.net.rules().await?,
            routes: self.net.routes(&names).await?,
            ..Default::default()
        };
        if let Some(d) = desired {
            for w in &d.wg {
                if links.contains_key(&w.name)
                    && let Some(mut dev) = wg::get(&w.name, self.backend)
                {
                    for p in &mut dev.peers {
                        p.label = w
                            .peers
                            .iter()
                            .find(|x| x.public_key == p.public_key)
                            .map_or_else(|| "not in config".to_string(), |x| x.label.clone());
                    }
                    obs.wg.insert(w.name.clone(), dev);
                }
            }
        }
        obs.links = links
            .into_iter()
            .filter(|(n, l)| l.ours || desired.is_some_and(|d| d.wg.iter().any(|w| &w.name == n)))
            .collect();
        if let Some((mut n, handles)) = nft::list()? {
            nft::merge_recorded(&mut n, &handles, nft::load_recorded().as_ref());
            obs.nft = Some(n);
        }
        Ok(obs)
    }

    /// Desired state for a config (endpoints resolved, health defaulted).
    pub fn desired(config: &Config, policy: &Policy, mut inputs: Inputs) -> Desired {
        if inputs.endpoints.is_empty() {
            inputs.endpoints = resolve_endpoints(config);
        }
        plan::desired(config, policy, &inputs)
    }

    /// Plans against the kernel as it is now.
    pub async fn plan(&self, desired: &Desired) -> Result<(Observed, Vec<Op>), String> {
        let obs = self.observe(Some(desired)).await?;
        match plan::plan(desired, &obs) {
            Ok(ops) => Ok((obs, ops)),
            Err(refusals) => Err(format!(
                "refusing to apply, nothing was changed:\n  {}",
                refusals
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n  ")
            )),
        }
    }

    async fn run(&self, op: &Op) -> Result<(), String> {
        let b = self.backend;
        match op {
            Op::CreateLink { name } => {
                wg::create(name, b)?;
                self.net.set_alias(name).await
            }
            Op::WgDevice {
                name,
                private_key,
                listen_port,
            } => wg::set_device(name, b, private_key, *listen_port),
            Op::WgPeerSet { dev, peer } => wg::set_peer(dev, b, peer),
            Op::WgPeerRemove {
                dev, public_key, ..
            } => wg::remove_peer(dev, b, public_key),
            Op::SetMtu { name, mtu } => self.net.set_mtu(name, *mtu).await,
            Op::AddAddress { name, net } => self.net.add_address(name, *net).await,
            Op::DelAddress { name, net } => self.net.del_address(name, *net).await,
            Op::SetUp { name } => self.net.set_up(name).await,
            Op::AddRoute(r) => self.net.add_route(r).await,
            Op::DelRoute(r) => self.net.del_route(r).await,
            Op::AddRule(r) => self.net.add_rule(r).await,
            Op::DelRule(r) => self.net.del_rule(r).await,
            Op::Nft(batch) => nft::apply_batch(batch).map(|_| ()),
            Op::DeleteLink { name } => {
                // A userspace device dies with its process; a kernel one with the link.
                wg::stop_userspace(name);
                self.net.delete_link(name).await
            }
        }
    }

    /// The operation that undoes `op`, given the state before it.
    fn inverse(op: &Op, obs: &Observed) -> Option<Op> {
        Some(match op {
            Op::CreateLink { name } => Op::DeleteLink { name: name.clone() },
            // The old private key can't be read back from every backend: a
            // failed apply leaves a changed device key in place (reported).
            Op::WgDevice { .. } => return None,
            Op::WgPeerSet { dev, peer } => {
                match obs
                    .wg
                    .get(dev)
                    .and_then(|d| d.peers.iter().find(|p| p.public_key == peer.public_key))
                {
                    Some(old) => Op::WgPeerSet {
                        dev: dev.clone(),
                        peer: old.clone(),
                    },
                    None => Op::WgPeerRemove {
                        dev: dev.clone(),
                        public_key: peer.public_key,
                        label: peer.label.clone(),
                    },
                }
            }
            Op::WgPeerRemove {
                dev, public_key, ..
            } => Op::WgPeerSet {
                dev: dev.clone(),
                peer: obs
                    .wg
                    .get(dev)?
                    .peers
                    .iter()
                    .find(|p| &p.public_key == public_key)?
                    .clone(),
            },
            Op::SetMtu { name, .. } => Op::SetMtu {
                name: name.clone(),
                mtu: obs.links.get(name)?.mtu,
            },
            Op::AddAddress { name, net } => Op::DelAddress {
                name: name.clone(),
                net: *net,
            },
            Op::DelAddress { name, net } => Op::AddAddress {
                name: name.clone(),
                net: *net,
            },
            Op::AddRoute(r) => Op::DelRoute(r.clone()),
            Op::DelRoute(r) => Op::AddRoute(r.clone()),
            Op::AddRule(r) => Op::DelRule(*r),
            Op::DelRule(r) => Op::AddRule(*r),
            // The nft batch is one transaction: it either happened or not. It runs
            // after every step that can fail for a config reason (see plan()).
            Op::SetUp { .. } | Op::Nft(_) | Op::DeleteLink { .. } => return None,
        })
    }

    /// Applies a plan in order. On failure, undoes the steps already done, newest
    /// first, and says which step failed and why.
    pub async fn apply_ops(
        &self,
        ops: &[Op],
        obs: &Observed,
        desired_nft: Option<&NftState>,
    ) -> Result<(), ApplyError> {
        let mut undo: Vec<Op> = Vec::new();
        for op in ops {
            log::debug!("apply: {op}");
            if let Err(reason) = self.run(op).await {
                let mut rollback = Vec::new();
                for u in undo.iter().rev() {
                    if let Err(e) = self.run(u).await {
                        rollback.push(format!("{u}: {e}"));
                    }
                }
                return Err(ApplyError {
                    step: op.to_string().lines().next().unwrap_or("").to_string(),
                    reason,
                    rollback,
                });
            }
            if let Some(inv) = Self::inverse(op, obs) {
                undo.push(inv);
            }
        }
        if let Some(d) = desired_nft
            && ops.iter().any(|o| matches!(o, Op::Nft(_)))
        {
            // Remember what we wrote, keyed by the handles the kernel gave it.
            match nft::list() {
                Ok(Some((_, handles))) => {
                    if let Err(e) = nft::save_recorded(&nft::record_for(d, handles)) {
                        log::warn!("state file: {e}");
                    }
                }
                Ok(None) => nft::forget_recorded(),
                Err(e) => log::warn!("{e}"),
            }
        }
        Ok(())
    }

    /// Observe, plan, apply. Returns the operations done (empty: nothing to do).
    pub async fn apply(&self, desired: &Desired) -> Result<Report, String> {
        let start = Instant::now();
        let (obs, ops) = self.plan(desired).await?;
        if !ops.is_empty() {
            self.apply_ops(&ops, &obs, Some(&desired.nft))
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(Report {
            ops,
            millis: start.elapsed().as_secs_f64() * 1000.0,
        })
    }

    /// Removes everything wgsplit created (table, rules, routes, links), nothing else.
    pub async fn down(&self) -> Result<Vec<Op>, String> {
        let obs = self.observe(None).await?;
        let ops = plan::plan_down(&obs);
        let mut errors = Vec::new();
        for op in &ops {
            if let Err(e) = self.run(op).await {
                errors.push(format!("{op}: {e}"));
            }
        }
        nft::forget_recorded();
        if errors.is_empty() {
            Ok(ops)
        } else {
            Err(errors.join("\n"))
        }
    }
}
