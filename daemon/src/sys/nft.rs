//! nftables: one `nft -f -` transaction per structural change, set elements
//! straight over netlink, a netlink listing to observe (`nftlist`; no elements:
//! it stays cheap however big the sets), and a record of the elements the engine
//! wrote last.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use super::nftnl::{self, Elem, MapElem, NftSock};
use crate::plan::{
    NFT_TABLE,
    nft::{NftBatch, NftSet, NftState, ObservedNft, SetElements, set_digest},
};

use crate::util::paths::{nft_program, state_dir};

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
/// kernel directly over `sock` (why: see `Element`); the structure through `nft -f`.
/// Returns the number of netlink messages the element path sent (0 if none).
pub fn apply_batch(sock: &mut NftSock, b: &NftBatch) -> Result<usize, String> {
    if crate::util::paths::nft_only() {
        return run_script(&b.script()).map(|()| 0);
    }
    if b.elements_only() {
        return write_elements(sock, b);
    }
    if b.from_nothing {
        run_script(&b.structure_script())?;
        return write_elements(sock, b).inspect_err(|_| {
            // The table did not exist before: removing it is the rollback.
            let _ = run_script(&format!("delete table inet {NFT_TABLE}\n"));
        });
    }
    run_script(&b.script()).map(|()| 0)
}

/// One element as the planner writes it: `a`, `a/len` or `a-b`, optionally
/// followed by ` : goto CHAIN`.
///
/// Why elements bypass `nft -f`: nft 1.0.x reads back every element of every
/// interval set of the table before it changes one (≈0.36 s for a table of 50k
/// elements), and spends ≈1 s turning 50k ranges into messages. The kernel
/// needs neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub v6: bool,
    pub start: u128,
    pub end: u128,
    pub goto: Option<String>,
}

fn addr_value(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

pub fn parse_element(text: &str) -> Result<Element, String> {
    let (key, goto) = match text.split_once(" : ") {
        Some((k, v)) => (
            k.trim(),
            Some(
                v.trim()
                    .strip_prefix("goto ")
                    .ok_or_else(|| format!("element '{text}': only goto verdicts"))?
                    .to_string(),
            ),
        ),
        None => (text.trim(), None),
    };
    let bad = || format!("element '{text}': bad key");
    let (v6, start, end) = if let Some((a, b)) = key.split_once('-') {
        let (v6, s) = addr_value(a.parse().map_err(|_| bad())?);
        let (_, e) = addr_value(b.parse().map_err(|_| bad())?);
        (v6, s, e)
    } else if key.contains('/') {
        let net: ipnet::IpNet = key.parse().map_err(|_| bad())?;
        let (s, e) = crate::util::ranges::net_range(&net);
        (matches!(net, ipnet::IpNet::V6(_)), s, e)
    } else {
        let (v6, s) = addr_value(key.parse().map_err(|_| bad())?);
        (v6, s, s)
    };
    Ok(Element {
        v6,
        start,
        end,
        goto,
    })
}

impl Element {
    /// The kernel's form in an rbtree interval map: the start carrying the
    /// verdict, then `end + 1` flagged as the interval's end (none when the
    /// range reaches the top of the address space).
    fn push_interval<'a>(&'a self, out: &mut Vec<MapElem<'a>>) {
        let ip = |v: u128| {
            if self.v6 {
                IpAddr::V6(Ipv6Addr::from(v))
            } else {
                IpAddr::V4(Ipv4Addr::from(v as u32))
            }
        };
        out.push(MapElem {
            elem: Elem::addr(ip(self.start)),
            goto: self.goto.as_deref(),
        });
        let max = if self.v6 { u128::MAX } else { u32::MAX as u128 };
        if self.end < max {
            out.push(MapElem {
                elem: Elem {
                    interval_end: true,
                    ..Elem::addr(ip(self.end + 1))
                },
                goto: None,
            });
        }
    }
}

/// Writes a batch's element changes as one nf_tables transaction.
fn write_elements(sock: &mut NftSock, b: &NftBatch) -> Result<usize, String> {
    let parsed = b
        .element_changes
        .iter()
        .map(|(_, _, els)| els.iter().map(|e| parse_element(e)).collect())
        .collect::<Result<Vec<Vec<Element>>, String>>()?;
    let kernel: Vec<Vec<MapElem>> = parsed
        .iter()
        .map(|els| {
            let mut v = Vec::with_capacity(els.len() * 2);
            for e in els {
                e.push_interval(&mut v);
            }
            v
        })
        .collect();
    let keys: Vec<Vec<Elem>> = kernel
        .iter()
        .map(|v| v.iter().map(|m| m.elem).collect())
        .collect();
    let ops: Vec<nftnl::Op> = b
        .element_changes
        .iter()
        .enumerate()
        .map(|(i, (add, set, _))| match add {
            true => nftnl::Op::AddMap {
                set,
                elems: &kernel[i],
            },
            false => nftnl::Op::Del {
                set,
                elems: &keys[i],
            },
        })
        .collect();
    let messages = nftnl::encode(super::nft_consts::NFPROTO_INET, NFT_TABLE, &ops, 0).messages();
    sock.apply(&ops)
        .map_err(|e| format!("the kernel rejected the element batch: {e}"))?;
    Ok(messages + 2)
}

/// Handles of the table and its sets, as listed (a set recreated by someone else
/// gets a new handle, so its recorded elements are no longer trusted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handles {
    pub table: u64,
    pub sets: BTreeMap<String, u64>,
}

/// Lists `table inet wgsplit` (without elements). `None` when there is no such table.
pub fn list(sock: &mut NftSock) -> Result<Option<(ObservedNft, Handles)>, String> {
    super::nftlist::list(sock)
}

/// What the engine wrote last, per network namespace: the handles it saw and a
/// digest of each set's elements (`plan::nft::set_digest`). The elements
/// themselves are in one file per set, read only when that set changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    pub handles: Handles,
    pub digests: BTreeMap<String, u64>,
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

/// The record lives in a folder: `index.txt` (handles and digests) and one
/// file per set (its elements, one per line).
fn record_dir() -> PathBuf {
    state_path().with_extension("d")
}

/// The record's index, `index.txt`: `table HANDLE`, then `set NAME HANDLE DIGEST`
/// per set (plain lines: read on every apply, so no JSON parser for 1,000 sets).
const INDEX: &str = "index.txt";

fn format_index(r: &Recorded) -> String {
    use std::fmt::Write as _;
    // One buffer for all 1,000+ lines (no string per line: this runs on every apply).
    let mut s = String::with_capacity(64 * (r.handles.sets.len() + 1));
    let _ = writeln!(s, "table {}", r.handles.table);
    for (name, handle) in &r.handles.sets {
        let _ = match r.digests.get(name) {
            Some(d) => writeln!(s, "set {name} {handle} {d:x}"),
            None => writeln!(s, "set {name} {handle} -"),
        };
    }
    s
}

fn parse_index(text: &str) -> Option<Recorded> {
    let mut lines = text.lines();
    let table = lines.next()?.strip_prefix("table ")?.parse().ok()?;
    // The lines are in name order (written from a BTreeMap): collected into
    // vectors, the maps are built in one sorted pass, not 1,000 searches each.
    let mut sets = Vec::new();
    let mut digests = Vec::new();
    for line in lines {
        let mut f = line.strip_prefix("set ")?.split(' ');
        let (name, handle, digest) = (f.next()?, f.next()?, f.next()?);
        sets.push((name.to_string(), handle.parse().ok()?));
        if digest != "-" {
            digests.push((name.to_string(), u64::from_str_radix(digest, 16).ok()?));
        }
    }
    Some(Recorded {
        handles: Handles {
            table,
            sets: sets.into_iter().collect(),
        },
        digests: digests.into_iter().collect(),
    })
}

pub fn load_recorded() -> Option<Recorded> {
    parse_index(&std::fs::read_to_string(record_dir().join(INDEX)).ok()?)
}

/// The recorded elements of one set, if its file is there and matches `digest`.
fn load_set(name: &str, digest: u64) -> Option<BTreeSet<String>> {
    let text = std::fs::read_to_string(record_dir().join("sets").join(name)).ok()?;
    let els: BTreeSet<String> = text.lines().map(String::from).collect();
    (set_digest(&els) == digest).then_some(els)
}

/// Replaces a file by renaming a complete new one over it. No fsync: the record
/// lives on tmpfs (/run) and describes kernel state that a reboot loses anyway;
/// a torn record only costs a full rewrite of a set (its digest won't match).
fn replace(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

/// Records `desired` as applied, seen with `handles`. Rewrites only the set files
/// whose elements changed since `old` (all of them when there is no `old`).
pub fn save_recorded(
    desired: &NftState,
    handles: Handles,
    old: Option<&Recorded>,
) -> Result<Recorded, String> {
    let dir = record_dir();
    let sets = dir.join("sets");
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    std::fs::create_dir_all(&sets).map_err(io)?;
    let mut rec = Recorded {
        handles,
        digests: BTreeMap::new(),
    };
    for (name, set) in &desired.sets {
        let (Some(els), Some(digest)) = (&set.elements, set.digest()) else {
            continue;
        };
        rec.digests.insert(name.clone(), digest);
        if old.and_then(|o| o.digests.get(name)) == Some(&digest) {
            continue;
        }
        let mut text = String::with_capacity(els.len() * 32);
        for e in els {
            text.push_str(e);
            text.push('\n');
        }
        replace(&sets.join(name), text.as_bytes()).map_err(io)?;
    }
    match old {
        Some(o) => {
            for name in o.digests.keys().filter(|n| !rec.digests.contains_key(*n)) {
                let _ = std::fs::remove_file(sets.join(name));
            }
        }
        None => {
            for e in std::fs::read_dir(&sets).map_err(io)?.flatten() {
                if !rec.digests.contains_key(&*e.file_name().to_string_lossy()) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
    replace(&dir.join(INDEX), format_index(&rec).as_bytes()).map_err(io)?;
    Ok(rec)
}

pub fn forget_recorded() {
    let _ = std::fs::remove_dir_all(record_dir());
}

/// Fills in element knowledge from the record where the set is provably the one
/// the engine wrote (same table handle, same set handle): as a digest.
pub fn merge_recorded(obs: &mut ObservedNft, handles: &Handles, rec: Option<&Recorded>) {
    let Some(rec) = rec else { return };
    if rec.handles.table != handles.table {
        return;
    }
    for (name, set) in obs.sets.iter_mut() {
        if rec.handles.sets.get(name) == handles.sets.get(name)
            && let Some(d) = rec.digests.get(name)
        {
            set.elements = SetElements::Digest(*d);
        }
    }
}

/// Where a set's desired elements differ from its recorded digest, reads the
/// recorded elements so the diff can be minimal (one element out, one in)
/// rather than rewriting the set. Only the sets that changed are read.
pub fn load_changed_sets(obs: &mut ObservedNft, desired: &NftState) {
    for (name, set) in obs.sets.iter_mut() {
        let SetElements::Digest(d) = set.elements else {
            continue;
        };
        let Some(want) = desired.sets.get(name).and_then(NftSet::digest) else {
            continue;
        };
        if want != d {
            set.elements = load_set(name, d).map_or(SetElements::Unknown, SetElements::Known);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::nft::SetKind;

    fn state(els: &[&str]) -> NftState {
        let mut st = NftState::default();
        st.sets.insert(
            "a_r0_map4".into(),
            NftSet::new(
                SetKind::Map4,
                Some(els.iter().map(|e| e.to_string()).collect()),
            ),
        );
        st
    }

    #[test]
    fn parses_the_planner_forms() {
        let e = parse_element("10.0.0.0/24 : goto mark_up_us1").unwrap();
        assert_eq!((e.start, e.end), (0x0a00_0000, 0x0a00_00ff));
        assert_eq!(e.goto.as_deref(), Some("mark_up_us1"));
        let e = parse_element("10.0.0.5-10.0.1.9").unwrap();
        assert_eq!((e.start, e.end, e.v6), (0x0a00_0005, 0x0a00_0109, false));
        let e = parse_element("fd00::1 : goto client_a").unwrap();
        assert!(e.v6);
        assert_eq!(e.start, e.end);
        assert!(parse_element("10.0.0.1 : accept").is_err());
    }

    #[test]
    fn an_interval_is_a_start_with_the_verdict_and_a_flagged_end() {
        let (mut v, e) = (Vec::new(), parse_element("10.0.0.0/24 : goto c").unwrap());
        e.push_interval(&mut v);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].goto, Some("c"));
        assert_eq!(v[0].elem.key, "10.0.0.0".parse::<IpAddr>().unwrap());
        assert!(!v[0].elem.interval_end);
        assert_eq!(v[1].goto, None);
        assert_eq!(v[1].elem.key, "10.0.1.0".parse::<IpAddr>().unwrap());
        assert!(v[1].elem.interval_end);
        // A range up to the last address has no end element.
        let (mut v, e) = (
            Vec::new(),
            parse_element("255.255.255.0/24 : goto c").unwrap(),
        );
        e.push_interval(&mut v);
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn the_record_loads_only_sets_that_changed() {
        let dir = std::env::temp_dir().join(format!("wgsplit-rec-{}", std::process::id()));
        // SAFETY: this test is the only one in the crate that sets the variable.
        unsafe { std::env::set_var("WGSPLIT_STATE_DIR", &dir) };
        let before = state(&["10.0.0.0/24 : goto x", "10.0.1.0/24 : goto x"]);
        let handles = Handles {
            table: 1,
            sets: BTreeMap::from([("a_r0_map4".to_string(), 5)]),
        };
        let rec = save_recorded(&before, handles.clone(), None).unwrap();
        assert_eq!(load_recorded().as_ref(), Some(&rec));
        assert_eq!(parse_index(&format_index(&rec)).as_ref(), Some(&rec));
        assert_eq!(parse_index("table x\n"), None);
        let mut obs = crate::plan::nft::as_observed(&before);
        obs.sets.get_mut("a_r0_map4").unwrap().elements = SetElements::Unknown;
        merge_recorded(&mut obs, &handles, Some(&rec));
        // Unchanged: stays a digest, nothing read.
        load_changed_sets(&mut obs, &before);
        assert!(matches!(
            obs.sets["a_r0_map4"].elements,
            SetElements::Digest(_)
        ));
        // Changed: the recorded elements are read back for a minimal diff.
        let after = state(&["10.0.0.0/24 : goto x", "10.0.2.0/24 : goto x"]);
        load_changed_sets(&mut obs, &after);
        let b = crate::plan::nft::diff(&after, Some(&obs));
        assert_eq!(b.elements_added, 1);
        assert_eq!(b.elements_deleted, 1);
        // Another set handle (recreated by someone): the record is not trusted.
        let mut obs = crate::plan::nft::as_observed(&before);
        obs.sets.get_mut("a_r0_map4").unwrap().elements = SetElements::Unknown;
        let other = Handles {
            table: 1,
            sets: BTreeMap::from([("a_r0_map4".to_string(), 6)]),
        };
        merge_recorded(&mut obs, &other, Some(&rec));
        assert_eq!(obs.sets["a_r0_map4"].elements, SetElements::Unknown);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
