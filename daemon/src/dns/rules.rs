//! Per-client domain rules for the resolver: each client's rules that learn from
//! DNS, in order, each with its inline domains and its named domain lists
//! (shared between rules and clients: a list is loaded once).

use std::{
    collections::HashMap,
    fs::File,
    io::{BufRead, BufReader},
    sync::Arc,
};

use super::matcher::{Kind, NameHashes, NameSet};
use crate::{
    config::{Config, ListFormat, types::normalize_domain},
    policy::{Policy, Target},
};

/// One parsed list entry.
fn parse_plain_line(line: &str) -> Result<Option<(Kind, String)>, String> {
    let line = line.split('#').next().unwrap_or("").trim();
    if line.is_empty() {
        return Ok(None);
    }
    let mut words = line.split_whitespace();
    let mut first = words.next().unwrap_or_default();
    // hosts-file form: `0.0.0.0 name`.
    if first.parse::<std::net::IpAddr>().is_ok() {
        first = words.next().ok_or("an address without a name")?;
        if first == "localhost" {
            return Ok(None);
        }
    }
    if let Some(extra) = words.next() {
        return Err(format!("unexpected '{extra}' after the name"));
    }
    let (kind, name) = if let Some(n) = first.strip_prefix('=') {
        (Kind::Exact, n)
    } else if let Some(n) = first.strip_prefix("*.") {
        (Kind::SubdomainsOnly, n)
    } else if let Some(n) = first.strip_prefix('.') {
        (Kind::Suffix, n)
    } else {
        (Kind::Suffix, first)
    };
    Ok(Some((kind, normalize_domain(name)?)))
}

/// The domains of a dnsmasq line (`server=/a/b/1.2.3.4`, `nftset=/a/…`, …).
fn parse_dnsmasq_line(line: &str, out: &mut Vec<(Kind, String)>) -> Result<(), String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(());
    }
    let Some((key, rest)) = line.split_once('=') else {
        return Err("not a dnsmasq option".into());
    };
    let key = key.trim().trim_start_matches("--");
    if !matches!(key, "server" | "nftset" | "ipset" | "address" | "local") {
        return Ok(());
    }
    let Some(rest) = rest.trim().strip_prefix('/') else {
        return Ok(());
    };
    let end = rest.rfind('/').ok_or("no closing '/'")?;
    for d in rest[..end].split('/') {
        let d = d.trim().trim_start_matches("*.").trim_start_matches('.');
        if d.is_empty() || d == "#" {
            continue;
        }
        out.push((Kind::Suffix, normalize_domain(d)?));
    }
    Ok(())
}

/// Loads a domain list file (`domains` or `dnsmasq` format). Bad lines are
/// skipped and counted: (set, bad line count, first bad line message).
pub fn load_list(
    path: &str,
    format: ListFormat,
) -> Result<(NameSet, usize, Option<String>), String> {
    let file = File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    // ~20 bytes a line: size the table once.
    let mut set = NameSet::with_capacity((size / 20) as usize);
    let mut bad = 0;
    let mut first_bad = None;
    let mut entries = Vec::new();
    let reader = BufReader::with_capacity(64 * 1024, file);
    for (n, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(|e| format!("{path}: {e}"))?;
        let line = String::from_utf8_lossy(&line);
        entries.clear();
        let r = match format {
            ListFormat::Dnsmasq => parse_dnsmasq_line(&line, &mut entries),
            _ => parse_plain_line(&line).map(|e| entries.extend(e)),
        };
        match r {
            Ok(()) => {
                for (kind, name) in &entries {
                    set.insert(name, *kind);
                }
            }
            Err(e) => {
                bad += 1;
                first_bad.get_or_insert_with(|| format!("{path}:{}: {e}", n + 1));
            }
        }
    }
    Ok((set, bad, first_bad))
}

/// Loads every domain list some rule refers to. Lists that fail to load are
/// reported and left out (their rules then match by inline domains only).
pub fn load_lists(config: &Config) -> (HashMap<String, Arc<NameSet>>, Vec<String>) {
    let mut out = HashMap::new();
    let mut problems = Vec::new();
    for list in &config.lists {
        let format = list.format.unwrap_or_default();
        if !matches!(format, ListFormat::Domains | ListFormat::Dnsmasq) {
            continue;
        }
        if !config.rules.iter().any(|r| r.list.contains(&list.name)) {
            continue;
        }
        match load_list(&list.path, format) {
            Ok((set, bad, first)) => {
                if let Some(first) = first {
                    problems.push(format!(
                        "list {}: {bad} bad lines skipped, first: {first}",
                        list.name
                    ));
                }
                out.insert(list.name.clone(), Arc::new(set));
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
    lists: Vec<Arc<NameSet>>,
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
    pub fn build(policy: &Policy, lists: &HashMap<String, Arc<NameSet>>) -> Self {
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

    /// The first rule of client `client` (its index in the policy) matching `q`.
    #[inline]
    pub fn first(&self, client: usize, q: &NameHashes) -> Option<Matched> {
        self.clients.get(client)?.iter().find_map(|r| {
            (r.inline.matches(q) || r.lists.iter().any(|l| l.matches(q))).then_some(Matched {
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
    fn plain_lines() {
        let p = |l| parse_plain_line(l).unwrap();
        assert_eq!(
            p("Example.COM."),
            Some((Kind::Suffix, "example.com".into()))
        );
        assert_eq!(p("  # comment"), None);
        assert_eq!(
            p("*.x.org # why"),
            Some((Kind::SubdomainsOnly, "x.org".into()))
        );
        assert_eq!(p("=x.org"), Some((Kind::Exact, "x.org".into())));
        assert_eq!(
            p("0.0.0.0 ads.example"),
            Some((Kind::Suffix, "ads.example".into()))
        );
        assert_eq!(p("127.0.0.1 localhost"), None);
        assert!(parse_plain_line("bad name!").is_err());
    }

    #[test]
    fn dnsmasq_lines() {
        let mut v = Vec::new();
        parse_dnsmasq_line("server=/a.com/b.org/1.2.3.4", &mut v).unwrap();
        parse_dnsmasq_line("nftset=/c.net/4#inet#fw4#vpn", &mut v).unwrap();
        parse_dnsmasq_line("ipset=/.d.io/set", &mut v).unwrap();
        parse_dnsmasq_line("cache-size=1000", &mut v).unwrap();
        parse_dnsmasq_line("# c", &mut v).unwrap();
        let names: Vec<&str> = v.iter().map(|x| x.1.as_str()).collect();
        assert_eq!(names, ["a.com", "b.org", "c.net", "d.io"]);
        assert!(parse_dnsmasq_line("server=/x.com", &mut v).is_err());
    }

    #[test]
    fn rules_pick_the_first_match_per_client() {
        let dir = std::env::temp_dir().join(format!("wgsplit-dns-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let list = dir.join("stream.txt");
        std::fs::write(&list, "netflix.com\n=nflxvideo.net\nbad line here\n").unwrap();
        let dm = dir.join("dm.conf");
        std::fs::write(&dm, "server=/bank.example/10.0.0.1\n").unwrap();
        let text = format!(
            "config server 'server'\n option address '10.8.0.1/24'\n option private_key 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='\n\
             config upstream 'us'\n option private_key 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='\n list address '10.64.0.2/32'\n option public_key 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='\n option endpoint '192.0.2.1:51820'\n\
             config client 'alice'\n option public_key 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='\n list address '10.8.0.2/32'\n option upstream 'us'\n\
             config client 'bob'\n option public_key 'TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0='\n list address '10.8.0.3/32'\n option upstream 'us'\n\
             config rule\n option client 'alice'\n option action 'direct'\n list domain '=www.netflix.com'\n list list 'bank'\n\
             config rule\n option client 'alice'\n option action 'proxy'\n list list 'stream'\n\
             config rule\n option client 'bob'\n option action 'block'\n list domain '*.netflix.com'\n\
             config list 'stream'\n option path '{}'\n\
             config list 'bank'\n option path '{}'\n option format 'dnsmasq'\n",
            list.display(),
            dm.display()
        );
        let config = crate::config::parse_valid(&text).unwrap();
        let policy = crate::policy::compile(&config, 0);
        let (lists, problems) = load_lists(&config);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("stream.txt:3"), "{problems:?}");
        let rules = Rules::build(&policy, &lists);
        let q = |n: &str| NameHashes::new(n).unwrap();
        let alice = 0;
        let bob = 1;
        assert_eq!(rules.first(alice, &q("www.netflix.com")).unwrap().pos, 0);
        assert_eq!(rules.first(alice, &q("netflix.com")).unwrap().pos, 1);
        assert_eq!(
            rules.first(alice, &q("a.netflix.com")).unwrap().target,
            Target::Upstream(0)
        );
        assert_eq!(rules.first(alice, &q("nflxvideo.net")).unwrap().pos, 1);
        assert!(rules.first(alice, &q("x.nflxvideo.net")).is_none());
        assert_eq!(
            rules.first(alice, &q("online.bank.example")).unwrap().pos,
            0
        );
        assert!(rules.first(bob, &q("netflix.com")).is_none());
        assert_eq!(
            rules.first(bob, &q("www.netflix.com")).unwrap().target,
            Target::Block
        );
        assert!(rules.first(5, &q("netflix.com")).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
