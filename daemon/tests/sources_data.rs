//! Rule sources against real data (run by tests/suites/sources.sh, which installs
//! it): DB-IP lite country as mmdb and as CSV must give the same ranges, with the
//! sizes DB-IP publishes; a geosite.dat built from domain-list-community must
//! give what the source lists give. Skipped (with a note) when the data is absent.

use std::{collections::BTreeSet, path::PathBuf, time::Instant};

use wgsplit::{
    config::{GeoipFormat, List, ListFormat},
    sources::{domains, geoip, v2fly},
};

fn env_path(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os(name)?);
    p.exists().then_some(p)
}

#[test]
fn mmdb_and_csv_agree() {
    let Some(dir) = env_path("WSL_DBIP_DIR") else {
        eprintln!("skipped: WSL_DBIP_DIR not set");
        return;
    };
    let wanted: BTreeSet<String> = ["us", "cn", "ru", "de"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let t = Instant::now();
    let mmdb = geoip::extract(
        &dir.join("dbip-country-mmdb/dbip-country.mmdb"),
        GeoipFormat::Mmdb,
        Some(&wanted),
    )
    .unwrap();
    eprintln!("mmdb: {:?}", t.elapsed());
    let t = Instant::now();
    let csv = geoip::extract(
        &dir.join("dbip-country/dbip-country-ipv4.csv"),
        GeoipFormat::Csv,
        Some(&wanted),
    )
    .unwrap();
    eprintln!("csv: {:?}", t.elapsed());
    for cc in &wanted {
        let (a, b) = (&mmdb[cc], &csv[cc]);
        eprintln!(
            "{cc}: mmdb {} / {}, csv {} / {}",
            a.v4.len(),
            a.v6.len(),
            b.v4.len(),
            b.v6.len()
        );
        assert_eq!(a.v4, b.v4, "{cc} v4");
        assert_eq!(a.v6, b.v6, "{cc} v6");
    }
    // DB-IP 2026-06 (shared/data/README.md): US 63,940 / 33,418 ranges.
    let us = &mmdb["us"];
    assert!(
        us.v4.len() > 50_000 && us.v6.len() > 25_000,
        "{} {}",
        us.v4.len(),
        us.v6.len()
    );
    assert!(us.contains("8.8.8.8".parse().unwrap()));
    assert!(!us.contains("77.88.8.8".parse().unwrap()));
    assert!(mmdb["ru"].contains("77.88.8.8".parse().unwrap()));
    // The split files agree with the combined one.
    let v4only = geoip::extract(
        &dir.join("dbip-country-mmdb/dbip-country-ipv4.mmdb"),
        GeoipFormat::Mmdb,
        Some(&wanted),
    )
    .unwrap();
    assert_eq!(v4only["us"].v4, us.v4);
    // A v2fly geoip.dat of the same data (built by tests/sources/build_geoipdat.py).
    if let Some(dat) = env_path("WSL_GEOIP_DAT") {
        let t = Instant::now();
        let from_dat = geoip::extract(&dat, GeoipFormat::Dat, Some(&wanted)).unwrap();
        eprintln!("geoip.dat: {:?}", t.elapsed());
        for cc in &wanted {
            assert_eq!(from_dat[cc], mmdb[cc], "{cc} geoip.dat vs mmdb");
        }
    }
}

#[test]
fn geosite_matches_source_lists() {
    let (Some(dat), Some(data)) = (env_path("WSL_GEOSITE_DAT"), env_path("WSL_DLC_DATA")) else {
        eprintln!("skipped: WSL_GEOSITE_DAT / WSL_DLC_DATA not set");
        return;
    };
    for cat in [
        "netflix",
        "google",
        "category-ads-all",
        "category-ads-all@ads",
        "geolocation-cn@-!cn",
    ] {
        let from = |format: ListFormat, path: &PathBuf| -> BTreeSet<String> {
            let list = List {
                name: "t".into(),
                path: path.to_string_lossy().into_owned(),
                format: Some(format),
                url: None,
                category: Some(cat.into()),
                ..Default::default()
            };
            domains::load(&list)
                .unwrap()
                .map(|e| e.to_string())
                .collect()
        };
        let a = from(ListFormat::Geosite, &dat);
        let b = from(ListFormat::V2fly, &data);
        eprintln!("{cat}: {} entries", a.len());
        assert!(!a.is_empty(), "{cat}");
        assert_eq!(a, b, "{cat}");
    }
    assert!(v2fly::Selector::parse("netflix").is_ok());
}
