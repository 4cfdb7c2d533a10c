//! The only code that touches the kernel: netlink (links, addresses, routes,
//! rules, nf_tables), WireGuard devices, socket options. Each function does one
//! kernel job; the engine (`crate::engine`) strings them into observe → apply.

pub mod lookup;
pub mod net;
pub mod nft;
pub mod nft_consts;
pub mod nft_record;
pub mod nftdump;
pub mod nftget;
pub mod nftlist;
pub mod nftnl;
pub mod sock;
pub mod wg;

/// Runs `f` on a thread moved into a new network namespace, which dies with the
/// thread: kernel tests of this module's parts. They are `#[ignore]`d, and run by
/// the test command as root with `--ignored`; run without root they fail, never
/// pass silently.
#[cfg(test)]
pub(crate) fn in_new_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "a kernel test needs root");
    Some(
        std::thread::spawn(move || {
            // SAFETY: unshare affects only this thread's namespaces.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
            f()
        })
        .join()
        .unwrap(),
    )
}

/// CPU time of the calling thread, in milliseconds.
pub fn thread_cpu_ms() -> f64 {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into memory we own.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.sec as f64 * 1000.0 + ts.nsec as f64 / 1e6
}
