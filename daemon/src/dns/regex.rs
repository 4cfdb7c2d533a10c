//! A small regular-expression matcher for the `regexp:` entries of v2fly domain
//! lists (the `regex` crate would cost far more binary than the few hundred
//! expressions in real lists are worth).
//!
//! Supported: the RE2 subset those lists use — literals and escapes (`\.`,
//! `\-`, `\xHH`, …), `.`, classes `[a-z0-9-]`, `[^.]`, `\d \w \s` and their
//! negations, groups `( )`, `(?: )`, `(?P<name> )`, alternation `|`, the
//! quantifiers `* + ? {n} {n,} {n,m}` (greedy or lazy: the same for a yes/no
//! match), and the anchors `^ $ \A \z`. A leading `(?i)` is accepted (names
//! are matched lowercase, letters in expressions case-insensitively). Anything
//! else (back-references, look-around, `\b`, Unicode classes, other flags) is
//! refused with the reason, and the caller counts and reports the entry.
//!
//! Matching is a Pike VM over the name's bytes (no backtracking: linear in the
//! name's length times the expression's size, whatever the expression), and
//! unanchored like Go's `MatchString`. A literal every match must contain (the
//! longest run of plain bytes outside optional parts, e.g. `.amazonaws.com`) is
//! looked for first: most names are rejected without running the VM.

use std::cell::RefCell;

/// A compiled expression.
#[derive(Debug, Clone)]
pub struct Regex {
    prog: Vec<Inst>,
    classes: Vec<[u64; 4]>,
    /// A byte string every match contains (may be empty).
    literal: Box<[u8]>,
    /// A byte string every matching name ends with (`…\.com$`; may be empty).
    suffix: Box<[u8]>,
    /// Starts with `^`: threads start at position 0 only.
    anchored: bool,
}

#[derive(Debug, Clone, Copy)]
enum Inst {
    /// One byte of the class with this index.
    Class(u32),
    Split(u32, u32),
    Jmp(u32),
    Start,
    End,
    Match,
}

#[derive(Debug, Clone)]
enum Node {
    Empty,
    Class([u64; 4]),
    Start,
    End,
    Cat(Vec<Node>),
    Alt(Vec<Node>),
    Rep(Box<Node>, u32, Option<u32>),
}

/// Longest expression text accepted, and largest program.
const MAX_TEXT: usize = 1024;
const MAX_PROG: usize = 4096;
const MAX_REPEAT: u32 = 255;

fn set(c: &mut [u64; 4], b: u8) {
    c[(b >> 6) as usize] |= 1 << (b & 63);
}

fn has(c: &[u64; 4], b: u8) -> bool {
    c[(b >> 6) as usize] & (1 << (b & 63)) != 0
}

fn range(c: &mut [u64; 4], lo: u8, hi: u8) {
    for b in lo..=hi {
        set(c, b);
    }
}

fn negate(c: &mut [u64; 4]) {
    for w in c.iter_mut() {
        *w = !*w;
    }
}

/// Names are matched lowercase: an expression's upper-case letters stand for
/// the lower-case ones.
fn fold(c: &mut [u64; 4]) {
    for b in b'A'..=b'Z' {
        if has(c, b) {
            set(c, b.to_ascii_lowercase());
        }
    }
}

fn single(b: u8) -> [u64; 4] {
    let mut c = [0; 4];
    set(&mut c, b.to_ascii_lowercase());
    c
}

/// The byte of a class holding exactly one byte.
fn only(c: &[u64; 4]) -> Option<u8> {
    let n: u32 = c.iter().map(|w| w.count_ones()).sum();
    (n == 1).then(|| (0..=255u8).find(|&b| has(c, b)).unwrap_or(0))
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn alt(&mut self) -> Result<Node, String> {
        let mut alts = vec![self.cat()?];
        while self.eat(b'|') {
            alts.push(self.cat()?);
        }
        Ok(if alts.len() == 1 {
            alts.pop().unwrap()
        } else {
            Node::Alt(alts)
        })
    }

    fn cat(&mut self) -> Result<Node, String> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == b'|' || c == b')' {
                break;
            }
            let atom = self.atom()?;
            items.push(self.quantified(atom)?);
        }
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.pop().unwrap(),
            _ => Node::Cat(items),
        })
    }

    fn number(&mut self) -> Option<u32> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }

    fn quantified(&mut self, mut atom: Node) -> Result<Node, String> {
        loop {
            let (min, max) = match self.peek() {
                Some(b'*') => (0, None),
                Some(b'+') => (1, None),
                Some(b'?') => (0, Some(1)),
                Some(b'{') => {
                    let save = self.i;
                    self.i += 1;
                    let Some(min) = self.number() else {
                        // Not a repetition: a literal `{` (as RE2 reads it).
                        self.i = save;
                        return Ok(atom);
                    };
                    let max = if self.eat(b',') {
                        if self.peek() == Some(b'}') {
                            None
                        } else {
                            Some(self.number().ok_or("bad {n,m}")?)
                        }
                    } else {
                        Some(min)
                    };
                    if self.peek() != Some(b'}') {
                        return Err("bad {n,m}".into());
                    }
                    if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT || m < min) {
                        return Err("repetition count too large or reversed".into());
                    }
                    (min, max)
                }
                _ => return Ok(atom),
            };
            self.i += 1;
            // Lazy or greedy: the same for a yes/no answer.
            self.eat(b'?');
            if matches!(atom, Node::Start | Node::End | Node::Empty) {
                return Err("a quantifier needs something to repeat".into());
            }
            atom = Node::Rep(Box::new(atom), min, max);
        }
    }

    fn atom(&mut self) -> Result<Node, String> {
        let c = self.peek().ok_or("unexpected end")?;
        self.i += 1;
        Ok(match c {
            b'(' => {
                if self.eat(b'?') && !self.eat(b':') {
                    if self.eat(b'P') || self.peek() == Some(b'<') {
                        // (?P<name>…) / (?<name>…): a plain group here.
                        if !self.eat(b'<') {
                            return Err("bad group".into());
                        }
                        while self.peek().is_some_and(|c| c != b'>') {
                            self.i += 1;
                        }
                        if !self.eat(b'>') {
                            return Err("bad group name".into());
                        }
                    } else if self.s[self.i..].starts_with(b"i)") && self.i == 2 {
                        // A leading (?i): names are matched case-insensitively anyway.
                        self.i += 2;
                        return Ok(Node::Empty);
                    } else {
                        return Err("flags and look-around are not supported".into());
                    }
                }
                let inner = self.alt()?;
                if !self.eat(b')') {
                    return Err("missing )".into());
                }
                inner
            }
            b')' => return Err("unmatched )".into()),
            b'[' => Node::Class(self.bracket()?),
            b'.' => {
                let mut c = [!0u64; 4];
                // Go's `.` does not match a newline; names have none.
                c[0] &= !(1 << b'\n');
                Node::Class(c)
            }
            b'^' => Node::Start,
            b'$' => Node::End,
            b'\\' => match self.escape()? {
                Esc::Class(c) => Node::Class(c),
                Esc::Start => Node::Start,
                Esc::End => Node::End,
            },
            b'*' | b'+' | b'?' => return Err("a quantifier needs something to repeat".into()),
            c => Node::Class(single(c)),
        })
    }

    fn escape(&mut self) -> Result<Esc, String> {
        let c = self.peek().ok_or("trailing backslash")?;
        self.i += 1;
        let mut k = [0u64; 4];
        match c {
            b'd' | b'D' => {
                range(&mut k, b'0', b'9');
                if c == b'D' {
                    negate(&mut k);
                }
            }
            b'w' | b'W' => {
                range(&mut k, b'0', b'9');
                range(&mut k, b'a', b'z');
                range(&mut k, b'A', b'Z');
                set(&mut k, b'_');
                if c == b'W' {
                    negate(&mut k);
                }
            }
            b's' | b'S' => {
                for b in [b' ', b'\t', b'\n', b'\r', 0x0b, 0x0c] {
                    set(&mut k, b);
                }
                if c == b'S' {
                    negate(&mut k);
                }
            }
            b'A' => return Ok(Esc::Start),
            b'z' => return Ok(Esc::End),
            b'n' => set(&mut k, b'\n'),
            b't' => set(&mut k, b'\t'),
            b'r' => set(&mut k, b'\r'),
            b'f' => set(&mut k, 0x0c),
            b'v' => set(&mut k, 0x0b),
            b'x' => {
                let h = self.s.get(self.i..self.i + 2).ok_or("bad \\x")?;
                let v = std::str::from_utf8(h)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or("bad \\x")?;
                self.i += 2;
                k = single(v);
            }
            c if c.is_ascii_punctuation() => k = single(c),
            c => return Err(format!("\\{} is not supported", c as char)),
        }
        Ok(Esc::Class(k))
    }

    fn bracket(&mut self) -> Result<[u64; 4], String> {
        let mut k = [0u64; 4];
        let neg = self.eat(b'^');
        let mut first = true;
        loop {
            let c = self.peek().ok_or("missing ]")?;
            self.i += 1;
            if c == b']' && !first {
                break;
            }
            first = false;
            if c == b'[' && self.peek() == Some(b':') {
                return Err("[:class:] is not supported".into());
            }
            let lo = if c == b'\\' {
                match self.escape()? {
                    Esc::Class(e) => {
                        if let Some(b) = only(&e) {
                            b
                        } else {
                            for (w, x) in k.iter_mut().zip(e) {
                                *w |= x;
                            }
                            continue;
                        }
                    }
                    _ => return Err("anchor in a class".into()),
                }
            } else {
                c
            };
            if self.peek() == Some(b'-') && self.s.get(self.i + 1).is_some_and(|&n| n != b']') {
                self.i += 1;
                let h = self.peek().ok_or("missing ]")?;
                self.i += 1;
                let hi = if h == b'\\' {
                    match self.escape()? {
                        Esc::Class(e) => only(&e).ok_or("bad range")?,
                        _ => return Err("bad range".into()),
                    }
                } else {
                    h
                };
                if hi < lo {
                    return Err("reversed range".into());
                }
                range(&mut k, lo, hi);
            } else {
                set(&mut k, lo);
            }
        }
        fold(&mut k);
        if neg {
            negate(&mut k);
        }
        Ok(k)
    }
}

enum Esc {
    Class([u64; 4]),
    Start,
    End,
}

struct Compiler {
    prog: Vec<Inst>,
    classes: Vec<[u64; 4]>,
}

impl Compiler {
    fn push(&mut self, i: Inst) -> Result<u32, String> {
        if self.prog.len() >= MAX_PROG {
            return Err("expression too large".into());
        }
        self.prog.push(i);
        Ok(self.prog.len() as u32 - 1)
    }

    fn pc(&self) -> u32 {
        self.prog.len() as u32
    }

    fn emit(&mut self, n: &Node) -> Result<(), String> {
        match n {
            Node::Empty => {}
            Node::Class(c) => {
                let idx = match self.classes.iter().position(|x| x == c) {
                    Some(i) => i,
                    None => {
                        self.classes.push(*c);
                        self.classes.len() - 1
                    }
                };
                self.push(Inst::Class(idx as u32))?;
            }
            Node::Start => {
                self.push(Inst::Start)?;
            }
            Node::End => {
                self.push(Inst::End)?;
            }
            Node::Cat(v) => {
                for x in v {
                    self.emit(x)?;
                }
            }
            Node::Alt(v) => {
                let mut jumps = Vec::new();
                for (i, x) in v.iter().enumerate() {
                    if i + 1 < v.len() {
                        let split = self.push(Inst::Split(0, 0))?;
                        self.emit(x)?;
                        jumps.push(self.push(Inst::Jmp(0))?);
                        let next = self.pc();
                        self.prog[split as usize] = Inst::Split(split + 1, next);
                    } else {
                        self.emit(x)?;
                    }
                }
                let end = self.pc();
                for j in jumps {
                    self.prog[j as usize] = Inst::Jmp(end);
                }
            }
            Node::Rep(x, min, max) => {
                for _ in 0..*min {
                    self.emit(x)?;
                }
                match max {
                    None => {
                        // L: split(body, out); body; jmp L; out:
                        let split = self.push(Inst::Split(0, 0))?;
                        self.emit(x)?;
                        self.push(Inst::Jmp(split))?;
                        let out = self.pc();
                        self.prog[split as usize] = Inst::Split(split + 1, out);
                    }
                    Some(max) => {
                        let mut splits = Vec::new();
                        for _ in *min..*max {
                            splits.push(self.push(Inst::Split(0, 0))?);
                            self.emit(x)?;
                        }
                        let out = self.pc();
                        for s in splits {
                            self.prog[s as usize] = Inst::Split(s + 1, out);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The longest run of single bytes that every match of `n` contains.
fn required(n: &Node) -> Vec<u8> {
    match n {
        Node::Class(c) => only(c).map(|b| vec![b]).unwrap_or_default(),
        Node::Rep(x, min, _) if *min > 0 => required(x),
        Node::Cat(v) => {
            let mut best = Vec::new();
            let mut run = Vec::new();
            for x in v {
                match x {
                    Node::Start | Node::End | Node::Empty => continue,
                    Node::Class(c) if only(c).is_some() => {
                        run.push(only(c).unwrap());
                        continue;
                    }
                    _ => {}
                }
                if run.len() > best.len() {
                    best = std::mem::take(&mut run);
                }
                run.clear();
                let inner = required(x);
                if inner.len() > best.len() {
                    best = inner;
                }
            }
            if run.len() > best.len() {
                best = run;
            }
            best
        }
        _ => Vec::new(),
    }
}

/// The plain bytes just before a final `$`: every matching name ends with them.
fn required_suffix(n: &Node) -> Vec<u8> {
    let Node::Cat(v) = n else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some((Node::End, rest)) = v.split_last() {
        for x in rest.iter().rev() {
            match x {
                Node::Class(c) if only(c).is_some() => out.push(only(c).unwrap()),
                _ => break,
            }
        }
    }
    out.reverse();
    out
}

/// Does `h` contain `n` (short needles, so a plain scan)?
fn contains(h: &[u8], n: &[u8]) -> bool {
    let Some((&first, rest)) = n.split_first() else {
        return true;
    };
    if n.len() > h.len() {
        return false;
    }
    (0..=h.len() - n.len())
        .any(|i| h[i] == first && h[i + 1..i + n.len()].iter().zip(rest).all(|(a, b)| a == b))
}

fn starts_anchored(n: &Node) -> bool {
    match n {
        Node::Start => true,
        Node::Cat(v) => v.first().is_some_and(starts_anchored),
        _ => false,
    }
}

#[derive(Default)]
struct Scratch {
    cur: Vec<u32>,
    next: Vec<u32>,
    stack: Vec<u32>,
    mark: Vec<u32>,
    generation: u32,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

impl Regex {
    pub fn new(text: &str) -> Result<Self, String> {
        if text.is_empty() || text.len() > MAX_TEXT {
            return Err("empty or longer than 1024 bytes".into());
        }
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let node = p.alt()?;
        if p.i != p.s.len() {
            return Err("unmatched )".into());
        }
        let mut c = Compiler {
            prog: Vec::new(),
            classes: Vec::new(),
        };
        c.emit(&node)?;
        c.push(Inst::Match)?;
        Ok(Self {
            prog: c.prog,
            classes: c.classes,
            literal: required(&node).into_boxed_slice(),
            suffix: required_suffix(&node).into_boxed_slice(),
            anchored: starts_anchored(&node),
        })
    }

    /// Does the expression match somewhere in `name` (lowercase)?
    pub fn is_match(&self, name: &[u8]) -> bool {
        if !name.ends_with(&self.suffix) || !contains(name, &self.literal) {
            return false;
        }
        SCRATCH.with(|s| self.run(&mut s.borrow_mut(), name))
    }

    /// Adds the threads reachable from `pc` at `pos` without reading a byte;
    /// true when one of them is a match.
    fn add(&self, s: &mut Scratch, to_next: bool, pc: u32, pos: usize, len: usize) -> bool {
        let generation = s.generation;
        s.stack.clear();
        s.stack.push(pc);
        while let Some(pc) = s.stack.pop() {
            let m = &mut s.mark[pc as usize];
            if *m == generation {
                continue;
            }
            *m = generation;
            match self.prog[pc as usize] {
                Inst::Class(_) => {
                    if to_next {
                        s.next.push(pc)
                    } else {
                        s.cur.push(pc)
                    }
                }
                Inst::Split(a, b) => {
                    s.stack.push(b);
                    s.stack.push(a);
                }
                Inst::Jmp(t) => s.stack.push(t),
                Inst::Start => {
                    if pos == 0 {
                        s.stack.push(pc + 1);
                    }
                }
                Inst::End => {
                    if pos == len {
                        s.stack.push(pc + 1);
                    }
                }
                Inst::Match => return true,
            }
        }
        false
    }

    fn next_generation(s: &mut Scratch) {
        s.generation = s.generation.wrapping_add(1);
        if s.generation == 0 {
            // Wrapped: old marks could collide; start over.
            s.mark.iter_mut().for_each(|m| *m = u32::MAX);
            s.generation = 1;
        }
    }

    fn run(&self, s: &mut Scratch, name: &[u8]) -> bool {
        let n = self.prog.len();
        if s.mark.len() < n {
            s.mark.resize(n, 0);
        }
        let len = name.len();
        s.cur.clear();
        s.next.clear();
        Self::next_generation(s);
        if self.add(s, false, 0, 0, len) {
            return true;
        }
        for (pos, &b) in name.iter().enumerate() {
            Self::next_generation(s);
            s.next.clear();
            for i in 0..s.cur.len() {
                let pc = s.cur[i];
                if let Inst::Class(k) = self.prog[pc as usize]
                    && has(&self.classes[k as usize], b)
                    && self.add(s, true, pc + 1, pos + 1, len)
                {
                    return true;
                }
            }
            if !self.anchored && self.add(s, true, 0, pos + 1, len) {
                return true;
            }
            std::mem::swap(&mut s.cur, &mut s.next);
            if s.cur.is_empty() && self.anchored {
                return false;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(re: &str, name: &str) -> bool {
        Regex::new(re)
            .unwrap_or_else(|e| panic!("{re}: {e}"))
            .is_match(name.as_bytes())
    }

    #[test]
    fn the_forms_real_lists_use() {
        let re = r"(^|\.)91porn\.(best|com|cool)$";
        assert!(m(re, "91porn.com"));
        assert!(m(re, "www.91porn.cool"));
        assert!(!m(re, "x91porn.com"));
        assert!(!m(re, "91porn.com.evil"));
        let re = r"(^|\.)18jmttios[0-9]{2}\.com$";
        assert!(m(re, "18jmttios42.com"));
        assert!(!m(re, "18jmttios4.com"));
        assert!(!m(re, "18jmttios423.com"));
        let re = r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$";
        assert!(m(re, "localhost"));
        assert!(m(re, "a"));
        assert!(!m(re, "a.b"));
        assert!(!m(re, "a-"));
        let re = r".+\.dkr\.ecr\.[^\.]+\.amazonaws\.com$";
        assert!(m(re, "123.dkr.ecr.us-east-1.amazonaws.com"));
        assert!(!m(re, "dkr.ecr.us-east-1.amazonaws.com"));
        assert!(!m(re, "1.dkr.ecr.a.b.amazonaws.com"));
        let re = r"^r+[0-9]+(---|\.)sn-(2x3|ni5|j5o)\w{5}\.googlevideo\.com$";
        assert!(m(re, "r4---sn-ni5abcde.googlevideo.com"));
        assert!(m(re, "rr12.sn-2x3a_b1c.googlevideo.com"));
        assert!(!m(re, "r4---sn-ni5abcd.googlevideo.com"));
        let re = r"^cdn\d-epicgames-\d+\.file\.myqcloud\.com$";
        assert!(m(re, "cdn1-epicgames-1234.file.myqcloud.com"));
        assert!(!m(re, "cdnx-epicgames-1234.file.myqcloud.com"));
        let re = r"^chatgpt-async-webps-prod-\S+-\d+\.webpubsub\.azure\.com$";
        assert!(m(
            re,
            "chatgpt-async-webps-prod-eastus-7.webpubsub.azure.com"
        ));
        // Unanchored like Go's MatchString; letters case-insensitive.
        assert!(m(r"javdb\d+\.com$", "www.javdb12.com"));
        assert!(m("(?i)EXAMPLE", "an.example.org"));
        assert!(m("ab*c", "ac") && m("ab*c", "xabbbcx") && !m("ab+c", "ac"));
        assert!(m("a{2,}", "caab") && !m("a{2,}", "cab"));
        assert!(m("(?:x|y)z", "yz") && m("(?P<n>x)z", "xz"));
        assert!(m(r"\x41", "a") && m(r"[\d.]+$", "1.2"));
        assert!(m("^$", "") && !m("^$", "a"));
    }

    #[test]
    fn unsupported_and_bad_expressions_are_refused() {
        for re in [
            r"(a)\1",
            r"(?=a)",
            r"\bfoo",
            r"\p{Greek}",
            "(?s)a",
            "[[:alpha:]]",
            "a{3,1}",
            "a{300}",
            "(a",
            "a)",
            "*a",
            "[a",
            "",
            r"a\",
        ] {
            assert!(Regex::new(re).is_err(), "{re}");
        }
    }

    #[test]
    fn the_required_literal_is_found() {
        let r = Regex::new(r"(^|\.)apiproxy-device-prod-nlb-.+\.amazonaws\.com$").unwrap();
        assert_eq!(&*r.literal, b"apiproxy-device-prod-nlb-");
        let r = Regex::new(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$").unwrap();
        assert!(r.literal.is_empty() && r.anchored);
        assert_eq!(&*Regex::new("a+bc").unwrap().literal, b"bc");
        let r = Regex::new(r"(^|\.)[a-z][1-9][0-9][a-z]\.com$").unwrap();
        assert_eq!((&*r.literal, &*r.suffix), (&b".com"[..], &b".com"[..]));
        assert!(contains(b"abc", b"bc") && contains(b"abc", b"") && !contains(b"ab", b"abc"));
    }

    #[test]
    fn no_blow_up_on_nasty_expressions() {
        // Exponential for a backtracker; linear here.
        let r = Regex::new("(a*)*(a|b)*(a+)+c").unwrap();
        let name = "a".repeat(253);
        let t = std::time::Instant::now();
        assert!(!r.is_match(name.as_bytes()));
        assert!(t.elapsed() < std::time::Duration::from_millis(200));
        assert!(Regex::new("((((a{0,255}){0,255}){0,255}){0,255})").is_err());
    }
}
