//! Routing that holds when the router offloads flows (a flowtable, as fw4's
//! "software flow offloading" adds).
//!
//! A flowtable entry routes both directions of a flow when the flow is
//! offloaded, from whichever packet ran `flow add`, and the direction it did
//! not see is routed with `oif` = the interface that packet came in on and that
//! packet's mark. So:
//! - offloaded from a reply that came in through upstream U (no mark), the
//!   client's direction is looked up with `oif U` and no mark: without a rule
//!   it finds the main table and (IPv6 only prefers `oif`) leaves by the WAN;
//! - offloaded from the client's packet (marked for U), the reply direction is
//!   looked up with `oif <server if>` and U's mark: the fwmark rule sends the
//!   reply back into U's tunnel.
//!
//! Rules ahead of the fwmark rules make both lookups right: `oif U lookup T_U`
//! per upstream, and `oif <server if> lookup main`. Forwarded packets are never
//! looked up with an `oif` (only with `iif`), so the rules change nothing else;
//! a local socket bound to an upstream interface (the health probe) gets that
//! upstream's table, which it means anyway.

use super::{IpRule, TABLE_MAIN};
use crate::policy::Policy;

/// How far ahead of `rule_priority` (the fwmark rules) the `oif` rules sit.
pub const OIF_RULE_LEAD: u32 = 1;

/// The `oif` rules, v4 and v6: one per upstream (disabled ones too: their table
/// holds the kill switch) and one for the server interface.
pub fn oif_rules(policy: &Policy) -> Vec<IpRule> {
    let priority = policy.server.rule_priority.saturating_sub(OIF_RULE_LEAD);
    let server = (policy.server.interface.clone(), TABLE_MAIN);
    let upstreams = policy
        .upstreams
        .iter()
        .map(|u| (u.interface.clone(), u.table));
    let mut out = Vec::new();
    for (oif, table) in std::iter::once(server).chain(upstreams) {
        for v6 in [false, true] {
            out.push(IpRule {
                v6,
                priority,
                mark: 0,
                mask: 0,
                table,
                oif: Some(oif.clone()),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config, policy};

    fn example() -> Policy {
        let c = config::parse_valid(include_str!("../../../examples/wgsplit.conf")).unwrap();
        policy::compile(&c, 0)
    }

    #[test]
    fn every_upstream_and_the_server_get_an_oif_rule_ahead_of_the_fwmark_rules() {
        let p = example();
        let rules = oif_rules(&p);
        assert_eq!(rules.len(), 2 * (1 + p.upstreams.len()));
        for r in &rules {
            assert!(r.priority < p.server.rule_priority, "{r:?}");
            assert_eq!((r.mark, r.mask), (0, 0));
        }
        let table_of = |name: &str, v6: bool| {
            rules
                .iter()
                .find(|r| r.oif.as_deref() == Some(name) && r.v6 == v6)
                .map(|r| r.table)
        };
        for v6 in [false, true] {
            assert_eq!(table_of(&p.server.interface, v6), Some(TABLE_MAIN));
            for u in &p.upstreams {
                assert_eq!(table_of(&u.interface, v6), Some(u.table), "{}", u.name);
            }
        }
    }

    #[test]
    fn the_oif_rules_stay_put_when_an_upstream_goes_down() {
        // Failover moves the fwmark rule; the oif rule of a down upstream still
        // names its own table (the kill switch), that of its failover its own.
        let c = config::parse_valid(include_str!("../../../examples/wgsplit.conf")).unwrap();
        let p = policy::compile(&c, 0);
        let mut inputs = crate::plan::Inputs::default();
        let up = crate::plan::desired(&p, &inputs).rules;
        for u in &p.upstreams {
            inputs.health.insert(u.name.clone(), false);
        }
        let down = crate::plan::desired(&p, &inputs).rules;
        let oif = |s: &std::collections::BTreeSet<IpRule>| -> Vec<IpRule> {
            s.iter().filter(|r| r.oif.is_some()).cloned().collect()
        };
        assert_eq!(oif(&up), oif(&down));
    }
}
