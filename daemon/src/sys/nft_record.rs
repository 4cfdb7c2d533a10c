//! The record of what the engine wrote last, per network namespace: the
//! handles it saw, a digest of each set's elements and the elements themselves,
//! one file per set, read only when that set changes. `nft-<netns inode>.lock`
//! serialises applies (daemon and CLI) in one namespace.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use super::nftlist::Handles;
use crate::{
    plan::nft::{Element, NftSet, NftState, ObservedNft, SetElements, set_digest},
    util::paths::state_dir,
};

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
/// file per set (its elements as nft text, one per line, in text order: the
/// bytes every version wrote, see `set_file`).
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
fn load_set(name: &str, digest: u64) -> Option<BTreeSet<Element>> {
    let text = std::fs::read_to_string(record_dir().join("sets").join(name)).ok()?;
    parse_set_file(&text, digest)
}

/// The elements of a set file, if every line is one and they add up to `digest`
/// (a torn or edited file is not trusted: the set is rewritten whole).
fn parse_set_file(text: &str, digest: u64) -> Option<BTreeSet<Element>> {
    let els: BTreeSet<Element> = text
        .lines()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    (set_digest(&els) == digest).then_some(els)
}

/// A set file: one element per line, the lines sorted as text. Earlier versions
/// planned elements as text and wrote them in that order; writing the same
/// bytes keeps a record readable by the version before and after.
fn set_file(elements: &BTreeSet<Element>) -> String {
    let mut lines: Vec<String> = elements.iter().map(ToString::to_string).collect();
    lines.sort_unstable();
    let mut text = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for l in lines {
        text.push_str(&l);
        text.push('\n');
    }
    text
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
        replace(&sets.join(name), set_file(els).as_bytes()).map_err(io)?;
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
    use crate::{
        config,
        plan::{
            self, Inputs,
            nft::{SetKind, fingerprint},
        },
        policy,
    };

    fn elements(els: &[&str]) -> BTreeSet<Element> {
        els.iter().map(|e| e.parse().unwrap()).collect()
    }

    fn state(els: &[&str]) -> NftState {
        let mut st = NftState::default();
        st.sets.insert(
            "a_r0_map4".into(),
            NftSet::new(SetKind::Map4, Some(elements(els))),
        );
        st
    }

    /// The config the record below was taken on: merged CIDR runs (prefixes,
    /// spans, the whole space, the top of it), rules' own CIDR sets, inline
    /// prefixes and the client maps, in both families.
    fn pinned_config() -> config::Config {
        let mut c = config::parse_valid(include_str!("../../../examples/wgsplit.conf")).unwrap();
        let rule = |client: &str, action, cidr: &[&str], port: &[&str]| config::Rule {
            client: client.into(),
            action,
            cidr: cidr.iter().map(|s| s.to_string()).collect(),
            port: port.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        use config::Action::{Block, Direct, Proxy};
        let nets = ["192.0.2.0/24", "203.0.113.0/24", "2001:db8::/32"];
        c.rules.insert(0, rule("alice", Proxy, &nets, &[]));
        c.rules.extend([
            rule("carol", Direct, &["10.1.2.0/24", "fd00::5/128"], &[]),
            rule(
                "carol",
                Block,
                &["10.0.0.0/8", "255.255.255.0/24", "2001:db8:1::/48"],
                &[],
            ),
            rule("carol", Direct, &["0.0.0.0/0", "::/0"], &[]),
            rule(
                "bob",
                Block,
                &[
                    "198.18.0.0/15",
                    "198.51.100.7/32",
                    "fd00:1::/64",
                    "fd00:2::/64",
                ],
                &["udp:443"],
            ),
            rule("bob", Direct, &["100.64.0.0/10"], &["tcp:80"]),
        ]);
        // The DNS bypass guard (#19, after f0d466b) adds sets of its own: off
        // here, so the sets compare with what f0d466b recorded.
        for client in &mut c.clients {
            client.dns_guard = Some(false);
        }
        c
    }

    /// Set files and digests as the version that planned elements as text
    /// (f0d466b) recorded them for `pinned_config`: (set, digest, file).
    const RECORDED_BY_TEXT_PLANNER: [(&str, u64, &str); 10] = [
        (
            "alice_r0_up_us1_v4",
            0x5124fa951f166ad,
            "192.0.2.0/24\n203.0.113.0/24\n",
        ),
        ("alice_r0_up_us1_v6", 0xef732e4a0e1b9a6, "2001:db8::/32\n"),
        (
            "bob_r1_net4",
            0x4b22997781341b17,
            "198.18.0.0/15\n198.51.100.7\n",
        ),
        (
            "bob_r1_net6",
            0xe6532599c2d0bfa5,
            "fd00:1::/64\nfd00:2::/64\n",
        ),
        (
            "carol_r0_block_v4",
            0x64f7915e9415f71b,
            "10.0.0.0-10.1.1.255\n10.1.3.0-10.255.255.255\n255.255.255.0/24\n",
        ),
        ("carol_r0_block_v6", 0x2c19fa8154787073, "2001:db8:1::/48\n"),
        (
            "carol_r0_direct_v4",
            0x212362c6fe63d2b9,
            "0.0.0.0-9.255.255.255\n10.1.2.0/24\n11.0.0.0-255.255.254.255\n",
        ),
        (
            "carol_r0_direct_v6",
            0x67bd69b2283dc4c1,
            "2001:db8:2::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\n\
             ::-2001:db8:0:ffff:ffff:ffff:ffff:ffff\n",
        ),
        (
            "clients4",
            0x6ffb0565ed2b4311,
            "10.8.0.2 : goto client_alice\n10.8.0.3 : goto client_bob\n\
             10.8.0.4 : goto client_carol\n",
        ),
        (
            "clients6",
            0x46a2899c29f57baa,
            "fd42:8::2 : goto client_alice\n",
        ),
    ];

    /// fnv64 over `CHAIN FINGERPRINT\n` of every rule, chains in name order,
    /// for `pinned_config`. f0d466b planned 0xed9b28336f6e7716; #19 changed
    /// rules on purpose (a learned set's rule refreshes the element it
    /// matched; the `output_related` chain), so the first apply after that
    /// upgrade rewrites those chains once. This pins today's plan so that a
    /// change of a rule's text is a decision, not an accident.
    const RULE_FINGERPRINTS_BY_TEXT_PLANNER: u64 = 0x01475fda0d45acfb;

    #[test]
    fn a_restart_adopts_what_the_text_planner_recorded() {
        let policy = policy::compile(&pinned_config(), 0);
        let desired = plan::desired(&policy, &Inputs::default()).nft;
        let owned: Vec<(&String, &NftSet)> = desired
            .sets
            .iter()
            .filter(|(_, s)| s.elements.is_some())
            .collect();
        assert_eq!(owned.len(), RECORDED_BY_TEXT_PLANNER.len());
        for ((name, set), (old_name, old_digest, old_file)) in
            owned.into_iter().zip(RECORDED_BY_TEXT_PLANNER)
        {
            assert_eq!(name, old_name);
            let els = set.elements.as_ref().unwrap();
            // The same digest in index.txt: the set counts as unchanged, unread.
            assert_eq!(set.digest(), Some(old_digest), "{name}");
            // The same bytes in its file, and the old file reads back as these elements.
            assert_eq!(set_file(els), old_file, "{name}");
            assert_eq!(
                parse_set_file(old_file, old_digest).as_ref(),
                Some(els),
                "{name}"
            );
        }
        // Rule comments: no chain is rewritten on the first apply after the upgrade.
        let mut all = String::new();
        for (name, chain) in &desired.chains {
            for r in &chain.rules {
                all.push_str(&format!("{name} {}\n", fingerprint(r)));
            }
        }
        assert_eq!(
            format!("{:#x}", plan::fnv64(all.as_bytes())),
            format!("{RULE_FINGERPRINTS_BY_TEXT_PLANNER:#x}")
        );
    }

    #[test]
    fn a_set_file_that_does_not_add_up_is_not_trusted() {
        let els = elements(&["10.0.0.0/24 : goto x", "10.0.1.0/24 : goto x"]);
        let digest = set_digest(&els);
        let file = set_file(&els);
        assert_eq!(parse_set_file(&file, digest).as_ref(), Some(&els));
        // Torn (a line lost), a line that is no element, another digest.
        assert_eq!(parse_set_file("10.0.0.0/24 : goto x\n", digest), None);
        assert_eq!(parse_set_file(&format!("{file}junk\n"), digest), None);
        assert_eq!(parse_set_file(&file, digest ^ 1), None);
        // Another spelling of the same range is the same element.
        let respelled = file.replace("10.0.0.0/24", "10.0.0.0-10.0.0.255");
        assert_eq!(parse_set_file(&respelled, digest).as_ref(), Some(&els));
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
