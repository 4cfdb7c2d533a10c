//! The kernel side of [`super::kernel::SetIo`] for `table inet wgsplit`: reads
//! with a netlink dump ([`super::nftdump`]), writes through `sys::nftnl`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::kernel::SetIo;
use crate::sys::{nft_consts::NFPROTO_INET, nftdump};
use crate::{
    plan::NFT_TABLE,
    sys::nftnl::{Elem, NftSock, Op},
};

pub struct NftIo {
    table: String,
    sock: NftSock,
}

impl NftIo {
    pub fn open() -> std::io::Result<Self> {
        Ok(Self {
            table: NFT_TABLE.to_string(),
            sock: NftSock::open()?,
        })
    }
}

/// Interval-set elements of inclusive ranges: the start, and the end flagged
/// `interval_end` one past the range (none when the range reaches the last
/// address).
pub fn elems(ranges: &[(u128, u128)], v6: bool) -> Vec<Elem> {
    let max = if v6 { u128::MAX } else { u128::from(u32::MAX) };
    let mut out = Vec::with_capacity(ranges.len() * 2);
    for &(s, e) in ranges {
        out.push(Elem::addr(ip(s, v6)));
        if e < max {
            out.push(Elem {
                interval_end: true,
                ..Elem::addr(ip(e + 1, v6))
            });
        }
    }
    out
}

pub fn ip(v: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(v))
    } else {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    }
}

impl SetIo for NftIo {
    /// Boot, network namespace and the set's kernel handle: a set created anew
    /// (or a reboot, or another namespace) never has the same identity.
    fn identity(&mut self, set: &str) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let handle = nftdump::set_handle(NFPROTO_INET, &self.table, set).ok()??;
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let netns = std::fs::metadata("/proc/thread-self/ns/net").ok()?.ino();
        Some(format!("{}:{netns}:{handle}", boot.trim()))
    }

    fn read(&mut self, set: &str, v6: bool) -> Result<Option<Vec<(u128, u128)>>, String> {
        match nftdump::dump(NFPROTO_INET, &self.table, set) {
            Ok(elems) => nftdump::to_ranges(&elems, if v6 { 16 } else { 4 }).map(Some),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(format!("reading {set}: {e}")),
        }
    }

    fn swap(
        &mut self,
        set: &str,
        v6: bool,
        del: &[(u128, u128)],
        add: &[(u128, u128)],
    ) -> Result<(), String> {
        let del = elems(del, v6);
        let add = elems(add, v6);
        let mut ops = Vec::with_capacity(2);
        if !del.is_empty() {
            ops.push(Op::Del { set, elems: &del });
        }
        if !add.is_empty() {
            ops.push(Op::Add { set, elems: &add });
        }
        self.sock.apply(&ops).map_err(|e| e.to_string())
    }
}
