//! Loading countries into the shared kernel sets `geo_<cc>_4` / `geo_<cc>_6`
//! (interval sets in `table inet wgsplit`, created by the engine).
//!
//! An update is one transaction per set: the ranges the kernel holds that the
//! new data lacks are deleted and the missing ones added, in one netlink batch.
//! nf_tables applies a batch at commit, switching generations atomically, so a
//! packet sees either the old set or the new one — never an empty or half-loaded
//! set — and an unchanged range is never touched. The diff is against what the
//! kernel really holds (read back with a dump), so another process or a
//! re-created set can't make it wrong.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    time::{Duration, Instant},
};

use super::{
    SourceError, geoip,
    ranges::{CountrySet, RangeSet},
};

/// Ranges per transaction when filling an empty set. Each commit walks the
/// whole rbtree (6.x), so fewer, larger chunks are faster; 32k ranges keep a US
/// load under 18 MB peak RSS (8k: 12 MB but 1.5× slower; one batch: 25 MB).
pub const LOAD_CHUNK: usize = 32_768;

/// The kernel side, behind a trait so the plan is tested without root.
pub trait SetIo {
    /// The set's ranges (inclusive), or `None` when the set does not exist.
    fn read(&mut self, set: &str, v6: bool) -> Result<Option<Vec<(u128, u128)>>, String>;
    /// A cheap identity of the set as it exists now (changes whenever the set is
    /// created anew), `None` when unknown: then the set is always read back.
    fn identity(&mut self, _set: &str) -> Option<String> {
        None
    }
    /// One transaction: delete `del`, then add `add`.
    fn swap(
        &mut self,
        set: &str,
        v6: bool,
        del: &[(u128, u128)],
        add: &[(u128, u128)],
    ) -> Result<(), String>;
}

/// What happened to one set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetReport {
    pub set: String,
    /// The set is missing in the kernel (the engine has not created it).
    pub missing: bool,
    pub ranges: usize,
    pub added: usize,
    pub deleted: usize,
    /// Reading the set back from the kernel, and writing the change.
    pub read: Duration,
    pub took: Duration,
}

fn widen<A: Copy + Into<u128>>(r: &[(A, A)]) -> Vec<(u128, u128)> {
    r.iter().map(|&(s, e)| (s.into(), e.into())).collect()
}

/// Makes the two sets of `cc` hold `data`. `known` is what the sets are known
/// to hold (from the last load by this code, see [`sync_all`]); without it they
/// are read back from the kernel.
pub fn sync_country(
    io: &mut dyn SetIo,
    cc: &str,
    data: &CountrySet,
    known: Option<&CountrySet>,
) -> Result<Vec<SetReport>, String> {
    let mut out = Vec::new();
    for v6 in [false, true] {
        let set = geoip::set_name(cc, v6);
        let t = Instant::now();
        let desired = RangeSet::from_ranges(if v6 {
            widen(data.v6.ranges())
        } else {
            widen(data.v4.ranges())
        });
        let mut report = SetReport {
            set: set.clone(),
            ranges: desired.len(),
            ..Default::default()
        };
        let current = match known {
            Some(k) if v6 => Some(widen(k.v6.ranges())),
            Some(k) => Some(widen(k.v4.ranges())),
            None => io.read(&set, v6)?,
        };
        report.read = t.elapsed();
        match current {
            None => report.missing = true,
            Some(current) => {
                let current = RangeSet::from_ranges(current);
                let (del, add) = current.diff(&desired);
                if current.is_empty() {
                    // First load into an empty set: nothing to keep consistent
                    // with, so it goes in chunks (bounded memory on the router).
                    for chunk in add.chunks(LOAD_CHUNK) {
                        io.swap(&set, v6, &[], chunk)
                            .map_err(|e| format!("{set}: {e}"))?;
                    }
                } else if !(del.is_empty() && add.is_empty()) {
                    // An update: one transaction, deletes then adds.
                    io.swap(&set, v6, &del, &add)
                        .map_err(|e| format!("{set}: {e}"))?;
                }
                report.added = add.len();
                report.deleted = del.len();
            }
        }
        report.took = t.elapsed();
        out.push(report);
    }
    Ok(out)
}

/// What the kernel sets hold, as last loaded by [`sync_all`]: set → identity,
/// in `<dir>/loaded.json`, with `geo_<cc>.loaded` (a hard link to the extract
/// that was loaded: no extra space until the next update replaces the extract).
const LOADED: &str = "loaded.json";

fn loaded_file(dir: &Path, cc: &str) -> std::path::PathBuf {
    dir.join(format!("geo_{cc}.loaded"))
}

fn read_loaded(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(dir.join(LOADED))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// The content the sets of `cc` are known to have, if both identities match.
fn known(
    io: &mut dyn SetIo,
    dir: &Path,
    cc: &str,
    loaded: &BTreeMap<String, String>,
) -> Option<CountrySet> {
    for v6 in [false, true] {
        let set = geoip::set_name(cc, v6);
        let id = io.identity(&set)?;
        if loaded.get(&set) != Some(&id) {
            return None;
        }
    }
    let path = loaded_file(dir, cc);
    Some(super::plain::read_nets(&path).ok()?.build())
}

fn remember(io: &mut dyn SetIo, dir: &Path, cc: &str, loaded: &mut BTreeMap<String, String>) {
    let link = loaded_file(dir, cc);
    let tmp = dir.join(format!(".geo_{cc}.loaded.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let linked = std::fs::hard_link(geoip::country_file(dir, cc), &tmp)
        .and_then(|()| std::fs::rename(&tmp, &link))
        .is_ok();
    for v6 in [false, true] {
        let set = geoip::set_name(cc, v6);
        match io.identity(&set) {
            Some(id) if linked => loaded.insert(set, id),
            _ => loaded.remove(&set),
        };
    }
}

/// Loads every country the config uses from the stored extracts in `dir`.
/// Countries without stored data, or whose load failed, are returned with the
/// reason; their sets are left as they were. The diff starts from what this
/// code last loaded when the sets are still the same kernel objects, else from
/// the kernel's own answer; a batch the kernel refuses changes nothing and is
/// retried from the kernel's answer.
pub fn sync_all(
    io: &mut dyn SetIo,
    dir: &Path,
    countries: &BTreeSet<String>,
) -> Result<(Vec<SetReport>, BTreeMap<String, SourceError>), String> {
    let mut reports = Vec::new();
    let mut missing = BTreeMap::new();
    let mut loaded = read_loaded(dir);
    let before = loaded.clone();
    for cc in countries {
        match geoip::stored(dir, cc) {
            Ok(Some(data)) => {
                let prev = known(io, dir, cc, &loaded);
                let mut result = sync_country(io, cc, &data, prev.as_ref());
                if result.is_err() && prev.is_some() {
                    result = sync_country(io, cc, &data, None);
                }
                match result {
                    Ok(r) => {
                        if r.iter().all(|x| !x.missing) {
                            remember(io, dir, cc, &mut loaded);
                        }
                        reports.extend(r);
                    }
                    Err(e) => {
                        missing.insert(cc.clone(), SourceError::Io(e));
                    }
                }
            }
            Ok(None) => {
                missing.insert(
                    cc.clone(),
                    SourceError::Check("not extracted yet (run 'wgsplit lists update')".into()),
                );
            }
            Err(e) => {
                missing.insert(cc.clone(), e);
            }
        }
    }
    if loaded != before {
        let text = serde_json::to_string(&loaded).expect("plain data");
        let _ = crate::util::fs::write_atomic(&dir.join(LOADED), text.as_bytes());
    }
    Ok((reports, missing))
}

#[cfg(test)]
pub mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::sources::ranges::CountryBuilder;

    /// A kernel stand-in that checks each swap the way nf_tables does:
    /// deleting a range it lacks or adding an overlapping one fails the batch.
    #[derive(Default)]
    pub struct FakeKernel {
        pub sets: HashMap<String, Vec<(u128, u128)>>,
        pub swaps: usize,
    }

    impl SetIo for FakeKernel {
        fn read(&mut self, set: &str, _: bool) -> Result<Option<Vec<(u128, u128)>>, String> {
            Ok(self.sets.get(set).cloned())
        }
        fn swap(
            &mut self,
            set: &str,
            _: bool,
            del: &[(u128, u128)],
            add: &[(u128, u128)],
        ) -> Result<(), String> {
            let mut s = self.sets.get(set).cloned().ok_or("ENOENT set")?;
            for d in del {
                let i = s.iter().position(|x| x == d).ok_or("ENOENT element")?;
                s.remove(i);
            }
            for a in add {
                if s.iter().any(|x| x.0 <= a.1 && a.0 <= x.1) {
                    return Err("EEXIST overlap".into());
                }
                s.push(*a);
            }
            s.sort_unstable();
            self.sets.insert(set.into(), s);
            self.swaps += 1;
            Ok(())
        }
    }

    fn country(nets: &[&str]) -> CountrySet {
        let mut b = CountryBuilder::default();
        for n in nets {
            crate::sources::plain::push_net(&mut b, n).unwrap();
        }
        b.build()
    }

    #[test]
    fn loads_then_diffs() {
        let mut k = FakeKernel::default();
        k.sets.insert("geo_us_4".into(), vec![]);
        k.sets.insert("geo_us_6".into(), vec![]);
        let first = country(&["1.0.0.0/24", "3.0.0.0/8", "2001:db8::/32"]);
        let r = sync_country(&mut k, "us", &first, None).unwrap();
        assert_eq!((r[0].added, r[0].deleted, r[1].added), (2, 0, 1));
        assert_eq!(k.swaps, 2);
        // Same data again: nothing sent.
        sync_country(&mut k, "us", &first, None).unwrap();
        assert_eq!(k.swaps, 2);
        // A grown range and a new one: the unchanged 3/8 is never touched.
        let second = country(&["1.0.0.0/23", "3.0.0.0/8", "9.9.9.9", "2001:db8::/32"]);
        let r = sync_country(&mut k, "us", &second, None).unwrap();
        assert_eq!((r[0].added, r[0].deleted), (2, 1));
        assert_eq!(k.swaps, 3);
        assert_eq!(
            RangeSet::from_ranges(k.sets["geo_us_4"].clone()),
            RangeSet::from_ranges(widen(second.v4.ranges()))
        );
        // No set in the kernel: reported, nothing written.
        let r = sync_country(&mut k, "cn", &first, None).unwrap();
        assert!(r.iter().all(|x| x.missing));
    }
}
