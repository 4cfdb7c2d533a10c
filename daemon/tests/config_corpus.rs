//! The config corpus: every good file validates and survives both round trips;
//! every bad file reports exactly the problems its `# expect:` lines name.

use std::{fs, path::PathBuf};

use wgsplit::config;

fn corpus(kind: &str) -> Vec<(PathBuf, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(kind);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "uci"))
        .map(|p| {
            let text = fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no files in {}", dir.display());
    files
}

#[test]
fn good_files_validate_and_round_trip() {
    for (path, text) in corpus("good") {
        let name = path.display();
        let cfg = config::parse_valid(&text).unwrap_or_else(|e| panic!("{name}: {e}"));

        // JSON → import → JSON is byte-identical.
        let json = config::to_json(&cfg);
        let again = config::check(config::from_json(&json).unwrap()).unwrap();
        assert_eq!(
            config::to_json(&again),
            json,
            "{name}: export/import/export"
        );

        // UCI → JSON → UCI keeps every value (and is stable from then on).
        let uci = config::to_uci(&cfg);
        let reread = config::parse_valid(&uci).unwrap_or_else(|e| panic!("{name}: {e}\n{uci}"));
        assert_eq!(reread, cfg, "{name}: UCI round trip");
        assert_eq!(config::to_uci(&reread), uci, "{name}: UCI writer is stable");
    }
}

#[test]
fn bad_files_report_every_problem() {
    for (path, text) in corpus("bad") {
        let name = path.display();
        let expected: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        assert!(!expected.is_empty(), "{name}: no '# expect:' lines");
        let err = config::parse_valid(&text)
            .expect_err(&format!("{name} should fail"))
            .to_string();
        for want in &expected {
            assert!(err.contains(want), "{name}: missing {want:?} in:\n{err}");
        }
        // Nothing reported beyond what the file expects.
        let reported = err.lines().count();
        assert_eq!(reported, expected.len(), "{name}: got\n{err}");
    }
}

#[test]
fn json_type_errors_name_the_field() {
    let err = config::from_json(r#"{"server":{},"clients":[{"name":"a","enabled":"yes"}]}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("clients[0].enabled"), "{err}");
    let err = config::from_json(r#"{"server":{"colour":1}}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("colour"), "{err}");
}

#[test]
fn save_is_atomic_and_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("wgsplit-save-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("wgsplit");
    let (_, text) = corpus("good").into_iter().next().unwrap();
    let cfg = config::parse_valid(&text).unwrap();
    config::save(&path, &cfg).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // An existing file keeps its mode.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    config::save(&path, &cfg).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert_eq!(config::load(&path).unwrap(), cfg);
    // No temporary files left behind.
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    fs::remove_dir_all(&dir).unwrap();
}
