//! The config model: what `/etc/config/wgsplit` holds, as plain data.
//!
//! Every optional value is an `Option` so that UCI → JSON → UCI keeps exactly what
//! the user wrote (no defaults appear from nowhere); the `*_or_default` accessors
//! give the effective values. The JSON shape is this struct's serde form.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: Server,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<Upstream>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<Client>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lists: Vec<List>,
    /// Where `geoip` rules get their countries (`config geoip 'geoip'`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geoip: Option<Geoip>,
}

/// How a WireGuard interface is driven: the kernel module, or a userspace
/// implementation over its UAPI socket (hosts without the module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Kernel,
    Userspace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockAnswer {
    #[default]
    Nxdomain,
    Null,
}

/// What a rule, or a client's default, does with matching traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Through the upstream.
    Proxy,
    /// Straight out the WAN.
    #[default]
    Direct,
    /// Nowhere.
    Block,
}

/// What happens to an upstream's traffic while it is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDown {
    /// Drop it: the kill switch.
    #[default]
    Block,
    Direct,
    Failover,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListFormat {
    #[default]
    Domains,
    Cidr,
    Dnsmasq,
    V2fly,
    /// v2fly `geosite.dat` / `dlc.dat`; `category` picks the entry.
    Geosite,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address6: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_listen: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_server: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_answer: Option<BlockAnswer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_min: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_max: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmark_mask: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_base: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_priority: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_listen: Option<String>,
    /// The built-in web pages (`api::ui`): off when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui_listen: Option<String>,
    /// The DNS bypass guard's DoH endpoints, as `list` sections (updated like
    /// any list): domain lists give the names the resolver refuses, `cidr`
    /// lists the addresses the data path drops. Empty: the shipped default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub doh_list: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preshared_key: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_down: Option<OnDown>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preshared_key: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Monthly data quota (received + sent), e.g. `50G`; spent → disabled until the month ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<String>,
    /// The DNS bypass guard (DoT/DoQ, known DoH, the Firefox canary); on by
    /// default for a client with domain rules (plan/guard.rs, dns/bypass.rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_guard: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Section name; `None` for an anonymous `config rule`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub client: String,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domain: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidr: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub geoip: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub list: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct List {
    pub name: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ListFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `geosite`/`v2fly`: the category (`netflix`, `category-ads-all@ads`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Pins the download: its SHA-256 (64 hex digits); another file is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The largest download accepted (`20M`), at most the hard maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<String>,
}

/// The GeoIP database `geoip` rules use.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Geoip {
    /// The database on the router (kept); without it a download is extracted
    /// and dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<GeoipFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Folder for downloads and the extracted per-country ranges (tmpfs or overlay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// Hours between scheduled `lists update` runs (0: only on demand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_hours: Option<u32>,
    /// Pins the download: its SHA-256 (64 hex digits); another file is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The largest download accepted (`20M`), at most the hard maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GeoipFormat {
    /// MaxMind DB: DB-IP lite country, GeoLite2/GeoIP2 country.
    #[default]
    Mmdb,
    /// v2fly / Loyalsoldier `geoip.dat`.
    Dat,
    /// `start,end,CC` rows (ip-location-db, IPFire).
    Csv,
    /// A folder of per-country CIDR files (`us.zone`, `us.txt`).
    Dir,
}

pub const DEFAULT_LISTS_DIR: &str = "/tmp/wgsplit/lists";

impl Geoip {
    pub fn dir_or_default(&self) -> &str {
        self.dir.as_deref().unwrap_or(DEFAULT_LISTS_DIR)
    }
    pub fn update_hours_or_default(&self) -> u32 {
        self.update_hours.unwrap_or(24)
    }
}

pub const DEFAULT_FWMARK_MASK: u32 = 0xff00_0000;

impl Server {
    pub fn interface_or_default(&self) -> &str {
        self.interface.as_deref().unwrap_or("wg0")
    }
    pub fn listen_port_or_default(&self) -> u16 {
        self.listen_port.unwrap_or(51820)
    }
    pub fn mtu_or_default(&self) -> u16 {
        self.mtu.unwrap_or(1420)
    }
    pub fn dns_port_or_default(&self) -> u16 {
        self.dns_port.unwrap_or(53)
    }
    pub fn ttl_min_or_default(&self) -> u32 {
        self.ttl_min.unwrap_or(60)
    }
    pub fn ttl_max_or_default(&self) -> u32 {
        self.ttl_max.unwrap_or(86400)
    }
    pub fn table_base_or_default(&self) -> u32 {
        self.table_base.unwrap_or(20000)
    }
    pub fn rule_priority_or_default(&self) -> u32 {
        self.rule_priority.unwrap_or(6000)
    }
    pub fn api_listen_or_default(&self) -> &str {
        self.api_listen.as_deref().unwrap_or("127.0.0.1:8274")
    }
    /// The mark bits wgsplit owns; validation guarantees it parses.
    pub fn fwmark_mask_or_default(&self) -> u32 {
        self.fwmark_mask
            .as_deref()
            .and_then(parse_u32)
            .unwrap_or(DEFAULT_FWMARK_MASK)
    }
}

impl Upstream {
    pub fn interface_or_default(&self) -> String {
        self.interface
            .clone()
            .unwrap_or_else(|| format!("wgs_{}", self.name))
    }
    pub fn mtu_or_default(&self) -> u16 {
        self.mtu.unwrap_or(1420)
    }
    pub fn keepalive_or_default(&self) -> u16 {
        self.keepalive.unwrap_or(25)
    }
    pub fn enabled_or_default(&self) -> bool {
        self.enabled.unwrap_or(true)
    }
    pub fn on_down_or_default(&self) -> OnDown {
        self.on_down.unwrap_or_default()
    }
    pub fn allowed_ips_or_default(&self) -> Vec<String> {
        if self.allowed_ips.is_empty() {
            vec!["0.0.0.0/0".into(), "::/0".into()]
        } else {
            self.allowed_ips.clone()
        }
    }
}

impl Client {
    pub fn enabled_or_default(&self) -> bool {
        self.enabled.unwrap_or(true)
    }
    pub fn default_or_default(&self) -> Action {
        self.default.unwrap_or_default()
    }
}

impl Rule {
    pub fn enabled_or_default(&self) -> bool {
        self.enabled.unwrap_or(true)
    }
}

/// Parses `1234` or `0x4d2`.
pub fn parse_u32(text: &str) -> Option<u32> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}
