//! The rule-source readers on any bytes (downloads are untrusted): the mmdb
//! reader, the geoip.dat and geosite.dat stream walkers, the pruner and the text
//! readers never panic, loop or allocate without bound; whatever they accept
//! gives well-formed range sets.
#![no_main]

use std::{
    collections::{BTreeSet, HashMap},
    path::PathBuf,
    sync::OnceLock,
};

use libfuzzer_sys::fuzz_target;
use wgsplit::sources::{geoipdat, geosite, mmdb, plain, v2fly::Selector};

fn path(tag: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        // One fixed folder (two small files), reused by every run.
        let d = std::env::temp_dir().join("wsl-fuzz-source-readers");
        std::fs::create_dir_all(&d).unwrap();
        d
    });
    dir.join(tag)
}

fuzz_target!(|data: &[u8]| {
    let input = path("input");
    std::fs::write(&input, data).unwrap();
    let mut out = HashMap::new();
    if mmdb::extract(&input, None, &mut out).is_ok() {
        for (_, b) in out.drain() {
            let set = b.build();
            assert!(set.v4.ranges().windows(2).all(|w| w[0].1 < w[1].0));
        }
    }
    let _ = geoipdat::extract(&input, None, &mut out);
    for (_, b) in out.drain() {
        let set = b.build();
        assert!(set.v6.ranges().windows(2).all(|w| w[0].1 < w[1].0));
    }
    let _ = plain::extract_csv(&input, None, &mut HashMap::new());
    let _ = plain::read_nets(&input);
    if let Ok(cats) = geosite::categories(&input) {
        let wanted: BTreeSet<String> = cats.iter().map(|(n, _)| n.clone()).take(2).collect();
        let pruned = path("pruned");
        if geosite::prune(&input, &pruned, &wanted).is_ok() {
            let again = geosite::categories(&pruned).expect("a pruned file reads back");
            assert!(again.len() <= wanted.len().max(cats.len()));
        }
        if let Some((name, _)) = cats.first()
            && let Ok(sel) = Selector::parse(name)
        {
            let _ = geosite::load(&input, &sel, &mut |_| {});
        }
    }
});
