//! OpenWrt's own `uci` as the oracle of our UCI parser: for every file of the
//! corpus (fixtures/uci/corpus.list), what `uci export` read from it is kept in
//! fixtures/uci/golden (tests/oracles/uci_golden.sh records it from a uci
//! binary; uci is not built here). Ours must read the same sections, in the
//! same order, with the same types, names, options, lists and values; where uci
//! refuses a file, ours must refuse it too. Ours refuses a few files uci reads,
//! on purpose: each is listed in DELIBERATE with the error it must give.

use std::{fs, path::PathBuf};

use wgsplit::config::uci::{self, Section, Value};

/// Files uci reads and ours refuses, and the words our error must hold (the
/// reasons are in uci.rs's module comment).
const DELIBERATE: &[(&str, &str)] = &[
    // A named section given twice: uci merges the two.
    (
        "duplicate_section.uci",
        "section 'dup' is already defined on line 1",
    ),
    // `;` outside quotes: uci splits commands there, or drops the rest of the line.
    ("semicolon.uci", "';' outside quotes"),
    ("semicolon_unquoted.uci", "';' outside quotes"),
    // More words after a statement: uci reads them as the next command.
    ("same_line_statement.uci", "'config' takes at most 2 words"),
    (
        "continuation_trailing.uci",
        "'option' takes at most 2 words",
    ),
    // Not UTF-8: uci takes any bytes.
    ("hostile_not_utf8.uci", "not UTF-8 text"),
];

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/uci")
}

/// One section as compared: type, name (None: anonymous), options in order.
type Read = (String, Option<String>, Vec<(String, Value)>);

fn ours(bytes: &[u8]) -> Result<Vec<Read>, uci::ParseError> {
    let sections = uci::parse(uci::text(bytes)?)?;
    Ok(sections
        .into_iter()
        .map(
            |Section {
                 kind,
                 name,
                 options,
                 ..
             }| {
                (
                    kind,
                    name,
                    options.into_iter().map(|o| (o.name, o.value)).collect(),
                )
            },
        )
        .collect())
}

/// Reads `uci export`'s output, which has one form only: `config TYPE['NAME']`,
/// then a tab, `option` or `list`, the name and the value in single quotes (a
/// `'` inside as `'\''`, newlines as they are). Independent of our parser.
fn export(text: &str) -> Vec<Read> {
    let mut out: Vec<Read> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (line, tail) = rest.split_once('\n').unwrap_or((rest, ""));
        rest = tail;
        if line.is_empty() || line.starts_with("package ") {
            continue;
        }
        if let Some(head) = line.strip_prefix("config ") {
            let (kind, name) = match head.split_once(' ') {
                Some((kind, name)) => {
                    let name = name.strip_prefix('\'').and_then(|n| n.strip_suffix('\''));
                    (kind, Some(name.expect("a quoted section name").to_string()))
                }
                None => (head, None),
            };
            out.push((kind.into(), name, Vec::new()));
            continue;
        }
        let (list, statement) = match line.strip_prefix("\toption ") {
            Some(s) => (false, s),
            None => (true, line.strip_prefix("\tlist ").expect("option or list")),
        };
        let (name, quoted) = statement.split_once(" '").expect("a quoted value");
        // The value runs to the first `'` not followed by `\''`, maybe over lines.
        let mut value = String::new();
        let mut src = format!("{quoted}\n{rest}");
        loop {
            let end = src.find('\'').expect("a closing quote");
            value.push_str(&src[..end]);
            if src[end..].starts_with("'\\''") {
                value.push('\'');
                src = src[end + 4..].to_string();
            } else {
                let after = &src[end + 1..];
                let (tail_of_line, next) = after.split_once('\n').unwrap_or((after, ""));
                assert!(
                    tail_of_line.is_empty(),
                    "text after a value: {tail_of_line:?}"
                );
                rest = &text[text.len() - next.len()..];
                break;
            }
        }
        let options = &mut out.last_mut().expect("an option after a section").2;
        match (list, options.iter_mut().find(|(n, _)| n == name)) {
            (true, Some((_, Value::List(items)))) => items.push(value),
            (true, None) => options.push((name.into(), Value::List(vec![value]))),
            (false, None) => options.push((name.into(), Value::Single(value))),
            (_, Some(_)) => panic!("uci export gave '{name}' twice"),
        }
    }
    out
}

fn corpus() -> Vec<String> {
    let list = fs::read_to_string(fixtures().join("corpus.list")).unwrap();
    list.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

#[test]
fn export_reader_reads_quotes_and_lines() {
    let text = "package t\n\nconfig a 'n'\n\toption x 'it'\\''s\nnext'\n\tlist l ''\n\tlist l 'b'\n\nconfig b\n";
    assert_eq!(
        export(text),
        [
            (
                "a".to_string(),
                Some("n".to_string()),
                vec![
                    ("x".to_string(), Value::Single("it's\nnext".into())),
                    (
                        "l".to_string(),
                        Value::List(vec![String::new(), "b".into()])
                    ),
                ]
            ),
            ("b".to_string(), None, vec![]),
        ]
    );
}

#[test]
fn ours_reads_what_uci_reads() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let files = corpus();
    // Every hand-made case is in the corpus, and every golden has its file.
    for entry in fs::read_dir(fixtures().join("cases")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let path = format!("daemon/tests/fixtures/uci/cases/{name}");
        assert!(files.contains(&path), "{path} is not in corpus.list");
    }
    let goldens: Vec<String> = files.iter().map(|p| p.replace('/', "__")).collect();
    for entry in fs::read_dir(fixtures().join("golden")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            goldens.contains(&name),
            "golden/{name} has no file in corpus.list"
        );
    }
    let (mut same, mut both_refuse, mut deliberate) = (0, 0, 0);
    let mut wrong = Vec::new();
    for (path, golden) in files.iter().zip(&goldens) {
        let bytes = fs::read(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let expected = fs::read(fixtures().join("golden").join(golden))
            .unwrap_or_else(|e| panic!("{path}: no golden ({e}): run tests/oracles/uci_golden.sh"));
        // (Only a file ours refuses as not UTF-8 has a golden that is not.)
        let expected = String::from_utf8_lossy(&expected);
        let refusal = DELIBERATE
            .iter()
            .find(|(f, _)| path.ends_with(&format!("/cases/{f}")));
        match (ours(&bytes), expected.strip_prefix("error\n")) {
            (Err(_), Some(_)) => both_refuse += 1,
            (Ok(read), Some(why)) => wrong.push(format!(
                "{path}: uci refuses it ({}), ours reads {read:?}",
                why.trim()
            )),
            (Ok(read), None) if refusal.is_some() => wrong.push(format!(
                "{path}: listed in DELIBERATE, but ours reads {read:?}"
            )),
            (Ok(read), None) => {
                let theirs = export(&expected);
                if read == theirs {
                    same += 1;
                } else {
                    wrong.push(format!("{path}: ours {read:?}\n    uci  {theirs:?}"));
                }
            }
            (Err(e), None) => match refusal {
                Some((_, words)) if e.to_string().contains(words) => deliberate += 1,
                Some((_, words)) => {
                    wrong.push(format!("{path}: refused with '{e}', not '{words}'"))
                }
                None => wrong.push(format!("{path}: uci reads it, ours refuses: {e}")),
            },
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} files:\n{}",
        wrong.len(),
        files.len(),
        wrong.join("\n")
    );
    assert_eq!(
        deliberate,
        DELIBERATE.len(),
        "a DELIBERATE entry matched no file"
    );
    println!(
        "uci oracle: {} files; {same} read alike, {both_refuse} refused by both, {deliberate} refused by ours only (on purpose)",
        files.len()
    );
}
