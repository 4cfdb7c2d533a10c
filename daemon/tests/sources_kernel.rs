//! The kernel side of rule sources against the real nf_tables, in a network
//! namespace this test creates for itself (root only; skipped otherwise):
//! load, read back, diff update in one batch, handles of re-created sets.

use std::process::Command;

use wgsplit::sources::{
    geoip,
    kernel::{self, SetIo},
    nft::NftIo,
    ranges::{CountryBuilder, CountrySet},
};
use wgsplit::sys::{nft_consts::NFPROTO_INET, nftdump};

fn version(n: u32) -> CountrySet {
    let mut b = CountryBuilder::default();
    for i in 0..5_000u32 {
        if !(i + n).is_multiple_of(7) {
            b.v4.push((i * 256, i * 256 + 10 + n));
        }
    }
    b.v6.push((1 << 100, (1 << 100) + u128::from(n)));
    b.build()
}

fn kernel_v4(io: &mut NftIo) -> Vec<(u128, u128)> {
    io.read("geo_zz_4", false).unwrap().unwrap()
}

fn widened(c: &CountrySet) -> Vec<(u128, u128)> {
    c.v4.ranges()
        .iter()
        .map(|&(s, e)| (s.into(), e.into()))
        .collect()
}

fn nft(script: &str) {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("nft");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), script.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "nft -f failed:\n{script}");
}

const SETS: &str = "table inet wgsplit {
  set geo_zz_4 { type ipv4_addr; flags interval; }
  set geo_zz_6 { type ipv6_addr; flags interval; }
}";

#[test]
#[ignore = "kernel: needs root, run by tests/run.sh with --ignored"]
fn load_diff_and_handles() {
    // SAFETY: plain syscalls; unshare only moves this test's thread.
    assert_eq!(unsafe { libc::geteuid() }, 0, "a kernel test needs root");
    assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
    nft(SETS);
    let h1 = nftdump::set_handle(NFPROTO_INET, "wgsplit", "geo_zz_4").unwrap();
    assert!(h1.is_some());
    assert_eq!(
        nftdump::set_handle(NFPROTO_INET, "wgsplit", "nope").unwrap(),
        None
    );

    let mut b = CountryBuilder::default();
    for i in 0..40_000u32 {
        b.v4.push((i * 256, i * 256 + 99));
    }
    b.v4.push((u32::MAX - 9, u32::MAX));
    b.v6.push((1 << 120, (1 << 120) + 5));
    let first = b.build();
    let mut io = NftIo::open().unwrap();
    let r = kernel::sync_country(&mut io, "zz", &first, None).unwrap();
    assert_eq!(r[0].added, 40_001);
    let back = io.read("geo_zz_4", false).unwrap().unwrap();
    assert_eq!(back.len(), 40_001);
    assert_eq!(
        back.last(),
        Some(&(u128::from(u32::MAX - 9), u128::from(u32::MAX)))
    );

    // Grow one range, drop another, add one: one batch, only those touched.
    let mut b = CountryBuilder::default();
    for i in 0..40_000u32 {
        match i {
            7 => b.v4.push((i * 256, i * 256 + 200)),
            9 => {}
            _ => b.v4.push((i * 256, i * 256 + 99)),
        }
    }
    b.v4.push((u32::MAX - 9, u32::MAX));
    b.v4.push((u32::MAX - 100, u32::MAX - 50));
    b.v6.push((1 << 120, (1 << 120) + 5));
    let second = b.build();
    let r = kernel::sync_country(&mut io, "zz", &second, None).unwrap();
    assert_eq!((r[0].added, r[0].deleted), (2, 2));
    assert_eq!((r[1].added, r[1].deleted), (0, 0));
    let back = io.read("geo_zz_4", false).unwrap().unwrap();
    let want: Vec<(u128, u128)> = second
        .v4
        .ranges()
        .iter()
        .map(|&(s, e)| (s.into(), e.into()))
        .collect();
    assert_eq!(back, want);

    // A re-created set has a new handle (the daemon reloads it).
    nft("delete set inet wgsplit geo_zz_4");
    assert_eq!(io.read("geo_zz_4", false).unwrap(), None);
    nft("add set inet wgsplit geo_zz_4 { type ipv4_addr; flags interval; }");
    let h2 = nftdump::set_handle(NFPROTO_INET, "wgsplit", "geo_zz_4").unwrap();
    assert!(h2.is_some() && h2 != h1);

    // sync_all: remembers what it loaded (by set identity), diffs from that,
    // reloads a re-created set, and recovers when the kernel disagrees.
    nft("delete table inet wgsplit");
    nft(SETS);
    let dir = std::env::temp_dir().join(format!("wsl-kernel-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let countries = ["zz".to_string()].into();
    for n in 1..=2 {
        geoip::store(&dir, "zz", &version(n)).unwrap();
        let (r, failed) = kernel::sync_all(&mut io, &dir, &countries).unwrap();
        assert!(failed.is_empty(), "{failed:?}");
        assert!(r[0].added > 0);
        assert_eq!(kernel_v4(&mut io), widened(&version(n)), "version {n}");
    }
    assert!(dir.join("loaded.json").exists() && dir.join("geo_zz.loaded").exists());
    nft(
        "delete set inet wgsplit geo_zz_4; add set inet wgsplit geo_zz_4 { type ipv4_addr; flags interval; }",
    );
    let (r, _) = kernel::sync_all(&mut io, &dir, &countries).unwrap();
    assert_eq!(
        r[0].added,
        version(2).v4.len(),
        "a re-created set is loaded whole"
    );
    assert_eq!(kernel_v4(&mut io), widened(&version(2)));
    // Someone removes a range behind our back that the next version drops too:
    // the diff's delete fails, nothing changes, the retry from the kernel works.
    let gone = version(2)
        .v4
        .ranges()
        .iter()
        .find(|r| !version(3).v4.ranges().contains(r))
        .copied()
        .unwrap();
    let ip = |x: u32| std::net::Ipv4Addr::from(x).to_string();
    nft(&format!(
        "delete element inet wgsplit geo_zz_4 {{ {}-{} }}",
        ip(gone.0),
        ip(gone.1)
    ));
    geoip::store(&dir, "zz", &version(3)).unwrap();
    let (_, failed) = kernel::sync_all(&mut io, &dir, &countries).unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(kernel_v4(&mut io), widened(&version(3)));
    let _ = std::fs::remove_dir_all(&dir);
}
