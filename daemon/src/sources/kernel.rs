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

/// Ranges per transaction when filling an empty set.
pub const LOAD_CHUNK: usize = 8192;

/// The kernel side, behind a trait so the plan is tested without root.
pub trait SetIo {
    /// The set's ranges (inclusive), or `None` when the set does not exist.
    fn read(&mut self, set: &str, v6: bool) -> Result<Option<Vec<(u128, u128)>>, String>;
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
    pub took: Duration,
}

fn widen<A: Copy + Into<u128>>(r: &[(A, A)]) -> Vec<(u128, u128)> {
    r.iter().map(|&(s, e)| (s.into(), e.into())).collect()
}

/// Makes the two sets of `cc` hold `data`.
pub fn sync_country(
    io: &mut dyn SetIo,
    cc: &str,
    data: &CountrySet,
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
        match io.read(&set, v6)? {
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

/// Loads every country the config uses from the stored extracts in `dir`.
/// Countries without stored data, or whose load failed, are returned with the
/// reason; their sets are left as they were.
pub fn sync_all(
    io: &mut dyn SetIo,
    dir: &Path,
    countries: &BTreeSet<String>,
) -> Result<(Vec<SetReport>, BTreeMap<String, SourceError>), String> {
    let mut reports = Vec::new();
    let mut missing = BTreeMap::new();
    for cc in countries {
        match geoip::stored(dir, cc) {
            Ok(Some(data)) => match sync_country(io, cc, &data) {
                Ok(r) => reports.extend(r),
                Err(e) => {
                    missing.insert(cc.clone(), SourceError::Io(e));
                }
            },
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
        let r = sync_country(&mut k, "us", &first).unwrap();
        assert_eq!((r[0].added, r[0].deleted, r[1].added), (2, 0, 1));
        assert_eq!(k.swaps, 2);
        // Same data again: nothing sent.
        sync_country(&mut k, "us", &first).unwrap();
        assert_eq!(k.swaps, 2);
        // A grown range and a new one: the unchanged 3/8 is never touched.
        let second = country(&["1.0.0.0/23", "3.0.0.0/8", "9.9.9.9", "2001:db8::/32"]);
        let r = sync_country(&mut k, "us", &second).unwrap();
        assert_eq!((r[0].added, r[0].deleted), (2, 1));
        assert_eq!(k.swaps, 3);
        assert_eq!(
            RangeSet::from_ranges(k.sets["geo_us_4"].clone()),
            RangeSet::from_ranges(widen(second.v4.ranges()))
        );
        // No set in the kernel: reported, nothing written.
        let r = sync_country(&mut k, "cn", &first).unwrap();
        assert!(r.iter().all(|x| x.missing));
    }
}
