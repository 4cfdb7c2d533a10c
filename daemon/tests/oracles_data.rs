//! Well-kept libraries as oracles of our hand-written readers, over the real
//! data the suites pin (run by tests/suites/oracles.sh, which fetches it; each
//! test says "skipped" when its data is absent). The libraries are
//! dev-dependencies only: the router binary carries none of them.
//! - `maxminddb` vs `sources/mmdb.rs`: every network of DB-IP lite country
//!   (IPv4 and IPv6), every country's ranges equal.
//! - `regex` vs `dns/regex.rs`: every `regexp:` entry of domain-list-community
//!   against every name of its lists (and `www.` under each), the same verdict.
//! - `prost` vs `sources/geosite.rs` and `sources/geoipdat.rs`: a decoder
//!   declared from v2fly's `.proto` reads every category (its entries, their
//!   order and attributes) and every country the same.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
    path::{Path, PathBuf},
    time::Instant,
};

use wgsplit::{
    config::GeoipFormat,
    dns::regex::Regex as OurRegex,
    sources::{
        domains::{DomainEntry, DomainKind},
        geoip, geosite,
        ranges::{CountrySet, RangeSet},
        v2fly::Selector,
    },
};

fn env_path(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os(name)?);
    p.exists().then_some(p)
}

/// A lowercase two-letter code, as ours keeps it (anything else is not a country).
fn country_code(s: &str) -> Option<String> {
    (s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphabetic())).then(|| s.to_ascii_lowercase())
}

fn cidr4(a: u32, len: u32) -> (u32, u32) {
    let host = if len == 0 {
        u32::MAX
    } else {
        (1u32 << (32 - len)) - 1
    };
    (a & !host, a | host)
}

fn cidr6(a: u128, len: u32) -> (u128, u128) {
    let host = if len == 0 {
        u128::MAX
    } else {
        (1u128 << (128 - len)) - 1
    };
    (a & !host, a | host)
}

#[derive(Default)]
struct Collected {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl Collected {
    fn push(&mut self, ip: IpAddr, len: u32) {
        match ip {
            IpAddr::V4(a) => self.v4.push(cidr4(a.into(), len)),
            IpAddr::V6(a) => self.v6.push(cidr6(a.into(), len)),
        }
    }
    fn finish(self) -> (RangeSet<u32>, RangeSet<u128>) {
        (
            RangeSet::from_ranges(self.v4),
            RangeSet::from_ranges(self.v6),
        )
    }
}

/// Every country's ranges in ours equal the oracle's, and both hold the same countries.
fn assert_same_countries(
    what: &str,
    ours: &BTreeMap<String, CountrySet>,
    theirs: BTreeMap<String, Collected>,
) {
    let theirs: BTreeMap<String, (RangeSet<u32>, RangeSet<u128>)> =
        theirs.into_iter().map(|(cc, c)| (cc, c.finish())).collect();
    let ours_codes: BTreeSet<&String> = ours.keys().collect();
    let their_codes: BTreeSet<&String> = theirs.keys().collect();
    assert_eq!(ours_codes, their_codes, "{what}: countries");
    let (mut v4, mut v6) = (0, 0);
    for (cc, (t4, t6)) in &theirs {
        let o = &ours[cc];
        assert_eq!(o.v4.ranges(), t4.ranges(), "{what}: {cc} IPv4");
        assert_eq!(o.v6.ranges(), t6.ranges(), "{what}: {cc} IPv6");
        v4 += t4.len();
        v6 += t6.len();
    }
    eprintln!(
        "{what}: {} countries, {v4} IPv4 and {v6} IPv6 ranges agree",
        theirs.len()
    );
}

/// The country of a record the way ours reads it: GeoIP2's `country.iso_code`,
/// else DB-IP's `country_code`, else `registered_country.iso_code`.
fn mmdb_country<S: AsRef<[u8]>>(r: &maxminddb::LookupResult<'_, S>) -> Option<String> {
    let get = |p: &[maxminddb::PathElement<'_>]| -> Option<String> {
        r.decode_path::<String>(p)
            .ok()
            .flatten()
            .and_then(|s| country_code(&s))
    };
    get(&maxminddb::path!["country", "iso_code"])
        .or_else(|| get(&maxminddb::path!["country_code"]))
        .or_else(|| get(&maxminddb::path!["registered_country", "iso_code"]))
}

fn maxminddb_countries(path: &Path) -> BTreeMap<String, Collected> {
    let reader = maxminddb::Reader::open_readfile(path).expect("maxminddb opens it");
    let mut by_offset: HashMap<usize, Option<String>> = HashMap::new();
    let mut out: BTreeMap<String, Collected> = BTreeMap::new();
    for item in reader.networks(Default::default()).expect("networks") {
        let r = item.expect("maxminddb reads every network");
        let Some(off) = r.offset() else { continue };
        let cc = by_offset
            .entry(off)
            .or_insert_with(|| mmdb_country(&r))
            .clone();
        let Some(cc) = cc else { continue };
        let net = r.network().expect("network");
        out.entry(cc)
            .or_default()
            .push(net.ip(), u32::from(net.prefix()));
    }
    out
}

#[test]
fn mmdb_reader_agrees_with_the_maxminddb_crate() {
    let Some(dir) = env_path("WSL_DBIP_DIR") else {
        eprintln!("skipped: WSL_DBIP_DIR not set");
        return;
    };
    for file in [
        "dbip-country.mmdb",
        "dbip-country-ipv4.mmdb",
        "dbip-country-ipv6.mmdb",
    ] {
        let path = dir.join("dbip-country-mmdb").join(file);
        let t = Instant::now();
        let ours = geoip::extract(&path, GeoipFormat::Mmdb, None).expect("ours reads it");
        let ours_time = t.elapsed();
        let t = Instant::now();
        let theirs = maxminddb_countries(&path);
        eprintln!("{file}: ours {ours_time:?}, maxminddb {:?}", t.elapsed());
        // The combined file has both families, the split ones one each.
        let families = |v4: bool| {
            theirs
                .values()
                .any(|c| !(if v4 { c.v4.is_empty() } else { c.v6.is_empty() }))
        };
        assert_eq!(
            families(true),
            !file.contains("ipv6"),
            "{file}: IPv4 present"
        );
        assert_eq!(
            families(false),
            !file.contains("ipv4"),
            "{file}: IPv6 present"
        );
        assert_same_countries(file, &ours, theirs);
    }
}

/// Lines of the list files: (regexp: values, names of domain:/full:/bare entries).
fn dlc_entries(dir: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut regexps = BTreeSet::new();
    let mut names = BTreeSet::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the data folder")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let Some(first) = line.split_whitespace().next() else {
                continue;
            };
            match first.split_once(':') {
                Some(("regexp", v)) => {
                    regexps.insert(v.to_string());
                }
                Some(("domain" | "full", v)) => {
                    names.insert(v.to_ascii_lowercase());
                }
                Some(_) => {}
                None => {
                    names.insert(first.to_ascii_lowercase());
                }
            }
        }
    }
    (regexps, names)
}

#[test]
fn regex_engine_agrees_with_the_regex_crate_on_domain_list_community() {
    let Some(dir) = env_path("WSL_DLC_DATA") else {
        eprintln!("skipped: WSL_DLC_DATA not set");
        return;
    };
    let (regexps, list_names) = dlc_entries(&dir);
    // Each name, and a subdomain of it (what `domain:` entries match too).
    let names: Vec<String> = list_names
        .iter()
        .flat_map(|n| [n.clone(), format!("www.{n}")])
        .collect();
    let mut refused = Vec::new();
    let mut compared = 0u64;
    let mut matches = 0u64;
    let t = Instant::now();
    for text in &regexps {
        // Names are matched lowercase, and ours reads letters in an expression
        // case-insensitively (dns/regex.rs): the same as the crate's `(?i)`.
        let theirs = regex::RegexBuilder::new(text)
            .case_insensitive(true)
            .build();
        let ours = match OurRegex::new(text) {
            Ok(r) => r,
            Err(why) => {
                refused.push((text.clone(), why, theirs.is_ok()));
                continue;
            }
        };
        let theirs =
            theirs.unwrap_or_else(|e| panic!("ours accepts {text:?}, the crate does not: {e}"));
        for n in &names {
            let (o, t) = (ours.is_match(n.as_bytes()), theirs.is_match(n));
            assert_eq!(o, t, "regexp:{text} on {n}: ours {o}, the regex crate {t}");
            matches += u64::from(o);
        }
        compared += names.len() as u64;
    }
    eprintln!(
        "{} expressions × {} names: {compared} verdicts agree ({matches} matches) in {:?}",
        regexps.len() - refused.len(),
        names.len(),
        t.elapsed()
    );
    for (text, why, crate_ok) in &refused {
        eprintln!(
            "refused by ours: {text:?} ({why}); the crate {}",
            if *crate_ok { "accepts it" } else { "too" }
        );
    }
    // Real lists use a few hundred expressions; the subset must cover them.
    assert!(regexps.len() > 100, "{} expressions", regexps.len());
    assert!(
        matches > 100,
        "{matches} matches: the names reach the expressions"
    );
    assert!(
        refused.is_empty(),
        "ours refuses {} expressions real lists use",
        refused.len()
    );
}

/// v2fly's `common.proto` (routercommon), declared for prost: the messages of
/// geosite.dat and geoip.dat.
mod v2fly_proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Attribute {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(oneof = "TypedValue", tags = "2, 3")]
        pub typed_value: Option<TypedValue>,
    }
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum TypedValue {
        #[prost(bool, tag = "2")]
        Bool(bool),
        #[prost(int64, tag = "3")]
        Int(i64),
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Domain {
        /// 0 plain (keyword), 1 regex, 2 domain (root domain), 3 full.
        #[prost(int32, tag = "1")]
        pub r#type: i32,
        #[prost(string, tag = "2")]
        pub value: String,
        #[prost(message, repeated, tag = "3")]
        pub attribute: Vec<Attribute>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GeoSite {
        #[prost(string, tag = "1")]
        pub country_code: String,
        #[prost(message, repeated, tag = "2")]
        pub domain: Vec<Domain>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GeoSiteList {
        #[prost(message, repeated, tag = "1")]
        pub entry: Vec<GeoSite>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Cidr {
        #[prost(bytes = "vec", tag = "1")]
        pub ip: Vec<u8>,
        #[prost(uint32, tag = "2")]
        pub prefix: u32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GeoIp {
        #[prost(string, tag = "1")]
        pub country_code: String,
        #[prost(message, repeated, tag = "2")]
        pub cidr: Vec<Cidr>,
        #[prost(bool, tag = "3")]
        pub reverse_match: bool,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GeoIpList {
        #[prost(message, repeated, tag = "1")]
        pub entry: Vec<GeoIp>,
    }
}

fn decode_file<M: prost::Message + Default>(path: &Path) -> M {
    let bytes = std::fs::read(path).unwrap();
    M::decode(bytes.as_slice()).unwrap_or_else(|e| panic!("prost reads {}: {e}", path.display()))
}

fn entry_of(d: &v2fly_proto::Domain) -> DomainEntry {
    let kind = match d.r#type {
        0 => DomainKind::Keyword,
        1 => DomainKind::Regexp,
        2 => DomainKind::Domain,
        3 => DomainKind::Full,
        t => panic!("domain type {t}"),
    };
    DomainEntry::new(kind, &d.value).unwrap_or_else(|e| panic!("{}: {e}", d.value))
}

#[test]
fn geosite_walker_agrees_with_a_prost_decoder() {
    let Some(dat) = env_path("WSL_GEOSITE_DAT") else {
        eprintln!("skipped: WSL_GEOSITE_DAT not set");
        return;
    };
    let list: v2fly_proto::GeoSiteList = decode_file(&dat);
    let theirs: Vec<(String, usize)> = list
        .entry
        .iter()
        .map(|g| (g.country_code.to_ascii_lowercase(), g.domain.len()))
        .collect();
    assert_eq!(
        geosite::categories(&dat).unwrap(),
        theirs,
        "categories and their sizes"
    );
    let t = Instant::now();
    let (mut entries, mut filtered) = (0, 0);
    for g in &list.entry {
        let name = g.country_code.to_ascii_lowercase();
        let load = |attrs: Vec<(String, bool)>| {
            let mut got = Vec::new();
            let sel = Selector {
                name: name.clone(),
                attrs,
            };
            geosite::load(&dat, &sel, &mut |e| got.push(e)).unwrap();
            got
        };
        let want: Vec<DomainEntry> = g.domain.iter().map(entry_of).collect();
        assert_eq!(load(Vec::new()), want, "category {name}");
        entries += want.len();
        // Each attribute the category uses, kept (`@a`) and dropped (`@-a`).
        let attrs: BTreeSet<String> = g
            .domain
            .iter()
            .flat_map(|d| d.attribute.iter().map(|a| a.key.to_ascii_lowercase()))
            .collect();
        for a in attrs {
            for keep in [true, false] {
                let want: Vec<DomainEntry> = g
                    .domain
                    .iter()
                    .filter(|d| d.attribute.iter().any(|x| x.key.eq_ignore_ascii_case(&a)) == keep)
                    .map(entry_of)
                    .collect();
                assert_eq!(
                    load(vec![(a.clone(), keep)]),
                    want,
                    "{name}@{}{a}",
                    if keep { "" } else { "-" }
                );
                filtered += 1;
            }
        }
    }
    eprintln!(
        "geosite.dat: {} categories, {entries} entries, {filtered} attribute filters agree in {:?}",
        list.entry.len(),
        t.elapsed()
    );
    assert!(list.entry.len() > 100 && filtered > 10);
}

#[test]
fn geoipdat_walker_agrees_with_a_prost_decoder() {
    let Some(dat) = env_path("WSL_GEOIP_DAT") else {
        eprintln!("skipped: WSL_GEOIP_DAT not set");
        return;
    };
    let list: v2fly_proto::GeoIpList = decode_file(&dat);
    let mut theirs: BTreeMap<String, Collected> = BTreeMap::new();
    for g in &list.entry {
        let Some(cc) = country_code(&g.country_code) else {
            continue;
        };
        assert!(
            !g.reverse_match,
            "{cc}: the test data has no reverse entries"
        );
        let c = theirs.entry(cc).or_default();
        for cidr in &g.cidr {
            let ip = match cidr.ip.len() {
                4 => IpAddr::from(<[u8; 4]>::try_from(cidr.ip.as_slice()).unwrap()),
                16 => IpAddr::from(<[u8; 16]>::try_from(cidr.ip.as_slice()).unwrap()),
                n => panic!("{}: {n}-byte address", g.country_code),
            };
            c.push(ip, cidr.prefix);
        }
    }
    let ours = geoip::extract(&dat, GeoipFormat::Dat, None).expect("ours reads it");
    assert_same_countries("geoip.dat", &ours, theirs);
}
