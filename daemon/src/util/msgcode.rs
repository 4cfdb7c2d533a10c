//! Stable codes for the messages a user reads (config problems, CLI and API
//! errors), so a front end in another language shows its own wording: each
//! message is `{code, args}` as well as its English text. The messages stay
//! written where they arise; this catalog knows each one's wording, `{}`
//! standing for an argument. A message it does not know has no code (a page
//! then shows the English). Codes never change meaning: a new wording gets a
//! new code, and luci-app's catalog (common.js MESSAGES) follows this list.

use serde_json::{Value, json};

/// (code, English template). More specific templates come before the general
/// ones they would also match (first match wins).
pub const CATALOG: &[(&str, &str)] = &[
    ("no_client", "no client named '{}'"),
    ("no_client", "no client '{}'"),
    ("no_upstream", "no upstream named '{}'"),
    ("no_list", "no list named '{}'"),
    // one code per kind: the kind word is a word of the sentence, not data
    (
        "name_used_client",
        "the name '{}' is already used by a client",
    ),
    (
        "name_used_upstream",
        "the name '{}' is already used by an upstream",
    ),
    ("name_used_rule", "the name '{}' is already used by a rule"),
    ("name_used_list", "the name '{}' is already used by a list"),
    (
        "name_used_server",
        "the name '{}' is already used by the server section",
    ),
    ("name_used", "the name '{}' is already used by a {}"),
    ("name_used", "the name '{}' is already used by an {}"),
    ("required", "required"),
    (
        "required_key",
        "required (or a private_key to derive it from)",
    ),
    ("required_hostport", "required (host:port)"),
    ("required_action", "required (proxy, direct or block)"),
    ("required_eg", "required (e.g. {})"),
    ("outside_pool", "{} is outside the server pool {}"),
    ("outside_range", "{} is outside {}-{}"),
    ("port_range", "must be 1-65535"),
    ("overlaps", "overlaps an address of {}"),
    ("table_reserved", "table {} is reserved"),
    ("table_used", "table {} is already used by {}"),
    ("already_used", "'{}' is already used by {}"),
    ("same_key", "is the same key as client {}"),
    ("not_domain", "'{}' is not a domain name"),
    ("not_ip", "'{}' is not an IP address"),
    ("not_cidr", "'{}' is not an IP address or CIDR"),
    ("not_prefix", "'{}' is not an address with prefix"),
    (
        "needs_prefix",
        "'{}' needs a prefix: the server address and its client pool, e.g. 10.8.0.1/24",
    ),
    ("not_port", "'{}' is not a port (1-65535)"),
    ("not_proto", "'{}' is not tcp or udp"),
    ("port_backwards", "port range {}-{} is backwards"),
    ("not_date", "'{}' is not a date (YYYY-MM-DD or RFC 3339)"),
    ("not_size", "'{}' is not a size (e.g. 500M, 50G, 1T)"),
    ("not_country", "'{}' is not a two-letter country code"),
    ("not_hostport", "'{}' is not host:port"),
    ("not_host", "'{}' is not a host name or address"),
    ("not_addrport", "'{}' is not address:port"),
    (
        "not_ifname",
        "'{}' is not an interface name (1-15 characters, no '/', ':' or spaces)",
    ),
    (
        "no_ipv6_pool",
        "{}: the server has no IPv6 address (address6)",
    ),
    ("not_key", "not a base64 WireGuard key"),
    (
        "not_key",
        "not a WireGuard key (must be 32 bytes of base64)",
    ),
    ("key_mismatch", "does not belong to private_key"),
    (
        "proxy_rule_upstream",
        "a proxy rule needs an upstream (here or on its client)",
    ),
    (
        "proxy_default_upstream",
        "'proxy' needs the client's upstream to be set",
    ),
    (
        "rule_matches_nothing",
        "the rule matches nothing: give domain, cidr, port, geoip or list",
    ),
    ("failover_itself", "cannot fail over to itself"),
    (
        "import_no_peer",
        "the file has no [Peer]: an upstream needs the provider's peer",
    ),
    ("import_bad_line", "line {}: '{}' is not 'Key = Value'"),
    (
        "no_endpoint",
        "not set: clients need the router's public host name or address",
    ),
    (
        "no_private_key",
        "the router does not keep this client's private key (it brought its own); \
         its config has to be written on the client",
    ),
    // a list or GeoIP update's result (sources/confine.rs, sources/update.rs),
    // kept in the lists state; the first argument is a file or folder
    ("list_dir_outside", "{}: outside wgsplit's folders"),
    (
        "list_dir_link",
        "{}: leads outside wgsplit's folders (a symbolic link?)",
    ),
    (
        "list_dir_not_own",
        "{}: must be a folder owned by wgsplit's user and writable by nobody else",
    ),
    (
        "list_target_link",
        "{}: is a symbolic link; wgsplit does not write through one",
    ),
    ("list_not_file", "{}: is not a regular file"),
    (
        "list_not_ours",
        "{}: exists and was not written by wgsplit; remove it to let wgsplit download it",
    ),
    (
        "source_outside",
        "{}: leads outside the folders file:// may read",
    ),
    (
        "download_too_large",
        "rejected: {}: larger than {} bytes (max_size)",
    ),
    ("download_empty", "rejected: {}: empty"),
    (
        "download_sha256",
        "rejected: {}: sha256 is {}, the pinned sha256 is {}",
    ),
    (
        "no_download_tool",
        "no download tool (uclient-fetch, wget or curl)",
    ),
    (
        "download_timeout",
        "{}: {} did not finish within {} s; stopped",
    ),
    // the tool's own last words (its stderr) after the colon
    (
        "download_failed_says",
        "{} could not fetch {} (exit status {}): {}",
    ),
    ("download_failed", "{} could not fetch {} (exit status {})"),
    (
        "geoip_no_countries",
        "rejected: none of the used countries is in the file",
    ),
    (
        "geoip_shrinks",
        "rejected: {} {} would shrink from {} to {} ranges",
    ),
    ("geoip_no_country", "rejected: {} is not in the file"),
    ("geoip_no_source", "rejected: no path or url"),
    // a list name holds no ':' or space: this one goes first
    ("list_unreadable", "rejected: list {}: {}"),
    (
        "list_shrinks",
        "rejected: list {} would go from {} to {} entries",
    ),
    // a reader's detail (English) is the argument
    ("bad_format", "bad format: {}"),
];

/// The code and arguments of one message (no newline), if the catalog knows it.
pub fn classify(message: &str) -> Option<(&'static str, Vec<String>)> {
    CATALOG.iter().find_map(|(code, template)| {
        let pieces: Vec<&str> = template.split("{}").collect();
        let mut args = Vec::new();
        let ok = fill(message, &pieces, &mut args)
            // a leading argument holds no ": " (that is a path before the message)
            && !(pieces[0].is_empty() && args.first().is_some_and(|a| a.contains(": ")));
        ok.then_some((*code, args))
    })
}

/// Whether `text` is pieces[0] {} pieces[1] {} … ; the `{}` parts pushed to
/// `args`. Each argument is non-empty and as short as lets the rest match.
fn fill(text: &str, pieces: &[&str], args: &mut Vec<String>) -> bool {
    let Some(rest) = text.strip_prefix(pieces[0]) else {
        return false;
    };
    if pieces.len() == 1 {
        return rest.is_empty();
    }
    let next = pieces[1];
    // the argument is at least one character
    let mut from = rest.chars().next().map_or(1, char::len_utf8);
    while from <= rest.len() {
        // the argument is rest[..at], then `next` must follow
        let Some(found) = rest.get(from..).and_then(|r| r.find(next)) else {
            break;
        };
        let at = from + found;
        if pieces.len() == 2 && next.is_empty() {
            args.push(rest.to_string());
            return true;
        }
        args.push(rest[..at].to_string());
        if fill(&rest[at..], &pieces[1..], args) {
            return true;
        }
        args.pop();
        from = at + rest[at..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// One line as a JSON object: `{message, code?, args?, path?}`. A line
/// "path: message" whose message the catalog knows keeps the path apart
/// (config problems, `'dest': …`); "wgsplit: " in front is dropped.
pub fn line_json(line: &str) -> Value {
    let line = line.strip_prefix("wgsplit: ").unwrap_or(line).trim_end();
    if let Some((code, args)) = classify(line) {
        return json!({"message": line, "code": code, "args": args});
    }
    let mut i = 0;
    while let Some(found) = line[i..].find(": ") {
        let at = i + found;
        if let Some((code, args)) = classify(&line[at + 2..]) {
            return json!({"path": &line[..at], "message": &line[at + 2..], "code": code, "args": args});
        }
        i = at + 2;
    }
    json!({ "message": line })
}

/// An error text (one message, or problems one a line) as the JSON error the
/// API and `--json-errors` print: `{"error": text}` plus `code`/`args` (and
/// `path`) for one known message, or `problems` for several lines.
pub fn error_json(text: &str) -> Value {
    let text = text.trim_end();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = json!({ "error": text.strip_prefix("wgsplit: ").unwrap_or(text) });
    if lines.len() == 1 {
        if let (Value::Object(o), Value::Object(l)) = (&mut out, line_json(lines[0])) {
            for k in ["code", "args", "path"] {
                if let Some(v) = l.get(k) {
                    o.insert(k.into(), v.clone());
                }
            }
        }
    } else if lines.len() > 1 {
        out["problems"] = lines.iter().map(|l| line_json(l)).collect();
    }
    out
}

/// [`error_json`] as one line with `"error"` first, as `--json-errors` prints
/// it: a shell reader (the rpcd plugin) tells an error from an answer by
/// its first bytes, `{"error":`.
pub fn error_line(text: &str) -> String {
    let mut v = error_json(text);
    let error = v
        .as_object_mut()
        .and_then(|o| o.remove("error"))
        .unwrap_or_default();
    let rest = v.to_string();
    let rest = rest.trim_start_matches('{');
    let sep = if rest == "}" { "" } else { "," };
    format!("{{\"error\":{error}{sep}{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_messages_have_codes_and_args() {
        assert_eq!(
            classify("no client named 'bob'"),
            Some(("no_client", vec!["bob".to_string()]))
        );
        assert_eq!(
            classify("10.9.0.2/32 is outside the server pool 10.8.0.0/24"),
            Some((
                "outside_pool",
                vec!["10.9.0.2/32".to_string(), "10.8.0.0/24".to_string()]
            ))
        );
        assert_eq!(
            classify("100 is outside 1280-9000"),
            Some((
                "outside_range",
                vec!["100".into(), "1280".into(), "9000".into()]
            ))
        );
        assert_eq!(classify("required"), Some(("required", vec![])));
        assert_eq!(
            classify("required (host:port)"),
            Some(("required_hostport", vec![]))
        );
        assert_eq!(
            classify("required (e.g. 10.8.0.1/24)"),
            Some(("required_eg", vec!["10.8.0.1/24".into()]))
        );
        assert_eq!(
            classify("line 3: 'x: y' is not 'Key = Value'"),
            Some(("import_bad_line", vec!["3".into(), "x: y".into()]))
        );
        // an argument may hold the text that follows it, and non-ASCII
        assert_eq!(
            classify("'a' is not a domain name' is not a domain name"),
            Some(("not_domain", vec!["a' is not a domain name".into()]))
        );
        assert_eq!(
            classify("'пример..рф' is not a domain name"),
            Some(("not_domain", vec!["пример..рф".into()]))
        );
        // each holder of a name has its own code: the kind is no argument
        assert_eq!(
            classify("the name 'us1' is already used by an upstream"),
            Some(("name_used_upstream", vec!["us1".into()]))
        );
        assert_eq!(
            classify("rejected: list ads: bad format: line 2: x"),
            Some((
                "list_unreadable",
                vec!["ads".into(), "bad format: line 2: x".into()]
            ))
        );
        assert_eq!(
            classify("rejected: list ads would go from 10 to 2 entries"),
            Some(("list_shrinks", vec!["ads".into(), "10".into(), "2".into()]))
        );
        assert_eq!(
            classify("curl could not fetch https://x/a (exit status 22): curl: (22) error: 404"),
            Some((
                "download_failed_says",
                vec![
                    "curl".into(),
                    "https://x/a".into(),
                    "22".into(),
                    "curl: (22) error: 404".into()
                ]
            ))
        );
        assert_eq!(
            classify("wget could not fetch http://x/a (exit status 8)"),
            Some((
                "download_failed",
                vec!["wget".into(), "http://x/a".into(), "8".into()]
            ))
        );
        assert_eq!(classify("something new happened"), None);
        assert_eq!(classify("required!"), None);
        assert_eq!(classify("no client named ''"), None, "empty argument");
    }

    #[test]
    fn lines_keep_their_path() {
        assert_eq!(
            line_json("wgsplit: alice.upstream: no upstream named 'nope'"),
            json!({"path": "alice.upstream", "message": "no upstream named 'nope'",
                   "code": "no_upstream", "args": ["nope"]})
        );
        assert_eq!(
            line_json("alice.address: 10.9.0.2/32 is outside the server pool 10.8.0.0/24"),
            json!({"path": "alice.address", "message": "10.9.0.2/32 is outside the server pool 10.8.0.0/24",
                   "code": "outside_pool", "args": ["10.9.0.2/32", "10.8.0.0/24"]})
        );
        assert_eq!(
            line_json("a: b: c"),
            json!({"message": "a: b: c"}),
            "unknown: no code, no path"
        );
    }

    #[test]
    fn errors_as_json() {
        assert_eq!(
            error_json("wgsplit: no client named 'zed'\n"),
            json!({"error": "no client named 'zed'", "code": "no_client", "args": ["zed"]})
        );
        let e = error_json("a.mtu: 100 is outside 1280-9000\nb.x: odd");
        assert_eq!(e["problems"][0]["code"], "outside_range");
        assert_eq!(e["problems"][1], json!({"message": "b.x: odd"}));
        assert!(e.get("code").is_none());
    }

    #[test]
    fn the_error_line_starts_with_error() {
        let l = error_line("no client named 'zed'");
        assert!(
            l.starts_with("{\"error\":\"no client named 'zed'\","),
            "{l}"
        );
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v, error_json("no client named 'zed'"));
        assert_eq!(error_line("odd"), r#"{"error":"odd"}"#);
    }

    #[test]
    fn codes_are_words() {
        for (code, template) in CATALOG {
            assert!(
                code.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{code}"
            );
            assert!(!template.contains("{}{}"), "{template}: arguments apart");
        }
    }
}
