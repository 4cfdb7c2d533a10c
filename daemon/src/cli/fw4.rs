//! `wgsplit fw4-include`: the rules fw4 puts at the top of the forward chain
//! of the `wgsplit` zone (the WireGuard server interface). Client traffic that
//! wgsplit steers into an upstream tunnel belongs to no fw4 zone and would be
//! rejected; these rules accept it by the upstreams' interface names and by
//! the marks their connections carry, both taken from the config and the
//! policy's mark layout, so neither is written down a second time. The init
//! script writes the output where the firewall include section (added by
//! uci-defaults) points, and reloads fw4 when it changed.

use lexopt::Parser;

use super::{CmdResult, Context, positional_and_flags};
use crate::{
    config::Config,
    policy::{Marks, Target},
};

pub fn cmd_fw4_include(parser: &mut Parser, ctx: &Context) -> CmdResult {
    let (args, flags) = positional_and_flags(parser, &[])?;
    if !args.is_empty() || !flags.is_empty() {
        return Err("usage: wgsplit fw4-include".into());
    }
    let config = ctx.load()?;
    print!("{}", include_rules(&config));
    Ok(())
}

/// The include's text: comments and rules only (fw4 puts it inside a chain).
fn include_rules(config: &Config) -> String {
    let mut out = String::from(
        "# Made by `wgsplit fw4-include` from /etc/config/wgsplit: accept client\n\
         # traffic wgsplit steers into its upstream tunnels.\n",
    );
    if config.upstreams.is_empty() {
        out.push_str("# No upstreams: nothing to accept here.\n");
        return out;
    }
    let names: Vec<String> = config
        .upstreams
        .iter()
        .map(|u| format!("\"{}\"", u.interface_or_default()))
        .collect();
    let marks = Marks::new(config.server.fwmark_mask_or_default());
    let values: Vec<String> = (0..config.upstreams.len())
        .map(|i| format!("{:#010x}", marks.of(Target::Upstream(i))))
        .collect();
    out.push_str(&format!(
        "oifname {{ {} }} counter accept comment \"!wgsplit: client traffic to upstream tunnels\"\n",
        names.join(", ")
    ));
    out.push_str(&format!(
        "meta mark & {:#010x} {{ {} }} counter accept comment \"!wgsplit: client traffic marked for an upstream\"\n",
        marks.mask,
        values.join(", ")
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Upstream;

    fn config(mask: Option<&str>, upstreams: &[(&str, Option<&str>)]) -> Config {
        let mut c = Config::default();
        c.server.fwmark_mask = mask.map(String::from);
        c.upstreams = upstreams
            .iter()
            .map(|(name, ifname)| Upstream {
                name: name.to_string(),
                interface: ifname.map(String::from),
                ..Upstream::default()
            })
            .collect();
        c
    }

    #[test]
    fn names_and_marks_come_from_the_config_and_the_policy() {
        let text = include_rules(&config(None, &[("us1", None), ("vpn", Some("tun_x"))]));
        assert!(
            text.contains("oifname { \"wgs_us1\", \"tun_x\" } counter accept"),
            "{text}"
        );
        // direct 1, block 2, upstream i: i + 3, under the default mask's lowest bit
        assert!(
            text.contains("meta mark & 0xff000000 { 0x03000000, 0x04000000 } counter accept"),
            "{text}"
        );
    }

    #[test]
    fn another_mask_moves_the_marks() {
        let text = include_rules(&config(Some("0x00ff0000"), &[("us1", None)]));
        assert!(
            text.contains("meta mark & 0x00ff0000 { 0x00030000 }"),
            "{text}"
        );
    }

    #[test]
    fn no_upstreams_no_rules() {
        let text = include_rules(&config(None, &[]));
        assert!(text.lines().all(|l| l.starts_with('#')), "{text}");
    }
}
