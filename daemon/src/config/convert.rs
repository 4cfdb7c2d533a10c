//! UCI sections ↔ the config model. Reading collects every problem, each named by
//! its uci path (`alice.address`, `@rule[2].port`), instead of stopping at the first.

use std::collections::HashMap;

use serde::{Serialize, de::DeserializeOwned};

use super::{
    Problem,
    model::{Client, Config, Geoip, List, Rule, Server, Upstream},
    uci::{Opt, Section, Value},
};

/// The uci path of a section: its name, or `@type[index]` when anonymous.
pub fn section_path(kind: &str, name: Option<&str>, index: usize) -> String {
    SectionPath { kind, name, index }.to_string()
}

/// A section's uci path, formatted only when a problem names it (a config of
/// 50,000 rule sections would otherwise format 50,000 paths for nothing).
#[derive(Debug, Clone, Copy)]
pub struct SectionPath<'a> {
    pub kind: &'a str,
    pub name: Option<&'a str>,
    /// The section's index among the anonymous ones of its type.
    pub index: usize,
}

impl std::fmt::Display for SectionPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name {
            Some(name) => f.write_str(name),
            None => write!(f, "@{}[{}]", self.kind, self.index),
        }
    }
}

/// Reads sections into the model one at a time; every problem found on the way is
/// kept beside the (partial) config so validation can still report the rest.
#[derive(Default)]
pub struct Builder {
    config: Config,
    problems: Vec<Problem>,
    servers: usize,
    counts: HashMap<String, usize>,
}

impl Builder {
    pub fn add(&mut self, section: Section) {
        let problems = &mut self.problems;
        let config = &mut self.config;
        let counter = match self.counts.get_mut(&section.kind) {
            Some(c) => c,
            None => self.counts.entry(section.kind.clone()).or_default(),
        };
        let index = *counter;
        *counter += 1;
        // (A section name given twice never gets here: uci::parse_each refuses it.)
        // The section is consumed: values move into the model instead of being copied.
        let kind = section.kind.clone();
        let mut r = Reader::new(section, index, problems);
        match kind.as_str() {
            "server" => {
                self.servers += 1;
                config.server = read_server(&mut r);
            }
            "upstream" => {
                if let Some(name) = r.required_name() {
                    config.upstreams.push(read_upstream(&mut r, name));
                }
            }
            "client" => {
                if let Some(name) = r.required_name() {
                    config.clients.push(read_client(&mut r, name));
                }
            }
            "rule" => {
                if let Some(rule) = read_rule(&mut r) {
                    config.rules.push(rule);
                }
            }
            "list" => {
                if let Some(name) = r.required_name()
                    && let Some(list) = read_list(&mut r, name)
                {
                    config.lists.push(list);
                }
            }
            "geoip" => {
                if config.geoip.is_some() {
                    r.problem("only one 'config geoip' section is allowed".into());
                }
                config.geoip = Some(read_geoip(&mut r));
            }
            other => {
                r.problem(format!(
                    "unknown section type '{other}' (expected server, upstream, client, rule, list or geoip)"
                ));
                return;
            }
        }
        r.finish();
    }

    pub fn finish(mut self) -> (Config, Vec<Problem>) {
        if self.servers != 1 {
            self.problems.push(Problem::new(
                "server",
                format!(
                    "exactly one 'config server' section is needed, found {}",
                    self.servers
                ),
            ));
        }
        (self.config, self.problems)
    }
}

fn read_server(r: &mut Reader) -> Server {
    Server {
        interface: r.string("interface"),
        listen_port: r.number("listen_port"),
        address: r.string("address"),
        address6: r.string("address6"),
        private_key: r.string("private_key"),
        endpoint: r.string("endpoint"),
        mtu: r.number("mtu"),
        backend: r.choice("backend"),
        dns_port: r.number("dns_port"),
        dns_listen: r.list("dns_listen"),
        dns_server: r.list("dns_server"),
        block_answer: r.choice("block_answer"),
        ttl_min: r.number("ttl_min"),
        ttl_max: r.number("ttl_max"),
        fwmark_mask: r.string("fwmark_mask"),
        table_base: r.number("table_base"),
        rule_priority: r.number("rule_priority"),
        api_listen: r.string("api_listen"),
        ui_listen: r.string("ui_listen"),
        doh_list: r.list("doh_list"),
    }
}

fn read_upstream(r: &mut Reader, name: String) -> Upstream {
    Upstream {
        name,
        interface: r.string("interface"),
        private_key: r.string("private_key"),
        address: r.list("address"),
        public_key: r.string("public_key"),
        endpoint: r.string("endpoint"),
        preshared_key: r.string("preshared_key"),
        allowed_ips: r.list("allowed_ips"),
        mtu: r.number("mtu"),
        keepalive: r.number("keepalive"),
        dns: r.list("dns"),
        on_down: r.choice("on_down"),
        failover: r.string("failover"),
        table: r.number("table"),
        enabled: r.boolean("enabled"),
    }
}

fn read_client(r: &mut Reader, name: String) -> Client {
    Client {
        name,
        public_key: r.string("public_key"),
        private_key: r.string("private_key"),
        preshared_key: r.string("preshared_key"),
        address: r.list("address"),
        enabled: r.boolean("enabled"),
        expires: r.string("expires"),
        upstream: r.string("upstream"),
        default: r.choice("default"),
        description: r.string("description"),
        quota: r.string("quota"),
        dns_guard: r.boolean("dns_guard"),
    }
}

fn read_rule(r: &mut Reader) -> Option<Rule> {
    let client = r.string("client");
    let action_given = r.options.iter().flatten().any(|o| o.name == "action");
    let action = r.choice("action");
    let rule = Rule {
        name: r.name.clone(),
        client: client.clone().unwrap_or_default(),
        action: action.unwrap_or_default(),
        upstream: r.string("upstream"),
        domain: r.list("domain"),
        cidr: r.list("cidr"),
        port: r.list("port"),
        geoip: r.list("geoip"),
        list: r.list("list"),
        enabled: r.boolean("enabled"),
        description: r.string("description"),
    };
    if client.is_none() {
        r.field_problem("client", "required");
    }
    if action.is_none() && !action_given {
        r.field_problem("action", "required (proxy, direct or block)");
    }
    Some(rule)
}

fn read_list(r: &mut Reader, name: String) -> Option<List> {
    let path = r.string("path");
    let list = List {
        name,
        path: path.clone().unwrap_or_default(),
        format: r.choice("format"),
        url: r.string("url"),
        category: r.string("category"),
        sha256: r.string("sha256"),
        max_size: r.string("max_size"),
    };
    if path.is_none() {
        r.field_problem("path", "required");
    }
    Some(list)
}

fn read_geoip(r: &mut Reader) -> Geoip {
    Geoip {
        path: r.string("path"),
        format: r.choice("format"),
        url: r.string("url"),
        dir: r.string("dir"),
        update_hours: r.number("update_hours"),
        sha256: r.string("sha256"),
        max_size: r.string("max_size"),
    }
}

/// Reads one section's options, taking each out as it is used so the rest can be
/// reported as unknown.
struct Reader<'a> {
    kind: String,
    name: Option<String>,
    options: Vec<Option<Opt>>,
    /// The index among anonymous sections of this type (for the path).
    index: usize,
    problems: &'a mut Vec<Problem>,
}

impl<'a> Reader<'a> {
    fn new(section: Section, index: usize, problems: &'a mut Vec<Problem>) -> Self {
        Self {
            kind: section.kind,
            name: section.name,
            options: section.options.into_iter().map(Some).collect(),
            index,
            problems,
        }
    }

    fn path(&self) -> SectionPath<'_> {
        SectionPath {
            kind: &self.kind,
            name: self.name.as_deref(),
            index: self.index,
        }
    }

    fn problem(&mut self, message: String) {
        let path = self.path().to_string();
        self.problems.push(Problem::new(&path, message));
    }

    fn field_problem(&mut self, option: &str, message: impl Into<String>) {
        let path = format!("{}.{option}", self.path());
        self.problems.push(Problem::new(&path, message));
    }

    fn required_name(&mut self) -> Option<String> {
        let name = self.name.clone();
        if name.is_none() {
            self.problem(format!(
                "a '{}' section needs a name: config {} '<name>'",
                self.kind, self.kind
            ));
        }
        name
    }

    fn take(&mut self, name: &str) -> Option<Opt> {
        self.options
            .iter_mut()
            .find(|o| o.as_ref().is_some_and(|o| o.name == name))?
            .take()
    }

    fn string(&mut self, name: &str) -> Option<String> {
        match self.take(name)?.value {
            Value::Single(v) => Some(v),
            Value::List(_) => {
                self.field_problem(name, "is a single value; use 'option', not 'list'");
                None
            }
        }
    }

    /// A list; a single `option` counts as a one-item list, as LuCI may write it.
    fn list(&mut self, name: &str) -> Vec<String> {
        match self.take(name).map(|o| o.value) {
            None => Vec::new(),
            Some(Value::Single(v)) => vec![v],
            Some(Value::List(items)) => items,
        }
    }

    fn number<T: std::str::FromStr>(&mut self, name: &str) -> Option<T> {
        let text = self.string(name)?;
        match text.trim().parse() {
            Ok(n) => Some(n),
            Err(_) => {
                self.field_problem(name, format!("'{text}' is not a number in range"));
                None
            }
        }
    }

    fn boolean(&mut self, name: &str) -> Option<bool> {
        let text = self.string(name)?;
        match text.as_str() {
            "1" | "yes" | "on" | "true" | "enabled" => Some(true),
            "0" | "no" | "off" | "false" | "disabled" => Some(false),
            _ => {
                self.field_problem(name, format!("'{text}' is not a boolean (1 or 0)"));
                None
            }
        }
    }

    /// One of an enum's lowercase names.
    fn choice<T: DeserializeOwned + Serialize + ChoiceNames>(&mut self, name: &str) -> Option<T> {
        let text = self.string(name)?;
        match serde_json::from_value(serde_json::Value::String(text.clone())) {
            Ok(v) => Some(v),
            Err(_) => {
                self.field_problem(
                    name,
                    format!("'{text}' is not one of: {}", T::NAMES.join(", ")),
                );
                None
            }
        }
    }

    fn finish(mut self) {
        for opt in std::mem::take(&mut self.options).into_iter().flatten() {
            let path = format!("{}.{}", self.path(), opt.name);
            self.problems.push(Problem::new(
                &path,
                format!("unknown option (line {})", opt.line),
            ));
        }
    }
}

/// The accepted spellings of an enum, for error messages.
pub trait ChoiceNames {
    const NAMES: &'static [&'static str];
}

macro_rules! choice_names {
    ($($t:ty => [$($n:literal),*];)*) => {
        $(impl ChoiceNames for $t { const NAMES: &'static [&'static str] = &[$($n),*]; })*
    };
}

choice_names! {
    super::model::Backend => ["kernel", "userspace"];
    super::model::BlockAnswer => ["nxdomain", "null"];
    super::model::Action => ["proxy", "direct", "block"];
    super::model::OnDown => ["block", "direct", "failover"];
    super::model::ListFormat => ["domains", "cidr", "dnsmasq", "v2fly", "geosite"];
    super::model::GeoipFormat => ["mmdb", "dat", "csv", "dir"];
}

pub fn to_sections(config: &Config) -> Vec<Section> {
    let mut out = Vec::new();
    let s = &config.server;
    let mut w = Writer::new("server", Some("server"));
    w.string("interface", &s.interface);
    w.number("listen_port", s.listen_port);
    w.string("address", &s.address);
    w.string("address6", &s.address6);
    w.string("private_key", &s.private_key);
    w.string("endpoint", &s.endpoint);
    w.number("mtu", s.mtu);
    w.choice("backend", s.backend);
    w.number("dns_port", s.dns_port);
    w.list("dns_listen", &s.dns_listen);
    w.list("dns_server", &s.dns_server);
    w.choice("block_answer", s.block_answer);
    w.number("ttl_min", s.ttl_min);
    w.number("ttl_max", s.ttl_max);
    w.string("fwmark_mask", &s.fwmark_mask);
    w.number("table_base", s.table_base);
    w.number("rule_priority", s.rule_priority);
    w.string("api_listen", &s.api_listen);
    w.string("ui_listen", &s.ui_listen);
    w.list("doh_list", &s.doh_list);
    out.push(w.section);

    for u in &config.upstreams {
        let mut w = Writer::new("upstream", Some(&u.name));
        w.string("interface", &u.interface);
        w.string("private_key", &u.private_key);
        w.list("address", &u.address);
        w.string("public_key", &u.public_key);
        w.string("endpoint", &u.endpoint);
        w.string("preshared_key", &u.preshared_key);
        w.list("allowed_ips", &u.allowed_ips);
        w.number("mtu", u.mtu);
        w.number("keepalive", u.keepalive);
        w.list("dns", &u.dns);
        w.choice("on_down", u.on_down);
        w.string("failover", &u.failover);
        w.number("table", u.table);
        w.boolean("enabled", u.enabled);
        out.push(w.section);
    }
    for c in &config.clients {
        let mut w = Writer::new("client", Some(&c.name));
        w.string("public_key", &c.public_key);
        w.string("private_key", &c.private_key);
        w.string("preshared_key", &c.preshared_key);
        w.list("address", &c.address);
        w.boolean("enabled", c.enabled);
        w.string("expires", &c.expires);
        w.string("upstream", &c.upstream);
        w.choice("default", c.default);
        w.string("description", &c.description);
        w.string("quota", &c.quota);
        w.boolean("dns_guard", c.dns_guard);
        out.push(w.section);
    }
    for r in &config.rules {
        let mut w = Writer::new("rule", r.name.as_deref());
        w.string("client", &Some(r.client.clone()));
        w.choice("action", Some(r.action));
        w.string("upstream", &r.upstream);
        w.list("domain", &r.domain);
        w.list("cidr", &r.cidr);
        w.list("port", &r.port);
        w.list("geoip", &r.geoip);
        w.list("list", &r.list);
        w.boolean("enabled", r.enabled);
        w.string("description", &r.description);
        out.push(w.section);
    }
    for l in &config.lists {
        let mut w = Writer::new("list", Some(&l.name));
        w.string("path", &Some(l.path.clone()));
        w.choice("format", l.format);
        w.string("url", &l.url);
        w.string("category", &l.category);
        w.string("sha256", &l.sha256);
        w.string("max_size", &l.max_size);
        out.push(w.section);
    }
    if let Some(g) = &config.geoip {
        let mut w = Writer::new("geoip", Some("geoip"));
        w.string("path", &g.path);
        w.choice("format", g.format);
        w.string("url", &g.url);
        w.string("dir", &g.dir);
        w.number("update_hours", g.update_hours);
        w.string("sha256", &g.sha256);
        w.string("max_size", &g.max_size);
        out.push(w.section);
    }
    out
}

struct Writer {
    section: Section,
}

impl Writer {
    fn new(kind: &str, name: Option<&str>) -> Self {
        Self {
            section: Section {
                kind: kind.into(),
                name: name.map(Into::into),
                line: 0,
                options: Vec::new(),
            },
        }
    }

    fn push(&mut self, name: &str, value: Value) {
        self.section.options.push(Opt {
            name: name.into(),
            value,
            line: 0,
        });
    }

    fn string(&mut self, name: &str, value: &Option<String>) {
        if let Some(v) = value {
            self.push(name, Value::Single(v.clone()));
        }
    }

    fn number<T: ToString>(&mut self, name: &str, value: Option<T>) {
        if let Some(v) = value {
            self.push(name, Value::Single(v.to_string()));
        }
    }

    fn boolean(&mut self, name: &str, value: Option<bool>) {
        if let Some(v) = value {
            self.push(name, Value::Single(if v { "1" } else { "0" }.into()));
        }
    }

    fn choice<T: Serialize>(&mut self, name: &str, value: Option<T>) {
        if let Some(v) = value
            && let Ok(serde_json::Value::String(s)) = serde_json::to_value(v)
        {
            self.push(name, Value::Single(s));
        }
    }

    fn list(&mut self, name: &str, items: &[String]) {
        if !items.is_empty() {
            self.push(name, Value::List(items.to_vec()));
        }
    }
}
