//! The UCI file format, read and written by our own code (no libuci on the host).
//!
//! Grammar, as `uci import` accepts it:
//! ```text
//! package <name>
//! config <type> [<name>]
//!     option <name> <value>
//!     list <name> <value>
//! ```
//! A word is any run of unquoted, 'single quoted' (no escapes) and "double quoted"
//! (backslash escapes) pieces glued together, so `'it'\''s'` reads `it's`. `#`
//! starts a comment outside quotes; a backslash before a newline continues the line.

use std::fmt::{self, Write as _};

/// One section in file order. Anonymous sections have `name: None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub kind: String,
    pub name: Option<String>,
    /// Line where the section starts (1-based), for error messages.
    pub line: usize,
    pub options: Vec<Opt>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    pub name: String,
    pub value: Value,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Single(String),
    List(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// A name as uci accepts it for sections and options: `[A-Za-z0-9_]+`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

pub fn parse(text: &str) -> Result<Vec<Section>, ParseError> {
    let mut sections = Vec::new();
    parse_each(text, |s| sections.push(s))?;
    Ok(sections)
}

/// Parses section by section, handing each to `each` once it is complete, so a
/// large file never holds all its sections in memory at once.
pub fn parse_each(text: &str, mut each: impl FnMut(Section)) -> Result<(), ParseError> {
    let mut current: Option<Section> = None;
    let mut lexer = Lexer::new(text);
    while let Some((line, words)) = lexer.next_statement()? {
        let err = |message: String| ParseError { line, message };
        let (keyword, args) = words.split_first().expect("statements are non-empty");
        match keyword.as_str() {
            "package" => {
                if args.len() != 1 {
                    return Err(err("'package' takes one name".into()));
                }
            }
            "config" => {
                let (kind, name) = match args {
                    [kind] => (kind, None),
                    [kind, name] => (kind, Some(name.clone())),
                    _ => return Err(err("'config' takes a type and an optional name".into())),
                };
                if !valid_name(kind) {
                    return Err(err(format!("invalid section type '{kind}'")));
                }
                if let Some(name) = &name
                    && !valid_name(name)
                {
                    return Err(err(format!(
                        "invalid section name '{name}' (letters, digits and _ only)"
                    )));
                }
                if let Some(done) = current.replace(Section {
                    kind: kind.clone(),
                    name,
                    line,
                    options: Vec::new(),
                }) {
                    each(done);
                }
            }
            "option" | "list" => {
                let Some(section) = current.as_mut() else {
                    return Err(err(format!("'{keyword}' before any 'config' line")));
                };
                let [name, value] = args else {
                    return Err(err(format!("'{keyword}' takes a name and a value")));
                };
                if !valid_name(name) {
                    return Err(err(format!("invalid option name '{name}'")));
                }
                let existing = section.options.iter_mut().find(|o| &o.name == name);
                match (keyword.as_str(), existing) {
                    ("option", Some(o)) => {
                        // uci: a later option replaces an earlier one.
                        o.value = Value::Single(value.clone());
                        o.line = line;
                    }
                    ("option", None) => section.options.push(Opt {
                        name: name.clone(),
                        value: Value::Single(value.clone()),
                        line,
                    }),
                    (
                        _,
                        Some(Opt {
                            value: Value::List(items),
                            ..
                        }),
                    ) => items.push(value.clone()),
                    (_, Some(_)) => {
                        return Err(err(format!(
                            "'{name}' is both an option and a list in this section"
                        )));
                    }
                    (_, None) => section.options.push(Opt {
                        name: name.clone(),
                        value: Value::List(vec![value.clone()]),
                        line,
                    }),
                }
            }
            other => return Err(err(format!("unknown keyword '{other}'"))),
        }
    }
    if let Some(done) = current {
        each(done);
    }
    Ok(())
}

/// Splits the text into words a byte at a time. Every byte it acts on (blanks,
/// quotes, `\`, `#`, newline) is ASCII, and UTF-8 never uses ASCII bytes inside
/// a multi-byte character, so runs between them are copied whole (a 4 MB config
/// is read at memory speed, not a `char` at a time).
struct Lexer<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
}

/// The first index in `bytes` where `stop` holds (or the length).
fn run_end(bytes: &[u8], stop: impl Fn(u8) -> bool) -> usize {
    bytes.iter().position(|&b| stop(b)).unwrap_or(bytes.len())
}

fn newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text: text.as_bytes(),
            pos: 0,
            line: 1,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    /// Reads the words of the next non-empty line: `(line number, words)`.
    fn next_statement(&mut self) -> Result<Option<(usize, Vec<String>)>, ParseError> {
        loop {
            let start = self.line;
            let mut words = Vec::new();
            let end_of_input = loop {
                self.skip_blanks();
                match self.peek() {
                    None => break true,
                    Some(b'\n') => {
                        self.pos += 1;
                        self.line += 1;
                        break false;
                    }
                    Some(b'#') => self.pos += run_end(&self.text[self.pos..], |b| b == b'\n'),
                    Some(_) => words.push(self.word()?),
                }
            };
            if !words.is_empty() {
                return Ok(Some((start, words)));
            }
            if end_of_input {
                return Ok(None);
            }
        }
    }

    fn skip_blanks(&mut self) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r') => self.pos += 1,
                // A backslash before a newline joins the lines.
                Some(b'\\') if self.text.get(self.pos + 1) == Some(&b'\n') => {
                    self.pos += 2;
                    self.line += 1;
                }
                _ => return,
            }
        }
    }

    fn word(&mut self) -> Result<String, ParseError> {
        let mut word = Vec::new();
        let start = self.line;
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' | b'#' => break,
                b'\'' => {
                    let rest = &self.text[self.pos + 1..];
                    let n = run_end(rest, |b| b == b'\'');
                    if n == rest.len() {
                        return Err(self.unterminated('\'', start));
                    }
                    word.extend_from_slice(&rest[..n]);
                    self.line += newlines(&rest[..n]);
                    self.pos += n + 2;
                }
                b'"' => {
                    self.pos += 1;
                    loop {
                        let rest = &self.text[self.pos..];
                        let n = run_end(rest, |b| matches!(b, b'"' | b'\\'));
                        word.extend_from_slice(&rest[..n]);
                        self.line += newlines(&rest[..n]);
                        self.pos += n;
                        match self.peek() {
                            Some(b'"') => {
                                self.pos += 1;
                                break;
                            }
                            Some(_) if self.escape(&mut word) => {}
                            _ => return Err(self.unterminated('"', start)),
                        }
                    }
                }
                b'\\' => {
                    if !self.escape(&mut word) {
                        return Err(ParseError {
                            line: self.line,
                            message: "backslash at end of file".into(),
                        });
                    }
                }
                _ => {
                    let rest = &self.text[self.pos..];
                    let n = run_end(rest, |b| {
                        matches!(
                            b,
                            b' ' | b'\t' | b'\r' | b'\n' | b'#' | b'\'' | b'"' | b'\\'
                        )
                    });
                    word.extend_from_slice(&rest[..n]);
                    self.pos += n;
                }
            }
        }
        // Only whole ASCII bytes were left out, so this is the text's own UTF-8.
        Ok(String::from_utf8(word)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    /// At a backslash: a newline after it joins the lines; any other byte is
    /// taken as it is (a multi-byte character's other bytes follow as plain
    /// text). `false` when the text ends after the backslash.
    fn escape(&mut self, word: &mut Vec<u8>) -> bool {
        match self.text.get(self.pos + 1) {
            Some(b'\n') => self.line += 1,
            Some(&e) => word.push(e),
            None => return false,
        }
        self.pos += 2;
        true
    }

    fn unterminated(&self, quote: char, line: usize) -> ParseError {
        ParseError {
            line,
            message: format!("unterminated {quote} quote"),
        }
    }
}

/// Writes sections the way `uci export` does: values single-quoted, a `'` as `'\''`.
pub fn write(package: Option<&str>, sections: &[Section]) -> String {
    let mut out = String::new();
    if let Some(package) = package {
        let _ = writeln!(out, "package {package}\n");
    }
    for (i, section) in sections.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str("config ");
        out.push_str(&section.kind);
        if let Some(name) = &section.name {
            let _ = write!(out, " '{name}'");
        }
        out.push('\n');
        for opt in &section.options {
            match &opt.value {
                Value::Single(v) => {
                    let _ = writeln!(out, "\toption {} {}", opt.name, quote(v));
                }
                Value::List(items) => {
                    for v in items {
                        let _ = writeln!(out, "\tlist {} {}", opt.name, quote(v));
                    }
                }
            }
        }
    }
    out
}

fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(s: &Section, name: &str) -> String {
        match &s.options.iter().find(|o| o.name == name).unwrap().value {
            Value::Single(v) => v.clone(),
            Value::List(_) => panic!("{name} is a list"),
        }
    }

    #[test]
    fn reads_quoting_forms() {
        let text = r#"
package wgsplit
# comment
config server 'server'   # trailing comment
	option a 'single # not a comment'
	option b "double \"escaped\" \\ back"
	option c plain
	option d 'it'\''s'
	option e ''
	option f "multi
line"
	option g long\
word
	list l 'one'
	list l two
config rule
	option client alice
"#;
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name.as_deref(), Some("server"));
        assert_eq!(single(&s[0], "a"), "single # not a comment");
        assert_eq!(single(&s[0], "b"), r#"double "escaped" \ back"#);
        assert_eq!(single(&s[0], "c"), "plain");
        assert_eq!(single(&s[0], "d"), "it's");
        assert_eq!(single(&s[0], "e"), "");
        assert_eq!(single(&s[0], "f"), "multi\nline");
        assert_eq!(single(&s[0], "g"), "longword");
        assert_eq!(
            s[0].options.last().unwrap().value,
            Value::List(vec!["one".into(), "two".into()])
        );
        assert_eq!(s[1].name, None);
        assert_eq!(s[1].line, 16);
        assert_eq!(s[1].options[0].line, 17);
    }

    #[test]
    fn reads_multibyte_text_in_every_form() {
        // The lexer works on bytes: a character of several bytes must come
        // through whole, quoted, escaped, glued or plain.
        let text = "config client 'c'\n\toption a '中文 ф'\n\toption b \"ü\\中\\\"\"\n\
                    \toption c при'вет'\n\toption d x\\üy\n";
        let s = parse(text).unwrap();
        assert_eq!(single(&s[0], "a"), "中文 ф");
        assert_eq!(single(&s[0], "b"), "ü中\"");
        assert_eq!(single(&s[0], "c"), "привет");
        assert_eq!(single(&s[0], "d"), "xüy");
        assert_eq!(s[0].options[3].line, 5);
    }

    #[test]
    fn writer_round_trips_nasty_values() {
        let values = [
            "it's",
            "'''",
            "a\\b",
            "tab\there",
            "new\nline",
            "\"dq\"",
            "# hash",
            "",
            " lead",
        ];
        let sections = vec![Section {
            kind: "t".into(),
            name: Some("n".into()),
            line: 1,
            options: values
                .iter()
                .enumerate()
                .map(|(i, v)| Opt {
                    name: format!("o{i}"),
                    value: Value::Single(v.to_string()),
                    line: 0,
                })
                .collect(),
        }];
        let text = write(Some("p"), &sections);
        let back = parse(&text).unwrap();
        for (i, v) in values.iter().enumerate() {
            assert_eq!(single(&back[0], &format!("o{i}")), *v);
        }
    }

    #[test]
    fn later_option_replaces_earlier() {
        let s = parse("config a\n option x 1\n option x 2\n").unwrap();
        assert_eq!(single(&s[0], "x"), "2");
    }

    #[test]
    fn malformed_input_names_the_line() {
        let cases = [
            ("config a\n option x 'open\n", 2, "unterminated"),
            ("option x y\n", 1, "before any"),
            ("config a\n option x\n", 2, "name and a value"),
            ("config a\n bogus x y\n", 2, "unknown keyword"),
            ("config a-b\n", 1, "invalid section type"),
            ("config a 'b c'\n", 1, "invalid section name"),
            (
                "config a\n option x 1\n list x 2\n",
                3,
                "both an option and a list",
            ),
            ("config a\n option x \"y\\", 2, "unterminated"),
            ("config a b c\n", 1, "optional name"),
        ];
        for (text, line, what) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(what), "{text:?}: {e}");
        }
    }
}
