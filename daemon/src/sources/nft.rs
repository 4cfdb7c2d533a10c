//! The kernel side of [`super::kernel::SetIo`] for `table inet wgsplit`: reads
//! with a netlink dump ([`super::nftdump`]), writes through `sys::nftnl`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{kernel::SetIo, nftdump};
use crate::policy::NFT_TABLE;

pub struct NftIo {
    table: String,
}

impl NftIo {
    pub fn open() -> std::io::Result<Self> {
        Ok(Self {
            table: NFT_TABLE.to_string(),
        })
    }
}

pub fn ip(v: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(v))
    } else {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    }
}

impl SetIo for NftIo {
    fn read(&mut self, set: &str, v6: bool) -> Result<Option<Vec<(u128, u128)>>, String> {
        match nftdump::dump(nftdump::NFPROTO_INET, &self.table, set) {
            Ok(elems) => nftdump::to_ranges(&elems, if v6 { 16 } else { 4 }).map(Some),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(format!("reading {set}: {e}")),
        }
    }

    fn swap(
        &mut self,
        set: &str,
        _v6: bool,
        _del: &[(u128, u128)],
        _add: &[(u128, u128)],
    ) -> Result<(), String> {
        Err(format!("{set}: the netlink set writer (sys::nftnl) is not merged yet"))
    }
}
