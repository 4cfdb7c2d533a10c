//! Destinations of rules that match CIDRs only: consecutive such rules are
//! computed into disjoint ranges, first match wins, so one plain interval set
//! per target can stand for the whole run (see `desired`).

use std::collections::BTreeMap;

use ipnet::IpNet;

use super::element::AddrRange;
use crate::{
    plan::Inputs,
    policy::{CompiledRule, Policy, Target},
    util::ranges::net_range,
};

/// A rule that only matches destination CIDRs (no ports, domains, GeoIP, domain
/// lists): consecutive ones merge into one interval set per target and family.
pub fn is_pure_cidr(rule: &CompiledRule, policy: &Policy, inputs: &Inputs) -> bool {
    rule.ports.is_empty()
        && rule.domains.is_empty()
        && rule.geoip.is_empty()
        && !rule.has_dns(&policy.domain_lists)
        && (!rule.cidrs.is_empty() || rule.lists.iter().any(|l| inputs.list_cidrs.contains_key(l)))
}

/// All CIDRs of a rule (its own and those of its CIDR lists).
pub(super) fn rule_cidrs(rule: &CompiledRule, inputs: &Inputs) -> Vec<IpNet> {
    let mut v: Vec<IpNet> = rule.cidrs.iter().map(IpNet::trunc).collect();
    for l in &rule.lists {
        if let Some(nets) = inputs.list_cidrs.get(l) {
            v.extend(nets.iter().map(IpNet::trunc));
        }
    }
    v
}

/// The networks of one family, aggregated (overlaps and neighbours joined).
pub(super) fn family_nets(nets: &[IpNet], v6: bool) -> Vec<IpNet> {
    let f: Vec<IpNet> = nets
        .iter()
        .filter(|n| matches!(n, IpNet::V6(_)) == v6)
        .copied()
        .collect();
    if f.len() <= 1 {
        f
    } else {
        IpNet::aggregate(&f)
    }
}

/// First-match-wins over ordered (CIDRs, target) rules, as disjoint ranges with
/// adjacent equal targets merged, in address order.
pub fn disjoint_ranges(rules: &[(Vec<IpNet>, Target)], v6: bool) -> Vec<(AddrRange, Target)> {
    // covered: start → end, disjoint.
    let mut covered: BTreeMap<u128, u128> = BTreeMap::new();
    let mut out: Vec<(u128, u128, Target)> = Vec::new();
    for (nets, target) in rules {
        for net in family_nets(nets, v6) {
            let (s, e) = net_range(&net);
            let mut gaps = Vec::new();
            let mut cursor = s;
            let mut done = false;
            // A covered range starting before s may reach into [s, e].
            if let Some((_, &pe)) = covered.range(..s).next_back()
                && pe >= cursor
            {
                if pe >= e {
                    done = true;
                } else {
                    cursor = pe + 1;
                }
            }
            if !done {
                for (&cs, &ce) in covered.range(s..=e) {
                    if cs > cursor {
                        gaps.push((cursor, cs - 1));
                    }
                    if ce >= e {
                        done = true;
                        break;
                    }
                    cursor = ce + 1;
                }
                if !done {
                    gaps.push((cursor, e));
                }
            }
            for (gs, ge) in gaps {
                covered.insert(gs, ge);
                out.push((gs, ge, *target));
            }
        }
    }
    out.sort_by_key(|r| r.0);
    let mut merged: Vec<(u128, u128, Target)> = Vec::with_capacity(out.len());
    for r in out {
        if let Some(last) = merged.last_mut()
            && last.2 == r.2
            && last.1.checked_add(1) == Some(r.0)
        {
            last.1 = r.1;
            continue;
        }
        merged.push(r);
    }
    merged
        .into_iter()
        .map(|(s, e, t)| (AddrRange::new(s, e, v6), t))
        .collect()
}
