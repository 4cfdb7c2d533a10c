//! The engine: observe the kernel, plan against the desired state, apply the
//! difference (rolling back on failure), record what was written; and remove
//! what wgsplit created. The only module that uses both `plan` and `sys`.

pub mod apply;

use std::{
    collections::BTreeMap,
    fmt,
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::{Notify, watch};

use crate::{
    config::{Backend, Config, types::parse_endpoint},
    plan::{self, Desired, Inputs, Observed, Op, nft::NftState},
    policy::Policy,
    sys::{
        lookup::{self, Answer, Reply},
        net, nft, nftnl, thread_cpu_ms, wg,
    },
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
    pub observe_ms: f64,
    pub plan_ms: f64,
    pub kernel_ms: f64,
    /// Netlink requests sent (dumps count one each; nft's own cache reads and
    /// the userspace WireGuard socket are not netlink and not counted).
    pub netlink_requests: usize,
    /// CPU time of this thread during the apply (child `nft` processes excluded):
    /// the engine's own work, whatever else the machine is doing.
    pub cpu_ms: f64,
}

/// Netlink requests an operation sends (see `Report::netlink_requests`).
fn requests_of(op: &Op, backend: Backend) -> usize {
    let wg = usize::from(backend == Backend::Kernel);
    match op {
        Op::CreateLink { .. } => 2 + wg,
        Op::WgDevice { .. } | Op::WgPeerSet { .. } | Op::WgPeerRemove { .. } => wg,
        Op::SetMtu { .. } | Op::SetUp { .. } | Op::AddAddress { .. } => 2,
        Op::DelAddress { .. } => 3,
        Op::AddRoute(r) | Op::DelRoute(r) => {
            1 + usize::from(matches!(r.kind, plan::RouteKind::Dev(_)))
        }
        Op::AddRule(_) | Op::DelRule(_) => 1,
        // The element batch's own messages are counted as sent (`element_messages`).
        Op::Nft(b) => {
            let structure = b.structure_commands();
            structure + 2 * usize::from(structure > 0)
        }
        Op::DeleteLink { .. } => 2,
    }
}

/// The plan, or why it can't be applied (nothing changed).
fn plan_or_refuse(desired: &Desired, obs: &Observed) -> Result<Vec<Op>, String> {
    plan::plan(desired, obs).map_err(|refusals| {
        format!(
            "refusing to apply, nothing was changed:\n  {}",
            refusals
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        )
    })
}

/// Requests of one observation: link, address, 2 rule and 2 route dumps, and
/// the nf_tables dumps of our table (tables, sets, chains, rules).
pub const OBSERVE_REQUESTS: usize = 6 + 4;

pub struct Engine {
    pub net: net::Net,
    /// One nf_tables socket for the engine's life: listing and element batches
    /// share it (opening and closing one per apply costs ~10 ms in the kernel's
    /// socket release after a batch).
    nft_sock: std::sync::Mutex<Option<nftnl::NftSock>>,
    /// Netlink messages of the element batches sent since the last report.
    element_messages: std::sync::atomic::AtomicUsize,
    pub backend: Backend,
    /// Handles seen by the last observation.
    handles: std::sync::Mutex<Option<nft::Handles>>,
    /// The kernel as the last successful apply left it (for incremental applies).
    last: std::sync::Mutex<Option<Observed>>,
    /// Whether to keep `last`: a one-shot command applies once and exits, and
    /// copying 1,000 sets' state for nobody costs it ~0.5 ms.
    keep_last: bool,
}

/// How old a looked-up address may be for an apply to use it without asking
/// again (the daemon plans every 2 s; re-resolving a stale handshake's name
/// belongs to the health monitor).
pub const LOOKUP_FRESH: Duration = Duration::from_secs(60);

/// How long a one-shot command waits for host-name endpoints to resolve.
pub const ONE_SHOT_WAIT: Duration = Duration::from_secs(3);

/// Upstream endpoints as far as they are known: addresses as written, host
/// names through the background lookups (`sys::lookup`), waiting at most
/// `wait` in all for answers not in yet. The daemon waits for none: a peer
/// without an address gets none now, and the health monitor publishes the
/// address (and asks for a re-apply) when its lookup lands.
pub fn resolve_endpoints(config: &Config, wait: Duration) -> BTreeMap<String, SocketAddr> {
    let until = Instant::now() + wait;
    let since = Instant::now().checked_sub(LOOKUP_FRESH);
    let mut out = BTreeMap::new();
    let mut names = Vec::new();
    for u in &config.upstreams {
        let Some(ep) = u.endpoint.as_deref() else {
            continue;
        };
        let Ok((host, port)) = parse_endpoint(ep) else {
            continue;
        };
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            out.insert(u.name.clone(), SocketAddr::new(ip, port));
        } else {
            // Every lookup starts before any wait: they run side by side.
            lookup::ask(&host, port, since);
            names.push((u.name.clone(), host, port, ep));
        }
    }
    for (name, host, port, ep) in names {
        match lookup::wait(&host, port, since, until) {
            Reply::Fresh(a) => match a.result {
                Ok(addr) => {
                    out.insert(name, addr);
                }
                Err(e) => log::warn!("upstream {name}: cannot resolve endpoint {ep}: {e}"),
            },
            // Known from before: better than no address while the new lookup runs.
            Reply::Pending {
                last: Some(Answer {
                    result: Ok(addr), ..
                }),
            } => {
                out.insert(name, addr);
            }
            Reply::Pending { .. } => {
                log::debug!("upstream {name}: {ep} is being looked up; no endpoint yet");
            }
        }
    }
    out
}

impl Engine {
    pub fn new(backend: Backend) -> Result<Self, String> {
        Ok(Self {
            net: net::Net::new()?,
            nft_sock: std::sync::Mutex::new(None),
            element_messages: std::sync::atomic::AtomicUsize::new(0),
            backend,
            handles: std::sync::Mutex::new(None),
            last: std::sync::Mutex::new(None),
            keep_last: true,
        })
    }

    /// An engine for one apply (a command that exits after it): it does not
    /// keep the applied state for incremental applies that will never come.
    pub fn new_one_shot(backend: Backend) -> Result<Self, String> {
        Ok(Self {
            keep_last: false,
            ..Self::new(backend)?
        })
    }

    /// Runs `f` on the engine's nf_tables socket (opened on first use).
    fn with_nft<T>(
        &self,
        f: impl FnOnce(&mut nftnl::NftSock) -> Result<T, String>,
    ) -> Result<T, String> {
        let mut guard = self.nft_sock.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(nftnl::NftSock::open().map_err(|e| format!("nf_tables socket: {e}"))?);
        }
        f(guard.as_mut().expect("opened above"))
    }

    fn take_element_messages(&self) -> usize {
        self.element_messages
            .swap(0, std::sync::atomic::Ordering::Relaxed)
    }

    /// Reads everything the plan compares. `wg_names`: the WireGuard devices to read.
    pub async fn observe(&self, desired: Option<&Desired>) -> Result<Observed, String> {
        self.observe_with_record(desired).await.map(|(obs, _)| obs)
    }

    /// `observe`, and the record of the engine's last write as it was read for it
    /// (an apply holding the lock saves over it without reading it again).
    async fn observe_with_record(
        &self,
        desired: Option<&Desired>,
    ) -> Result<(Observed, Option<nft::Recorded>), String> {
        let t0 = Instant::now();
        let links = self.net.links().await?;
        let names: BTreeMap<u32, String> =
            links.iter().map(|(n, l)| (l.index, n.clone())).collect();
        let mut obs = Observed {
            rules: self.net.rules().await?,
            routes: self.net.routes(&names).await?,
            ..Default::default()
        };
        // The WireGuard devices are read on a second thread while this one lists
        // nf_tables: a userspace device answers through another process, so
        // the two waits overlap.
        let backend = self.backend;
        let t_links = t0.elapsed();
        let read_wg = || -> Result<BTreeMap<String, plan::ObservedWg>, String> {
            let t = Instant::now();
            let mut out = BTreeMap::new();
            for w in desired.map_or(&[][..], |d| &d.wg[..]) {
                if !links.contains_key(&w.name) {
                    continue;
                }
                // A device that is there but silent fails this observation (the
                // next round reads it again); taken for missing, the plan would
                // start a second userspace device on the same interface.
                let read = wg::get(&w.name, backend).map_err(|e| {
                    format!("WireGuard device {e} (not re-created while it does not answer)")
                })?;
                if let Some(mut dev) = read {
                    let labels: BTreeMap<&[u8; 32], &String> =
                        w.peers.iter().map(|x| (&x.public_key, &x.label)).collect();
                    for p in &mut dev.peers {
                        p.label = labels
                            .get(&p.public_key)
                            .map_or_else(|| "not in config".to_string(), |l| (*l).clone());
                    }
                    out.insert(w.name.clone(), dev);
                }
            }
            log::debug!("observe: WireGuard devices read in {:?}", t.elapsed());
            Ok(out)
        };
        let (wg_devices, listed) = std::thread::scope(|s| {
            let wg_thread = s.spawn(read_wg);
            let t = Instant::now();
            let listed = self.with_nft(nft::list).map(|l| {
                let t_list = t.elapsed();
                l.map(|(mut n, handles)| {
                    let recorded = nft::load_recorded();
                    nft::merge_recorded(&mut n, &handles, recorded.as_ref());
                    let t_merge = t.elapsed();
                    if let Some(d) = desired {
                        nft::load_changed_sets(&mut n, &d.nft);
                    }
                    log::debug!(
                        "observe: links, rules, routes {t_links:?}; nf_tables listed in \
                         {t_list:?}, record merged at {t_merge:?}, changed sets read at {:?}",
                        t.elapsed()
                    );
                    (n, handles, recorded)
                })
            });
            let wg = wg_thread
                .join()
                .unwrap_or_else(|_| Err("WireGuard devices: the reading thread panicked".into()));
            (wg, listed)
        });
        obs.wg = wg_devices?;
        obs.links = links
            .into_iter()
            .filter(|(n, l)| l.ours || desired.is_some_and(|d| d.wg.iter().any(|w| &w.name == n)))
            .collect();
        let mut recorded = None;
        if let Some((n, handles, rec)) = listed? {
            obs.nft = Some(n);
            recorded = rec;
            *self.handles.lock().unwrap_or_else(|e| e.into_inner()) = Some(handles);
        } else {
            *self.handles.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        Ok((obs, recorded))
    }

    /// Desired state for a compiled config and its inputs (the caller fills
    /// the endpoints: `resolve_endpoints`).
    pub fn desired(policy: &Policy, inputs: &Inputs) -> Desired {
        plan::desired(policy, inputs)
    }

    /// Plans against the kernel as it is now.
    pub async fn plan(&self, desired: &Desired) -> Result<(Observed, Vec<Op>), String> {
        let obs = self.observe(Some(desired)).await?;
        let ops = plan_or_refuse(desired, &obs)?;
        Ok((obs, ops))
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
            Op::WgPeerSet { dev, peer } => wg::set_peers(dev, b, &[peer]),
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
            Op::Nft(batch) => {
                let sent = self.with_nft(|s| nft::apply_batch(s, batch))?;
                self.element_messages
                    .fetch_add(sent, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
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
            Op::AddRule(r) => Op::DelRule(r.clone()),
            Op::DelRule(r) => Op::AddRule(r.clone()),
            // The nft batch is one transaction: it either happened or not. It runs
            // after every step that can fail for a config reason (see plan()).
            Op::SetUp { .. } | Op::Nft(_) | Op::DeleteLink { .. } => return None,
        })
    }

    /// Applies a plan in order. On failure, undoes the steps already done, newest
    /// first, and says which step failed and why.
    /// `recorded`: the record as this apply's observation read it (`None`: read
    /// it now, e.g. an incremental apply that observed nothing).
    pub async fn apply_ops(
        &self,
        ops: &[Op],
        obs: &Observed,
        desired_nft: Option<&NftState>,
        recorded: Option<nft::Recorded>,
    ) -> Result<(), ApplyError> {
        let mut undo: Vec<Op> = Vec::new();
        let mut i = 0;
        while i < ops.len() {
            let op = &ops[i];
            log::debug!("apply: {op}");
            // Consecutive peers of one device go in one update.
            let mut n = 1;
            let result = if let Op::WgPeerSet { dev, .. } = op {
                let mut peers = Vec::new();
                while let Some(Op::WgPeerSet { dev: d, peer }) = ops.get(i + peers.len())
                    && d == dev
                {
                    peers.push(peer);
                }
                n = peers.len();
                wg::set_peers(dev, self.backend, &peers)
            } else {
                self.run(op).await
            };
            if let Err(reason) = result {
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
            for done in &ops[i..i + n] {
                if let Some(inv) = Self::inverse(done, obs) {
                    undo.push(inv);
                }
            }
            i += n;
        }
        if let Some(d) = desired_nft
            && let Some(Op::Nft(batch)) = ops.iter().find(|o| matches!(o, Op::Nft(_)))
        {
            // Remember what we wrote, keyed by the handles the kernel gave it. An
            // element-only change keeps every handle: no need to list again.
            let known = self
                .handles
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let handles = match known {
                Some(h) if batch.elements_only() => Ok(Some(h)),
                _ => self.with_nft(nft::list).map(|l| l.map(|(_, h)| h)),
            };
            match handles {
                Ok(Some(h)) => {
                    let old = recorded.or_else(nft::load_recorded);
                    if let Err(e) = nft::save_recorded(d, h.clone(), old.as_ref()) {
                        log::warn!("state file: {e}");
                        nft::forget_recorded();
                    }
                    *self.handles.lock().unwrap_or_else(|e| e.into_inner()) = Some(h);
                }
                Ok(None) => nft::forget_recorded(),
                Err(e) => {
                    log::warn!("{e}");
                    nft::forget_recorded();
                }
            }
        }
        Ok(())
    }

    /// Observe, plan, apply. Returns the operations done (empty: nothing to do).
    pub async fn apply(&self, desired: &Desired) -> Result<Report, String> {
        let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
        let start = Instant::now();
        let cpu0 = thread_cpu_ms();
        self.take_element_messages();
        let _lock = nft::lock();
        let (obs, recorded) = self.observe_with_record(Some(desired)).await?;
        let observe_ms = ms(start);
        let t = Instant::now();
        let ops = plan_or_refuse(desired, &obs)?;
        let plan_ms = ms(t);
        let t = Instant::now();
        if !ops.is_empty() {
            self.apply_ops(&ops, &obs, Some(&desired.nft), recorded)
                .await
                .map_err(|e| e.to_string())?;
        }
        let mut report = self.applied(desired, &obs, ops, start, cpu0, t);
        report.observe_ms = observe_ms;
        report.plan_ms = plan_ms;
        report.netlink_requests += OBSERVE_REQUESTS;
        Ok(report)
    }

    /// After `ops` were applied over `obs`: remembers the result (the next config
    /// change plans against it without reading the kernel) and reports. Times
    /// from `start` (the whole apply) and `kernel` (the applying part).
    fn applied(
        &self,
        desired: &Desired,
        obs: &Observed,
        ops: Vec<Op>,
        start: Instant,
        cpu0: f64,
        kernel: Instant,
    ) -> Report {
        let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
        if self.keep_last {
            *self.last.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(plan::assume_applied(desired, obs));
        }
        let netlink_requests = ops
            .iter()
            .map(|o| requests_of(o, self.backend))
            .sum::<usize>()
            + self.take_element_messages();
        Report {
            ops,
            millis: ms(start),
            kernel_ms: ms(kernel),
            netlink_requests,
            cpu_ms: thread_cpu_ms() - cpu0,
            ..Report::default()
        }
    }

    /// Applies against the state the last apply left, without reading the kernel
    /// first (the daemon's path for config changes: the periodic check catches
    /// drift). Falls back to a full apply when there is no such state or the
    /// incremental step fails.
    pub async fn apply_incremental(&self, desired: &Desired) -> Result<Report, String> {
        let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
        let start = Instant::now();
        let cpu0 = thread_cpu_ms();
        self.take_element_messages();
        // Taken, not cloned: it is replaced below (or rebuilt by a full apply).
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(mut obs) = last else {
            return self.apply(desired).await;
        };
        let _lock = nft::lock();
        if let Some(n) = obs.nft.as_mut() {
            nft::load_changed_sets(n, &desired.nft);
        }
        let Ok(ops) = plan::plan(desired, &obs) else {
            return self.apply(desired).await;
        };
        let plan_ms = ms(start);
        let t = Instant::now();
        if !ops.is_empty()
            && let Err(e) = self.apply_ops(&ops, &obs, Some(&desired.nft), None).await
        {
            log::warn!("incremental apply failed ({e}); applying in full");
            drop(_lock);
            return self.apply(desired).await;
        }
        let mut report = self.applied(desired, &obs, ops, start, cpu0, t);
        report.plan_ms = plan_ms;
        Ok(report)
    }

    /// Removes everything wgsplit created (table, rules, routes, links), nothing else.
    pub async fn down(&self) -> Result<Vec<Op>, String> {
        let _lock = nft::lock();
        let obs = self.observe(None).await?;
        let ops = plan::plan_down(&obs);
        let mut errors = Vec::new();
        for op in &ops {
            if let Err(e) = self.run(op).await {
                errors.push(format!("{op}: {e}"));
            }
        }
        nft::forget_recorded();
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if errors.is_empty() {
            Ok(ops)
        } else {
            Err(errors.join("\n"))
        }
    }
}

/// What a service gets: the current config (and its compiled policy), and a way
/// to ask the engine to re-apply (e.g. after the API changed the config file).
#[derive(Clone)]
pub struct ServiceContext {
    pub config_path: PathBuf,
    pub current: watch::Receiver<Arc<(Config, Policy)>>,
    pub reapply: Arc<Notify>,
}
