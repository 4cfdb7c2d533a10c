//! One nft transaction as planned: structure commands as nft text, element
//! changes as typed elements. The kernel edge sends the elements as netlink
//! attributes; they become text only for an `nft -f` script and for printing.

use std::fmt::Write as _;

use super::element::Element;
use crate::plan::NFT_TABLE;

/// Elements per `add|delete element` line of a script: keeps each line nft
/// parses to a bounded size, however big the set.
pub const ELEMENTS_PER_LINE: usize = 4096;

/// Elements a summary line shows before it only counts them.
const SUMMARY_ELEMENTS: usize = 3;

/// Elements added to or deleted from one set of our table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementChange {
    pub add: bool,
    pub set: String,
    pub elements: Vec<Element>,
}

impl ElementChange {
    fn verb(&self) -> &'static str {
        if self.add { "add" } else { "delete" }
    }

    /// The script lines of this change.
    fn lines(&self) -> impl Iterator<Item = String> + '_ {
        self.elements.chunks(ELEMENTS_PER_LINE).map(|chunk| {
            let mut line = format!("{} element inet {NFT_TABLE} {} {{ ", self.verb(), self.set);
            for (i, e) in chunk.iter().enumerate() {
                if i > 0 {
                    line.push_str(", ");
                }
                let _ = write!(line, "{e}");
            }
            line.push_str(" }");
            line
        })
    }

    /// The short printable form: the first few elements and a count.
    fn summary(&self) -> String {
        let shown: Vec<String> = self
            .elements
            .iter()
            .take(SUMMARY_ELEMENTS)
            .map(ToString::to_string)
            .collect();
        let more = if self.elements.len() > SUMMARY_ELEMENTS {
            format!(", … ({} elements)", self.elements.len())
        } else {
            String::new()
        };
        format!(
            "{} element inet {NFT_TABLE} {} {{ {}{more} }}",
            self.verb(),
            self.set,
            shown.join(", ")
        )
    }
}

/// One command of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NftCommand {
    /// A table, chain, set or rule command, as one line of nft text.
    Structure(String),
    /// Set elements in or out (one or more script lines).
    Elements(ElementChange),
}

/// One nft transaction, in order. Element lists can be huge, so the commands are
/// kept apart from their printable summary.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NftBatch {
    pub commands: Vec<NftCommand>,
    /// Short form of each command for printing (element lists counted, not listed).
    pub summary: Vec<String>,
    pub elements_added: usize,
    pub elements_deleted: usize,
    /// The table did not exist: the batch creates it from nothing.
    pub from_nothing: bool,
}

impl NftBatch {
    /// `wgsplit down`'s transaction: the whole table goes.
    pub fn delete_table() -> Self {
        let mut b = Self::default();
        b.push(format!("delete table inet {NFT_TABLE}"));
        b
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    pub(super) fn push(&mut self, line: String) {
        self.summary.push(line.clone());
        self.commands.push(NftCommand::Structure(line));
    }

    /// Adds (`add`) or deletes elements of `set`; nothing when there are none.
    pub(super) fn push_elements(&mut self, add: bool, set: &str, elements: &[&Element]) {
        if elements.is_empty() {
            return;
        }
        let change = ElementChange {
            add,
            set: set.to_string(),
            elements: elements.iter().map(|e| (*e).clone()).collect(),
        };
        if add {
            self.elements_added += elements.len();
        } else {
            self.elements_deleted += elements.len();
        }
        self.summary.push(change.summary());
        self.commands.push(NftCommand::Elements(change));
    }

    /// The element changes, in order.
    pub fn element_changes(&self) -> impl Iterator<Item = &ElementChange> {
        self.commands.iter().filter_map(|c| match c {
            NftCommand::Elements(e) => Some(e),
            NftCommand::Structure(_) => None,
        })
    }

    /// How many table, chain, set and rule commands the batch has.
    pub fn structure_commands(&self) -> usize {
        self.commands
            .iter()
            .filter(|c| matches!(c, NftCommand::Structure(_)))
            .count()
    }

    /// How many lines its `nft -f` script has.
    pub fn script_lines(&self) -> usize {
        self.commands
            .iter()
            .map(|c| match c {
                NftCommand::Structure(_) => 1,
                NftCommand::Elements(e) => e.elements.len().div_ceil(ELEMENTS_PER_LINE),
            })
            .sum()
    }

    /// Only set elements change (no table, chain, set or rule commands).
    pub fn elements_only(&self) -> bool {
        !self.commands.is_empty() && self.structure_commands() == 0
    }

    /// The script's lines, element lists written out.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.commands.len());
        for c in &self.commands {
            match c {
                NftCommand::Structure(l) => out.push(l.clone()),
                NftCommand::Elements(e) => out.extend(e.lines()),
            }
        }
        out
    }

    /// The script without its element lines (the structure part).
    pub fn structure_script(&self) -> String {
        let mut s = String::new();
        for c in &self.commands {
            if let NftCommand::Structure(l) = c {
                let _ = writeln!(s, "{l}");
            }
        }
        s
    }

    /// The whole transaction for `nft -f`.
    pub fn script(&self) -> String {
        let mut s = String::new();
        for l in self.lines() {
            let _ = writeln!(s, "{l}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::nft::AddrRange;

    fn hosts(n: usize) -> Vec<Element> {
        (0..n as u128)
            .map(|i| Element::key(AddrRange::new(0x0a00_0000 + i, 0x0a00_0000 + i, false)))
            .collect()
    }

    #[test]
    fn element_lists_are_cut_into_lines_of_a_bounded_size() {
        for (n, lines) in [
            (1, 1),
            (ELEMENTS_PER_LINE, 1),
            (ELEMENTS_PER_LINE + 1, 2),
            (2 * ELEMENTS_PER_LINE + 1, 3),
        ] {
            let els = hosts(n);
            let mut b = NftBatch::default();
            b.push_elements(true, "s", &els.iter().collect::<Vec<_>>());
            assert_eq!(b.script_lines(), lines, "{n} elements");
            let written = b.lines();
            assert_eq!(written.len(), lines);
            // Every element once, in order, over all lines.
            let count: usize = written.iter().map(|l| l.matches(", ").count() + 1).sum();
            assert_eq!(count, n);
            assert!(written[0].starts_with("add element inet wgsplit s { 10.0.0.0"));
            assert_eq!(b.elements_added, n);
            assert!(b.elements_only());
        }
    }

    #[test]
    fn the_summary_shows_a_few_elements_and_counts_the_rest() {
        let els = hosts(SUMMARY_ELEMENTS + 1);
        let mut b = NftBatch::default();
        b.push("flush set inet wgsplit s".into());
        b.push_elements(
            false,
            "s",
            &els.iter().take(SUMMARY_ELEMENTS).collect::<Vec<_>>(),
        );
        b.push_elements(true, "s", &els.iter().collect::<Vec<_>>());
        b.push_elements(true, "s", &[]);
        assert_eq!(
            b.summary,
            [
                "flush set inet wgsplit s",
                "delete element inet wgsplit s { 10.0.0.0, 10.0.0.1, 10.0.0.2 }",
                "add element inet wgsplit s { 10.0.0.0, 10.0.0.1, 10.0.0.2, … (4 elements) }",
            ]
        );
        assert_eq!((b.elements_added, b.elements_deleted), (4, 3));
        assert_eq!(b.structure_commands(), 1);
        assert!(!b.elements_only());
        assert_eq!(b.structure_script(), "flush set inet wgsplit s\n");
        assert_eq!(b.element_changes().count(), 2);
    }
}
