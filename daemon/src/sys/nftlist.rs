//! Observes `table inet wgsplit` over netlink: its handle, its sets (name, handle,
//! type), its chains (hook) and each rule's comment. Reading it this way costs a
//! few dumps on one socket; `nft -j list ruleset` costs a process, the whole
//! ruleset (every table, not only ours) and a JSON parse — 30–190 ms with a few
//! hundred client chains.

use std::collections::BTreeMap;

use super::nft_consts::{
    NFT_DATA_VERDICT, NFT_MSG_GETCHAIN, NFT_MSG_GETRULE, NFT_MSG_GETSET, NFT_MSG_GETTABLE,
    NFT_SET_ANONYMOUS, NFT_SET_INTERVAL, NFT_SET_TIMEOUT, NFTA_CHAIN_HOOK, NFTA_CHAIN_NAME,
    NFTA_CHAIN_TABLE, NFTA_CHAIN_TYPE, NFTA_HOOK_HOOKNUM, NFTA_HOOK_PRIORITY, NFTA_RULE_CHAIN,
    NFTA_RULE_TABLE, NFTA_RULE_USERDATA, NFTA_SET_DATA_TYPE, NFTA_SET_FLAGS, NFTA_SET_HANDLE,
    NFTA_SET_KEY_TYPE, NFTA_SET_NAME, NFTA_SET_TABLE, NFTA_TABLE_HANDLE, NFTA_TABLE_NAME,
    NFTNL_UDATA_RULE_COMMENT, TYPE_IP6ADDR, TYPE_IPADDR,
};
use super::{net::nl::attrs, nftnl};
use crate::plan::{
    NFT_TABLE,
    nft::{BaseChain, ObservedChain, ObservedNft, ObservedSet, SetElements},
};

/// Handles of the table and its sets, as listed (a set recreated by someone else
/// gets a new handle, so its recorded elements are no longer trusted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handles {
    pub table: u64,
    pub sets: BTreeMap<String, u64>,
}

fn string(v: &[u8]) -> &str {
    std::str::from_utf8(v.split(|&b| b == 0).next().unwrap_or(&[])).unwrap_or("")
}

fn be_u32(v: &[u8]) -> u32 {
    v.get(..4)
        .map_or(0, |b| u32::from_be_bytes(b.try_into().unwrap_or([0; 4])))
}

fn be_u64(v: &[u8]) -> u64 {
    v.get(..8)
        .map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap_or([0; 8])))
}

/// The comment in a rule's userdata, if any.
fn rule_comment(udata: &[u8]) -> Option<String> {
    let mut p = udata;
    while p.len() >= 2 {
        let (ty, len) = (p[0], p[1] as usize);
        let value = p.get(2..2 + len)?;
        if ty == NFTNL_UDATA_RULE_COMMENT {
            return Some(string(value).to_string());
        }
        p = &p[2 + len..];
    }
    None
}

fn hook_name(num: u32) -> &'static str {
    match num {
        0 => "prerouting",
        1 => "input",
        2 => "forward",
        3 => "output",
        4 => "postrouting",
        _ => "other",
    }
}

fn chain_type(t: &str) -> &'static str {
    match t {
        "filter" => "filter",
        "nat" => "nat",
        "route" => "route",
        _ => "other",
    }
}

/// The `SetKind::signature` form of a set as the kernel describes it.
fn signature(key_type: u32, data_type: Option<u32>, flags: u32) -> String {
    let ty = match key_type {
        TYPE_IPADDR => "ipv4_addr".to_string(),
        TYPE_IP6ADDR => "ipv6_addr".to_string(),
        other => format!("type{other}"),
    };
    let data = match data_type {
        None => "",
        Some(NFT_DATA_VERDICT) => "verdict",
        Some(_) => "other",
    };
    let flag = if flags & NFT_SET_INTERVAL != 0 {
        "interval"
    } else if flags & NFT_SET_TIMEOUT != 0 {
        "timeout"
    } else {
        ""
    };
    format!("{ty}|{data}|{flag}")
}

/// Lists our table. `None` when there is no such table.
pub fn list(sock: &mut nftnl::NftSock) -> Result<Option<(ObservedNft, Handles)>, String> {
    let err = |what: &str, e: std::io::Error| format!("nf_tables: list {what}: {e}");
    let mut handles = Handles::default();
    let mut found = false;
    for msg in sock
        .dump(NFT_MSG_GETTABLE, NFTA_TABLE_NAME)
        .map_err(|e| err("tables", e))?
    {
        let mut name = "";
        let mut handle = 0;
        for (t, v) in attrs(&msg) {
            match t {
                NFTA_TABLE_NAME => name = string(v),
                NFTA_TABLE_HANDLE => handle = be_u64(v),
                _ => {}
            }
        }
        if name == NFT_TABLE {
            found = true;
            handles.table = handle;
        }
    }
    if !found {
        return Ok(None);
    }
    let mut obs = ObservedNft::default();
    for msg in sock
        .dump(NFT_MSG_GETSET, NFTA_SET_TABLE)
        .map_err(|e| err("sets", e))?
    {
        let (mut table, mut name, mut flags, mut key, mut data, mut handle) =
            ("", "", 0, 0, None, 0);
        for (t, v) in attrs(&msg) {
            match t {
                NFTA_SET_TABLE => table = string(v),
                NFTA_SET_NAME => name = string(v),
                NFTA_SET_FLAGS => flags = be_u32(v),
                NFTA_SET_KEY_TYPE => key = be_u32(v),
                NFTA_SET_DATA_TYPE => data = Some(be_u32(v)),
                NFTA_SET_HANDLE => handle = be_u64(v),
                _ => {}
            }
        }
        // Anonymous sets belong to rules (`{ 53, 853 }`), not to the plan.
        if table != NFT_TABLE || flags & NFT_SET_ANONYMOUS != 0 {
            continue;
        }
        handles.sets.insert(name.to_string(), handle);
        obs.sets.insert(
            name.to_string(),
            ObservedSet {
                signature: signature(key, data, flags),
                elements: SetElements::Unknown,
            },
        );
    }
    for msg in sock
        .dump(NFT_MSG_GETCHAIN, NFTA_CHAIN_TABLE)
        .map_err(|e| err("chains", e))?
    {
        let (mut table, mut name, mut ty, mut hook) = ("", "", "", None);
        for (t, v) in attrs(&msg) {
            match t {
                NFTA_CHAIN_TABLE => table = string(v),
                NFTA_CHAIN_NAME => name = string(v),
                NFTA_CHAIN_TYPE => ty = string(v),
                NFTA_CHAIN_HOOK => {
                    let (mut num, mut prio) = (0, 0);
                    for (ht, hv) in attrs(v) {
                        match ht {
                            NFTA_HOOK_HOOKNUM => num = be_u32(hv),
                            NFTA_HOOK_PRIORITY => prio = be_u32(hv) as i32,
                            _ => {}
                        }
                    }
                    hook = Some((num, prio));
                }
                _ => {}
            }
        }
        if table != NFT_TABLE {
            continue;
        }
        obs.chains.insert(
            name.to_string(),
            ObservedChain {
                base: hook.map(|(num, priority)| BaseChain {
                    ty: chain_type(ty),
                    hook: hook_name(num),
                    priority,
                }),
                comments: Vec::new(),
            },
        );
    }
    let mut comments: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
    for msg in sock
        .dump(NFT_MSG_GETRULE, NFTA_RULE_TABLE)
        .map_err(|e| err("rules", e))?
    {
        let (mut table, mut chain, mut comment) = ("", "", None);
        for (t, v) in attrs(&msg) {
            match t {
                NFTA_RULE_TABLE => table = string(v),
                NFTA_RULE_CHAIN => chain = string(v),
                NFTA_RULE_USERDATA => comment = rule_comment(v),
                _ => {}
            }
        }
        if table == NFT_TABLE {
            comments.entry(chain.to_string()).or_default().push(comment);
        }
    }
    for (chain, c) in comments {
        if let Some(ch) = obs.chains.get_mut(&chain) {
            ch.comments = c;
        }
    }
    Ok(Some((obs, handles)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_rule_comment_from_userdata() {
        let mut u = vec![NFTNL_UDATA_RULE_COMMENT, 8];
        u.extend_from_slice(b"wgs:abc\0");
        assert_eq!(rule_comment(&u).as_deref(), Some("wgs:abc"));
        // Another TLV first (e.g. an ebtables-nft one), then the comment.
        let mut v = vec![7, 2, 0, 0];
        v.extend_from_slice(&u);
        assert_eq!(rule_comment(&v).as_deref(), Some("wgs:abc"));
        assert_eq!(rule_comment(&[]), None);
        assert_eq!(rule_comment(&[0, 9, b'x']), None);
    }

    #[test]
    fn signatures_match_the_planner() {
        use crate::plan::nft::SetKind;
        let v = Some(NFT_DATA_VERDICT);
        assert_eq!(
            signature(TYPE_IPADDR, v, NFT_SET_INTERVAL | 0x8),
            SetKind::Map4.signature()
        );
        assert_eq!(
            signature(TYPE_IP6ADDR, None, NFT_SET_TIMEOUT),
            SetKind::Dns6.signature()
        );
        assert_eq!(
            signature(TYPE_IPADDR, None, NFT_SET_INTERVAL),
            SetKind::Net4.signature()
        );
        assert_ne!(
            signature(9, None, NFT_SET_INTERVAL),
            SetKind::Net4.signature()
        );
    }
}
