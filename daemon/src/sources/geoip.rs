//! GeoIP: which countries the rules use, extraction of just those from whatever
//! database the router has, and the small per-country range files kept in the
//! lists folder (`geo_<cc>.txt`, one `start-end` per line) that the kernel
//! loader reads.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    path::{Path, PathBuf},
};

use super::{
    SourceError, geoipdat, mmdb, plain,
    ranges::{CountryBuilder, CountrySet},
};
use crate::config::{Config, GeoipFormat, types::parse_geoip};

pub use crate::policy::geo_set_name as set_name;

/// Every country an enabled rule names (`us` and `!us` alike), lowercase, sorted.
pub fn used_countries(config: &Config) -> BTreeSet<String> {
    config
        .rules
        .iter()
        .filter(|r| r.enabled_or_default())
        .flat_map(|r| r.geoip.iter())
        .filter_map(|g| parse_geoip(g).ok())
        .map(|(_, cc)| cc)
        .collect()
}

/// The format of a source: the configured one, else guessed from its name.
pub fn detect(path: &Path, configured: Option<GeoipFormat>) -> GeoipFormat {
    if let Some(f) = configured {
        return f;
    }
    let name = path.to_string_lossy().to_ascii_lowercase();
    if path.is_dir() {
        GeoipFormat::Dir
    } else if name.ends_with(".dat") {
        GeoipFormat::Dat
    } else if name.ends_with(".csv") {
        GeoipFormat::Csv
    } else {
        GeoipFormat::Mmdb
    }
}

/// Reads the wanted countries (lowercase codes; `None` = all) from a source.
/// Every wanted country is in the result, empty when the source lacks it.
pub fn extract(
    path: &Path,
    format: GeoipFormat,
    wanted: Option<&BTreeSet<String>>,
) -> Result<BTreeMap<String, CountrySet>, SourceError> {
    let codes: Option<HashSet<[u8; 2]>> = wanted.map(|w| {
        w.iter()
            .filter_map(|c| <[u8; 2]>::try_from(c.as_bytes()).ok())
            .collect()
    });
    let mut out: HashMap<[u8; 2], CountryBuilder> = HashMap::new();
    match format {
        GeoipFormat::Mmdb => {
            mmdb::extract(path, codes.as_ref(), &mut out)?;
        }
        GeoipFormat::Dat => {
            geoipdat::extract(path, codes.as_ref(), &mut out)?;
        }
        GeoipFormat::Csv => {
            // A CSV path may name the IPv4 file; its `ipv6` twin is read too.
            plain::extract_csv(path, codes.as_ref(), &mut out)?;
            if let Some(twin) = csv_twin(path) {
                plain::extract_csv(&twin, codes.as_ref(), &mut out)?;
            }
        }
        GeoipFormat::Dir => {
            plain::extract_dir(path, codes.as_ref(), &mut out)?;
        }
    }
    let mut result: BTreeMap<String, CountrySet> = out
        .into_iter()
        .map(|(cc, b)| (String::from_utf8_lossy(&cc).into_owned(), b.build()))
        .collect();
    if let Some(w) = wanted {
        for cc in w {
            result.entry(cc.clone()).or_default();
        }
    }
    Ok(result)
}

/// `…-ipv4.csv` → `…-ipv6.csv` (and `-ipv4-num` → `-ipv6-num`) when it exists.
fn csv_twin(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let twin = name
        .contains("ipv4")
        .then(|| name.replace("ipv4", "ipv6"))?;
    let p = path.with_file_name(twin);
    p.is_file().then_some(p)
}

/// The extracted ranges of a country in the lists folder.
pub fn country_file(dir: &Path, cc: &str) -> PathBuf {
    dir.join(format!("geo_{cc}.txt"))
}

/// Writes a country's ranges atomically.
pub fn store(dir: &Path, cc: &str, set: &CountrySet) -> Result<(), SourceError> {
    std::fs::create_dir_all(dir).map_err(|e| SourceError::Io(format!("{}: {e}", dir.display())))?;
    let path = country_file(dir, cc);
    crate::util::fs::write_atomic(&path, set.to_text().as_bytes())
        .map_err(|e| SourceError::Io(format!("{}: {e}", path.display())))
}

/// Reads a country's stored ranges (`None` when never extracted).
pub fn stored(dir: &Path, cc: &str) -> Result<Option<CountrySet>, SourceError> {
    let path = country_file(dir, cc);
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(plain::read_nets(&path)?.build()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::mmdb::tests::tempfile_path::TempPath;

    #[test]
    fn used_and_stored() {
        let text = include_str!("../../tests/fixtures/config/good/quoting.uci");
        let config = crate::config::parse_valid(text).unwrap();
        assert_eq!(
            used_countries(&config).into_iter().collect::<Vec<_>>(),
            vec!["cn"]
        );
        assert_eq!(set_name("us", true), "geo_us_6");

        let d = TempPath::new("store");
        let mut b = CountryBuilder::default();
        b.push_cidr("1.2.3.0".parse().unwrap(), 24);
        b.push_cidr("2001:db8::".parse().unwrap(), 48);
        let set = b.build();
        store(&d.0, "us", &set).unwrap();
        assert_eq!(stored(&d.0, "us").unwrap(), Some(set));
        assert_eq!(stored(&d.0, "cn").unwrap(), None);
    }

    #[test]
    fn all_formats_agree() {
        // The same data as mmdb, dat, csv and a folder gives the same sets.
        let d = TempPath::new("formats");
        std::fs::create_dir(&d.0).unwrap();
        let ip = |s: &str| -> std::net::IpAddr { s.parse().unwrap() };
        let dat = geoipdat::encode(&[
            ("US", vec![(ip("1.0.0.0"), 24), (ip("1.0.1.0"), 24)]),
            ("DE", vec![(ip("8.0.0.0"), 8)]),
        ]);
        std::fs::write(d.0.join("geoip.dat"), dat).unwrap();
        std::fs::write(
            d.0.join("c-ipv4.csv"),
            "1.0.0.0,1.0.1.255,US\n8.0.0.0,8.255.255.255,DE\n",
        )
        .unwrap();
        std::fs::create_dir(d.0.join("zones")).unwrap();
        std::fs::write(d.0.join("zones/us.zone"), "1.0.0.0/24\n1.0.1.0/24\n").unwrap();
        std::fs::write(d.0.join("zones/de.zone"), "8.0.0.0/8\n").unwrap();
        let v4 = |s: &str| u32::from(s.parse::<std::net::Ipv4Addr>().unwrap());
        let db = mmdb::tests::build_v4(
            &[(v4("1.0.0.0"), 23, 0), (v4("8.0.0.0"), 8, 1)],
            &[
                mmdb::tests::dbip_record("US"),
                mmdb::tests::geoip2_record("DE"),
            ],
        );
        std::fs::write(d.0.join("c.mmdb"), db).unwrap();
        let wanted: BTreeSet<String> = ["us".to_string(), "de".into(), "fr".into()].into();
        let mut results = Vec::new();
        for name in ["geoip.dat", "c-ipv4.csv", "zones", "c.mmdb"] {
            let p = d.0.join(name);
            let r = extract(&p, detect(&p, None), Some(&wanted)).unwrap();
            assert_eq!(r.len(), 3, "{name}");
            assert!(r["fr"].is_empty());
            results.push(r);
        }
        for r in &results[1..] {
            assert_eq!(r, &results[0]);
        }
    }
}
