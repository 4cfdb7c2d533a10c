//! nftables: one `nft -f -` transaction per change, a terse JSON listing to observe
//! (`-t` leaves set elements out: the listing stays cheap however big the sets),
//! and a small state file remembering which elements the engine wrote last.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::nftelem;
use crate::{
    plan::nft::{BaseChain, NftBatch, NftState, ObservedChain, ObservedNft, ObservedSet},
    policy::NFT_TABLE,
};

fn nft_program() -> String {
    std::env::var("WGSPLIT_NFT").unwrap_or_else(|_| "nft".to_string())
}

/// Runs one script as one transaction: all of it or none of it.
pub fn run_script(script: &str) -> Result<(), String> {
    let mut child = Command::new(nft_program())
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run nft: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("nft stdin")?
        .write_all(script.as_bytes())
        .map_err(|e| format!("write to nft: {e}"))?;
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        // nft echoes the failing line with a caret; keep it short.
        let msg: Vec<&str> = err.lines().take(6).collect();
        Err(format!("nft rejected the transaction: {}", msg.join(" | ")))
    }
}

/// Applies one planned nft change as a transaction. Element changes go to the
/// kernel directly (see `nftelem`); the structure through `nft -f`.
/// Returns the number of netlink messages the element path sent (0 if none).
pub fn apply_batch(b: &NftBatch) -> Result<usize, String> {
    let elements = |b: &NftBatch| -> Result<nftelem::Batch, String> {
        let mut nb = nftelem::Batch::new();
        for (add, set, els) in &b.element_changes {
            let parsed = els
                .iter()
                .map(|e| nftelem::parse_element(e))
                .collect::<Result<Vec<_>, _>>()?;
            nb.push(&nftelem::SetChange {
                set,
                add: *add,
                elements: parsed,
            });
        }
        Ok(nb)
    };
    if std::env::var_os("WGSPLIT_NFT_ONLY").is_some() {
        return run_script(&b.script()).map(|()| 0);
    }
    if b.elements_only() {
        let nb = elements(b)?;
        let n = nb.message_count() as usize;
        nb.commit()?;
        return Ok(n);
    }
    if b.from_nothing {
        let nb = elements(b)?;
        let n = nb.message_count() as usize;
        run_script(&b.structure_script())?;
        if let Err(e) = nb.commit() {
            // The table did not exist before: removing it is the rollback.
            let _ = run_script(&format!("delete table inet {NFT_TABLE}\n"));
            return Err(e);
        }
        return Ok(n);
    }
    run_script(&b.script()).map(|()| 0)
}

/// Handles of the table and its sets, as listed (a set recreated by someone else
/// gets a new handle, so its recorded elements are no longer trusted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handles {
    pub table: u64,
    pub sets: BTreeMap<String, u64>,
}

/// Lists `table inet wgsplit` tersely. `None` when there is no such table.
pub fn list() -> Result<Option<(ObservedNft, Handles)>, String> {
    let out = Command::new(nft_program())
        .args(["-t", "-j", "list", "ruleset"])
        .output()
        .map_err(|e| format!("run nft: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "nft list ruleset: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("nft JSON: {e}"))?;
    Ok(parse_listing(&v))
}

fn str_of<'a>(o: &'a Value, k: &str) -> &'a str {
    o.get(k).and_then(Value::as_str).unwrap_or("")
}

fn ours(o: &Value) -> bool {
    str_of(o, "family") == "inet" && str_of(o, "table") == NFT_TABLE
}

fn static_str(s: &str) -> &'static str {
    match s {
        "filter" => "filter",
        "nat" => "nat",
        "route" => "route",
        "prerouting" => "prerouting",
        "postrouting" => "postrouting",
        "forward" => "forward",
        "input" => "input",
        "output" => "output",
        _ => "other",
    }
}

/// Parses `nft -j list ruleset` output into the observed form of our table.
pub fn parse_listing(v: &Value) -> Option<(ObservedNft, Handles)> {
    let items = v.get("nftables")?.as_array()?;
    let mut found = false;
    let mut obs = ObservedNft::default();
    let mut handles = Handles::default();
    for item in items {
        if let Some(t) = item.get("table") {
            if str_of(t, "family") == "inet" && str_of(t, "name") == NFT_TABLE {
                found = true;
                handles.table = t.get("handle").and_then(Value::as_u64).unwrap_or(0);
            }
        } else if let Some(s) = item.get("set").or_else(|| item.get("map")) {
            if !ours(s) {
                continue;
            }
            let flags: Vec<String> = match s.get("flags") {
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|f| f.as_str().map(String::from))
                    .collect(),
                Some(Value::String(f)) => vec![f.clone()],
                _ => vec![],
            };
            let flag = if flags.iter().any(|f| f == "interval") {
                "interval"
            } else if flags.iter().any(|f| f == "timeout") {
                "timeout"
            } else {
                ""
            };
            let ty = match s.get("type") {
                Some(Value::String(t)) => t.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let data = s.get("map").and_then(Value::as_str).unwrap_or("");
            let name = str_of(s, "name").to_string();
            handles.sets.insert(
                name.clone(),
                s.get("handle").and_then(Value::as_u64).unwrap_or(0),
            );
            obs.sets.insert(
                name,
                ObservedSet {
                    signature: format!("{ty}|{data}|{flag}"),
                    elements: None,
                },
            );
        } else if let Some(c) = item.get("chain") {
            if !ours(c) {
                continue;
            }
            let base = c.get("hook").and_then(Value::as_str).map(|hook| BaseChain {
                ty: static_str(str_of(c, "type")),
                hook: static_str(hook),
                priority: c.get("prio").and_then(Value::as_i64).unwrap_or(0) as i32,
            });
            obs.chains.insert(
                str_of(c, "name").to_string(),
                ObservedChain {
                    base,
                    comments: Vec::new(),
                },
            );
        } else if let Some(r) = item.get("rule") {
            if !ours(r) {
                continue;
            }
            if let Some(ch) = obs.chains.get_mut(str_of(r, "chain")) {
                ch.comments
                    .push(r.get("comment").and_then(Value::as_str).map(String::from));
            }
        }
    }
    found.then_some((obs, handles))
}

/// What the engine wrote last, per network namespace.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Recorded {
    pub handles: Handles,
    /// Elements of the sets the engine owns, as written.
    pub elements: BTreeMap<String, BTreeSet<String>>,
}

fn state_dir() -> PathBuf {
    std::env::var_os("WGSPLIT_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/wgsplit"))
}

/// The state file of this network namespace (namespaces share /run).
pub fn state_path() -> PathBuf {
    let ns = std::fs::read_link("/proc/self/ns/net")
        .map(|p| {
            p.to_string_lossy()
                .chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
        })
        .unwrap_or_default();
    state_dir().join(format!("nft-{ns}.json"))
}

/// Serialises applies in one network namespace (the daemon and a CLI `apply`):
/// an exclusive lock held until the returned file is dropped.
pub fn lock() -> Option<std::fs::File> {
    let path = state_path().with_extension("lock");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).ok()?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ok()?;
    // SAFETY: flock(2) on a descriptor we own; blocks until the lock is free.
    let rc = unsafe { flock(std::os::fd::AsRawFd::as_raw_fd(&f), LOCK_EX) };
    (rc == 0).then_some(f)
}

const LOCK_EX: i32 = 2;

unsafe extern "C" {
    fn flock(fd: i32, op: i32) -> i32;
}

/// The record lives in a folder: `handles.json` and one file per set (its
/// elements, one per line), so a change rewrites only the sets it touched.
fn record_dir() -> PathBuf {
    state_path().with_extension("d")
}

pub fn load_recorded() -> Option<Recorded> {
    let dir = record_dir();
    let handles: Handles =
        serde_json::from_slice(&std::fs::read(dir.join("handles.json")).ok()?).ok()?;
    let mut elements = BTreeMap::new();
    for e in std::fs::read_dir(dir.join("sets")).ok()?.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let text = std::fs::read_to_string(e.path()).ok()?;
        elements.insert(name, text.lines().map(String::from).collect());
    }
    Some(Recorded { handles, elements })
}

/// Writes the record; `dirty`: only these sets changed (`None`: all may have).
pub fn save_recorded(r: &Recorded, dirty: Option<&BTreeSet<String>>) -> Result<(), String> {
    let dir = record_dir();
    let sets = dir.join("sets");
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    std::fs::create_dir_all(&sets).map_err(io)?;
    let write = |name: &str, els: &BTreeSet<String>| {
        let mut text = String::with_capacity(els.len() * 32);
        for e in els {
            text.push_str(e);
            text.push('\n');
        }
        crate::config::write_atomic(&sets.join(name), text.as_bytes())
    };
    match dirty {
        None => {
            for e in std::fs::read_dir(&sets).map_err(io)?.flatten() {
                if !r.elements.contains_key(&*e.file_name().to_string_lossy()) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
            for (name, els) in &r.elements {
                write(name, els).map_err(io)?;
            }
        }
        Some(names) => {
            for name in names {
                match r.elements.get(name) {
                    Some(els) => write(name, els).map_err(io)?,
                    None => {
                        let _ = std::fs::remove_file(sets.join(name));
                    }
                }
            }
        }
    }
    let data = serde_json::to_vec(&r.handles).map_err(|e| e.to_string())?;
    crate::config::write_atomic(&dir.join("handles.json"), &data).map_err(io)
}

pub fn forget_recorded() {
    let _ = std::fs::remove_dir_all(record_dir());
}

/// Fills in element knowledge from the record where the set is provably the one
/// the engine wrote (same table handle, same set handle).
pub fn merge_recorded(obs: &mut ObservedNft, handles: &Handles, rec: Option<&Recorded>) {
    let Some(rec) = rec else { return };
    if rec.handles.table != handles.table {
        return;
    }
    for (name, set) in obs.sets.iter_mut() {
        if rec.handles.sets.get(name) == handles.sets.get(name)
            && let Some(els) = rec.elements.get(name)
        {
            set.elements = Some(els.clone());
        }
    }
}

/// The record after `desired` was applied and listed with `handles`.
pub fn record_for(desired: &NftState, handles: Handles) -> Recorded {
    Recorded {
        handles,
        elements: desired
            .sets
            .iter()
            .filter_map(|(n, s)| s.elements.clone().map(|e| (n.clone(), e)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_terse_listing() {
        let v: Value = serde_json::from_str(
            r#"{"nftables": [
              {"metainfo": {"version": "1.0.6"}},
              {"table": {"family": "inet", "name": "fw4", "handle": 1}},
              {"chain": {"family": "inet", "table": "fw4", "name": "input", "handle": 1}},
              {"table": {"family": "inet", "name": "wgsplit", "handle": 7}},
              {"chain": {"family": "inet", "table": "wgsplit", "name": "prerouting", "handle": 3,
                 "type": "filter", "hook": "prerouting", "prio": -150, "policy": "accept"}},
              {"chain": {"family": "inet", "table": "wgsplit", "name": "client_a", "handle": 4}},
              {"map": {"family": "inet", "name": "a_r0_map4", "table": "wgsplit", "type": "ipv4_addr",
                 "handle": 9, "map": "verdict", "flags": ["interval"]}},
              {"set": {"family": "inet", "name": "a_r1_dns4", "table": "wgsplit", "type": "ipv4_addr",
                 "handle": 10, "flags": ["timeout"]}},
              {"rule": {"family": "inet", "table": "wgsplit", "chain": "client_a", "handle": 11,
                 "comment": "wgs:00000000000000aa", "expr": []}},
              {"rule": {"family": "inet", "table": "wgsplit", "chain": "client_a", "handle": 12, "expr": []}}
            ]}"#,
        )
        .unwrap();
        let (obs, handles) = parse_listing(&v).unwrap();
        assert_eq!(handles.table, 7);
        assert_eq!(handles.sets["a_r0_map4"], 9);
        assert_eq!(
            obs.sets["a_r0_map4"].signature,
            "ipv4_addr|verdict|interval"
        );
        assert_eq!(obs.sets["a_r1_dns4"].signature, "ipv4_addr||timeout");
        assert_eq!(
            obs.chains["prerouting"].base,
            Some(BaseChain {
                ty: "filter",
                hook: "prerouting",
                priority: -150
            })
        );
        assert_eq!(
            obs.chains["client_a"].comments,
            vec![Some("wgs:00000000000000aa".to_string()), None]
        );
        assert!(!obs.chains.contains_key("input"));
        let none: Value = serde_json::from_str(r#"{"nftables": [{"metainfo": {}}]}"#).unwrap();
        assert!(parse_listing(&none).is_none());
    }
}
