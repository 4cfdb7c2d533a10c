//! Asks the kernel whether one address is in one of our sets (`nft get element`),
//! for `explain`: which element of a DNS-learned or country set a destination
//! hits, and how long a learned element has left. One `nft` process per set
//! asked, fine for a command, never used on a hot path.

use std::{net::IpAddr, process::Command};

use crate::{plan::NFT_TABLE, util::paths::nft_program};

/// The element of a set that holds an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// As nft prints it: the address, or the prefix or range holding it.
    pub element: String,
    /// Milliseconds left, for an element with a timeout.
    pub expires_ms: Option<u64>,
}

/// `Ok(None)`: the set exists and does not hold `ip`; `Err`: the set could not
/// be read (no such set, no table, no permission).
pub fn element_of(set: &str, ip: IpAddr) -> Result<Option<Found>, String> {
    // `-t`: the set's head only, however many elements it holds.
    let exists = Command::new(nft_program())
        .args(["-t", "list", "set", "inet", NFT_TABLE, set])
        .output()
        .map_err(|e| format!("{}: {e}", nft_program()))?;
    if !exists.status.success() {
        return Err(format!(
            "set {set}: {}",
            String::from_utf8_lossy(&exists.stderr).trim()
        ));
    }
    let out = Command::new(nft_program())
        .args(["get", "element", "inet", NFT_TABLE, set])
        .arg(format!("{{ {ip} }}"))
        .output()
        .map_err(|e| format!("{}: {e}", nft_program()))?;
    if !out.status.success() {
        return Ok(None);
    }
    Ok(parse(&String::from_utf8_lossy(&out.stdout)))
}

/// The first element of `nft get element`'s answer
/// (`elements = { 198.51.100.7 timeout 5s expires 3s620ms }`).
fn parse(text: &str) -> Option<Found> {
    let start = text.find("elements = {")? + "elements = {".len();
    let rest = &text[start..];
    let body = rest[..rest.find('}')?].trim();
    let first = body.split(',').next()?.trim();
    let mut words = first.split_whitespace();
    let element = words.next()?.to_string();
    let mut expires_ms = None;
    while let Some(w) = words.next() {
        if w == "expires" {
            expires_ms = words.next().and_then(duration_ms);
        }
    }
    Some(Found {
        element,
        expires_ms,
    })
}

/// nft's durations: `1d2h3m4s567ms`, any part left out.
fn duration_ms(text: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut num = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            'd' => 86_400_000,
            'h' => 3_600_000,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            'm' => 60_000,
            's' => 1000,
            _ => return None,
        };
        total += n * unit;
    }
    num.is_empty().then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_element_and_its_time_left() {
        let text = "table inet wgsplit {\n\tset alice_r0_dns4 {\n\t\ttype ipv4_addr\n\t\t\
                    flags dynamic,timeout\n\t\telements = { 198.51.100.7 timeout 5s expires 3s620ms }\n\t}\n}\n";
        assert_eq!(
            parse(text),
            Some(Found {
                element: "198.51.100.7".into(),
                expires_ms: Some(3620)
            })
        );
        let text = "\t\telements = { 8.0.0.0/8 }\n";
        assert_eq!(parse(text).unwrap().element, "8.0.0.0/8");
        assert_eq!(parse(text).unwrap().expires_ms, None);
        assert_eq!(parse("nothing"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(duration_ms("1d2h3m4s5ms"), Some(93_784_005));
        assert_eq!(duration_ms("23h59m58s"), Some(86_398_000));
        assert_eq!(duration_ms("500ms"), Some(500));
        assert_eq!(duration_ms("5x"), None);
        assert_eq!(duration_ms("5"), None);
    }
}
