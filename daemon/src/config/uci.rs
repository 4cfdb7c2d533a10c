//! The UCI file format, read and written by our own code (no libuci on the host).
//!
//! Grammar, as OpenWrt's libuci reads a config file (daemon/tests/uci_oracle.rs
//! holds this parser to what `uci export` reads from a corpus of files):
//! ```text
//! package <name>
//! config <type> [<name>]
//!     option <name> [<value>]
//!     list <name> [<value>]
//! ```
//! The keywords may be shortened to their first letter and are never quoted. A
//! word is any run of unquoted, 'single quoted' (no escapes) and "double quoted"
//! (backslash escapes) pieces glued together, so `'it'\''s'` reads `it's`. `#`
//! starts a comment outside quotes; a backslash before a newline splices the
//! next line in (at the start of a word followed by a blank, the word is empty).
//!
//! As in libuci: an option with an empty value changes nothing; `list` after
//! `option` of the same name turns the option into the list's first item, and
//! `option` after `list` replaces it; `config <type> ''` is anonymous; one empty
//! word after a statement is ignored.
//!
//! Refused on purpose where libuci reads something (each an error naming the
//! line): a named section given twice (libuci merges the two: a second
//! `config client 'alice'` at the end of a file would quietly add to alice's);
//! `;` outside quotes (libuci reads it as a command separator after a quoted
//! word but cuts the line there after a plain one); more words after a
//! statement (libuci reads them as the next command); a NUL byte; text that is
//! not UTF-8 ([`text`]).

use std::{
    collections::HashMap,
    fmt::{self, Write as _},
};

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

/// A section type as uci accepts it: printable ASCII without blanks.
fn valid_type(kind: &str) -> bool {
    !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_graphic())
}

/// A package name: a name that may also hold `-`.
fn valid_package(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The file's bytes as text: libuci takes any bytes, we take UTF-8 only (every
/// value ends up in JSON, netlink names or the web pages).
pub fn text(bytes: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(bytes).map_err(|e| ParseError {
        line: 1 + newlines(&bytes[..e.valid_up_to()]),
        message: "not UTF-8 text".into(),
    })
}

pub fn parse(text: &str) -> Result<Vec<Section>, ParseError> {
    let mut sections = Vec::new();
    parse_each(text, |s| sections.push(s))?;
    Ok(sections)
}

/// The keyword a statement starts with, as libuci matches it: the whole word
/// or its first letter, unquoted, followed by a space or a tab.
fn keyword(word: &Word) -> Option<&'static str> {
    if !word.plain {
        return None;
    }
    ["package", "config", "option", "list"]
        .into_iter()
        .find(|k| word.text == *k || word.text == k[..1])
}

/// Parses section by section, handing each to `each` once it is complete, so a
/// large file never holds all its sections in memory at once (only the names).
pub fn parse_each(text: &str, mut each: impl FnMut(Section)) -> Result<(), ParseError> {
    let mut current: Option<Section> = None;
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut lexer = Lexer::new(text);
    while let Some((line, mut words)) = lexer.next_statement()? {
        let err = |message: String| ParseError { line, message };
        let keyword = keyword(&words[0]).ok_or_else(|| {
            err(format!(
                "unknown keyword '{}' (package, config, option or list)",
                words[0].text
            ))
        })?;
        // One empty word after the statement is read and ignored by libuci.
        let most = if keyword == "package" { 2 } else { 3 };
        if words.len() == most + 1 && words[most].text.is_empty() {
            words.pop();
        }
        if words.len() > most {
            return Err(err(format!(
                "'{keyword}' takes at most {} words after it (quote a value with blanks)",
                most - 1
            )));
        }
        let mut args = words.into_iter().skip(1).map(|w| w.text);
        let (first, second) = (args.next().unwrap_or_default(), args.next());
        match keyword {
            "package" => {
                if !valid_package(&first) {
                    return Err(err(format!("invalid package name '{first}'")));
                }
            }
            "config" => {
                if !valid_type(&first) {
                    return Err(err(format!("invalid section type '{first}'")));
                }
                let name = second.filter(|n| !n.is_empty());
                if let Some(name) = &name {
                    if !valid_name(name) {
                        return Err(err(format!(
                            "invalid section name '{name}' (letters, digits and _ only)"
                        )));
                    }
                    if let Some(first) = names.insert(name.clone(), line) {
                        return Err(err(format!(
                            "section '{name}' is already defined on line {first}"
                        )));
                    }
                }
                if let Some(done) = current.replace(Section {
                    kind: first,
                    name,
                    line,
                    options: Vec::new(),
                }) {
                    each(done);
                }
            }
            _ => {
                let Some(section) = current.as_mut() else {
                    return Err(err(format!("'{keyword}' before any 'config' line")));
                };
                if !valid_name(&first) {
                    return Err(err(format!("invalid option name '{first}'")));
                }
                add(
                    section,
                    keyword == "list",
                    first,
                    second.unwrap_or_default(),
                    line,
                );
            }
        }
    }
    if let Some(done) = current {
        each(done);
    }
    Ok(())
}

/// `option` or `list` `name` `value` into the section, as libuci's uci_set and
/// uci_add_list do it.
fn add(section: &mut Section, list: bool, name: String, value: String, line: usize) {
    let existing = section.options.iter_mut().find(|o| o.name == name);
    match (list, existing) {
        // An empty option changes nothing, whether it exists or not.
        (false, _) if value.is_empty() => {}
        (false, Some(o)) => {
            o.value = Value::Single(value);
            o.line = line;
        }
        (true, Some(o)) => match &mut o.value {
            Value::List(items) => items.push(value),
            Value::Single(old) => o.value = Value::List(vec![std::mem::take(old), value]),
        },
        (list, None) => section.options.push(Opt {
            name,
            value: if list {
                Value::List(vec![value])
            } else {
                Value::Single(value)
            },
            line,
        }),
    }
}

/// A word and whether it was written bare (no quotes, no backslash): only a
/// bare word can be a keyword.
struct Word {
    text: String,
    plain: bool,
}

/// Splits the text into words a byte at a time. Every byte it acts on (blanks,
/// quotes, `\`, `#`, `;`, NUL, newline) is ASCII, and UTF-8 never uses ASCII
/// bytes inside a multi-byte character, so runs between them are copied whole
/// (a 4 MB config is read at memory speed, not a `char` at a time).
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

/// Blanks between words (C's isspace but the newline, which ends a statement).
fn blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | 0x0b | 0x0c)
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

    fn error(&self, line: usize, message: &str) -> ParseError {
        ParseError {
            line,
            message: message.into(),
        }
    }

    /// Reads the words of the next non-empty statement: `(line number, words)`.
    fn next_statement(&mut self) -> Result<Option<(usize, Vec<Word>)>, ParseError> {
        loop {
            let start = self.line;
            let mut words: Vec<Word> = Vec::new();
            let end_of_input = loop {
                while self.peek().is_some_and(blank) {
                    self.pos += 1;
                }
                match self.peek() {
                    None => break true,
                    Some(b'\n') => {
                        self.pos += 1;
                        self.line += 1;
                        break false;
                    }
                    Some(b'#') => {
                        let n = run_end(&self.text[self.pos..], |b| b == b'\n' || b == 0);
                        self.pos += n;
                        if self.peek() == Some(0) {
                            // libuci would read on past it, into the next line.
                            return Err(self.error(self.line, "NUL byte"));
                        }
                    }
                    Some(_) => {
                        let word = self.word()?;
                        // libuci cuts the keyword at a space or a tab only.
                        if words.is_empty()
                            && !matches!(self.peek(), Some(b' ' | b'\t'))
                            && keyword(&word).is_some()
                        {
                            return Err(self.error(
                                start,
                                &format!("'{}' must be followed by a space or a tab", word.text),
                            ));
                        }
                        words.push(word);
                    }
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

    fn word(&mut self) -> Result<Word, ParseError> {
        let mut word = Vec::new();
        let mut plain = true;
        let start = self.line;
        while let Some(c) = self.peek() {
            match c {
                b'\n' | b'#' => break,
                c if blank(c) => break,
                b';' => {
                    return Err(self.error(
                        self.line,
                        "';' outside quotes (uci reads it as a command separator or drops the \
                         rest of the line): quote the value",
                    ));
                }
                0 => return Err(self.error(self.line, "NUL byte")),
                b'\'' => {
                    plain = false;
                    let rest = &self.text[self.pos + 1..];
                    let n = run_end(rest, |b| b == b'\'' || b == 0);
                    if rest.get(n) != Some(&b'\'') {
                        return Err(self.quote_error(rest.get(n), '\'', start));
                    }
                    word.extend_from_slice(&rest[..n]);
                    self.line += newlines(&rest[..n]);
                    self.pos += n + 2;
                }
                b'"' => {
                    plain = false;
                    self.pos += 1;
                    loop {
                        let rest = &self.text[self.pos..];
                        let n = run_end(rest, |b| matches!(b, b'"' | b'\\' | 0));
                        word.extend_from_slice(&rest[..n]);
                        self.line += newlines(&rest[..n]);
                        self.pos += n;
                        match self.peek() {
                            Some(b'"') => {
                                self.pos += 1;
                                break;
                            }
                            Some(b'\\') if self.escape(&mut word) => {}
                            other => return Err(self.quote_error(other.as_ref(), '"', start)),
                        }
                    }
                }
                b'\\' => {
                    plain = false;
                    // At the end of the text a backslash is dropped, as libuci does.
                    if !self.escape(&mut word) {
                        self.pos += 1;
                    }
                }
                _ => {
                    let rest = &self.text[self.pos..];
                    let n = run_end(rest, |b| {
                        blank(b) || matches!(b, b'\n' | b'#' | b'\'' | b'"' | b'\\' | b';' | 0)
                    });
                    word.extend_from_slice(&rest[..n]);
                    self.pos += n;
                }
            }
        }
        // Only whole ASCII bytes were left out, so this is the text's own UTF-8.
        let text = String::from_utf8(word)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Ok(Word { text, plain })
    }

    /// At a backslash: a newline after it (or CR LF) splices the next line in;
    /// any other byte is taken as it is (a multi-byte character's other bytes
    /// follow as plain text). `false` when the text ends after the backslash.
    fn escape(&mut self, word: &mut Vec<u8>) -> bool {
        match (self.text.get(self.pos + 1), self.text.get(self.pos + 2)) {
            (Some(b'\n'), _) => self.line += 1,
            (Some(b'\r'), Some(b'\n')) => {
                self.line += 1;
                self.pos += 1;
            }
            (Some(0), _) => return false,
            (Some(&e), _) => word.push(e),
            (None, _) => return false,
        }
        self.pos += 2;
        true
    }

    /// A quoted piece that stops at a NUL byte or at the end of the text.
    fn quote_error(&self, at: Option<&u8>, quote: char, line: usize) -> ParseError {
        match at {
            Some(0) => self.error(self.line, "NUL byte"),
            _ => self.error(line, &format!("unterminated {quote} quote")),
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
                // libuci reads an empty option as none: it is not written.
                Value::Single(v) if v.is_empty() => {}
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
        // An empty option is no option, as in libuci.
        assert!(s[0].options.iter().all(|o| o.name != "e"));
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
            let name = format!("o{i}");
            if v.is_empty() {
                assert!(back[0].options.iter().all(|o| o.name != name));
            } else {
                assert_eq!(single(&back[0], &name), *v);
            }
        }
    }

    #[test]
    fn later_option_replaces_earlier() {
        let s = parse("config a\n option x 1\n option x 2\n option x ''\n option y\n").unwrap();
        assert_eq!(single(&s[0], "x"), "2");
        assert_eq!(s[0].options.len(), 1);
    }

    #[test]
    fn list_and_option_of_one_name_as_libuci() {
        let s =
            parse("config a\n option x 1\n list x 2\n list y 3\n option y 4\n list z\n").unwrap();
        let values: Vec<_> = s[0].options.iter().map(|o| o.value.clone()).collect();
        assert_eq!(
            values,
            [
                Value::List(vec!["1".into(), "2".into()]),
                Value::Single("4".into()),
                Value::List(vec![String::new()]),
            ]
        );
    }

    #[test]
    fn keywords_anonymous_names_and_continuations() {
        let text =
            "c t ''\no x 1 ''\nl y \\\n\np 'pkg-1'\nconfig 'odd.type' n\n\toption z a\\\r\nb\n";
        let s = parse(text).unwrap();
        assert_eq!((s[0].kind.as_str(), s[0].name.as_deref()), ("t", None));
        assert_eq!(single(&s[0], "x"), "1");
        assert_eq!(s[0].options[1].value, Value::List(vec![String::new()]));
        assert_eq!(s[1].kind, "odd.type");
        assert_eq!(single(&s[1], "z"), "ab");
        assert_eq!(s[1].line, 6);
    }

    #[test]
    fn not_utf8_names_its_line() {
        let e = text(b"config a\n option x '\xe9'\n").unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (2, "not UTF-8 text"));
    }

    #[test]
    fn malformed_input_names_the_line() {
        let cases = [
            ("config a\n option x 'open\n", 2, "unterminated"),
            ("option x y\n", 1, "before any"),
            ("config a\n option\n", 2, "followed by a space"),
            ("config a\n bogus x y\n", 2, "unknown keyword"),
            ("config a\n 'option' x y\n", 2, "unknown keyword"),
            ("config a\n conf x y\n", 2, "unknown keyword"),
            ("config\x0ba\n", 1, "followed by a space"),
            ("config a b\nconfig c b\n", 2, "already defined on line 1"),
            ("config a b-c\n", 1, "invalid section name"),
            ("config 'a b'\n", 1, "invalid section type"),
            ("config a 'b c'\n", 1, "invalid section name"),
            ("config a\n option 'x.y' 1\n", 2, "invalid option name"),
            ("config a\n option '' 1\n", 2, "invalid option name"),
            ("package a.b\n", 1, "invalid package name"),
            ("package a b\n", 1, "at most 1 word"),
            ("config a\n option x \"y\\", 2, "unterminated"),
            ("config a b c\n", 1, "at most 2 words"),
            ("config a b '' option x 1\n", 1, "at most 2 words"),
            (
                "config a\n option x 1 \\\n\toption y 2\n",
                2,
                "at most 2 words",
            ),
            ("config a\n option x a;b\n", 2, "';' outside quotes"),
            ("config a b; option x 1\n", 1, "';' outside quotes"),
            ("config a\n option x 'a\0b'\n", 2, "NUL byte"),
            ("config a\n# \0\n", 2, "NUL byte"),
        ];
        for (text, line, what) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(what), "{text:?}: {e}");
        }
    }
}
