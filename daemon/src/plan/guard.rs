//! Learned routes fail closed while in use (issue #19).
//!
//! A DNS-learned element lives for its answer's TTL. Apps keep answers far
//! longer (some never ask again), so an element that expired under a client
//! still connecting would send that client's next connection by its default —
//! out the WAN, though its rule says upstream. So the rule that matches a learned
//! set also refreshes the element it matched, in the data path: every new
//! connection through the rule (only a flow's first packet walks the client's
//! chain; later ones restore the ct mark) sets the element's timeout to
//! [`learned_hold`] from now. An address never learned is not added (the set is
//! looked up first), so it takes the client's default; an element nobody
//! connects to is gone `hold` after its last use (or its TTL, if longer left).

/// How long a learned element lives after the last new connection to it, by
/// default: a day, so an app that keeps an answer across a day's use and a night
/// still finds its route; one that is not used for a day is forgotten.
pub const LEARNED_HOLD_DEFAULT: u32 = 86_400;
/// The shortest hold accepted (`WGSPLIT_LEARNED_HOLD`): shorter would expire
/// elements between a client's connections. Tests use it.
pub const LEARNED_HOLD_MIN: u32 = 5;
/// The longest: a week.
pub const LEARNED_HOLD_MAX: u32 = 7 * 86_400;
/// Room for learned addresses per rule and family (nft's default for a set the
/// data path updates would be 65,535; the resolver's inserts count too).
pub const LEARNED_SET_SIZE: u32 = 262_144;

/// A hold clamped into its bounds; 0 (unset) is the default.
pub fn hold(secs: u32) -> u32 {
    if secs == 0 {
        LEARNED_HOLD_DEFAULT
    } else {
        secs.clamp(LEARNED_HOLD_MIN, LEARNED_HOLD_MAX)
    }
}

/// The match of a learned set that refreshes what it matched:
/// `ip daddr @S update @S { ip daddr timeout Ns }`.
pub fn learned_match(set: &str, v6: bool, hold_secs: u32) -> String {
    let fam = if v6 { "ip6" } else { "ip" };
    format!(
        "{fam} daddr @{set} update @{set} {{ {fam} daddr timeout {}s }}",
        hold(hold_secs)
    )
}

/// The declaration of a learned set: updated from the data path (`dynamic`),
/// elements with their own timeouts, room for [`LEARNED_SET_SIZE`].
pub fn learned_declaration(addr_type: &str) -> String {
    format!("type {addr_type}; size {LEARNED_SET_SIZE}; flags dynamic, timeout;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hold_is_clamped_and_zero_is_the_default() {
        assert_eq!(hold(0), LEARNED_HOLD_DEFAULT);
        assert_eq!(hold(1), LEARNED_HOLD_MIN);
        assert_eq!(hold(LEARNED_HOLD_MIN), LEARNED_HOLD_MIN);
        assert_eq!(hold(u32::MAX), LEARNED_HOLD_MAX);
        assert_eq!(hold(3600), 3600);
    }

    #[test]
    fn the_match_only_refreshes_what_is_in_the_set() {
        // The set lookup comes first: an address never learned is not added.
        assert_eq!(
            learned_match("alice_r0_dns6", true, 30),
            "ip6 daddr @alice_r0_dns6 update @alice_r0_dns6 { ip6 daddr timeout 30s }"
        );
    }
}
