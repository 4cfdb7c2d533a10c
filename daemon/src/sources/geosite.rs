//! v2fly `geosite.dat` / `dlc.dat`, read streaming: a `GeoSiteList`
//! (`repeated GeoSite entry = 1`); each `GeoSite` has `country_code = 1` (the
//! category, upper case) and `repeated Domain domain = 2`; a `Domain` has
//! `type = 1` (0 keyword, 1 regexp, 2 domain, 3 full), `value = 2` and
//! `repeated Attribute attribute = 3` (`key = 1`, `bool_value = 2`, `int_value = 3`).
//! Includes are already resolved in the file. Categories not asked for are
//! skipped by seeking past them.

use std::{fs::File, io::BufReader, path::Path};

use super::{
    SourceError,
    domains::{DomainEntry, DomainKind},
    protobuf::{LEN, Pb, VARINT},
    v2fly::Selector,
};

fn open(path: &Path) -> Result<Pb<BufReader<File>>, SourceError> {
    let file = super::open_regular(path)?;
    let size = file
        .metadata()
        .map_err(|e| SourceError::Io(e.to_string()))?
        .len();
    Ok(Pb::new(BufReader::with_capacity(64 * 1024, file), size))
}

/// Walks the file's entries. `visit(name)` says whether to read an entry's
/// domains (then `each` gets them with their attributes) or skip it.
fn walk(
    path: &Path,
    visit: &mut dyn FnMut(&str) -> bool,
    each: &mut dyn FnMut(&str, DomainEntry, &[String]),
) -> Result<usize, SourceError> {
    let mut pb = open(path)?;
    let size = pb.size();
    let mut entries = 0;
    let mut buf = Vec::new();
    let mut attrs: Vec<String> = Vec::new();
    while !pb.at_end()? {
        let (field, wire) = pb.tag()?;
        if field != 1 || wire != LEN {
            pb.skip_value(wire, size)?;
            continue;
        }
        let len = pb.len(size)?;
        let end = pb.pos() + len;
        entries += 1;
        let mut name: Option<String> = None;
        while pb.pos() < end {
            let (f, w) = pb.tag()?;
            match (f, w) {
                (1, LEN) if name.is_none() => {
                    pb.bytes(end, &mut buf)?;
                    let n = String::from_utf8_lossy(&buf).to_ascii_lowercase();
                    if !visit(&n) {
                        pb.skip(end - pb.pos())?;
                        break;
                    }
                    name = Some(n);
                }
                (2, LEN) => {
                    let Some(cat) = name.as_deref() else {
                        return Err(SourceError::Format(
                            "domains before the category name (unsupported layout)".into(),
                        ));
                    };
                    let n = pb.len(end)?;
                    let d_end = pb.pos() + n;
                    let mut kind = 0;
                    let mut value: Option<String> = None;
                    attrs.clear();
                    while pb.pos() < d_end {
                        let (df, dw) = pb.tag()?;
                        match (df, dw) {
                            (1, VARINT) => kind = pb.varint()?,
                            (2, LEN) => {
                                pb.bytes(d_end, &mut buf)?;
                                value = Some(String::from_utf8_lossy(&buf).into_owned());
                            }
                            (3, LEN) => {
                                let an = pb.len(d_end)?;
                                let a_end = pb.pos() + an;
                                while pb.pos() < a_end {
                                    let (af, aw) = pb.tag()?;
                                    if (af, aw) == (1, LEN) {
                                        pb.bytes(a_end, &mut buf)?;
                                        attrs.push(
                                            String::from_utf8_lossy(&buf).to_ascii_lowercase(),
                                        );
                                    } else {
                                        pb.skip_value(aw, a_end)?;
                                    }
                                }
                            }
                            _ => pb.skip_value(dw, d_end)?,
                        }
                    }
                    let kind = match kind {
                        0 => DomainKind::Keyword,
                        1 => DomainKind::Regexp,
                        2 => DomainKind::Domain,
                        3 => DomainKind::Full,
                        k => {
                            return Err(SourceError::Format(format!(
                                "domain type {k} in category {cat}"
                            )));
                        }
                    };
                    let value = value.unwrap_or_default();
                    let entry = DomainEntry::new(kind, &value).map_err(|e| {
                        SourceError::Format(format!("category {cat}: {}", super::plain::redact(&e)))
                    })?;
                    each(cat, entry, &attrs);
                }
                _ => pb.skip_value(w, end)?,
            }
        }
        if pb.pos() != end {
            return Err(SourceError::Format("entry runs past its length".into()));
        }
    }
    Ok(entries)
}

/// Hands every domain of the category `sel.name` passing its attribute filters to
/// `f`; returns how many. A category missing from the file is an error.
pub fn load(
    path: &Path,
    sel: &Selector,
    f: &mut dyn FnMut(DomainEntry),
) -> Result<usize, SourceError> {
    let mut found = false;
    let mut n = 0;
    walk(
        path,
        &mut |name| {
            let hit = name == sel.name;
            found |= hit;
            hit
        },
        &mut |_, entry, attrs| {
            if sel.accepts(attrs) {
                n += 1;
                f(entry);
            }
        },
    )?;
    if !found {
        return Err(SourceError::Check(format!(
            "{}: no category '{}'",
            path.display(),
            sel.name
        )));
    }
    Ok(n)
}

/// Every category and its number of domains (reads the whole file, keeps counts only).
pub fn categories(path: &Path) -> Result<Vec<(String, usize)>, SourceError> {
    let out = std::cell::RefCell::new(Vec::<(String, usize)>::new());
    walk(
        path,
        &mut |name| {
            out.borrow_mut().push((name.to_string(), 0));
            true
        },
        &mut |_, _, _| {
            if let Some(last) = out.borrow_mut().last_mut() {
                last.1 += 1;
            }
        },
    )?;
    Ok(out.into_inner())
}

/// Writes a copy of `src` holding only the categories in `wanted` (lowercase
/// names), byte for byte: still a geosite.dat, a fraction of the size. Returns
/// the categories found. Used to keep only what the rules use on flash.
pub fn prune(
    src: &Path,
    dst: &Path,
    wanted: &std::collections::BTreeSet<String>,
) -> Result<Vec<String>, SourceError> {
    use super::protobuf::encode;
    let mut pb = open(src)?;
    let size = pb.size();
    let file = File::create(dst).map_err(|e| SourceError::Io(format!("{}: {e}", dst.display())))?;
    let mut out = std::io::BufWriter::new(file);
    let mut found = Vec::new();
    let mut buf = Vec::new();
    while !pb.at_end()? {
        let (field, wire) = pb.tag()?;
        if field != 1 || wire != LEN {
            pb.skip_value(wire, size)?;
            continue;
        }
        let len = pb.len(size)?;
        let end = pb.pos() + len;
        // The name comes first in every builder's output; read it, then copy
        // the entry (re-framed) or skip it.
        let (f, w) = pb.tag()?;
        if (f, w) != (1, LEN) {
            return Err(SourceError::Format("entry without a leading name".into()));
        }
        pb.bytes(end, &mut buf)?;
        let name = String::from_utf8_lossy(&buf).to_ascii_lowercase();
        if wanted.contains(&name) {
            let mut head = Vec::new();
            encode::bytes(1, &buf, &mut head);
            let mut frame = Vec::new();
            encode::tag(1, LEN, &mut frame);
            encode::varint(head.len() as u64 + (end - pb.pos()), &mut frame);
            frame.extend_from_slice(&head);
            std::io::Write::write_all(&mut out, &frame)
                .map_err(|e| SourceError::Io(e.to_string()))?;
            pb.copy_to(end - pb.pos(), &mut out)?;
            found.push(name);
        } else {
            pb.skip(end - pb.pos())?;
        }
    }
    std::io::Write::flush(&mut out).map_err(|e| SourceError::Io(e.to_string()))?;
    out.into_inner()
        .map_err(|e| SourceError::Io(e.to_string()))?
        .sync_all()
        .map_err(|e| SourceError::Io(e.to_string()))?;
    Ok(found)
}

/// An entry with its attributes.
pub type Tagged<'a> = (DomainEntry, Vec<&'a str>);

/// Encodes a geosite.dat: (category, [(entry, attributes)]). For tests.
pub fn encode(cats: &[(&str, Vec<Tagged>)]) -> Vec<u8> {
    use super::protobuf::encode as e;
    let mut out = Vec::new();
    for (name, domains) in cats {
        let mut g = Vec::new();
        e::bytes(1, name.to_ascii_uppercase().as_bytes(), &mut g);
        for (d, attrs) in domains {
            let mut m = Vec::new();
            let k = match d.kind {
                DomainKind::Keyword => 0,
                DomainKind::Regexp => 1,
                DomainKind::Domain => 2,
                DomainKind::Full => 3,
            };
            e::uint(1, k, &mut m);
            e::bytes(2, d.value.as_bytes(), &mut m);
            for a in attrs {
                let mut at = Vec::new();
                e::bytes(1, a.as_bytes(), &mut at);
                e::uint(2, 1, &mut at);
                e::bytes(3, &at, &mut m);
            }
            e::bytes(2, &m, &mut g);
        }
        e::bytes(1, &g, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::mmdb::tests::tempfile_path::TempPath;

    fn d(kind: DomainKind, v: &str) -> DomainEntry {
        DomainEntry::new(kind, v).unwrap()
    }

    #[test]
    fn reads_categories_and_attrs() {
        let dat = encode(&[
            (
                "google",
                vec![(d(DomainKind::Domain, "google.com"), vec![])],
            ),
            (
                "category-ads-all",
                vec![
                    (d(DomainKind::Domain, "ads.example"), vec!["ads"]),
                    (d(DomainKind::Full, "track.example"), vec!["ads", "cn"]),
                    (d(DomainKind::Keyword, "doubleclick"), vec![]),
                    (d(DomainKind::Regexp, r"^ad\d+\."), vec!["ads"]),
                ],
            ),
        ]);
        let f = TempPath::new("geosite");
        std::fs::write(&f.0, &dat).unwrap();
        let mut all = Vec::new();
        let n = load(
            &f.0,
            &Selector::parse("CATEGORY-ADS-ALL").unwrap(),
            &mut |e| all.push(e),
        )
        .unwrap();
        assert_eq!(n, 4);
        let mut ads = Vec::new();
        load(
            &f.0,
            &Selector::parse("category-ads-all@ads@-cn").unwrap(),
            &mut |e| ads.push(e.to_string()),
        )
        .unwrap();
        assert_eq!(ads, vec!["domain:ads.example", r"regexp:^ad\d+\."]);
        assert!(matches!(
            load(&f.0, &Selector::parse("netflix").unwrap(), &mut |_| {}),
            Err(SourceError::Check(_))
        ));
        assert_eq!(
            categories(&f.0).unwrap(),
            vec![("google".into(), 1), ("category-ads-all".into(), 4)]
        );
        let pruned = TempPath::new("pruned");
        let wanted = ["category-ads-all".to_string()].into();
        assert_eq!(
            prune(&f.0, &pruned.0, &wanted).unwrap(),
            vec!["category-ads-all"]
        );
        assert_eq!(
            categories(&pruned.0).unwrap(),
            vec![("category-ads-all".into(), 4)]
        );
        assert!(std::fs::metadata(&pruned.0).unwrap().len() < dat.len() as u64);
        let mut again = Vec::new();
        load(
            &pruned.0,
            &Selector::parse("category-ads-all@ads@-cn").unwrap(),
            &mut |e| again.push(e.to_string()),
        )
        .unwrap();
        assert_eq!(again, ads);
        for cut in [3, dat.len() / 2, dat.len() - 2] {
            std::fs::write(&f.0, &dat[..cut]).unwrap();
            assert!(categories(&f.0).is_err(), "cut at {cut}");
        }
    }
}
