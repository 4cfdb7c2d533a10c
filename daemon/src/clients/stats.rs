//! Per-client traffic over time: the kernel's peer counters sampled into
//! 5-minute buckets for 7 days (in RAM, flushed to a file in the run directory,
//! a tmpfs on routers), and the monthly total that a client's `quota` is
//! checked against. Pure except `save`/`load`.
//!
//! Memory: a client's ring is allocated at its first traffic, 2016 buckets ×
//! 8 bytes (KiB counts as u32: 4 TiB per 5 minutes) = 16 KiB.

use std::{
    collections::HashMap,
    io::{self, Read},
    path::Path,
};

use serde_json::{Value, json};

use super::live::PeerInfo;
use crate::config::{Config, types::parse_size, types::year_month};

pub const BUCKET_SECS: i64 = 300;
pub const BUCKETS: usize = 7 * 24 * 12;
const MAGIC: &[u8; 4] = b"WSH1";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientStats {
    /// (rx KiB, tx KiB) per bucket; index = bucket number % BUCKETS.
    ring: Option<Vec<(u32, u32)>>,
    /// The newest bucket number (unix / BUCKET_SECS) written.
    head: i64,
    /// Byte remainders below 1 KiB, carried to the next sample.
    carry: (u64, u64),
    /// The month (year * 12 + month - 1) the total counts.
    pub month: i64,
    pub month_bytes: u64,
    /// The collector disabled this client for its quota (re-enabled next month).
    pub quota_disabled: bool,
}

impl ClientStats {
    fn add(&mut self, now: i64, rx: u64, tx: u64) {
        let bucket = now.div_euclid(BUCKET_SECS);
        let ring = self.ring.get_or_insert_with(|| vec![(0, 0); BUCKETS]);
        if bucket > self.head {
            // Clear the buckets skipped since the last sample (at most all).
            let gap = (bucket - self.head).min(BUCKETS as i64);
            for b in (bucket - gap + 1)..=bucket {
                ring[b.rem_euclid(BUCKETS as i64) as usize] = (0, 0);
            }
            self.head = bucket;
        }
        let (crx, ctx) = (self.carry.0 + rx, self.carry.1 + tx);
        self.carry = (crx % 1024, ctx % 1024);
        let slot = &mut ring[self.head.rem_euclid(BUCKETS as i64) as usize];
        slot.0 = slot
            .0
            .saturating_add((crx / 1024).min(u32::MAX as u64) as u32);
        slot.1 = slot
            .1
            .saturating_add((ctx / 1024).min(u32::MAX as u64) as u32);
    }

    /// The last 7 days, oldest first, ending with the bucket of `now`.
    pub fn series(&self, now: i64) -> (i64, Vec<u64>, Vec<u64>) {
        let last = now.div_euclid(BUCKET_SECS);
        let first = last - BUCKETS as i64 + 1;
        let (mut rx, mut tx) = (Vec::with_capacity(BUCKETS), Vec::with_capacity(BUCKETS));
        for b in first..=last {
            let v = match &self.ring {
                Some(r) if b <= self.head && b > self.head - BUCKETS as i64 => {
                    r[b.rem_euclid(BUCKETS as i64) as usize]
                }
                _ => (0, 0),
            };
            rx.push(v.0 as u64 * 1024);
            tx.push(v.1 as u64 * 1024);
        }
        (first * BUCKET_SECS, rx, tx)
    }
}

/// What the collector wants done after a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaEvent {
    /// The client spent its quota: disable it.
    Spent {
        client: String,
        used: u64,
        quota: u64,
    },
    /// A new month began for a client the collector had disabled: enable it.
    NewMonth { client: String },
}

#[derive(Debug, Default)]
pub struct Collector {
    /// Last counters seen, by public key.
    last: HashMap<String, (u64, u64)>,
    pub clients: HashMap<String, ClientStats>,
}

fn month_of(now: i64) -> i64 {
    let (y, m) = year_month(now);
    y * 12 + m - 1
}

impl Collector {
    /// Takes one reading of every peer (by public key) and returns quota events.
    /// Counters that went down (the peer was re-created) count from zero.
    pub fn sample(
        &mut self,
        config: &Config,
        peers: &HashMap<String, PeerInfo>,
        now: i64,
    ) -> Vec<QuotaEvent> {
        let month = month_of(now);
        let mut events = Vec::new();
        for c in &config.clients {
            let st = self.clients.entry(c.name.clone()).or_default();
            if st.month != month {
                st.month = month;
                st.month_bytes = 0;
                if st.quota_disabled {
                    st.quota_disabled = false;
                    events.push(QuotaEvent::NewMonth {
                        client: c.name.clone(),
                    });
                }
            }
            let Some(key) = super::live::client_public_key(c) else {
                continue;
            };
            let Some(p) = peers.get(&key) else {
                continue;
            };
            let (rx, tx) = match self.last.insert(key, (p.rx, p.tx)) {
                Some((lr, lt)) => (
                    if p.rx >= lr { p.rx - lr } else { p.rx },
                    if p.tx >= lt { p.tx - lt } else { p.tx },
                ),
                // First sight: the counters so far belong to no known bucket.
                None => (0, 0),
            };
            if rx + tx > 0 {
                st.add(now, rx, tx);
                st.month_bytes += rx + tx;
            }
            if let Some(quota) = c.quota.as_deref().and_then(|q| parse_size(q).ok())
                && st.month_bytes >= quota
                && c.enabled_or_default()
                && !st.quota_disabled
            {
                st.quota_disabled = true;
                events.push(QuotaEvent::Spent {
                    client: c.name.clone(),
                    used: st.month_bytes,
                    quota,
                });
            }
        }
        // Forget clients that left the config, and renamed ones' old names.
        self.clients
            .retain(|n, _| config.clients.iter().any(|c| &c.name == n));
        events
    }

    /// `GET /api/clients/NAME/history`.
    pub fn history_json(&self, config: &Config, name: &str, now: i64) -> Option<Value> {
        let c = config.clients.iter().find(|c| c.name == name)?;
        let st = self.clients.get(name).cloned().unwrap_or_default();
        let (start, rx, tx) = st.series(now);
        let quota = c.quota.as_deref().and_then(|q| parse_size(q).ok());
        let month_bytes = if st.month == month_of(now) {
            st.month_bytes
        } else {
            0
        };
        Some(json!({
            "client": name,
            "interval": BUCKET_SECS,
            "start": start,
            "rx": rx,
            "tx": tx,
            "month": {
                "bytes": month_bytes,
                "quota": quota,
                "left": quota.map(|q| q.saturating_sub(month_bytes)),
                "disabled_by_quota": st.quota_disabled,
            },
        }))
    }

    pub fn save(&self, path: &Path) -> io::Result<()> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        for (name, st) in &self.clients {
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&st.month.to_le_bytes());
            out.extend_from_slice(&st.month_bytes.to_le_bytes());
            out.extend_from_slice(&st.head.to_le_bytes());
            out.push(u8::from(st.quota_disabled) | (u8::from(st.ring.is_some()) << 1));
            if let Some(r) = &st.ring {
                for (a, b) in r {
                    out.extend_from_slice(&a.to_le_bytes());
                    out.extend_from_slice(&b.to_le_bytes());
                }
            }
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        crate::util::fs::write_atomic(path, &out)
    }

    pub fn load(path: &Path) -> io::Result<Self> {
        let mut data = Vec::new();
        std::fs::File::open(path)?.read_to_end(&mut data)?;
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "not a wgsplit stats file");
        let mut r = data.strip_prefix(MAGIC.as_slice()).ok_or_else(bad)?;
        let mut take = |n: usize| -> io::Result<&[u8]> {
            if r.len() < n {
                return Err(bad());
            }
            let (a, b) = r.split_at(n);
            r = b;
            Ok(a)
        };
        let mut me = Self::default();
        while let Ok(l) = take(1) {
            let len = l[0] as usize;
            let name = String::from_utf8(take(len)?.to_vec()).map_err(|_| bad())?;
            let i64_at = |b: &[u8]| i64::from_le_bytes(b.try_into().expect("8 bytes"));
            let month = i64_at(take(8)?);
            let month_bytes = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
            let head = i64_at(take(8)?);
            let flags = take(1)?[0];
            let ring = if flags & 2 != 0 {
                let raw = take(BUCKETS * 8)?;
                Some(
                    raw.chunks_exact(8)
                        .map(|c| {
                            (
                                u32::from_le_bytes(c[..4].try_into().expect("4 bytes")),
                                u32::from_le_bytes(c[4..].try_into().expect("4 bytes")),
                            )
                        })
                        .collect(),
                )
            } else {
                None
            };
            me.clients.insert(
                name,
                ClientStats {
                    ring,
                    head,
                    carry: (0, 0),
                    month,
                    month_bytes,
                    quota_disabled: flags & 1 != 0,
                },
            );
        }
        Ok(me)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::{live::client_public_key, tests::example};

    fn peers(config: &Config, name: &str, rx: u64, tx: u64) -> HashMap<String, PeerInfo> {
        let c = config.clients.iter().find(|c| c.name == name).unwrap();
        [(
            client_public_key(c).unwrap(),
            PeerInfo {
                rx,
                tx,
                ..Default::default()
            },
        )]
        .into()
    }

    // 2026-11-30 23:50 UTC.
    const T: i64 = 1_796_082_600;

    #[test]
    fn buckets_quota_and_month_rollover() {
        let mut cfg = example();
        cfg.clients[0].quota = Some("1M".into()); // alice
        let mut col = Collector::default();
        assert!(
            col.sample(&cfg, &peers(&cfg, "alice", 5000, 5000), T)
                .is_empty()
        );
        // 600 KiB in, 100 KiB out, five minutes later.
        let ev = col.sample(
            &cfg,
            &peers(&cfg, "alice", 5000 + 600 * 1024, 5000 + 100 * 1024),
            T + 300,
        );
        assert!(ev.is_empty());
        let h = col.history_json(&cfg, "alice", T + 300).unwrap();
        let rx = h["rx"].as_array().unwrap();
        assert_eq!(rx.len(), BUCKETS);
        assert_eq!(rx.last().unwrap(), 600 * 1024);
        assert_eq!(h["month"]["bytes"], 700 * 1024);
        // The counters reset (peer re-created): 400 KiB more counts from zero.
        let ev = col.sample(&cfg, &peers(&cfg, "alice", 400 * 1024, 0), T + 301);
        assert_eq!(
            ev,
            vec![QuotaEvent::Spent {
                client: "alice".into(),
                used: 1100 * 1024,
                quota: 1 << 20
            }]
        );
        // Said once.
        assert!(
            col.sample(&cfg, &peers(&cfg, "alice", 400 * 1024, 0), T + 302)
                .is_empty()
        );
        // December: the month total restarts and the client comes back.
        let ev = col.sample(&cfg, &peers(&cfg, "alice", 400 * 1024, 0), T + 900);
        assert_eq!(
            ev,
            vec![QuotaEvent::NewMonth {
                client: "alice".into()
            }]
        );
        let h = col.history_json(&cfg, "alice", T + 900).unwrap();
        assert_eq!(h["month"]["bytes"], 0);
        assert_eq!(h["month"]["left"], 1 << 20);
        // The 7-day window still holds November's traffic.
        let total: u64 = h["rx"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(total, 1000 * 1024);
    }

    #[test]
    fn old_buckets_fall_out_and_files_round_trip() {
        let cfg = example();
        let mut col = Collector::default();
        col.sample(&cfg, &peers(&cfg, "bob", 0, 0), T);
        col.sample(&cfg, &peers(&cfg, "bob", 2048, 1024), T + 10);
        let dir = std::env::temp_dir().join(format!("wsa-stats-{}", std::process::id()));
        let path = dir.join("stats.bin");
        col.save(&path).unwrap();
        let back = Collector::load(&path).unwrap();
        let mut a = col.clients["bob"].clone();
        a.carry = (0, 0);
        assert_eq!(back.clients["bob"], a);
        std::fs::remove_dir_all(&dir).unwrap();
        // Eight days later the bucket is gone.
        let h = col.history_json(&cfg, "bob", T + 8 * 86400).unwrap();
        assert!(h["rx"].as_array().unwrap().iter().all(|v| v == 0));
        let h = col.history_json(&cfg, "bob", T + 10).unwrap();
        assert_eq!(h["rx"].as_array().unwrap().last().unwrap(), 2048);
        assert!(Collector::load(Path::new("/nonexistent/x")).is_err());
    }
}
