//! Reads the elements of one nft set back from the kernel (`NFT_MSG_GETSETELEM`
//! dump over `NETLINK_NETFILTER`), so an update is diffed against what the
//! kernel really holds, not against what some earlier process believed it
//! loaded. Read-only; writes go through `sys::nftnl`.

use std::io;

use super::nft_consts::{
    NFT_MSG_GETSET, NFT_MSG_GETSETELEM, NFT_MSG_NEWSET, NFT_MSG_NEWSETELEM,
    NFT_SET_ELEM_INTERVAL_END, NFTA_DATA_VALUE, NFTA_LIST_ELEM, NFTA_SET_ELEM_FLAGS,
    NFTA_SET_ELEM_KEY, NFTA_SET_ELEM_LIST_ELEMENTS, NFTA_SET_ELEM_LIST_SET,
    NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_HANDLE, NFTA_SET_NAME, NFTA_SET_TABLE,
};
use super::{
    net::nl::{NLM_F_ACK, NLM_F_DUMP, attrs},
    nftnl::NftSock,
};

/// One element as the kernel holds it: the key (big-endian bytes as a number),
/// its width in bytes, and whether it closes a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawElem {
    pub key: u128,
    pub width: u8,
    pub interval_end: bool,
}

/// One nf_tables request on a socket of its own (see `NftSock::query`).
fn query(
    msg_type: u16,
    flags: u16,
    family: u8,
    table: &str,
    attrs_in: &[(u16, &str)],
    f: impl FnMut(u16, &[u8]),
) -> io::Result<()> {
    NftSock::open_table(family, table)?.query(msg_type, flags, attrs_in, f)
}

/// Every element of `family`/`table`/`set`.
pub fn dump(family: u8, table: &str, set: &str) -> io::Result<Vec<RawElem>> {
    let mut out = Vec::new();
    query(
        NFT_MSG_GETSETELEM,
        NLM_F_DUMP,
        family,
        table,
        &[
            (NFTA_SET_ELEM_LIST_TABLE, table),
            (NFTA_SET_ELEM_LIST_SET, set),
        ],
        |kind, body| {
            if kind != NFT_MSG_NEWSETELEM {
                return;
            }
            for (a, data) in attrs(body) {
                if a != NFTA_SET_ELEM_LIST_ELEMENTS {
                    continue;
                }
                for (e, elem) in attrs(data) {
                    if e != NFTA_LIST_ELEM {
                        continue;
                    }
                    let mut key = 0u128;
                    let mut width = 0u8;
                    let mut end = false;
                    for (f, v) in attrs(elem) {
                        match f {
                            NFTA_SET_ELEM_KEY => {
                                for (d, val) in attrs(v) {
                                    if d == NFTA_DATA_VALUE && val.len() <= 16 {
                                        key =
                                            val.iter().fold(0u128, |a, &b| a << 8 | u128::from(b));
                                        width = val.len() as u8;
                                    }
                                }
                            }
                            NFTA_SET_ELEM_FLAGS if v.len() >= 4 => {
                                let flags = u32::from_be_bytes(v[0..4].try_into().expect("4"));
                                end = flags & NFT_SET_ELEM_INTERVAL_END != 0;
                            }
                            _ => {}
                        }
                    }
                    out.push(RawElem {
                        key,
                        width,
                        interval_end: end,
                    });
                }
            }
        },
    )?;
    Ok(out)
}

/// The kernel's handle of a set (new for every set created), `None` when the set
/// does not exist. Cheap: one message each way.
pub fn set_handle(family: u8, table: &str, set: &str) -> io::Result<Option<u64>> {
    let mut handle = None;
    let r = query(
        NFT_MSG_GETSET,
        NLM_F_ACK,
        family,
        table,
        &[(NFTA_SET_TABLE, table), (NFTA_SET_NAME, set)],
        |kind, body| {
            if kind == NFT_MSG_NEWSET {
                for (a, data) in attrs(body) {
                    if a == NFTA_SET_HANDLE && data.len() == 8 {
                        handle = Some(u64::from_be_bytes(data.try_into().expect("8")));
                    }
                }
            }
        },
    );
    match r {
        Ok(()) => Ok(handle),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Turns interval elements (starts, and ends flagged `interval_end` one past the
/// range) back into inclusive ranges of `width`-byte keys (4 or 16).
pub fn to_ranges(elems: &[RawElem], width: usize) -> Result<Vec<(u128, u128)>, String> {
    let max = if width == 4 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    let mut keys: Vec<(u128, bool)> = Vec::with_capacity(elems.len());
    for e in elems {
        if usize::from(e.width) != width {
            return Err(format!(
                "element of {} bytes in a {width}-byte set",
                e.width
            ));
        }
        keys.push((e.key, e.interval_end));
    }
    // Ends before starts at the same key (adjacent ranges).
    keys.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut out = Vec::new();
    let mut open: Option<u128> = None;
    for (k, end) in keys {
        match (end, open) {
            (false, None) => open = Some(k),
            (true, Some(s)) if k > s => {
                out.push((s, k - 1));
                open = None;
            }
            // The kernel also reports an interval end at 0 in some versions.
            (true, None) => {}
            (false, Some(s)) => {
                // A start while one is open: the previous one was a single key
                // without an end element, or an open range.
                return Err(format!(
                    "range starting at {s:#x} is not closed before {k:#x}"
                ));
            }
            (true, Some(_)) => return Err("empty range".into()),
        }
    }
    if let Some(s) = open {
        out.push((s, max));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_from_elements() {
        let e = |k: u32, end: bool| RawElem {
            key: k.into(),
            width: 4,
            interval_end: end,
        };
        let elems = vec![
            e(30, true),
            e(10, false),
            e(20, true),
            e(20, false),
            e(40, false),
        ];
        assert_eq!(
            to_ranges(&elems, 4).unwrap(),
            vec![(10, 19), (20, 29), (40, u128::from(u32::MAX))]
        );
        assert!(to_ranges(&[e(1, false), e(2, false)], 4).is_err());
    }
}
