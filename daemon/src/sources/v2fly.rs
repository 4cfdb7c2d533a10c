//! v2fly domain-list-community source format, and the `name@attr` selectors
//! shared with `geosite.dat`.
//!
//! A list file holds one rule per line: `domain:x` (x and its subdomains, also a
//! bare `x`), `full:x` (x only), `keyword:k`, `regexp:re`, each optionally
//! followed by attributes `@ads @cn`; `include:other @attr @-attr` pulls in
//! another file of the same folder, keeping only entries with (`@a`) or without
//! (`@-a`) an attribute. `#` starts a comment.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
};

use super::{
    SourceError,
    domains::{DomainEntry, DomainKind},
    plain::for_each_line,
};
pub use crate::config::types::Selector;
use crate::config::types::{accepts, valid_word};

/// Bytes one load may read from included files, over all of them. An include
/// is not deduplicated (its filters may differ), so without a bound a file of
/// N `include:big @xK` lines costs N readings of `big`, and a chain of files
/// each including the next twice costs 2^depth. (domain-list-community's
/// whole `data` folder is about 3 MB.)
pub const MAX_INCLUDED_BYTES: u64 = 16 << 20;
/// What an included file costs at least (so tiny files included over and
/// over are bounded too).
const MIN_FILE_COST: u64 = 1024;
/// `include:` lines one file may hold.
pub const MAX_INCLUDES: usize = 4096;

/// One parsed line: the entry and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub entry: DomainEntry,
    pub attrs: Vec<String>,
}

/// Parses one non-include rule line (comment already removed).
pub fn parse_rule(line: &str) -> Result<Rule, String> {
    let mut words = line.split_whitespace();
    let first = words.next().ok_or("empty line")?;
    let (kind, value) = match first.split_once(':') {
        Some(("domain", v)) => (DomainKind::Domain, v),
        Some(("full", v)) => (DomainKind::Full, v),
        Some(("keyword", v)) => (DomainKind::Keyword, v),
        Some(("regexp", v)) => (DomainKind::Regexp, v),
        Some((other, _)) if !other.contains('.') => {
            return Err(format!("unknown rule type '{other}:'"));
        }
        _ => (DomainKind::Domain, first),
    };
    let entry = DomainEntry::new(kind, value)?;
    let mut attrs = Vec::new();
    for w in words {
        if let Some(a) = w.strip_prefix('@') {
            let a = a.to_ascii_lowercase();
            if !valid_word(&a) {
                return Err(format!("'{w}' is not an attribute"));
            }
            attrs.push(a);
        } else if w.starts_with('&') {
            // Affiliation (`&other-list`): only used when building dat files.
        } else {
            return Err(format!("unexpected '{w}'"));
        }
    }
    Ok(Rule { entry, attrs })
}

/// Loads the category `sel.name` from a domain-list-community `data` folder,
/// resolving includes, and hands every entry passing the filters to `f`.
/// Duplicates (the same entry reached by two includes) are given once.
pub fn load_category(
    dir: &Path,
    sel: &Selector,
    f: &mut dyn FnMut(DomainEntry),
) -> Result<usize, SourceError> {
    let mut seen = HashSet::new();
    let mut stack = Vec::new();
    let mut count = 0;
    let mut budget = MAX_INCLUDED_BYTES;
    walk(
        dir,
        &sel.name,
        &[],
        &mut stack,
        &mut budget,
        &mut |rule: Rule| {
            if sel.accepts(&rule.attrs) && seen.insert(rule.entry.clone()) {
                count += 1;
                f(rule.entry);
            }
        },
    )?;
    Ok(count)
}

/// A v2fly list file given by path (its includes resolve in its folder).
pub fn load_file(
    path: &Path,
    sel: Option<&Selector>,
    f: &mut dyn FnMut(DomainEntry),
) -> Result<usize, SourceError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sel = sel.cloned().unwrap_or(Selector {
        name: name.clone(),
        attrs: Vec::new(),
    });
    let file_sel = Selector {
        name,
        attrs: sel.attrs.clone(),
    };
    load_category(dir, &file_sel, f)
}

fn walk(
    dir: &Path,
    name: &str,
    filters: &[(String, bool)],
    stack: &mut Vec<String>,
    budget: &mut u64,
    f: &mut dyn FnMut(Rule),
) -> Result<(), SourceError> {
    if stack.iter().any(|s| s == name) {
        return Err(SourceError::Format(format!(
            "include cycle: {} -> {name}",
            stack.join(" -> ")
        )));
    }
    if stack.len() > 32 {
        return Err(SourceError::Format("includes nested too deep".into()));
    }
    if !valid_word(name) {
        return Err(SourceError::Format("an include is not a list name".into()));
    }
    let path: PathBuf = dir.join(name);
    if !path.is_file() {
        return Err(SourceError::Io(format!(
            "{}: no such list{}",
            path.display(),
            stack
                .last()
                .map(|s| format!(" (included from {s})"))
                .unwrap_or_default()
        )));
    }
    // The first file is bounded by its size; what it pulls in, by the budget.
    if !stack.is_empty() {
        let cost = path.metadata().map_or(0, |m| m.len()).max(MIN_FILE_COST);
        *budget = budget.checked_sub(cost).ok_or_else(|| {
            SourceError::Format(format!(
                "includes add up to more than {MAX_INCLUDED_BYTES} bytes (at {name})"
            ))
        })?;
    }
    stack.push(name.to_string());
    let mut includes: Vec<(String, Vec<(String, bool)>)> = Vec::new();
    for_each_line(&path, |line| {
        if let Some(rest) = line.strip_prefix("include:") {
            if includes.len() == MAX_INCLUDES {
                return Err(format!("more than {MAX_INCLUDES} includes"));
            }
            let mut words = rest.split_whitespace();
            let target = words.next().ok_or("include: without a list name")?;
            let mut inc_filters = Vec::new();
            for w in words {
                let a = w
                    .strip_prefix('@')
                    .ok_or_else(|| format!("unexpected '{w}' after include"))?;
                let (a, want) = match a.strip_prefix('-') {
                    Some(x) => (x, false),
                    None => (a, true),
                };
                inc_filters.push((a.to_ascii_lowercase(), want));
            }
            includes.push((target.to_ascii_lowercase(), inc_filters));
            return Ok(());
        }
        let rule = parse_rule(line)?;
        if accepts(filters, &rule.attrs) {
            f(rule);
        }
        Ok(())
    })?;
    for (target, inc_filters) in includes {
        let mut all = filters.to_vec();
        all.extend(inc_filters);
        walk(dir, &target, &all, stack, budget, f)?;
    }
    stack.pop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::mmdb::tests::tempfile_path::TempPath;

    #[test]
    fn selectors() {
        let s = Selector::parse("Category-Ads-All@ads").unwrap();
        assert_eq!(s.name, "category-ads-all");
        assert_eq!(s.attrs, vec![("ads".into(), true)]);
        let s = Selector::parse("geolocation-cn@-!cn").unwrap();
        assert_eq!(s.attrs, vec![("!cn".into(), false)]);
        assert!(s.accepts(&["cn"]));
        assert!(!s.accepts(&["!cn"]));
        assert!(Selector::parse("bad name").is_err());
        assert!(Selector::parse("x@").is_err());
    }

    #[test]
    fn rules() {
        let r = parse_rule("full:Ads.Example.com @ads @cn").unwrap();
        assert_eq!(
            r.entry,
            DomainEntry::new(DomainKind::Full, "ads.example.com").unwrap()
        );
        assert_eq!(r.attrs, vec!["ads", "cn"]);
        assert_eq!(
            parse_rule("example.org").unwrap().entry.kind,
            DomainKind::Domain
        );
        assert_eq!(
            parse_rule(r"regexp:(^|\.)foo-.+\.com$")
                .unwrap()
                .entry
                .value,
            r"(^|\.)foo-.+\.com$"
        );
        assert!(parse_rule("bogus:x").is_err());
        assert!(parse_rule("a.com b.com").is_err());
    }

    #[test]
    fn includes_and_attrs() {
        let d = TempPath::new("v2fly");
        std::fs::create_dir(&d.0).unwrap();
        let w = |n: &str, t: &str| std::fs::write(d.0.join(n), t).unwrap();
        w("top", "# top\ntop.com\ninclude:mid @-!cn\ninclude:ads\n");
        w("mid", "mid.com @cn\nfull:away.mid.com @!cn\ninclude:leaf\n");
        w("leaf", "keyword:leafy\nleaf.com @!cn\n");
        w("ads", "ads.example @ads\ntop.com\n");
        let mut got = Vec::new();
        let n = load_category(&d.0, &Selector::parse("top").unwrap(), &mut |e| {
            got.push(e.to_string())
        })
        .unwrap();
        assert_eq!(n, got.len());
        assert_eq!(
            got,
            vec![
                "domain:top.com",
                "domain:mid.com",
                "keyword:leafy",
                "domain:ads.example"
            ]
        );
        let mut ads = Vec::new();
        load_category(&d.0, &Selector::parse("top@ads").unwrap(), &mut |e| {
            ads.push(e.to_string())
        })
        .unwrap();
        assert_eq!(ads, vec!["domain:ads.example"]);

        w("loop", "include:top\ninclude:loop2\n");
        w("loop2", "include:loop\n");
        let err = load_category(&d.0, &Selector::parse("loop").unwrap(), &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("cycle"), "{err}");
        w("broken", "include:missing\n");
        assert!(load_category(&d.0, &Selector::parse("broken").unwrap(), &mut |_| {}).is_err());
    }

    /// Includes are not deduplicated (filters may differ), so repeats must be
    /// bounded: a chain of 24 files each including the next twice is 2^24
    /// walks unbounded; many includes of one big file, its size times theirs.
    #[test]
    fn repeated_includes_are_bounded() {
        let d = TempPath::new("v2fly-bomb");
        std::fs::create_dir(&d.0).unwrap();
        let w = |n: &str, t: &str| std::fs::write(d.0.join(n), t).unwrap();
        for k in 0..24 {
            w(
                &format!("l{k}"),
                &format!("include:l{0}\ninclude:l{0}\n", k + 1),
            );
        }
        w("l24", "deep.example\n");
        let (tx, rx) = std::sync::mpsc::channel();
        let dir = d.0.clone();
        std::thread::spawn(move || {
            let r = load_category(&dir, &Selector::parse("l0").unwrap(), &mut |_| {});
            let _ = tx.send(r.map_err(|e| e.to_string()));
        });
        let got = rx.recv_timeout(std::time::Duration::from_secs(10));
        let e = got.expect("2^24 includes walked").unwrap_err();
        assert!(e.contains("includes add up to more than"), "{e}");

        // 1 MB, mostly comments: 17 readings pass the budget.
        let big = format!("b.example @a\n{}", "# padding\n".repeat(100_000));
        w("big", &big);
        let top: String = (0..4000).map(|i| format!("include:big @-x{i}\n")).collect();
        w("top", &top);
        let e = load_category(&d.0, &Selector::parse("top").unwrap(), &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("more than"), "{e}");
        // A file may include a few thousand others, no more.
        let many: String = (0..=MAX_INCLUDES).map(|_| "include:l24\n").collect();
        w("many", &many);
        let e = load_category(&d.0, &Selector::parse("many").unwrap(), &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("includes"), "{e}");
        // Within the bounds all is read.
        w("some", &"include:big\n".repeat(10));
        let n = load_category(&d.0, &Selector::parse("some").unwrap(), &mut |_| {}).unwrap();
        assert_eq!(n, 1);
    }
}
