//! nftables: one `nft -f -` transaction per structural change, set elements
//! straight over netlink, a netlink listing to observe (`nftlist`; no elements:
//! it stays cheap however big the sets), and a record of the elements the engine
//! wrote last (`nft_record`). The engine reaches all three through here.

use std::{
    io::Write,
    process::{Command, Stdio},
};

pub use super::nft_record::{
    Recorded, forget_recorded, load_changed_sets, load_recorded, lock, merge_recorded,
    save_recorded, state_path,
};
pub use super::nftlist::Handles;
use super::nftnl::{self, Elem, MapElem, NftSock};
use crate::plan::{
    NFT_TABLE,
    nft::{Element, ElementChange, NftBatch, ObservedNft},
};
use crate::util::paths::nft_program;

/// Runs one script as one transaction: all of it or none of it.
pub fn run_script(script: &str) -> Result<(), String> {
    let mut child = Command::new(nft_program())
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run nft: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("nft stdin")?
        .write_all(script.as_bytes())
        .map_err(|e| format!("write to nft: {e}"))?;
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        // nft echoes the failing line with a caret; keep it short.
        let msg: Vec<&str> = err.lines().take(6).collect();
        Err(format!("nft rejected the transaction: {}", msg.join(" | ")))
    }
}

/// Applies one planned nft change as a transaction. Element changes go to the
/// kernel directly over `sock` (why: see `push_interval`); the structure through `nft -f`.
/// Returns the number of netlink messages the element path sent (0 if none).
pub fn apply_batch(sock: &mut NftSock, b: &NftBatch) -> Result<usize, String> {
    if crate::util::paths::nft_only() {
        return run_script(&b.script()).map(|()| 0);
    }
    if b.elements_only() {
        return write_elements(sock, b);
    }
    if b.from_nothing {
        run_script(&b.structure_script())?;
        return write_elements(sock, b).inspect_err(|_| {
            // The table did not exist before: removing it is the rollback.
            let _ = run_script(&format!("delete table inet {NFT_TABLE}\n"));
        });
    }
    run_script(&b.script()).map(|()| 0)
}

/// The kernel's form of one planned element in an rbtree interval set or map:
/// the start carrying the verdict, then `end + 1` flagged as the interval's end
/// (none when the range reaches the top of the address space).
///
/// Why elements bypass `nft -f`: nft 1.0.x reads back every element of every
/// interval set of the table before it changes one (≈0.36 s for a table of 50k
/// elements), and spends ≈1 s turning 50k ranges into messages. The kernel
/// needs neither.
fn push_interval<'a>(e: &'a Element, out: &mut Vec<MapElem<'a>>) {
    let (start, end) = nftnl::interval(e.key);
    out.push(MapElem {
        elem: start,
        goto: e.goto.as_deref(),
    });
    if let Some(end) = end {
        out.push(MapElem {
            elem: end,
            goto: None,
        });
    }
}

/// Writes a batch's element changes as one nf_tables transaction.
fn write_elements(sock: &mut NftSock, b: &NftBatch) -> Result<usize, String> {
    let changes: Vec<&ElementChange> = b.element_changes().collect();
    let kernel: Vec<Vec<MapElem>> = changes
        .iter()
        .map(|c| {
            let mut v = Vec::with_capacity(c.elements.len() * 2);
            for e in &c.elements {
                push_interval(e, &mut v);
            }
            v
        })
        .collect();
    let keys: Vec<Vec<Elem>> = kernel
        .iter()
        .map(|v| v.iter().map(|m| m.elem).collect())
        .collect();
    let ops: Vec<nftnl::Op> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| match c.add {
            true => nftnl::Op::AddMap {
                set: &c.set,
                elems: &kernel[i],
            },
            false => nftnl::Op::Del {
                set: &c.set,
                elems: &keys[i],
            },
        })
        .collect();
    let messages = nftnl::encode(super::nft_consts::NFPROTO_INET, NFT_TABLE, &ops, 0).messages();
    sock.apply(&ops)
        .map_err(|e| format!("the kernel rejected the element batch: {e}"))?;
    Ok(messages + 2)
}

/// Lists `table inet wgsplit` (without elements). `None` when there is no such table.
pub fn list(sock: &mut NftSock) -> Result<Option<(ObservedNft, Handles)>, String> {
    super::nftlist::list(sock)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    #[test]
    fn an_interval_is_a_start_with_the_verdict_and_a_flagged_end() {
        let e: Element = "10.0.0.0/24 : goto c".parse().unwrap();
        let mut v = Vec::new();
        push_interval(&e, &mut v);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].goto, Some("c"));
        assert_eq!(v[0].elem.key, "10.0.0.0".parse::<IpAddr>().unwrap());
        assert!(!v[0].elem.interval_end);
        assert_eq!(v[1].goto, None);
        assert_eq!(v[1].elem.key, "10.0.1.0".parse::<IpAddr>().unwrap());
        assert!(v[1].elem.interval_end);
        // A range up to the last address has no end element, in either family.
        for top in ["255.255.255.0/24 : goto c", "ffff::/16", "::/0"] {
            let e: Element = top.parse().unwrap();
            let mut v = Vec::new();
            push_interval(&e, &mut v);
            assert_eq!(v.len(), 1, "{top}");
        }
        let e: Element = "fd00::1".parse().unwrap();
        let mut v = Vec::new();
        push_interval(&e, &mut v);
        assert_eq!(v[1].elem.key, "fd00::2".parse::<IpAddr>().unwrap());
    }
}
