//! Planner tests: no root, no kernel — desired state against hand-made observed state.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    nft::{AddrRange, SetElements, as_observed, diff, disjoint_ranges},
    *,
};
use crate::{
    config::{self, Config},
    policy::{self, Target},
    util::keys,
};

fn example() -> Config {
    config::parse_valid(include_str!("../../../examples/wgsplit.conf")).unwrap()
}

fn build(c: &Config, inputs: &Inputs) -> Desired {
    let p = policy::compile(c, 0);
    desired(&p, inputs)
}

/// The observed form of a desired state, as if it had been applied.
fn applied(d: &Desired) -> Observed {
    let mut o = Observed::default();
    for (i, w) in d.wg.iter().enumerate() {
        o.links.insert(
            w.name.clone(),
            ObservedLink {
                index: i as u32 + 10,
                ours: true,
                mtu: u32::from(w.mtu),
                up: true,
                addresses: w.addresses.iter().copied().collect(),
            },
        );
        o.wg.insert(
            w.name.clone(),
            ObservedWg {
                public_key: Some(keys::public_from_private(&w.private_key)),
                listen_port: w.listen_port,
                peers: w.peers.clone(),
            },
        );
    }
    o.rules = d.rules.clone();
    o.routes = d.routes.clone();
    // As `sys` would observe it: the elements it recorded, known one by one.
    let mut nft = as_observed(&d.nft);
    for (name, set) in &mut nft.sets {
        if let Some(els) = &d.nft.sets[name].elements {
            set.elements = SetElements::Known(els.clone());
        }
    }
    o.nft = Some(nft);
    o
}

#[test]
fn from_nothing_everything_is_created() {
    let c = example();
    let d = build(&c, &Inputs::default());
    let ops = plan(&d, &Observed::default()).unwrap();
    let text: Vec<String> = ops.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|t| t == "link wg0: create WireGuard interface")
    );
    assert!(
        text.iter()
            .any(|t| t == "link wgs_us1: create WireGuard interface")
    );
    // Two upstreams × two families × (dev + unreachable).
    assert_eq!(
        ops.iter().filter(|o| matches!(o, Op::AddRoute(_))).count(),
        8
    );
    // Two fwmark rules per upstream, two oif rules per upstream and for wg0.
    assert_eq!(
        ops.iter().filter(|o| matches!(o, Op::AddRule(_))).count(),
        4 + 6
    );
    let nft = ops
        .iter()
        .find_map(|o| match o {
            Op::Nft(b) => Some(b),
            _ => None,
        })
        .unwrap();
    assert_eq!(nft.lines()[0], "add table inet wgsplit");
    let script = nft.script();
    assert!(script.contains("add chain inet wgsplit client_alice\n"));
    assert!(
        script.contains("add set inet wgsplit alice_r0_dns4 { type ipv4_addr; size 262144; flags dynamic, timeout; }")
    );
    assert!(script.contains("oifname \"wgs_us1\" masquerade"));
    assert!(script.contains("redirect to :53"));
    // Carol (expires 2030) is active at time 0; she has no rules: her address
    // jumps straight to her default (direct), with no chain of her own.
    assert!(!script.contains("client_carol"));
    assert!(script.contains(" : goto mark_direct"));
    // The unreachable fallback goes in before the dev route of the same table.
    let first_route = ops.iter().find_map(|o| match o {
        Op::AddRoute(r) => Some(r),
        _ => None,
    });
    assert_eq!(first_route.unwrap().kind, RouteKind::Unreachable);
}

#[test]
fn applied_state_plans_nothing() {
    let c = example();
    let d = build(&c, &Inputs::default());
    assert_eq!(plan(&d, &applied(&d)).unwrap(), vec![]);
    // What the daemon assumes after an apply plans nothing either.
    let assumed = assume_applied(&d, &Observed::default());
    assert_eq!(plan(&d, &assumed).unwrap(), vec![]);
}

#[test]
fn one_rule_change_touches_only_that_client() {
    let mut c = example();
    let before = build(&c, &Inputs::default());
    // Bob's rule gets another port: only client_bob is rewritten.
    let r = c.rules.iter_mut().find(|r| r.client == "bob").unwrap();
    r.port.push("tcp:2222".into());
    let after = build(&c, &Inputs::default());
    let ops = plan(&after, &applied(&before)).unwrap();
    assert_eq!(ops.len(), 1, "{ops:?}");
    let Op::Nft(b) = &ops[0] else { panic!() };
    assert!(
        b.lines().iter().all(|l| l.contains("client_bob")),
        "{:?}",
        b.lines()
    );
    assert_eq!(b.lines()[0], "flush chain inet wgsplit client_bob");

    // A CIDR change in a merged CIDR run: one element out, one in, no rule touched.
    let mut c = example();
    c.rules.insert(
        0,
        config::Rule {
            client: "alice".into(),
            action: config::Action::Proxy,
            cidr: vec!["192.0.2.0/24".into(), "203.0.113.0/24".into()],
            ..Default::default()
        },
    );
    let before = build(&c, &Inputs::default());
    c.rules[0].cidr[1] = "203.0.113.0/25".into();
    let after = build(&c, &Inputs::default());
    let ops = plan(&after, &applied(&before)).unwrap();
    let Op::Nft(b) = &ops[0] else { panic!() };
    assert_eq!(
        b.lines(),
        vec![
            "delete element inet wgsplit alice_r0_up_us1_v4 { 203.0.113.0/24 }",
            "add element inet wgsplit alice_r0_up_us1_v4 { 203.0.113.0/25 }",
        ]
    );
}

#[test]
fn removing_a_client_removes_its_chain_sets_and_peer() {
    let mut c = example();
    let before = build(&c, &Inputs::default());
    c.clients.retain(|x| x.name != "alice");
    c.rules.retain(|r| r.client != "alice");
    let after = build(&c, &Inputs::default());
    let ops = plan(&after, &applied(&before)).unwrap();
    let text: Vec<String> = ops.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|t| t.starts_with("wg wg0: remove peer") && t.contains("(alice)"))
    );
    let Some(Op::Nft(b)) = ops.iter().find(|o| matches!(o, Op::Nft(_))) else {
        panic!()
    };
    let s = b.script();
    assert!(s.contains("flush chain inet wgsplit client_alice"));
    assert!(s.contains("delete chain inet wgsplit client_alice"));
    assert!(s.contains("delete set inet wgsplit alice_r0_dns4"));
    assert!(s.contains("delete element inet wgsplit clients4 { 10.8.0.2 : goto client_alice }"));
    // The element that jumps to the chain goes before the chain does.
    let el = s.find("delete element inet wgsplit clients4").unwrap();
    let ch = s.find("delete chain inet wgsplit client_alice").unwrap();
    assert!(el < ch);
}

#[test]
fn disabled_and_expired_clients_get_nothing() {
    let mut c = example();
    c.clients
        .iter_mut()
        .find(|x| x.name == "bob")
        .unwrap()
        .enabled = Some(false);
    let d = build(&c, &Inputs::default());
    assert!(!d.nft.chains.contains_key("client_bob"));
    assert!(d.wg[0].peers.iter().all(|p| p.label != "bob"));
    let p = policy::compile(&c, 2_000_000_000);
    let d = desired(&p, &Inputs::default());
    assert!(!d.nft.chains.contains_key("client_carol"));
}

#[test]
fn foreign_interface_is_refused() {
    let c = example();
    let d = build(&c, &Inputs::default());
    let mut o = Observed::default();
    o.links.insert(
        "wgs_us1".into(),
        ObservedLink {
            index: 3,
            ours: false,
            mtu: 1500,
            up: true,
            addresses: BTreeSet::new(),
        },
    );
    let err = plan(&d, &o).unwrap_err();
    assert_eq!(err.len(), 1);
    assert!(err[0].0.contains("'wgs_us1' (upstream us1) already exists"));
}

#[test]
fn down_upstream_follows_on_down() {
    let c = example();
    let marks = policy::compile(&c, 0).marks;
    let mut inputs = Inputs::default();
    // us1: on_down block → still its own table (which then only has unreachable).
    inputs.health.insert("us1".into(), false);
    let d = build(&c, &inputs);
    let rule = |d: &Desired, i: usize| {
        d.rules
            .iter()
            .find(|r| !r.v6 && r.mark == marks.of(Target::Upstream(i)))
            .unwrap()
            .table
    };
    assert_eq!(rule(&d, 0), 20000);
    // eu1: on_down failover to us1 → us1's table while us1 is up…
    inputs.health.insert("us1".into(), true);
    inputs.health.insert("eu1".into(), false);
    let d = build(&c, &inputs);
    assert_eq!(rule(&d, 1), 20000);
    // …and its own table (the kill switch) while us1 is down too: never a dead failover.
    inputs.health.insert("us1".into(), false);
    let d = build(&c, &inputs);
    assert_eq!(rule(&d, 1), 20001);
    // direct → main.
    let mut c2 = c.clone();
    c2.upstreams[0].on_down = Some(config::OnDown::Direct);
    inputs.health.insert("us1".into(), true);
    let failing_over = build(&c2, &inputs);
    assert_eq!(rule(&failing_over, 1), 20000);
    inputs.health.insert("us1".into(), false);
    let d = build(&c2, &inputs);
    assert_eq!(rule(&d, 0), TABLE_MAIN);
    // Both up again: the plan swaps just the rules (2 upstreams × 2 families × add/del).
    let up = build(&c2, &Inputs::default());
    let ops = plan(&up, &applied(&failing_over)).unwrap();
    assert!(
        ops.iter()
            .all(|o| matches!(o, Op::AddRule(_) | Op::DelRule(_)))
    );
    assert_eq!(ops.len(), 4, "only eu1's rules change back");
    let ops = plan(&up, &applied(&d)).unwrap();
    assert_eq!(ops.len(), 4, "only us1's rules change back");
    // Every table keeps its kill switch whatever the health.
    assert_eq!(
        d.routes
            .iter()
            .filter(|r| r.kind == RouteKind::Unreachable)
            .count(),
        4
    );
}

#[test]
fn first_match_wins_in_merged_cidr_runs() {
    let nets = |v: &[&str]| v.iter().map(|s| s.parse().unwrap()).collect::<Vec<_>>();
    let rules = vec![
        (nets(&["10.0.0.0/24"]), Target::Direct),
        (nets(&["10.0.0.0/16", "10.0.0.128/25"]), Target::Upstream(0)),
        (nets(&["10.1.0.0/16"]), Target::Upstream(0)),
    ];
    let r = disjoint_ranges(&rules, false);
    let shown: Vec<String> = r
        .iter()
        .map(|(range, t)| format!("{range}={t:?}"))
        .collect();
    assert_eq!(
        shown,
        vec![
            "10.0.0.0/24=Direct",
            // 10.0.1.0–10.0.255.255 and the adjacent 10.1.0.0/16: merged.
            "10.0.1.0-10.1.255.255=Upstream(0)",
        ]
    );
    assert_eq!(
        AddrRange::new(0, u32::MAX as u128, false).to_string(),
        "0.0.0.0/0"
    );
    assert_eq!(AddrRange::new(0, u128::MAX, true).to_string(), "::/0");
}

#[test]
fn unknown_elements_are_rewritten_not_guessed() {
    let c = example();
    let d = build(&c, &Inputs::default());
    let mut o = as_observed(&d.nft);
    o.sets.get_mut("clients4").unwrap().elements = SetElements::Unknown;
    let b = diff(&d.nft, Some(&o));
    assert_eq!(b.lines()[0], "flush map inet wgsplit clients4");
    assert_eq!(b.lines().len(), 2);
    // DNS-learned sets are never flushed or filled by the engine.
    assert!(b.lines().iter().all(|l| !l.contains("_dns")));
}

#[test]
fn a_matching_digest_means_unchanged_a_stale_one_rewrites() {
    let c = example();
    let d = build(&c, &Inputs::default());
    // as_observed keeps digests only: the same state plans nothing.
    let o = as_observed(&d.nft);
    assert!(diff(&d.nft, Some(&o)).is_empty());
    // A digest of other elements: the set is rewritten whole, not guessed at.
    let mut o = as_observed(&d.nft);
    let SetElements::Digest(x) = o.sets["clients4"].elements else {
        panic!("a digest expected")
    };
    o.sets.get_mut("clients4").unwrap().elements = SetElements::Digest(x ^ 1);
    let b = diff(&d.nft, Some(&o));
    assert_eq!(b.lines()[0], "flush map inet wgsplit clients4");
    assert_eq!(b.lines().len(), 2);
}

#[test]
fn cidr_lists_feed_the_rule() {
    let mut c = example();
    c.lists.push(config::List {
        name: "office".into(),
        path: "/tmp/none".into(),
        format: Some(config::ListFormat::Cidr),
        url: None,
        category: None,
        ..Default::default()
    });
    c.rules.push(config::Rule {
        client: "carol".into(),
        action: config::Action::Block,
        list: vec!["office".into()],
        ..Default::default()
    });
    let inputs = Inputs {
        list_cidrs: BTreeMap::from([(
            "office".to_string(),
            vec![
                "192.0.2.0/25".parse().unwrap(),
                "192.0.2.128/25".parse().unwrap(),
            ],
        )]),
        ..Default::default()
    };
    let d = build(&c, &inputs);
    let m = &d.nft.sets["carol_r0_block_v4"];
    assert_eq!(
        m.elements
            .as_ref()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        vec!["192.0.2.0/24"]
    );
    assert!(
        d.nft.chains["client_carol"]
            .rules
            .contains(&"ip daddr @carol_r0_block_v4 goto mark_block".to_string())
    );
}

#[test]
fn a_cidr_run_becomes_one_disjoint_set_per_target() {
    let mut c = example();
    c.clients
        .iter_mut()
        .find(|x| x.name == "carol")
        .unwrap()
        .upstream = Some("us1".into());
    // First match wins: 10.1.0.0/16 proxied, but its 10.1.2.0/24 was taken
    // first by a direct rule; the rest of 10.0.0.0/8 is blocked.
    for (action, cidr) in [
        (config::Action::Direct, "10.1.2.0/24"),
        (config::Action::Proxy, "10.1.0.0/16"),
        (config::Action::Block, "10.0.0.0/8"),
    ] {
        c.rules.push(config::Rule {
            client: "carol".into(),
            action,
            cidr: vec![cidr.into()],
            ..Default::default()
        });
    }
    let d = build(&c, &Inputs::default());
    let els = |n: &str| -> Vec<String> {
        d.nft.sets[n]
            .elements
            .as_ref()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(els("carol_r0_direct_v4"), vec!["10.1.2.0/24"]);
    assert_eq!(
        els("carol_r0_block_v4"),
        vec!["10.0.0.0/16", "10.2.0.0-10.255.255.255"]
    );
    assert_eq!(
        els("carol_r0_up_us1_v4"),
        vec!["10.1.0.0/23", "10.1.3.0-10.1.255.255"]
    );
    // Plain sets (no verdict data): adding an element never makes the kernel
    // re-validate the table.
    assert!(!d.nft.sets["carol_r0_block_v4"].kind.is_map());
}

#[test]
fn the_forward_hook_exists_only_when_something_is_blocked() {
    let mut c = example();
    let d = build(&c, &Inputs::default());
    assert!(d.nft.chains.contains_key("forward"), "the example blocks");
    c.rules.retain(|r| r.action != config::Action::Block);
    for cl in &mut c.clients {
        if cl.default == Some(config::Action::Block) {
            cl.default = None;
        }
    }
    // Proxy without an upstream would block too: every client here has one or
    // sends the rest direct.
    let p = policy::compile(&c, 0);
    let blocked = p
        .clients
        .iter()
        .any(|x| x.default == Target::Block || x.rules.iter().any(|r| r.target == Target::Block));
    assert!(!blocked);
    let d = build(&c, &Inputs::default());
    assert!(!d.nft.chains.contains_key("forward"));
}

#[test]
fn an_endpoint_not_looked_up_yet_changes_nothing_and_its_address_sets_the_peer() {
    // The daemon plans without waiting for a host name's lookup: the upstream's
    // peer then has no endpoint in the desired state.
    let c = example();
    let none = build(&c, &Inputs::default());
    let us1 = |d: &Desired| {
        d.wg.iter()
            .flat_map(|w| &w.peers)
            .find(|p| p.label == "us1")
            .cloned()
            .unwrap()
    };
    assert_eq!(us1(&none).endpoint, None);
    // Applied twice without an address: nothing the second time.
    assert_eq!(plan(&none, &applied(&none)).unwrap(), vec![]);
    // The address landed: one peer update, with it.
    let addr: std::net::SocketAddr = "192.0.2.9:51820".parse().unwrap();
    let inputs = Inputs {
        endpoints: BTreeMap::from([("us1".to_string(), addr)]),
        ..Inputs::default()
    };
    let with = build(&c, &inputs);
    let ops = plan(&with, &applied(&none)).unwrap();
    assert!(
        matches!(&ops[..], [Op::WgPeerSet { peer, .. }] if peer.endpoint == Some(addr)),
        "{ops:?}"
    );
    // A kernel peer that has an address keeps it while a new lookup runs.
    assert_eq!(plan(&none, &applied(&with)).unwrap(), vec![]);
}
