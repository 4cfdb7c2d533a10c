//! The desired table, built from the compiled policy: the mark chains, the
//! hooks, one chain per client with rules, and the sets those rules read.
//! Layout and reasons: daemon/DESIGN.md ("nftables").

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use crate::plan::guard;

use super::{
    cidr_runs::{disjoint_ranges, family_nets, is_pure_cidr, rule_cidrs},
    element::{AddrRange, Element},
    names::{cidr_set_name, client_chain, mark_chain, net_set_name, nft_quoted},
    table::{BaseChain, NftChain, NftSet, NftState, SetKind},
};
use crate::{
    config::types::Proto,
    plan::Inputs,
    policy::{self, CompiledRule, Policy, Target},
};

/// The rule texts matching a rule's ports (one per protocol), or one empty
/// text when the rule has no ports.
fn port_clauses(rule: &CompiledRule) -> Vec<String> {
    if rule.ports.is_empty() {
        return vec![String::new()];
    }
    let mut tcp = Vec::new();
    let mut udp = Vec::new();
    for p in &rule.ports {
        let text = if p.first == p.last {
            p.first.to_string()
        } else {
            format!("{}-{}", p.first, p.last)
        };
        match p.proto {
            Proto::Tcp => tcp.push(text),
            Proto::Udp => udp.push(text),
            Proto::Any => {
                tcp.push(text.clone());
                udp.push(text);
            }
        }
    }
    let set = |v: &Vec<String>| {
        if v.len() == 1 {
            v[0].clone()
        } else {
            format!("{{ {} }}", v.join(", "))
        }
    };
    if tcp == udp {
        return vec![format!(
            "meta l4proto {{ tcp, udp }} th dport {}",
            set(&tcp)
        )];
    }
    let mut out = Vec::new();
    if !tcp.is_empty() {
        out.push(format!("meta l4proto tcp th dport {}", set(&tcp)));
    }
    if !udp.is_empty() {
        out.push(format!("meta l4proto udp th dport {}", set(&udp)));
    }
    out
}

/// Builds the desired table.
pub fn desired(policy: &Policy, inputs: &Inputs) -> NftState {
    let mut st = NftState::default();
    let server = &policy.server;
    let wg = &server.interface;
    let marks = policy.marks;
    let mask = marks.mask;
    let keep = !mask;
    let chain = |st: &mut NftState, name: &str, base: Option<BaseChain>, rules: Vec<String>| {
        st.chains.insert(name.to_string(), NftChain { base, rules });
    };

    // Mark chains: one per target.
    let targets: Vec<Target> = Target::all(policy.upstreams.len()).collect();
    for &t in &targets {
        let m = marks.of(t);
        chain(
            &mut st,
            &mark_chain(policy, t),
            None,
            vec![format!(
                "meta mark set meta mark and {keep:#010x} or {m:#010x} ct mark set ct mark and {keep:#010x} or {m:#010x} accept"
            )],
        );
    }

    // prerouting: one interface compare for every packet; the clients' packets
    // then restore, are left alone, or are dispatched by client in `from_clients`.
    let mut from = Vec::new();
    for &t in &targets {
        let m = marks.of(t);
        from.push(format!(
            "ct mark and {mask:#010x} == {m:#010x} meta mark set meta mark and {keep:#010x} or {m:#010x} accept"
        ));
    }
    from.push("meta l4proto { tcp, udp } th dport 53 return".to_string());
    for net in &server.addresses {
        let fam = if matches!(net, IpNet::V6(_)) {
            "ip6"
        } else {
            "ip"
        };
        from.push(format!("{fam} daddr {} return", net.trunc()));
    }
    from.push("ip saddr vmap @clients4".to_string());
    from.push("ip6 saddr vmap @clients6".to_string());
    chain(&mut st, "from_clients", None, from);
    chain(
        &mut st,
        "prerouting",
        Some(BaseChain {
            ty: "filter",
            hook: "prerouting",
            priority: -150,
        }),
        vec![format!("iifname {} jump from_clients", nft_quoted(wg))],
    );
    if !policy.upstreams.is_empty() {
        let base = BaseChain {
            ty: "route",
            hook: "output",
            priority: -150,
        };
        chain(
            &mut st,
            "output_related",
            Some(base),
            guard::related_rules(policy),
        );
    }
    // Blocked traffic is rejected where it would be forwarded. Only when some
    // active client can send anything to `block`: otherwise the hook would cost
    // every forwarded packet a pass for nothing.
    let blocks =
        policy.clients.iter().filter(|c| c.active).any(|c| {
            c.default == Target::Block || c.rules.iter().any(|r| r.target == Target::Block)
        });
    if blocks {
        chain(
            &mut st,
            "forward",
            Some(BaseChain {
                ty: "filter",
                hook: "forward",
                priority: 0,
            }),
            vec![format!(
                "meta mark and {mask:#010x} == {:#010x} reject",
                marks.of(Target::Block)
            )],
        );
    }
    chain(
        &mut st,
        "dstnat",
        Some(BaseChain {
            ty: "nat",
            hook: "prerouting",
            priority: -100,
        }),
        vec![format!(
            "iifname {} meta l4proto {{ tcp, udp }} th dport 53 redirect to :{}",
            nft_quoted(wg),
            server.dns_port
        )],
    );
    let masq = policy
        .upstreams
        .iter()
        .filter(|u| u.enabled)
        .map(|u| format!("oifname {} masquerade", nft_quoted(&u.interface)))
        .collect();
    chain(
        &mut st,
        "srcnat",
        Some(BaseChain {
            ty: "nat",
            hook: "postrouting",
            priority: 100,
        }),
        masq,
    );

    // Chain names by target, formatted once (every merged set's name and rule needs one).
    let mark_of = Target::index;
    let mark_names: Vec<String> = targets.iter().map(|t| mark_chain(policy, *t)).collect();
    let mut clients4 = BTreeSet::new();
    let mut clients6 = BTreeSet::new();
    for c in policy.clients.iter().filter(|c| c.active) {
        let cname = client_chain(&c.name);
        let mut rules = Vec::new();
        if c.dns_guard {
            rules.extend(guard::bypass_rules());
            let doh = guard::doh_nets(&policy.doh_cidr_lists, &inputs.list_cidrs);
            for (name, kind, v6) in [
                (guard::DOH_SET_V4, SetKind::Net4, false),
                (guard::DOH_SET_V6, SetKind::Net6, true),
            ] {
                // Aggregated: an interval set refuses overlapping elements.
                let els = family_nets(&doh, v6)
                    .iter()
                    .map(|n| Element::key(AddrRange::of_net(n)))
                    .collect();
                st.sets.insert(name.into(), NftSet::new(kind, Some(els)));
            }
        }
        let mut i = 0;
        while i < c.rules.len() {
            let r = &c.rules[i];
            if is_pure_cidr(r, policy, inputs) {
                // Merge the run of pure-CIDR rules: first match wins, so each
                // destination range gets exactly one target. One plain interval
                // set per target and family, each with its `goto`: the sets'
                // ranges are disjoint, so the order of these rules doesn't matter.
                // (Not one verdict map: adding an element whose data is a `goto`
                // makes the kernel re-validate every verdict map of the table at
                // commit — 4.4 ms at 50k elements here, 0.05 ms for a plain set.)
                let mut run = Vec::new();
                let start = r.pos;
                while i < c.rules.len() && is_pure_cidr(&c.rules[i], policy, inputs) {
                    run.push((rule_cidrs(&c.rules[i], inputs), c.rules[i].target));
                    i += 1;
                }
                for v6 in [false, true] {
                    let mut by_target: BTreeMap<usize, BTreeSet<Element>> = BTreeMap::new();
                    for (range, t) in disjoint_ranges(&run, v6) {
                        by_target
                            .entry(mark_of(t))
                            .or_default()
                            .insert(Element::key(range));
                    }
                    let fam = if v6 { "ip6" } else { "ip" };
                    for (m, elements) in by_target {
                        let mark = &mark_names[m];
                        let target = mark.strip_prefix("mark_").unwrap_or(mark);
                        let name = cidr_set_name(&c.name, start, target, v6);
                        rules.push(format!("{fam} daddr @{name} goto {mark}"));
                        st.sets.insert(
                            name,
                            NftSet::new(
                                if v6 { SetKind::Net6 } else { SetKind::Net4 },
                                Some(elements),
                            ),
                        );
                    }
                }
                continue;
            }
            i += 1;
            let goto = format!("goto {}", mark_chain(policy, r.target));
            let mut dests = Vec::new();
            if r.has_destination() {
                let cidrs = rule_cidrs(r, inputs);
                for v6 in [false, true] {
                    let nets = family_nets(&cidrs, v6);
                    let fam = if v6 { "ip6" } else { "ip" };
                    if nets.len() == 1 {
                        dests.push(format!("{fam} daddr {}", AddrRange::of_net(&nets[0])));
                    } else if !nets.is_empty() {
                        let name = net_set_name(&c.name, r.pos, v6);
                        st.sets.insert(
                            name.clone(),
                            NftSet::new(
                                if v6 { SetKind::Net6 } else { SetKind::Net4 },
                                Some(
                                    nets.iter()
                                        .map(|n| Element::key(AddrRange::of_net(n)))
                                        .collect(),
                                ),
                            ),
                        );
                        dests.push(format!("{fam} daddr @{name}"));
                    }
                }
                if r.has_dns(&policy.domain_lists) {
                    for v6 in [false, true] {
                        let name = policy::dns_set_name(&c.name, r.pos, v6);
                        st.sets.insert(
                            name.clone(),
                            NftSet::new(if v6 { SetKind::Dns6 } else { SetKind::Dns4 }, None),
                        );
                        dests.push(guard::learned_match(&name, v6, inputs.learned_hold));
                    }
                }
                for (neg, cc) in &r.geoip {
                    for v6 in [false, true] {
                        let name = policy::geo_set_name(cc, v6);
                        st.sets.insert(
                            name.clone(),
                            NftSet::new(if v6 { SetKind::Net6 } else { SetKind::Net4 }, None),
                        );
                        let fam = if v6 { "ip6" } else { "ip" };
                        let op = if *neg { "!= " } else { "" };
                        dests.push(format!("{fam} daddr {op}@{name}"));
                    }
                }
                if dests.is_empty() {
                    // Only lists with nothing loaded yet: matches nothing for now.
                    continue;
                }
            } else {
                dests.push(String::new());
            }
            for d in &dests {
                for p in port_clauses(r) {
                    let text = [d.as_str(), p.as_str(), goto.as_str()]
                        .iter()
                        .filter(|s| !s.is_empty())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(" ");
                    rules.push(text);
                }
            }
        }
        // A client without rules needs no chain: its addresses jump straight to
        // its default's mark chain, so adding or removing such a client changes
        // map elements only (no `nft -f`, no rule rewritten).
        let entry = if rules.is_empty() {
            mark_chain(policy, c.default)
        } else {
            rules.push(format!("goto {}", mark_chain(policy, c.default)));
            chain(&mut st, &cname, None, rules);
            cname
        };
        for a in &c.addresses {
            let el = Element::goto(AddrRange::of_net(a), &entry);
            if matches!(a, IpNet::V6(_)) {
                clients6.insert(el);
            } else {
                clients4.insert(el);
            }
        }
    }
    st.sets.insert(
        "clients4".into(),
        NftSet::new(SetKind::Map4, Some(clients4)),
    );
    st.sets.insert(
        "clients6".into(),
        NftSet::new(SetKind::Map6, Some(clients6)),
    );
    st
}
