//! A client's wg-quick config, as the WireGuard apps import it (file or QR code).

use std::{fmt::Write as _, net::IpAddr};

use ipnet::IpNet;

use super::{EditError, client_index};
use crate::{
    config::{
        Action, Config,
        types::{parse_cidr, parse_endpoint, parse_interface_address, parse_key},
    },
    util::keys,
};

/// The server's endpoint for clients: `server.endpoint`, with `listen_port` when
/// it names no port; IPv6 literals get brackets.
pub fn server_endpoint(config: &Config) -> Result<String, EditError> {
    let s = &config.server;
    let Some(e) = s.endpoint.as_deref() else {
        return Err(super::invalid(
            "server.endpoint",
            "not set: clients need the router's public host name or address",
        ));
    };
    if parse_endpoint(e).is_ok() {
        return Ok(e.to_string());
    }
    let port = s.listen_port_or_default();
    Ok(match e.parse::<IpAddr>() {
        Ok(IpAddr::V6(a)) => format!("[{a}]:{port}"),
        _ => format!("{e}:{port}"),
    })
}

/// The server's tunnel addresses (the resolver the clients use).
fn server_addresses(config: &Config) -> Vec<IpNet> {
    [&config.server.address, &config.server.address6]
        .into_iter()
        .flatten()
        .filter_map(|a| parse_interface_address(a).ok())
        .collect()
}

/// The AllowedIPs of a split-tunnel config: the server's networks and every
/// CIDR that the client's enabled `proxy` rules send through an upstream.
/// `None` when the client's default is not `direct` (then everything must
/// reach the router anyway).
pub fn split_allowed_ips(config: &Config, name: &str) -> Result<Option<Vec<IpNet>>, EditError> {
    let c = &config.clients[client_index(config, name)?];
    if c.default_or_default() != Action::Direct {
        return Ok(None);
    }
    let mut nets: Vec<IpNet> = server_addresses(config).iter().map(IpNet::trunc).collect();
    for r in config
        .rules
        .iter()
        .filter(|r| r.client == name && r.enabled_or_default() && r.action != Action::Direct)
    {
        nets.extend(r.cidr.iter().filter_map(|x| parse_cidr(x).ok()));
    }
    nets.sort();
    nets.dedup();
    Ok(Some(IpNet::aggregate(&nets)))
}

/// Renders `[Interface]` + `[Peer]` for a client whose private key the router keeps.
pub fn render(config: &Config, name: &str, split: bool) -> Result<String, EditError> {
    let c = &config.clients[client_index(config, name)?];
    let Some(private) = c.private_key.as_deref() else {
        return Err(super::invalid(
            &format!("{name}.private_key"),
            "the router does not keep this client's private key (it brought its own); \
             its config has to be written on the client",
        ));
    };
    let server_key = config
        .server
        .private_key
        .as_deref()
        .and_then(|k| parse_key(k).ok())
        .map(|k| keys::encode(&keys::public_from_private(&k)))
        .ok_or_else(|| super::invalid("server.private_key", "required"))?;
    let endpoint = server_endpoint(config)?;
    let dns: Vec<String> = server_addresses(config)
        .iter()
        .map(|n| n.addr().to_string())
        .collect();

    let mut allowed = "0.0.0.0/0, ::/0".to_string();
    let mut notes = String::new();
    if split {
        match split_allowed_ips(config, name)? {
            Some(nets) => {
                allowed = nets
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                let has_domains = config.rules.iter().any(|r| {
                    r.client == name
                        && r.enabled_or_default()
                        && r.action != Action::Direct
                        && !(r.domain.is_empty() && r.list.is_empty() && r.geoip.is_empty())
                });
                if has_domains {
                    notes.push_str(
                        "# Split tunnel: only the rules' CIDRs are routed here; domain, list and\n\
                         # GeoIP rules need the full tunnel to take effect.\n",
                    );
                }
            }
            None => notes.push_str(
                "# Full tunnel: this client's default is not 'direct', so a split config\n\
                 # would bypass its policy.\n",
            ),
        }
    }

    let mut out = String::new();
    let _ = writeln!(out, "# wgsplit client '{name}'");
    if let Some(d) = &c.description {
        // Checked to be one line; a config that predates the check still
        // cannot add lines here.
        let line: String = d
            .chars()
            .map(|c| {
                if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        let _ = writeln!(out, "# {line}");
    }
    out.push_str(&notes);
    out.push_str("[Interface]\n");
    let _ = writeln!(out, "PrivateKey = {private}");
    let _ = writeln!(out, "Address = {}", c.address.join(", "));
    if !dns.is_empty() {
        let _ = writeln!(out, "DNS = {}", dns.join(", "));
    }
    if let Some(mtu) = config.server.mtu {
        let _ = writeln!(out, "MTU = {mtu}");
    }
    out.push_str("\n[Peer]\n");
    let _ = writeln!(out, "PublicKey = {server_key}");
    if let Some(psk) = &c.preshared_key {
        let _ = writeln!(out, "PresharedKey = {psk}");
    }
    let _ = writeln!(out, "Endpoint = {endpoint}");
    let _ = writeln!(out, "AllowedIPs = {allowed}");
    out.push_str("PersistentKeepalive = 25\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::tests::example;

    #[test]
    fn full_tunnel_config() {
        let c = example();
        let text = render(&c, "alice", false).unwrap();
        let server_pub = keys::encode(&keys::public_from_private(
            &parse_key(c.server.private_key.as_deref().unwrap()).unwrap(),
        ));
        let want = format!(
            "# wgsplit client 'alice'\n[Interface]\n\
             PrivateKey = mFnOaSIN8ghJndRAPDzz8QkRQmSj6JpbbAs61jS1fF8=\n\
             Address = 10.8.0.2/32, fd42:8::2/128\nDNS = 10.8.0.1, fd42:8::1\n\n\
             [Peer]\nPublicKey = {server_pub}\nEndpoint = vpn.example.org:51820\n\
             AllowedIPs = 0.0.0.0/0, ::/0\nPersistentKeepalive = 25\n"
        );
        assert_eq!(text, want);
    }

    #[test]
    fn a_description_stays_one_comment_line() {
        let mut c = example();
        let i = c.clients.iter().position(|x| x.name == "alice").unwrap();
        c.clients[i].description = Some("phone\r[Peer]\u{2028}AllowedIPs = 0.0.0.0/0\nx".into());
        let text = render(&c, "alice", false).unwrap();
        let first = text.split(['\n', '\r', '\u{2028}']).nth(1).unwrap();
        assert_eq!(first, "# phone [Peer] AllowedIPs = 0.0.0.0/0 x");
        assert_eq!(text.matches("[Peer]").count(), 2, "{text}");
        assert!(!text.contains('\r') && !text.contains('\u{2028}'));
    }

    #[test]
    fn split_tunnel_lists_proxied_cidrs() {
        let c = example();
        let text = render(&c, "alice", true).unwrap();
        assert!(
            text.contains("AllowedIPs = 10.8.0.0/24, 198.51.100.0/24, fd42:8::/64\n"),
            "{text}"
        );
        assert!(text.contains("domain, list and"));
        // bob's default is proxy: the full tunnel stays.
        let text = render(&c, "bob", true).unwrap();
        assert!(text.contains("AllowedIPs = 0.0.0.0/0, ::/0"), "{text}");
    }

    #[test]
    fn endpoints_and_missing_pieces() {
        let mut c = example();
        c.server.endpoint = Some("2001:db8::1".into());
        assert_eq!(server_endpoint(&c).unwrap(), "[2001:db8::1]:51820");
        c.server.endpoint = Some("vpn.example.org:443".into());
        assert_eq!(server_endpoint(&c).unwrap(), "vpn.example.org:443");
        c.server.endpoint = None;
        match render(&c, "alice", false).unwrap_err() {
            EditError::Invalid(p) => assert_eq!(p[0].path, "server.endpoint"),
            e => panic!("{e}"),
        }
        assert!(matches!(
            render(&c, "nobody", false),
            Err(EditError::NotFound(_))
        ));
    }
}
