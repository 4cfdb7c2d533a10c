//! Against the real kernel, each test in a fresh network namespace of its own
//! thread (root and `nft` needed: `#[ignore]`d, run with `--ignored`).

use std::{net::Ipv4Addr, process::Command, time::Instant};

use super::*;

/// Runs `f` on a thread moved into a new netns; the namespace dies with it.
fn in_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    assert!(
        Command::new("nft").arg("-v").output().is_ok(),
        "a kernel test needs nft"
    );
    crate::sys::in_new_netns(f)
}

fn nft(script: &str) {
    let mut c = Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(c.wait().unwrap().success(), "nft failed on:\n{script}");
}

/// `nft -j list set`: (element text, timeout s, expires s) per element.
fn list(set: &str) -> Vec<(String, Option<u64>, Option<u64>)> {
    let out = Command::new("nft")
        .args(["-j", "list", "set", "inet", "wgsplit", set])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut res = Vec::new();
    for item in v["nftables"].as_array().unwrap() {
        let Some(elems) = item["set"]["elem"].as_array() else {
            continue;
        };
        for e in elems {
            let (text, t, x) = if let Some(inner) = e.get("elem") {
                (
                    inner["val"].to_string(),
                    inner["timeout"].as_u64(),
                    inner["expires"].as_u64(),
                )
            } else {
                (e.to_string(), None, None)
            };
            res.push((text.trim_matches('"').to_string(), t, x));
        }
    }
    res
}

const TABLE: &str = "table inet wgsplit {
    set a_r0_dns4 { type ipv4_addr; flags timeout; }
    set a_r0_dns6 { type ipv6_addr; flags timeout; }
    set small4 { type ipv4_addr; size 2; flags timeout; }
    set geo_xx_4 { type ipv4_addr; flags interval; }
    set geo_xx_6 { type ipv6_addr; flags interval; }
}";

#[test]
#[ignore = "kernel: needs root, run by tests/run.sh with --ignored"]
fn hash_set_add_refresh_delete() {
    in_netns(|| {
        nft(TABLE);
        let mut s = NftSock::open().unwrap();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::7".parse().unwrap();
        s.apply(&[
            Op::Add {
                set: "a_r0_dns4",
                elems: &[Elem::with_timeout(a, 60_000)],
            },
            Op::Add {
                set: "a_r0_dns6",
                elems: &[Elem::with_timeout(b, 120_000)],
            },
        ])
        .unwrap();
        let l = list("a_r0_dns4");
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].0, "192.0.2.1");
        assert_eq!(l[0].1, Some(60));
        assert_eq!(list("a_r0_dns6")[0].1, Some(120));
        // Refresh an existing element with a longer timeout, and a missing one.
        let c: IpAddr = "192.0.2.2".parse().unwrap();
        s.apply(&[Op::Refresh {
            set: "a_r0_dns4",
            elems: &[
                Elem::with_timeout(a, 3_600_000),
                Elem::with_timeout(c, 300_000),
            ],
        }])
        .unwrap();
        let mut l = list("a_r0_dns4");
        l.sort();
        assert_eq!(l.len(), 2);
        assert_eq!((l[0].0.as_str(), l[0].1), ("192.0.2.1", Some(3600)));
        assert!(l[0].2.unwrap() > 3500, "expiry reset: {:?}", l[0]);
        assert_eq!((l[1].0.as_str(), l[1].1), ("192.0.2.2", Some(300)));
        // Refreshing to a shorter timeout works too (not just max()).
        s.apply(&[Op::Refresh {
            set: "a_r0_dns4",
            elems: &[Elem::with_timeout(a, 90_000)],
        }])
        .unwrap();
        let l = list("a_r0_dns4");
        let e = l.iter().find(|x| x.0 == "192.0.2.1").unwrap();
        assert_eq!(e.1, Some(90));
        // Plain add of an existing element is not an error.
        s.apply(&[Op::Add {
            set: "a_r0_dns4",
            elems: &[Elem::with_timeout(a, 1000)],
        }])
        .unwrap();
        s.apply(&[Op::Del {
            set: "a_r0_dns4",
            elems: &[Elem::addr(a)],
        }])
        .unwrap();
        assert_eq!(list("a_r0_dns4").len(), 1);
        // Deleting a missing element fails the whole batch, nothing applied,
        // and the error names the op and the element.
        let d: IpAddr = "198.51.100.9".parse().unwrap();
        let err = s
            .apply(&[
                Op::Add {
                    set: "a_r0_dns4",
                    elems: &[Elem::with_timeout(d, 1000)],
                },
                Op::Del {
                    set: "a_r0_dns4",
                    elems: &[Elem::addr(c), Elem::addr(a)],
                },
            ])
            .unwrap_err();
        let Error::Refused(errs) = &err else {
            panic!("{err}")
        };
        assert_eq!(errs.len(), 1, "{err}");
        assert_eq!(
            (errs[0].op, errs[0].elem, errs[0].errno),
            (Some(1), Some(1), libc::ENOENT)
        );
        assert_eq!(list("a_r0_dns4").len(), 1, "batch rolled back");
        // A missing set is reported, and the socket keeps working after it.
        let err = s
            .apply(&[Op::Add {
                set: "nope",
                elems: &[Elem::addr(d)],
            }])
            .unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOENT));
        s.apply(&[Op::Flush { set: "a_r0_dns4" }]).unwrap();
        assert!(list("a_r0_dns4").is_empty());
    });
}

#[test]
#[ignore = "kernel: needs root, run by tests/run.sh with --ignored"]
fn full_set_is_reported() {
    in_netns(|| {
        nft(TABLE);
        let mut s = NftSock::open().unwrap();
        let e: Vec<Elem> = (1..=3u32)
            .map(|i| Elem::with_timeout(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 10_000))
            .collect();
        s.apply(&[Op::Add {
            set: "small4",
            elems: &e[..2],
        }])
        .unwrap();
        let err = s
            .apply(&[Op::Refresh {
                set: "small4",
                elems: &e[2..],
            }])
            .unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENFILE), "{err}");
        assert_eq!(list("small4").len(), 2);
        // Refreshing elements already in a full set works.
        s.apply(&[Op::Refresh {
            set: "small4",
            elems: &e[..2],
        }])
        .unwrap();
    });
}

#[test]
#[ignore = "kernel: needs root, run by tests/run.sh with --ignored"]
fn interval_sets_load_and_match() {
    in_netns(|| {
        nft(TABLE);
        let mut s = NftSock::open().unwrap();
        let nets: Vec<IpNet> = [
            "10.1.0.0/16",
            "10.3.0.0/24",
            "10.3.1.0/24",
            "255.255.255.0/24",
            "2001:db8::/32",
        ]
        .iter()
        .map(|x| x.parse().unwrap())
        .collect();
        let (v4, v6) = split_family(&intervals(&nets));
        s.apply(&[
            Op::Add {
                set: "geo_xx_4",
                elems: &v4,
            },
            Op::Add {
                set: "geo_xx_6",
                elems: &v6,
            },
        ])
        .unwrap();
        let mut l: Vec<String> = list("geo_xx_4").into_iter().map(|x| x.0).collect();
        l.sort();
        assert_eq!(l.len(), 3, "{l:?}");
        assert!(
            l.iter().any(|x| x.contains("10.3.0.0") && x.contains("23")),
            "{l:?}"
        );
        assert!(l.iter().any(|x| x.contains("255.255.255.0")), "{l:?}");
        // `nft get element` answers which interval holds an address.
        let get = |set: &str, a: &str| {
            Command::new("nft")
                .args([
                    "get",
                    "element",
                    "inet",
                    "wgsplit",
                    set,
                    &format!("{{ {a} }}"),
                ])
                .output()
                .unwrap()
                .status
                .success()
        };
        assert!(get("geo_xx_4", "10.1.200.3"));
        assert!(get("geo_xx_4", "10.3.1.255"));
        assert!(!get("geo_xx_4", "10.3.2.0"));
        assert!(get("geo_xx_4", "255.255.255.255"));
        assert!(get("geo_xx_6", "2001:db8:ffff::1"));
        assert!(!get("geo_xx_6", "2001:db9::"));
        // Delete one range (its start and end pair), then replace everything
        // atomically (flush + add in one batch).
        let one = intervals(&["10.1.0.0/16".parse().unwrap()]);
        s.apply(&[Op::Del {
            set: "geo_xx_4",
            elems: &one,
        }])
        .unwrap();
        assert!(!get("geo_xx_4", "10.1.200.3"));
        let other = intervals(&["172.16.0.0/12".parse().unwrap()]);
        s.apply(&[
            Op::Flush { set: "geo_xx_4" },
            Op::Add {
                set: "geo_xx_4",
                elems: &other,
            },
        ])
        .unwrap();
        assert!(!get("geo_xx_4", "10.3.1.255"));
        assert!(get("geo_xx_4", "172.20.0.1"));
    });
}

#[test]
#[ignore = "kernel: needs root, run by tests/run.sh with --ignored"]
fn bulk_loads_are_fast() {
    in_netns(|| {
        nft(TABLE);
        let mut s = NftSock::open().unwrap();
        let e: Vec<Elem> = (0..10_000u32)
            .map(|i| Elem::with_timeout(IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i)), 600_000))
            .collect();
        let t = Instant::now();
        s.apply(&[Op::Add {
            set: "a_r0_dns4",
            elems: &e,
        }])
        .unwrap();
        let add = t.elapsed();
        let t = Instant::now();
        s.apply(&[Op::Refresh {
            set: "a_r0_dns4",
            elems: &e,
        }])
        .unwrap();
        let refresh = t.elapsed();
        // 100k intervals (200k elements): more than one message, one batch.
        let nets: Vec<IpNet> = (0..100_000u32)
            .map(|i| {
                IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::from(0x2000_0000 + i * 512), 24).unwrap())
            })
            .collect();
        let iv = intervals(&nets);
        assert_eq!(iv.len(), 200_000);
        let t = Instant::now();
        s.apply(&[Op::Add {
            set: "geo_xx_4",
            elems: &iv,
        }])
        .unwrap();
        let bulk = t.elapsed();
        let t = Instant::now();
        let mut one = Vec::new();
        for i in 0..1000u32 {
            let el = [Elem::with_timeout(
                IpAddr::V4(Ipv4Addr::from(0x0c00_0000 + i)),
                60_000,
            )];
            let t1 = Instant::now();
            s.apply(&[Op::Refresh {
                set: "a_r0_dns4",
                elems: &el,
            }])
            .unwrap();
            one.push(t1.elapsed());
        }
        let _ = t;
        one.sort();
        eprintln!(
            "10k add {add:?}, 10k refresh {refresh:?}, 100k intervals {bulk:?}, \
             one refresh p50 {:?} p99 {:?}",
            one[500], one[990]
        );
        assert_eq!(list("a_r0_dns4").len(), 11_000);
        assert!(add.as_millis() < 500, "10k add took {add:?}");
    });
}

#[test]
#[ignore = "kernel: needs root, run by tests/run.sh with --ignored"]
fn an_early_refusal_is_reported_though_only_the_last_message_asks_for_an_ack() {
    in_netns(|| {
        nft(TABLE);
        let mut s = NftSock::open().unwrap();
        let missing = [Elem::addr("192.0.2.9".parse().unwrap())];
        let fine = [Elem::with_timeout("192.0.2.1".parse().unwrap(), 10_000)];
        // The first of two messages fails (deleting what is not there), the
        // last succeeds: the batch is refused as a whole, naming op 0, and the
        // socket is left with nothing unread for the next batch.
        let err = s
            .apply(&[
                Op::Del {
                    set: "a_r0_dns4",
                    elems: &missing,
                },
                Op::Add {
                    set: "a_r0_dns4",
                    elems: &fine,
                },
            ])
            .unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOENT), "{err}");
        let Error::Refused(errs) = &err else {
            panic!("{err}")
        };
        assert_eq!(errs.len(), 1, "{err}");
        assert_eq!(errs[0].op, Some(0));
        assert!(list("a_r0_dns4").is_empty());
        // A batch after it reads its own ack, not a leftover of the last one.
        s.apply(&[Op::Add {
            set: "a_r0_dns4",
            elems: &fine,
        }])
        .unwrap();
        assert_eq!(list("a_r0_dns4").len(), 1);
    });
}
