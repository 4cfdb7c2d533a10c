//! Per-client domain rules for the resolver: each client's rules that learn from
//! DNS, in order, each with its inline domains and its named domain lists
//! (shared between rules and clients: a list is loaded once).

use std::{collections::HashMap, sync::Arc};

use super::{
    matcher::{Kind, NameHashes, NameSet},
    regex::Regex,
};
use crate::policy::{Policy, Target, dns::DomainListSource};

/// A name as text, for `keyword:` and `regexp:` entries only (names are matched
/// by their hashes).
pub trait NameText {
    fn text(&self) -> &str;
}

impl NameText for str {
    fn text(&self) -> &str {
        self
    }
}

impl NameText for String {
    fn text(&self) -> &str {
        self
    }
}

/// A query's name as text, made from its wire form the first time a keyword or
/// regexp entry asks (most lists have none: no text is made on the hot path).
pub struct WireText<'a> {
    wire: &'a [u8],
    text: std::cell::OnceCell<String>,
}

impl<'a> WireText<'a> {
    pub fn new(wire: &'a [u8]) -> Self {
        Self {
            wire,
            text: std::cell::OnceCell::new(),
        }
    }
}

impl NameText for WireText<'_> {
    fn text(&self) -> &str {
        self.text.get_or_init(|| super::wire::dotted(self.wire))
    }
}

/// A loaded domain list: hashed names, plus v2fly `keyword:` entries (checked by
/// substring) and `regexp:` entries (our own small matcher, `super::regex`;
/// few in practice). Expressions it does not support are counted, and the
/// first few kept with the reason, for the user.
#[derive(Debug, Clone, Default)]
pub struct DomainList {
    pub names: NameSet,
    pub keywords: Vec<Box<str>>,
    pub regexps: Vec<Regex>,
    pub skipped_regexps: usize,
    /// Up to three skipped expressions with the reason.
    pub skipped_examples: Vec<String>,
}

/// Names to make room for before a list is read: a guess from the file's size
/// (~24 bytes a line) that spares the table's growth steps, at most
/// [`PRESIZE_MAX`] (a large file is no reason to reserve its size in memory
/// before a line is read: it grows as names come). A category file (geosite,
/// v2fly's folder) holds every category, not the one read: no guess.
fn presize(list: &DomainListSource) -> usize {
    if list.category.is_some() {
        return 0;
    }
    let size = std::fs::metadata(&list.path).map_or(0, |m| m.len());
    usize::try_from(size / 24)
        .unwrap_or(usize::MAX)
        .min(PRESIZE_MAX)
}

/// The most names [`presize`] reserves for (~11 MB of table).
const PRESIZE_MAX: usize = 1 << 20;

impl DomainList {
    /// Reads a list in any domain format (`domains`, `dnsmasq`, `v2fly`,
    /// `geosite`: read by `sources::domains`).
    pub fn load(list: &DomainListSource) -> Result<Self, String> {
        use crate::sources::domains::{DomainKind, for_each};
        let mut l = DomainList {
            names: NameSet::with_capacity(presize(list)),
            ..Default::default()
        };
        for_each(list, &mut |e| match e.kind {
            DomainKind::Domain => {
                l.names.insert(&e.value, Kind::Suffix);
            }
            DomainKind::Full => {
                l.names.insert(&e.value, Kind::Exact);
            }
            DomainKind::Keyword => l.keywords.push(e.value.into()),
            DomainKind::Regexp => match Regex::new(&e.value) {
                Ok(r) => l.regexps.push(r),
                Err(why) => {
                    l.skipped_regexps += 1;
                    if l.skipped_examples.len() < 3 {
                        l.skipped_examples.push(format!("'{}': {why}", e.value));
                    }
                }
            },
        })
        .map_err(|e| e.to_string())?;
        Ok(l)
    }

    /// What was left out, for the user (`None`: nothing).
    pub fn skipped(&self) -> Option<String> {
        (self.skipped_regexps > 0).then(|| {
            format!(
                "{} of {} regexp entries are not supported by the resolver's matcher and are ignored (e.g. {})",
                self.skipped_regexps,
                self.skipped_regexps + self.regexps.len(),
                self.skipped_examples.join("; ")
            )
        })
    }

    #[inline]
    pub fn matches(&self, q: &NameHashes, name: &(impl NameText + ?Sized)) -> bool {
        self.names.matches(q)
            || self.keywords.iter().any(|k| name.text().contains(&**k))
            || self
                .regexps
                .iter()
                .any(|r| r.is_match(name.text().as_bytes()))
    }
}

/// Loads every domain list some rule refers to (the policy's `dns.lists`). A
/// list that fails to load is reported and left out (its rules then match by
/// inline domains only); regexp entries the matcher cannot take are reported too.
pub fn load_lists(policy: &Policy) -> (HashMap<String, Arc<DomainList>>, Vec<String>) {
    let mut out = HashMap::new();
    let mut problems = Vec::new();
    for list in &policy.dns.lists {
        match DomainList::load(list) {
            Ok(l) => {
                if let Some(s) = l.skipped() {
                    problems.push(format!("list {}: {s}", list.name));
                }
                if !l.regexps.is_empty() {
                    log::info!(
                        "dns: list {}: {} names, {} keywords, {} regexps",
                        list.name,
                        l.names.len(),
                        l.keywords.len(),
                        l.regexps.len()
                    );
                }
                out.insert(list.name.clone(), Arc::new(l));
            }
            Err(e) => problems.push(format!("list {}: {e}", list.name)),
        }
    }
    (out, problems)
}

#[derive(Debug, Clone)]
struct RuleSets {
    pos: usize,
    target: Target,
    inline: NameSet,
    lists: Vec<Arc<DomainList>>,
}

/// The first rule of a client that matched a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched {
    pub pos: usize,
    pub target: Target,
}

/// Every client's DNS-learning rules, indexed like `policy.clients`.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    clients: Vec<Vec<RuleSets>>,
}

impl Rules {
    pub fn build(policy: &Policy, lists: &HashMap<String, Arc<DomainList>>) -> Self {
        let clients = policy
            .clients
            .iter()
            .map(|c| {
                c.rules
                    .iter()
                    .filter_map(|r| {
                        let mut inline = NameSet::new();
                        for d in &r.domains {
                            inline.insert_pattern(d);
                        }
                        let lists: Vec<_> = r
                            .lists
                            .iter()
                            .filter_map(|l| lists.get(l).cloned())
                            .collect();
                        (!inline.is_empty() || !lists.is_empty()).then_some(RuleSets {
                            pos: r.pos,
                            target: r.target,
                            inline,
                            lists,
                        })
                    })
                    .collect()
            })
            .collect();
        Self { clients }
    }

    /// The first rule of client `client` (its index in the policy) matching the
    /// name (`q`: its hashes; `name`: lowercase, no final dot).
    #[inline]
    pub fn first(
        &self,
        client: usize,
        q: &NameHashes,
        name: &(impl NameText + ?Sized),
    ) -> Option<Matched> {
        self.clients.get(client)?.iter().find_map(|r| {
            (r.inline.matches(q) || r.lists.iter().any(|l| l.matches(q, name))).then_some(Matched {
                pos: r.pos,
                target: r.target,
            })
        })
    }

    /// Does any client have a DNS rule?
    pub fn is_empty(&self) -> bool {
        self.clients.iter().all(|c| c.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_list_file_reserves_a_bounded_table() {
        let dir = std::env::temp_dir().join(format!("wgsplit-presize-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sparse.txt");
        // 64 GiB on paper (sparse: no disk used), three names in it.
        let f = std::fs::File::create(&path).unwrap();
        std::io::Write::write_all(&mut &f, b"a.example\nb.example\nc.example\n").unwrap();
        f.set_len(64 << 30).unwrap();
        let mut list = DomainListSource {
            name: "big".into(),
            path: path.display().to_string(),
            ..Default::default()
        };
        assert_eq!(presize(&list), PRESIZE_MAX);
        list.category = Some("netflix".into());
        assert_eq!(presize(&list), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rules_pick_the_first_match_per_client() {
        let dir = std::env::temp_dir().join(format!("wgsplit-dns-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let list = dir.join("stream.txt");
        std::fs::write(&list, "netflix.com\n=nflxvideo.net\n").unwrap();
        let dm = dir.join("dm.conf");
        std::fs::write(&dm, "server=/bank.example/10.0.0.1\n").unwrap();
        let v2 = dir.join("v2.txt");
        std::fs::write(
            &v2,
            "full:only.example\nkeyword:tracker\ndomain:cdn.example\nregexp:(^|\\.)ad[0-9]+\\.example$\nregexp:(?=lookahead)\n",
        )
        .unwrap();
        let text = format!(
            "config server 'server'\n option address '10.8.0.1/24'\n option private_key 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='\n\
             config upstream 'us'\n option private_key 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='\n list address '10.64.0.2/32'\n option public_key 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='\n option endpoint '192.0.2.1:51820'\n\
             config client 'alice'\n option public_key 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='\n list address '10.8.0.2/32'\n option upstream 'us'\n\
             config client 'bob'\n option public_key 'TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0='\n list address '10.8.0.3/32'\n option upstream 'us'\n\
             config rule\n option client 'alice'\n option action 'direct'\n list domain '=www.netflix.com'\n list list 'bank'\n\
             config rule\n option client 'alice'\n option action 'proxy'\n list list 'stream'\n\
             config rule\n option client 'bob'\n option action 'block'\n list domain '*.netflix.com'\n\
             config rule\n option client 'bob'\n option action 'direct'\n list list 'v2'\n\
             config list 'stream'\n option path '{}'\n\
             config list 'bank'\n option path '{}'\n option format 'dnsmasq'\n\
             config list 'v2'\n option path '{}'\n option format 'v2fly'\n",
            list.display(),
            dm.display(),
            v2.display()
        );
        let policy = crate::policy::dns::from_text(&text);
        let (lists, problems) = load_lists(&policy);
        // The unsupported expression is reported (how many, which, why).
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("list v2: 1 of 2 regexp entries are not supported")
                && problems[0].contains("(?=lookahead)"),
            "{problems:?}"
        );
        let rules = Rules::build(&policy, &lists);
        let q = |n: &str| (NameHashes::new(n).unwrap(), n.to_string());
        let alice = 0;
        let bob = 1;
        assert_eq!(
            {
                let (h, n) = q("www.netflix.com");
                rules.first(alice, &h, &n)
            }
            .unwrap()
            .pos,
            0
        );
        assert_eq!(
            {
                let (h, n) = q("netflix.com");
                rules.first(alice, &h, &n)
            }
            .unwrap()
            .pos,
            1
        );
        assert_eq!(
            {
                let (h, n) = q("a.netflix.com");
                rules.first(alice, &h, &n)
            }
            .unwrap()
            .target,
            Target::Upstream(0)
        );
        assert_eq!(
            {
                let (h, n) = q("nflxvideo.net");
                rules.first(alice, &h, &n)
            }
            .unwrap()
            .pos,
            1
        );
        assert!(
            {
                let (h, n) = q("x.nflxvideo.net");
                rules.first(alice, &h, &n)
            }
            .is_none()
        );
        assert_eq!(
            {
                let (h, n) = q("online.bank.example");
                rules.first(alice, &h, &n)
            }
            .unwrap()
            .pos,
            0
        );
        assert!(
            {
                let (h, n) = q("netflix.com");
                rules.first(bob, &h, &n)
            }
            .is_none()
        );
        assert_eq!(
            {
                let (h, n) = q("www.netflix.com");
                rules.first(bob, &h, &n)
            }
            .unwrap()
            .target,
            Target::Block
        );
        assert!(
            {
                let (h, n) = q("netflix.com");
                rules.first(5, &h, &n)
            }
            .is_none()
        );
        for (name, hit) in [
            ("only.example", true),
            ("x.only.example", false),
            ("a.trackerhub.io", true),
            ("x.cdn.example", true),
            ("ad12.example", true),
            ("www.ad1.example", true),
            ("bad12.example", false),
        ] {
            let (h, n) = q(name);
            assert_eq!(
                rules.first(bob, &h, &n).map(|m| m.pos),
                hit.then_some(1),
                "{name}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
