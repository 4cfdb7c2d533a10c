//! `wgsplit upstream import`: a wg-quick file as VPN providers export it, turned
//! into an upstream section. What it can't use is refused with a reason (two
//! peers, no endpoint) or ignored with a note (scripts, Table, FwMark).

use std::net::IpAddr;

use super::EditError;
use crate::config::{
    Config, OnDown, Problem, Upstream,
    types::{check_ifname, parse_cidr},
};

/// An imported upstream and the notes about what was left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub upstream: Upstream,
    pub notes: Vec<String>,
}

/// Splits `A, B,C` lists as wg-quick does.
fn items(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// The interface for an imported upstream: `wgs_<name>` when it fits in 15
/// bytes, else a shortened form that no other upstream uses.
pub fn interface_for(config: &Config, name: &str) -> String {
    let taken = |n: &str| {
        config.server.interface_or_default() == n
            || config
                .upstreams
                .iter()
                .any(|u| u.interface_or_default() == n)
    };
    let full = format!("wgs_{name}");
    if full.len() <= 15 && !taken(&full) {
        return full;
    }
    let stem: String = name.chars().take(8).collect();
    (1..1000)
        .map(|i| format!("wgs_{stem}{i}"))
        .find(|n| n.len() <= 15 && !taken(n))
        .unwrap_or(full)
}

/// Parses a wg-quick file. Keys are case-insensitive, as in wg-quick.
pub fn parse_wg_quick(config: &Config, name: &str, text: &str) -> Result<Imported, EditError> {
    let mut up = Upstream {
        name: name.to_string(),
        ..Default::default()
    };
    let mut notes = Vec::new();
    let mut problems = Vec::new();
    let mut section = "";
    let mut peers = 0;
    let mut keepalive_set = false;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        let lineno = n + 1;
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            section = match line[1..line.len() - 1].trim().to_ascii_lowercase().as_str() {
                "interface" => "interface",
                "peer" => {
                    peers += 1;
                    "peer"
                }
                other => {
                    problems.push(Problem::new(
                        &format!("line {lineno}"),
                        format!("unknown section [{other}]"),
                    ));
                    "unknown"
                }
            };
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            problems.push(Problem::new(
                &format!("line {lineno}"),
                format!("'{line}' is not 'Key = Value'"),
            ));
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        // Base64 keys end in '=': split only at the first one.
        let value = value.trim();
        if peers > 1 {
            continue;
        }
        match (section, key.as_str()) {
            ("interface", "privatekey") => up.private_key = Some(value.to_string()),
            ("interface", "address") => up.address.extend(items(value).map(String::from)),
            ("interface", "dns") => {
                for d in items(value) {
                    if d.parse::<IpAddr>().is_ok() {
                        up.dns.push(d.to_string());
                    } else {
                        notes.push(format!(
                            "DNS search domain '{d}' ignored (only resolver addresses are used)"
                        ));
                    }
                }
            }
            ("interface", "mtu") => match value.parse() {
                Ok(m) => up.mtu = Some(m),
                Err(_) => problems.push(Problem::new(
                    &format!("line {lineno}"),
                    format!("MTU '{value}' is not a number"),
                )),
            },
            ("interface", "listenport") => {
                notes.push("ListenPort ignored: upstreams use a random source port".into())
            }
            ("interface", "table" | "fwmark") => notes.push(format!(
                "{} ignored: wgsplit picks the routing table and marks itself",
                if key == "table" { "Table" } else { "FwMark" }
            )),
            ("interface", "preup" | "postup" | "predown" | "postdown") => notes.push(format!(
                "warning: {} script ignored (wgsplit runs no scripts): '{value}'",
                match key.as_str() {
                    "preup" => "PreUp",
                    "postup" => "PostUp",
                    "predown" => "PreDown",
                    _ => "PostDown",
                }
            )),
            ("interface", "saveconfig") => notes.push("SaveConfig ignored".into()),
            ("peer", "publickey") => up.public_key = Some(value.to_string()),
            ("peer", "presharedkey") => up.preshared_key = Some(value.to_string()),
            ("peer", "endpoint") => up.endpoint = Some(value.to_string()),
            ("peer", "allowedips") => {
                up.allowed_ips.extend(items(value).map(String::from));
            }
            ("peer", "persistentkeepalive") => {
                keepalive_set = true;
                match value {
                    "off" => up.keepalive = Some(0),
                    v => match v.parse() {
                        Ok(k) => up.keepalive = Some(k),
                        Err(_) => problems.push(Problem::new(
                            &format!("line {lineno}"),
                            format!("PersistentKeepalive '{v}' is not a number"),
                        )),
                    },
                }
            }
            ("unknown", _) => {}
            (s, _) => problems.push(Problem::new(
                &format!("line {lineno}"),
                format!("unknown key '{}' in [{s}]", key),
            )),
        }
    }
    if peers == 0 {
        problems.push(Problem::new(
            "peer",
            "the file has no [Peer]: an upstream needs the provider's peer",
        ));
    }
    if peers > 1 {
        problems.push(Problem::new(
            "peer",
            format!(
                "the file has {peers} [Peer] sections; an upstream is one tunnel to one \
                 server: import each server as its own upstream"
            ),
        ));
    }
    if !problems.is_empty() {
        return Err(EditError::Invalid(problems));
    }
    // The full tunnel is the default: keep the section short.
    let mut nets: Vec<String> = up
        .allowed_ips
        .iter()
        .filter_map(|a| parse_cidr(a).ok().map(|n| n.to_string()))
        .collect();
    nets.sort();
    if nets == ["0.0.0.0/0", "::/0"] {
        up.allowed_ips.clear();
    } else if !up.allowed_ips.is_empty() {
        notes.push(format!(
            "AllowedIPs kept as given ({}); wgsplit routes by rules, not by AllowedIPs",
            up.allowed_ips.join(", ")
        ));
    }
    if !keepalive_set {
        notes.push("no PersistentKeepalive: wgsplit's default of 25 s is used".into());
    }
    let ifname = interface_for(config, name);
    if check_ifname(&ifname).is_ok() && ifname != format!("wgs_{name}") {
        up.interface = Some(ifname);
    }
    up.on_down = None::<OnDown>;
    Ok(Imported {
        upstream: up,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::{add_upstream, tests::example};

    const PROVIDER: &str = "\
[Interface]
# Device: Quick Fox
PrivateKey = cOW63OHLHouKbxFSCtj1aTLrXiCJ9ILLZlmvRnvCw3w=
Address = 10.66.1.2/32,fc00:bbbb:bbbb:bb01::3:102/128
DNS = 10.64.0.1, corp.example
MTU = 1380
PostUp = iptables -A FORWARD -j ACCEPT
Table = off

[Peer]
PublicKey = KsiQA85I/uefK6OifFDZsfd1JHtjdqE1/SAEHxtqe0c=
PresharedKey = 4Ltoxf/J0Qt11eY8YhgsRGhL3FtzgKggAdAri88H2H8=
AllowedIPs = 0.0.0.0/0,::/0
Endpoint = se-sto-wg-001.relays.example.net:51820
PersistentKeepalive = 15
";

    #[test]
    fn provider_file_becomes_an_upstream() {
        let mut c = example();
        let imp = parse_wg_quick(&c, "se_sto", PROVIDER).unwrap();
        let u = &imp.upstream;
        assert_eq!(u.address.len(), 2);
        assert_eq!(u.dns, vec!["10.64.0.1"]);
        assert_eq!(u.mtu, Some(1380));
        assert_eq!(u.keepalive, Some(15));
        assert!(u.allowed_ips.is_empty());
        assert_eq!(
            u.endpoint.as_deref(),
            Some("se-sto-wg-001.relays.example.net:51820")
        );
        assert!(u.preshared_key.is_some());
        assert!(u.interface.is_none(), "wgs_se_sto fits");
        let notes = imp.notes.join("\n");
        for want in ["PostUp script ignored", "Table ignored", "corp.example"] {
            assert!(notes.contains(want), "{want}: {notes}");
        }
        add_upstream(&mut c, imp.upstream).unwrap();
        assert!(crate::config::validate::validate(&c).is_empty());
    }

    #[test]
    fn long_names_get_a_short_interface() {
        let c = example();
        let imp = parse_wg_quick(&c, "mullvad_se_stockholm", PROVIDER).unwrap();
        assert_eq!(imp.upstream.interface.as_deref(), Some("wgs_mullvad_1"));
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        let c = example();
        let two = format!("{PROVIDER}\n[Peer]\nPublicKey = x\n");
        let e = parse_wg_quick(&c, "x", &two).unwrap_err().to_string();
        assert!(e.contains("2 [Peer] sections"), "{e}");
        let e = parse_wg_quick(&c, "x", "[Interface]\nPrivateKey = a\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no [Peer]"), "{e}");
        let e = parse_wg_quick(&c, "x", "[Interface]\nFoo = 1\n[Peer]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2: unknown key 'foo'"), "{e}");
    }
}
