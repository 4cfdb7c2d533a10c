//! What `explain` reads from the running system besides the config: the kernel's
//! sets (which element of a DNS-learned or country set holds the address, and
//! how long a learned one has left) and upstream health. Gathered by the front
//! end (cli), handed in as plain data: `explain` stays pure.

use std::{collections::BTreeMap, net::IpAddr};

use serde::Serialize;

use crate::policy::{self, Policy};

/// The element of a set that holds the asked address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetHit {
    pub element: String,
    /// Seconds left, for a DNS-learned element.
    pub expires_in: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Live {
    /// Upstream name → up? Missing: up (as for the planner).
    pub upstream_up: BTreeMap<String, bool>,
    /// Every set asked about: `Some(hit)`, or `None` when the kernel's set does
    /// not hold the address. A set not in the map was not read (no kernel
    /// access): `explain` says what it cannot know.
    pub sets: BTreeMap<String, Option<SetHit>>,
}

impl Live {
    pub fn is_up(&self, upstream: &str) -> bool {
        self.upstream_up.get(upstream).copied().unwrap_or(true)
    }
}

/// The sets `explain` wants read for `client` → `ip`: the DNS-learned sets of
/// its rules with domains (or domain lists), the country sets of its geoip
/// rules, and the bypass guard's DoH set, of `ip`'s family.
pub fn sets_to_read(policy: &Policy, client: &str, ip: IpAddr) -> Vec<String> {
    let Some(c) = policy.client(client) else {
        return Vec::new();
    };
    let v6 = ip.is_ipv6();
    let mut out = Vec::new();
    if c.dns_guard {
        // The bypass guard's DoH addresses (the list as loaded, `plan/guard.rs`).
        use crate::plan::guard::{DOH_SET_V4, DOH_SET_V6};
        out.push(if v6 { DOH_SET_V6 } else { DOH_SET_V4 }.to_string());
    }
    for r in &c.rules {
        if r.has_dns(&policy.domain_lists) {
            out.push(policy::dns_set_name(&c.name, r.pos, v6));
        }
        for (_, cc) in &r.geoip {
            out.push(policy::geo_set_name(cc, v6));
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    #[test]
    fn the_sets_read_are_those_of_the_clients_rules_in_the_family_asked() {
        let c = config::parse_valid(include_str!("../../../examples/wgsplit.conf")).unwrap();
        let p = policy::compile(&c, 0);
        let v4 = sets_to_read(&p, "alice", "192.0.2.1".parse().unwrap());
        assert!(v4.iter().all(|s| s.ends_with('4')), "{v4:?}");
        assert!(v4.contains(&"alice_r0_dns4".to_string()), "{v4:?}");
        let v6 = sets_to_read(&p, "alice", "2001:db8::1".parse().unwrap());
        assert!(v6.contains(&"alice_r0_dns6".to_string()), "{v6:?}");
        assert!(sets_to_read(&p, "mallory", "192.0.2.1".parse().unwrap()).is_empty());
    }
}
