//! `wgsplit lists update`: fetch what has a URL with the tools the router has,
//! check it, keep the last good copy, extract only what the rules use, and
//! record the outcome in a small JSON state file that `lists show` and `status`
//! read. The kernel swap is done by the caller (see [`super::kernel`]).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::{
    SourceError,
    confine::{self, Limits, Part},
    domains, geoip,
    ranges::CountrySet,
};
use crate::config::{Config, DEFAULT_LISTS_DIR, List, ListFormat};

/// A new copy may not shrink below this share of the previous one.
pub const MIN_RATIO: f64 = 0.5;
pub use crate::config::confine::LISTS_STATE_FILE as STATE_FILE;

/// The outcome of the last update of one source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceState {
    /// Unix seconds of the last attempt and of the last success.
    pub attempted: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<i64>,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// GeoIP: country → [IPv4 ranges, IPv6 ranges]; a list: its entry count.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub countries: BTreeMap<String, [usize; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geoip: Option<SourceState>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lists: BTreeMap<String, SourceState>,
    /// Files wgsplit wrote from a download: path → `dev:inode`. Only these
    /// may be replaced by the next download (see [`confine::check_target`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub written: BTreeMap<String, String>,
}

/// The lists folder of a config.
pub fn lists_dir(config: &Config) -> PathBuf {
    PathBuf::from(
        config
            .geoip
            .as_ref()
            .map_or(DEFAULT_LISTS_DIR, |g| g.dir_or_default()),
    )
}

pub fn read_state(dir: &Path) -> State {
    std::fs::read_to_string(dir.join(STATE_FILE))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

pub fn write_state(dir: &Path, state: &State) -> Result<(), SourceError> {
    std::fs::create_dir_all(dir).map_err(|e| SourceError::Io(format!("{}: {e}", dir.display())))?;
    let text = serde_json::to_string_pretty(state).expect("plain data");
    crate::util::fs::write_atomic(&dir.join(STATE_FILE), text.as_bytes())
        .map_err(|e| SourceError::Io(e.to_string()))
}

/// The lock every run of the updates takes, in the lists folder.
pub const LOCK_FILE: &str = ".update.lock";

/// How a run of the updates went.
pub enum Run {
    /// Another run (the schedule, "update now", the CLI) holds the lock.
    Busy,
    /// A scheduled run found nothing due.
    NotDue,
    /// The sources were tried; `state_error` if the state could not be saved.
    Done {
        out: Outcome,
        state_error: Option<SourceError>,
    },
}

/// Updates every source (GeoIP, then the lists), reading and writing the
/// state under the lists folder's lock: "update now", the schedule and the
/// CLI never interleave (each would write back its own view of the state,
/// and two downloads would race for one file). `wait`: wait for a run in
/// progress (the CLI) rather than answer [`Run::Busy`]; `scheduled`: only if
/// due.
pub fn run(config: &Config, now: i64, wait: bool, scheduled: bool) -> Result<Run, SourceError> {
    use crate::util::lock::FileLock;
    let dir = lists_dir(config);
    let io = |e: std::io::Error| SourceError::Io(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(&dir).map_err(io)?;
    let lock = dir.join(LOCK_FILE);
    let _held = if wait {
        FileLock::exclusive(&lock).map_err(io)?
    } else {
        match FileLock::try_exclusive(&lock).map_err(io)? {
            Some(l) => l,
            None => return Ok(Run::Busy),
        }
    };
    let mut state = read_state(&dir);
    if scheduled && !due(config, &state, now) {
        return Ok(Run::NotDue);
    }
    let mut out = Outcome::default();
    update_geoip(config, &mut state, now, &mut out);
    update_lists(config, &mut state, now, &mut out);
    let state_error = write_state(&dir, &state).err();
    Ok(Run::Done { out, state_error })
}

/// Is a scheduled update due? (`update_hours` 0 = never.)
pub fn due(config: &Config, state: &State, now: i64) -> bool {
    let hours = config
        .geoip
        .as_ref()
        .map_or(24, |g| g.update_hours_or_default());
    if hours == 0 {
        return false;
    }
    let has_url = config.geoip.as_ref().is_some_and(|g| g.url.is_some())
        || config.lists.iter().any(|l| l.url.is_some());
    let last = state
        .geoip
        .iter()
        .chain(state.lists.values())
        .map(|s| s.attempted)
        .min()
        .unwrap_or(0);
    has_url && now - last >= i64::from(hours) * 3600
}

/// Checks new country data against the previous extract: every used country
/// must be present, and none may shrink below [`MIN_RATIO`] of what it was.
pub fn check_countries(
    new: &BTreeMap<String, CountrySet>,
    old: &BTreeMap<String, [usize; 2]>,
) -> Result<(), SourceError> {
    if !new.is_empty() && new.values().all(CountrySet::is_empty) {
        return Err(SourceError::Check(
            "none of the used countries is in the file".into(),
        ));
    }
    for (cc, set) in new {
        let before = old.get(cc).copied().unwrap_or([0, 0]);
        let now = [set.v4.len(), set.v6.len()];
        for (fam, b, n) in [("IPv4", before[0], now[0]), ("IPv6", before[1], now[1])] {
            if (n as f64) < (b as f64) * MIN_RATIO {
                return Err(SourceError::Check(format!(
                    "{cc} {fam} would shrink from {b} to {n} ranges"
                )));
            }
        }
        if set.v4.is_empty() && set.v6.is_empty() {
            return Err(SourceError::Check(format!("{cc} is not in the file")));
        }
    }
    Ok(())
}

/// What an update did, for the command's output.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Countries extracted (and stored) this run.
    pub countries: BTreeMap<String, CountrySet>,
    pub messages: Vec<String>,
    pub failed: usize,
}

/// Updates the GeoIP extract: fetch (if a URL), extract the used countries,
/// check, store. On any failure the stored data stays as it was.
pub fn update_geoip(config: &Config, state: &mut State, now: i64, out: &mut Outcome) {
    let Some(g) = &config.geoip else { return };
    let dir = lists_dir(config);
    let wanted = geoip::used_countries(config);
    let previous = state.geoip.clone().unwrap_or_default();
    let mut s = SourceState {
        attempted: now,
        updated: previous.updated,
        countries: previous.countries.clone(),
        ..Default::default()
    };
    let limits = Limits::of(g.max_size.as_deref(), g.sha256.as_deref());
    let mut wrote: Option<(String, String)> = None;
    let result = (|| -> Result<BTreeMap<String, CountrySet>, SourceError> {
        confine::own_dir(&dir)?;
        let mut part: Option<Part> = None;
        let source = match (&g.url, &g.path) {
            (Some(url), Some(path)) => {
                confine::check_target(
                    Path::new(path),
                    state.written.get(path).map(String::as_str),
                )?;
                let p = confine::download(url, Path::new(path), &limits, path)?;
                part.insert(p).path.clone()
            }
            // Extracted and dropped: the part lives in the lists folder, named
            // after the URL's file (readers look for `ipv6` in CSV names).
            (Some(url), None) => {
                let name: String = url
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                    .take(64)
                    .collect();
                let name = match name.trim_start_matches('.') {
                    "" => "geoip".to_string(),
                    n => n.to_string(),
                };
                let target = dir.join(name);
                let what = target.display().to_string();
                let p = confine::download(url, &target, &limits, &what)?;
                part.insert(p).path.clone()
            }
            (None, Some(path)) => PathBuf::from(path),
            (None, None) => return Err(SourceError::Check("no path or url".into())),
        };
        let format = geoip::detect(
            Path::new(g.url.as_deref().or(g.path.as_deref()).unwrap_or("")),
            g.format,
        );
        let extracted = geoip::extract(&source, format, Some(&wanted));
        let data = extracted.and_then(|x| check_countries(&x, &previous.countries).map(|()| x))?;
        // Keep the good download where the config says; else it is dropped.
        if let (Some(p), Some(path)) = (part, &g.path) {
            wrote = Some((path.clone(), p.commit()?));
        }
        for (cc, set) in &data {
            geoip::store(&dir, cc, set)?;
        }
        Ok(data)
    })();
    if let Some((path, identity)) = wrote {
        state.written.insert(path, identity);
    }
    match result {
        Ok(data) => {
            s.ok = true;
            s.updated = Some(now);
            s.countries = data
                .iter()
                .map(|(cc, c)| (cc.clone(), [c.v4.len(), c.v6.len()]))
                .collect();
            for (cc, c) in &data {
                out.messages.push(format!(
                    "geoip {cc}: {} IPv4 + {} IPv6 ranges",
                    c.v4.len(),
                    c.v6.len()
                ));
            }
            out.countries = data;
        }
        Err(e) => {
            s.ok = false;
            s.error = Some(e.to_string());
            out.failed += 1;
            out.messages
                .push(format!("geoip: {e} (keeping the previous data)"));
        }
    }
    state.geoip = Some(s);
}

/// Counts the domain entries of a list file read as `list` (the file may be a
/// candidate download at another path).
fn count_entries(list: &List, path: &Path) -> Result<usize, SourceError> {
    let candidate = List {
        path: path.to_string_lossy().into_owned(),
        ..list.clone()
    };
    if list.format.unwrap_or_default() == ListFormat::Cidr {
        let b = super::plain::read_nets(path)?;
        return Ok(b.build().len());
    }
    domains::for_each(&candidate, &mut |_| {})
}

fn lists_at(config: &Config, path: &str) -> usize {
    config.lists.iter().filter(|l| l.path == path).count()
}

/// The download limits of lists sharing a path and URL: the smallest cap and
/// the first pin (`config check` makes the pins agree).
fn group_limits(lists: &[&List]) -> Limits {
    let mut limits = Limits::of(lists[0].max_size.as_deref(), None);
    for l in lists {
        let l = Limits::of(l.max_size.as_deref(), l.sha256.as_deref());
        limits.max_bytes = limits.max_bytes.min(l.max_bytes);
        limits.sha256 = limits.sha256.or(l.sha256);
    }
    limits
}

/// Updates every list with a URL. Lists sharing a path and URL (several
/// categories of one geosite.dat) are fetched once and must all pass.
pub fn update_lists(config: &Config, state: &mut State, now: i64, out: &mut Outcome) {
    let mut groups: BTreeMap<(String, String), Vec<&List>> = BTreeMap::new();
    for l in &config.lists {
        if let Some(url) = &l.url {
            groups
                .entry((l.path.clone(), url.clone()))
                .or_default()
                .push(l);
        }
    }
    for ((path, url), lists) in groups {
        let limits = group_limits(&lists);
        let recorded = state.written.get(&path).cloned();
        let result = (|| -> Result<(Vec<(String, usize)>, String), SourceError> {
            let target = Path::new(&path);
            confine::check_target(target, recorded.as_deref())?;
            let part = confine::download(&url, target, &limits, &path)?;
            let mut counts = Vec::new();
            for l in &lists {
                let n = count_entries(l, &part.path)
                    .map_err(|e| SourceError::Check(format!("list {}: {e}", l.name)))?;
                let before = state
                    .lists
                    .get(&l.name)
                    .and_then(|s| s.entries)
                    .unwrap_or(0);
                if n == 0 || (n as f64) < before as f64 * MIN_RATIO {
                    return Err(SourceError::Check(format!(
                        "list {} would go from {before} to {n} entries",
                        l.name
                    )));
                }
                counts.push((l.name.clone(), n));
            }
            // A geosite.dat keeps only the categories lists of this path use.
            let geosite: Vec<&List> = config
                .lists
                .iter()
                .filter(|l| l.path == path && l.format == Some(ListFormat::Geosite))
                .collect();
            let identity = if !geosite.is_empty() && geosite.len() == lists_at(config, &path) {
                let wanted: BTreeSet<String> = geosite
                    .iter()
                    .filter_map(|l| l.category.as_deref())
                    .filter_map(|c| super::v2fly::Selector::parse(c).ok())
                    .map(|s| s.name)
                    .collect();
                let pruned = Part::create(target)?;
                super::geosite::prune(&part.path, &pruned.path, &wanted)?;
                pruned.commit()?
            } else {
                part.commit()?
            };
            Ok((counts, identity))
        })();
        let result = result.map(|(counts, identity)| {
            state.written.insert(path.clone(), identity);
            counts
        });
        match result {
            Ok(counts) => {
                for (name, n) in counts {
                    out.messages.push(format!("list {name}: {n} entries"));
                    state.lists.insert(
                        name,
                        SourceState {
                            attempted: now,
                            updated: Some(now),
                            ok: true,
                            entries: Some(n),
                            ..Default::default()
                        },
                    );
                }
            }
            Err(e) => {
                out.failed += 1;
                for l in lists {
                    out.messages
                        .push(format!("list {}: {e} (keeping the previous copy)", l.name));
                    let s = state.lists.entry(l.name.clone()).or_default();
                    s.attempted = now;
                    s.ok = false;
                    s.error = Some(e.to_string());
                }
            }
        }
    }
}

/// The rule-sources part of `wgsplit status --json`: the state file.
pub fn status_json(config: &Config) -> serde_json::Value {
    state_json(&read_state(&lists_dir(config)))
}

/// A failed source's `error` as a page shows it: the English text stays, and
/// where util::msgcode knows the message, its `code` and `args` (and a
/// `path` before it) sit beside it, as in the CLI's and the API's errors.
pub fn error_fields(error: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    if let serde_json::Value::Object(line) = crate::util::msgcode::line_json(error) {
        for k in ["code", "args", "path"] {
            if let Some(v) = line.get(k) {
                out.insert(k.into(), v.clone());
            }
        }
    }
    out
}

/// The state as `lists show --json` and `status --json` show it: the file's
/// fields, each failed source with its [`error_fields`].
pub fn state_json(state: &State) -> serde_json::Value {
    let mut v = serde_json::to_value(state).unwrap_or_default();
    let add = |s: &mut serde_json::Value| {
        let fields = match s.get("error") {
            Some(serde_json::Value::String(e)) => error_fields(e),
            _ => return,
        };
        if let serde_json::Value::Object(o) = s {
            o.extend(fields);
        }
    };
    if let Some(g) = v.get_mut("geoip") {
        add(g);
    }
    if let Some(serde_json::Value::Object(lists)) = v.get_mut("lists") {
        lists.values_mut().for_each(add);
    }
    v
}

/// The rule-sources lines of `wgsplit status`: one per source, failures first.
pub fn status_lines(config: &Config) -> Vec<String> {
    let state = read_state(&lists_dir(config));
    let line = |name: &str, s: &SourceState| {
        if s.ok {
            format!(
                "{name}: updated {}",
                crate::util::fmt::format_time(s.attempted)
            )
        } else {
            format!(
                "{name}: update FAILED at {} ({}); keeping data from {}",
                crate::util::fmt::format_time(s.attempted),
                s.error.as_deref().unwrap_or("?"),
                s.updated
                    .map_or("never".into(), crate::util::fmt::format_time)
            )
        }
    };
    let mut out: Vec<String> = state.geoip.iter().map(|s| line("geoip", s)).collect();
    out.extend(
        state
            .lists
            .iter()
            .map(|(n, s)| line(&format!("list {n}"), s)),
    );
    out.sort_by_key(|l| !l.contains("FAILED"));
    out
}

/// Countries whose stored extract is missing (to extract from `path` at start).
pub fn missing_countries(config: &Config) -> BTreeSet<String> {
    let dir = lists_dir(config);
    geoip::used_countries(config)
        .into_iter()
        .filter(|cc| !geoip::country_file(&dir, cc).exists())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::{mmdb::tests::tempfile_path::TempPath, ranges::CountryBuilder};

    #[test]
    fn one_update_runs_at_a_time() {
        let dir = std::env::temp_dir().join(format!("wgsplit-update-lock-{}", std::process::id()));
        let config = Config {
            geoip: Some(crate::config::Geoip {
                dir: Some(dir.display().to_string()),
                ..Default::default()
            }),
            ..Default::default()
        };
        // Nothing to fetch: a run is quick, and writes the state.
        assert!(matches!(
            run(&config, 1000, false, false),
            Ok(Run::Done {
                state_error: None,
                ..
            })
        ));
        assert!(dir.join(STATE_FILE).is_file());
        // Nothing with a URL: a scheduled run has nothing due.
        assert!(matches!(run(&config, 1000, false, true), Ok(Run::NotDue)));
        // While another holds the lock ("update now" in an API thread, the
        // CLI): busy, and nothing read or written.
        let held = crate::util::lock::FileLock::exclusive(&dir.join(LOCK_FILE)).unwrap();
        std::fs::remove_file(dir.join(STATE_FILE)).unwrap();
        assert!(matches!(run(&config, 2000, false, false), Ok(Run::Busy)));
        assert!(!dir.join(STATE_FILE).exists());
        drop(held);
        assert!(matches!(
            run(&config, 2000, true, false),
            Ok(Run::Done { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn set(v4: usize) -> CountrySet {
        let mut b = CountryBuilder::default();
        for i in 0..v4 {
            b.v4.push((i as u32 * 4, i as u32 * 4 + 1));
        }
        b.build()
    }

    #[test]
    fn shrinking_is_refused() {
        let old: BTreeMap<String, [usize; 2]> = [("us".to_string(), [100, 0])].into();
        let ok: BTreeMap<String, CountrySet> = [("us".to_string(), set(60))].into();
        assert!(check_countries(&ok, &old).is_ok());
        let bad: BTreeMap<String, CountrySet> = [("us".to_string(), set(40))].into();
        assert!(matches!(
            check_countries(&bad, &old),
            Err(SourceError::Check(_))
        ));
        let gone: BTreeMap<String, CountrySet> = [("us".to_string(), set(0))].into();
        assert!(check_countries(&gone, &BTreeMap::new()).is_err());
    }

    #[test]
    fn geoip_update_keeps_old_data_on_failure() {
        let d = TempPath::new("update");
        std::fs::create_dir(&d.0).unwrap();
        let src = d.0.join("src-ipv4.csv");
        std::fs::write(&src, "1.0.0.0,1.0.0.255,US\n2.0.0.0,2.0.0.255,US\n").unwrap();
        let text = format!(
            "config server\n\toption address 10.9.0.1/24\n\toption private_key '4EqAuesGDDDllVFRw6LW42qz0RGOaO4UN+emBozZgU0='\n\
             config geoip 'geoip'\n\toption url 'file://{}'\n\toption dir '{}/lists'\n\toption format csv\n\
             config client 'c'\n\tlist address '10.9.0.2/32'\n\toption public_key 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw='\n\
             config rule\n\toption client 'c'\n\toption action 'block'\n\tlist geoip 'us'\n",
            src.display(),
            d.0.display()
        );
        let config = crate::config::parse_valid(&text).unwrap();
        let dir = lists_dir(&config);
        let mut state = State::default();
        let mut out = Outcome::default();
        update_geoip(&config, &mut state, 100, &mut out);
        assert_eq!(out.failed, 0, "{:?}", out.messages);
        assert_eq!(state.geoip.as_ref().unwrap().countries["us"], [2, 0]);
        let before = std::fs::read_to_string(geoip::country_file(&dir, "us")).unwrap();
        // Truncated/garbage, then shrunk: both refused, the extract unchanged.
        for bad in ["1.0.0.0,1.0.0.2", "1.0.0.0,1.0.0.255,CN\n"] {
            std::fs::write(&src, bad).unwrap();
            let mut out = Outcome::default();
            update_geoip(&config, &mut state, 200, &mut out);
            assert_eq!(out.failed, 1);
            let s = state.geoip.as_ref().unwrap();
            assert!(!s.ok && s.error.is_some());
            assert_eq!(s.updated, Some(100));
            assert_eq!(s.countries["us"], [2, 0]);
            assert_eq!(
                std::fs::read_to_string(geoip::country_file(&dir, "us")).unwrap(),
                before
            );
        }
        // No download left behind.
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".download"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        write_state(&dir, &state).unwrap();
        assert_eq!(read_state(&dir), state);
        let lines = status_lines(&config);
        assert!(lines[0].starts_with("geoip: update FAILED"), "{lines:?}");
        let json = status_json(&config);
        assert_eq!(json["geoip"]["ok"], false);
        // the English text for the CLI, the code and args for a page
        assert_eq!(
            json["geoip"]["error"],
            "rejected: none of the used countries is in the file"
        );
        assert_eq!(json["geoip"]["code"], "geoip_no_countries");
        assert_eq!(json["geoip"]["args"], serde_json::json!([]));
        assert!(due(&config, &state, 200 + 24 * 3600));
        assert!(!due(&config, &state, 300));
    }

    #[test]
    fn doh_lists_are_list_sources_like_the_others() {
        // server.doh_list names ordinary list sections: the schedule counts
        // them, and the planner and resolver get them (the shipped default only
        // while none is configured).
        let text = "config server\n\toption address 10.9.0.1/24\n\toption private_key '4EqAuesGDDDllVFRw6LW42qz0RGOaO4UN+emBozZgU0='\n\
             \tlist doh_list 'doh_names'\n\tlist doh_list 'doh_ips'\n\
             config list 'doh_names'\n\toption path '/tmp/wgsplit/doh.txt'\n\toption url 'https://example.org/doh.txt'\n\
             config list 'doh_ips'\n\toption format 'cidr'\n\toption path '/tmp/wgsplit/doh-ip.txt'\n\toption url 'https://example.org/ip.txt'\n";
        let config = crate::config::parse_valid(text).unwrap();
        assert!(due(&config, &State::default(), 24 * 3600));
        let p = crate::policy::compile(&config, 0);
        assert_eq!(p.doh_cidr_lists, ["doh_ips"]);
        let names: Vec<&str> = p.dns.doh_lists.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["doh_names"]);
        let bad = text.replace("list doh_list 'doh_ips'", "list doh_list 'nope'");
        let e = crate::config::parse_valid(&bad).unwrap_err().to_string();
        assert!(
            e.contains("server.doh_list") && e.contains("no list named 'nope'"),
            "{e}"
        );
    }
}
