//! WireGuard devices: kernel links over generic netlink (`kernel`) on routers,
//! userspace ones (boringtun) through the cross-platform UAPI text protocol on
//! their control socket, `/var/run/wireguard/NAME.sock`. Both are our own small
//! code rather than wireguard-control, which linked a second netlink stack
//! (see README "Numbers").

mod kernel;
pub mod peers;

use std::{
    fmt::Write as _,
    io::{BufRead, BufReader, Write},
    net::SocketAddr,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use ipnet::IpNet;

use crate::{
    config::Backend,
    plan::{ObservedWg, WgPeer},
};

const SOCKET_DIR: &str = "/var/run/wireguard";

/// A peer as the device reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerState {
    pub public_key: [u8; 32],
    /// `None` when unset (all zeros).
    pub preshared_key: Option<[u8; 32]>,
    pub endpoint: Option<SocketAddr>,
    /// Truncated to their networks, sorted.
    pub allowed_ips: Vec<IpNet>,
    /// `None` when off (0).
    pub keepalive: Option<u16>,
    /// `None` before the first handshake. The kernel reports the time of the
    /// last handshake; boringtun reports its age in seconds, handed on as that
    /// many seconds after the epoch (see `clients::live::handshake_age`).
    pub last_handshake: Option<SystemTime>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// A device as it reports itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceState {
    /// Its own public key (derived from the private key when only that is told).
    pub public_key: Option<[u8; 32]>,
    /// `None` when 0 (not listening yet).
    pub listen_port: Option<u16>,
    /// Sorted by public key.
    pub peers: Vec<PeerState>,
}

/// One change to a device: what `wg set` would do.
#[derive(Debug, Default)]
struct Update<'a> {
    private_key: Option<[u8; 32]>,
    listen_port: Option<u16>,
    /// Set in full: allowed IPs replaced, preshared key and keepalive set or cleared.
    peers: &'a [&'a WgPeer],
    remove: Option<[u8; 32]>,
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 15
        || name.contains(['/', '\0'])
        || name.contains(char::is_whitespace)
    {
        return Err(format!(
            "interface name '{name}': not a valid interface name"
        ));
    }
    Ok(())
}

fn sock_path(name: &str) -> std::path::PathBuf {
    Path::new(SOCKET_DIR).join(format!("{name}.sock"))
}

/// Reads a device (an error when there is no such device or it can't be read).
pub fn device(name: &str, b: Backend) -> Result<DeviceState, String> {
    check_name(name)?;
    let mut dev = match b {
        Backend::Kernel => kernel::get(name).map_err(|e| format!("{name}: {e}"))?,
        Backend::Userspace => get_userspace(name)?,
    };
    for p in &mut dev.peers {
        p.allowed_ips.iter_mut().for_each(|n| *n = n.trunc());
        p.allowed_ips.sort();
        p.preshared_key = p.preshared_key.filter(|k| k != &[0u8; 32]);
        p.keepalive = p.keepalive.filter(|k| *k != 0);
    }
    dev.peers.sort_by_key(|p| p.public_key);
    dev.listen_port = dev.listen_port.filter(|p| *p != 0);
    Ok(dev)
}

/// Reads a device's configuration: `Ok(None)` when there is no such device,
/// `Err` when it is there but did not answer (a busy userspace device: the
/// caller must not take it for missing and start a second one beside it).
pub fn get(name: &str, b: Backend) -> Result<Option<ObservedWg>, String> {
    let dev = match device(name, b) {
        Ok(dev) => dev,
        Err(e) if present(name, b) => return Err(e),
        Err(_) => return Ok(None),
    };
    Ok(Some(ObservedWg {
        public_key: dev.public_key,
        listen_port: dev.listen_port,
        peers: dev
            .peers
            .into_iter()
            .map(|p| WgPeer {
                public_key: p.public_key,
                preshared_key: p.preshared_key,
                endpoint: p.endpoint,
                allowed_ips: p.allowed_ips,
                keepalive: p.keepalive,
                label: String::new(),
            })
            .collect(),
    }))
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn hex(k: &[u8; 32]) -> String {
    let mut s = String::with_capacity(64);
    for b in k {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Is the device there, answering or not? Kernel: a link of that name
/// exists. Userspace: something listens on its control socket (no socket
/// file, or a stale one nobody serves, is no device); one that accepts and then
/// stays silent past the read time-out is a busy device, not a missing one.
pub fn present(name: &str, b: Backend) -> bool {
    match b {
        Backend::Kernel => super::net::link_index(name).is_some(),
        Backend::Userspace => match std::os::unix::net::UnixStream::connect(sock_path(name)) {
            Ok(_) => true,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ),
        },
    }
}

/// One UAPI exchange: the request (ending in an empty line), the answer's
/// `key=value` lines up to its empty line; a non-zero `errno` is an error.
fn uapi(name: &str, request: &str) -> Result<Vec<(String, String)>, String> {
    let mut s = std::os::unix::net::UnixStream::connect(sock_path(name))
        .map_err(|e| format!("{name}: control socket: {e}"))?;
    let io = |e: std::io::Error| format!("{name}: control socket: {e}");
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(io)?;
    s.write_all(request.as_bytes()).map_err(io)?;
    let mut out = Vec::new();
    for line in BufReader::new(s).lines() {
        let line = line.map_err(io)?;
        if line.is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k == "errno" {
            if v != "0" {
                return Err(format!("{name}: the userspace device answered errno {v}"));
            }
            continue;
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// The cross-platform UAPI `get=1` over the control socket (boringtun answers
/// `own_public_key` rather than the private key).
fn get_userspace(name: &str) -> Result<DeviceState, String> {
    let mut dev = DeviceState::default();
    let bad = |k: &str, v: &str| format!("{name}: bad '{k}={v}' from the userspace device");
    for (k, v) in uapi(name, "get=1\n\n")? {
        let (k, v) = (k.as_str(), v.as_str());
        match k {
            "private_key" => {
                dev.public_key = hex32(v).map(|p| crate::util::keys::public_from_private(&p))
            }
            "own_public_key" => dev.public_key = hex32(v),
            "listen_port" => dev.listen_port = v.parse().ok(),
            "public_key" => dev.peers.push(PeerState {
                public_key: hex32(v).ok_or_else(|| bad(k, v))?,
                ..Default::default()
            }),
            _ => {
                let Some(p) = dev.peers.last_mut() else {
                    continue;
                };
                match k {
                    "preshared_key" => p.preshared_key = hex32(v),
                    "endpoint" => p.endpoint = v.parse().ok(),
                    "persistent_keepalive_interval" => p.keepalive = v.parse().ok(),
                    "allowed_ip" => {
                        if let Ok(n) = v.parse::<IpNet>() {
                            p.allowed_ips.push(n);
                        }
                    }
                    "rx_bytes" => p.rx_bytes = v.parse().map_err(|_| bad(k, v))?,
                    "tx_bytes" => p.tx_bytes = v.parse().map_err(|_| bad(k, v))?,
                    "last_handshake_time_sec" => {
                        let secs: u64 = v.parse().map_err(|_| bad(k, v))?;
                        p.last_handshake =
                            (secs > 0).then(|| UNIX_EPOCH + Duration::from_secs(secs));
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(dev)
}

/// The UAPI `set=1` request for an update.
fn uapi_set_request(u: &Update) -> String {
    let mut r = String::from("set=1\n");
    if let Some(k) = &u.private_key {
        let _ = writeln!(r, "private_key={}", hex(k));
    }
    if let Some(p) = u.listen_port {
        let _ = writeln!(r, "listen_port={p}");
    }
    for p in u.peers {
        let _ = writeln!(r, "public_key={}", hex(&p.public_key));
        r.push_str("replace_allowed_ips=true\n");
        let _ = writeln!(
            r,
            "preshared_key={}",
            hex(&p.preshared_key.unwrap_or([0; 32]))
        );
        if let Some(e) = p.endpoint {
            let _ = writeln!(r, "endpoint={e}");
        }
        let _ = writeln!(
            r,
            "persistent_keepalive_interval={}",
            p.keepalive.unwrap_or(0)
        );
        for n in &p.allowed_ips {
            let _ = writeln!(r, "allowed_ip={n}");
        }
    }
    if let Some(k) = &u.remove {
        let _ = writeln!(r, "public_key={}\nremove=true", hex(k));
    }
    r.push('\n');
    r
}

fn apply(name: &str, b: Backend, u: &Update) -> Result<(), String> {
    check_name(name)?;
    match b {
        Backend::Kernel => kernel::set(name, u).map_err(|e| e.to_string()),
        Backend::Userspace => set_userspace(name, u),
    }
}

/// A userspace update, around a boringtun fault: any change to a peer it
/// already has (new allowed IPs, keepalive, endpoint, even the same values
/// again) stops the device from answering on its control socket for good
/// (boringtun 0.7.1, checked by hand; `a_changed_peer_keeps_the_userspace_device_answering`
/// checks it here). So the update's peers are removed first, in a request of
/// their own (removing one it does not have is harmless), then set whole. A
/// changed peer handshakes again and its counters start over; the kernel
/// backend keeps both.
fn set_userspace(name: &str, u: &Update) -> Result<(), String> {
    if !u.peers.is_empty() {
        let mut removal = String::from("set=1\n");
        for p in u.peers {
            let _ = writeln!(removal, "public_key={}\nremove=true", hex(&p.public_key));
        }
        removal.push('\n');
        uapi(name, &removal)?;
    }
    uapi(name, &uapi_set_request(u)).map(|_| ())
}

/// Creates the interface: a kernel `wireguard` link, or a boringtun process.
pub fn create(name: &str, b: Backend) -> Result<(), String> {
    check_name(name)?;
    match b {
        Backend::Kernel => super::net::create_link(name, "wireguard")
            .map_err(|e| format!("create wireguard link {name}: {e}")),
        Backend::Userspace => {
            let sock = sock_path(name);
            match get(name, b) {
                Ok(Some(_)) => return Ok(()),
                // Served but silent: a second process on the same interface
                // would fight the first for its packets.
                Err(e) => return Err(format!("{e}; it runs, so no second one is started")),
                Ok(None) => {}
            }
            let _ = std::fs::create_dir_all(SOCKET_DIR);
            let _ = std::fs::remove_file(&sock);
            let program = crate::util::paths::wg_userspace_program();
            // boringtun daemonises itself; as root it must be told to keep privileges.
            let status = Command::new(&program)
                .arg(name)
                .env("WG_SUDO", "true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(|e| format!("start {program} {name}: {e}"))?;
            if !status.success() {
                return Err(format!("{program} {name} exited with {status}"));
            }
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                if sock.exists() && matches!(get(name, b), Ok(Some(_))) {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(format!("{program} {name}: no control socket after 5 s"))
        }
    }
}

pub fn set_device(
    name: &str,
    b: Backend,
    private_key: &[u8; 32],
    port: Option<u16>,
) -> Result<(), String> {
    let u = Update {
        private_key: Some(*private_key),
        listen_port: port,
        ..Default::default()
    };
    apply(name, b, &u).map_err(|e| format!("configure {name}: {e}"))
}

/// Sets several peers of one device in one update.
pub fn set_peers(name: &str, b: Backend, peers: &[&WgPeer]) -> Result<(), String> {
    let u = Update {
        peers,
        ..Default::default()
    };
    apply(name, b, &u).map_err(|e| {
        let labels: Vec<&str> = peers.iter().map(|p| p.label.as_str()).collect();
        format!("peers {} on {name}: {e}", labels.join(", "))
    })
}

pub fn remove_peer(name: &str, b: Backend, public_key: &[u8; 32]) -> Result<(), String> {
    let u = Update {
        remove: Some(*public_key),
        ..Default::default()
    };
    apply(name, b, &u).map_err(|e| format!("remove peer on {name}: {e}"))
}

/// Stops a userspace device: its control socket goes, and the process serving it
/// (found by its command line, the one wgsplit started) is asked to stop.
pub fn stop_userspace(name: &str) {
    let program = crate::util::paths::wg_userspace_program();
    let base = Path::new(&program)
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).filter(|a| !a.is_empty()).collect();
            let same_program = args.first().is_some_and(|a| {
                Path::new(std::ffi::OsStr::new(std::str::from_utf8(a).unwrap_or("")))
                    .file_name()
                    .is_some_and(|f| f.to_string_lossy() == base)
            });
            if same_program && args.len() == 2 && args[1] == name.as_bytes() && same_netns(pid) {
                stop_process(pid);
            }
        }
    }
    let _ = std::fs::remove_file(Path::new(SOCKET_DIR).join(format!("{name}.sock")));
    let _ = std::fs::remove_file(Path::new(SOCKET_DIR).join(format!("{name}.name")));
}

/// SIGTERM, then SIGKILL if it is still there after a second (a boringtun
/// stuck in the fault `set_userspace` avoids ignores SIGTERM).
fn stop_process(pid: i32) {
    // SAFETY: plain kill(2) on a pid just read from /proc.
    unsafe { libc_kill(pid, 15) };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: as above.
    unsafe { libc_kill(pid, 9) };
}

fn same_netns(pid: i32) -> bool {
    // The calling thread's namespace (a kernel test's thread has one of its own).
    let mine = std::fs::read_link("/proc/thread-self/ns/net").ok();
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
    mine.is_some() && mine == theirs
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(k: u8) -> WgPeer {
        WgPeer {
            public_key: [k; 32],
            preshared_key: None,
            endpoint: Some("[2001:db8::1]:51820".parse().unwrap()),
            allowed_ips: vec![
                "10.0.0.2/32".parse().unwrap(),
                "fd00::2/128".parse().unwrap(),
            ],
            keepalive: Some(25),
            label: "c".into(),
        }
    }

    #[test]
    fn uapi_set_writes_whole_peers_and_removals() {
        let p = peer(0xab);
        let peers = [&p];
        let u = Update {
            private_key: Some([1; 32]),
            listen_port: Some(51820),
            peers: &peers,
            remove: Some([2; 32]),
        };
        let r = uapi_set_request(&u);
        let lines: Vec<&str> = r.lines().collect();
        assert_eq!(lines[0], "set=1");
        assert_eq!(lines[1], format!("private_key={}", "01".repeat(32)));
        assert_eq!(lines[2], "listen_port=51820");
        assert_eq!(lines[3], format!("public_key={}", "ab".repeat(32)));
        // replace_allowed_ips comes before the allowed IPs it replaces.
        assert_eq!(lines[4], "replace_allowed_ips=true");
        assert_eq!(lines[5], format!("preshared_key={}", "00".repeat(32)));
        assert_eq!(lines[6], "endpoint=[2001:db8::1]:51820");
        assert_eq!(lines[7], "persistent_keepalive_interval=25");
        assert_eq!(lines[8], "allowed_ip=10.0.0.2/32");
        assert_eq!(lines[9], "allowed_ip=fd00::2/128");
        assert_eq!(lines[10], format!("public_key={}", "02".repeat(32)));
        assert_eq!(lines[11], "remove=true");
        assert!(r.ends_with("remove=true\n\n"));
    }

    /// A userspace device that takes connections on its control socket and
    /// then stays silent (a busy boringtun) is there and unreadable, and is
    /// never replaced by a second process; a socket file nobody serves is no
    /// device. (Before, a silent device read as missing, and the repair
    /// started a second boringtun on the same interface.)
    #[test]
    #[ignore = "root: a socket in /var/run/wireguard"]
    fn a_silent_userspace_device_is_busy_not_missing() {
        let name = format!("wsbusy{}", std::process::id() % 100_000);
        let path = sock_path(&name);
        std::fs::create_dir_all(SOCKET_DIR).unwrap();
        let _ = std::fs::remove_file(&path);
        // Never accepted: connects land in the backlog, reads time out.
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let b = Backend::Userspace;
        assert!(present(&name, b));
        let read = get(&name, b);
        assert!(read.is_err(), "a silent device read as {read:?}");
        let e = create(&name, b).unwrap_err();
        assert!(e.contains("no second one is started"), "{e}");
        assert!(path.exists(), "the served control socket was removed");
        drop(listener);
        // A stale file: nobody listens, so there is no device.
        assert!(!present(&name, b));
        assert!(matches!(get(&name, b), Ok(None)));
        std::fs::remove_file(&path).unwrap();
    }

    /// boringtun stops answering on its control socket for good when a peer
    /// it has is changed; `set_userspace` works around it.
    #[test]
    #[ignore = "root: a boringtun device in a network namespace of its own"]
    fn a_changed_peer_keeps_the_userspace_device_answering() {
        crate::sys::in_new_netns(|| {
            let name = format!("wsmv{}", std::process::id() % 100_000);
            struct Stop<'a>(&'a str);
            impl Drop for Stop<'_> {
                fn drop(&mut self) {
                    stop_userspace(self.0);
                }
            }
            let b = Backend::Userspace;
            create(&name, b).unwrap();
            let _stop = Stop(&name);
            set_device(&name, b, &[7; 32], None).unwrap();
            let up = Command::new("ip")
                .args(["link", "set", &name, "up"])
                .status();
            assert!(up.unwrap().success());
            let endpoint = |key: [u8; 32]| {
                let dev = get(&name, b).unwrap().expect("the device is there");
                dev.peers
                    .iter()
                    .find(|p| p.public_key == key)
                    .unwrap()
                    .endpoint
            };
            let mut p = peer(9);
            p.endpoint = Some("127.0.0.1:51999".parse().unwrap());
            set_peers(&name, b, &[&p]).unwrap();
            // The same endpoint again (with other allowed IPs), then a move.
            p.allowed_ips.pop();
            set_peers(&name, b, &[&p]).unwrap();
            assert_eq!(endpoint(p.public_key), p.endpoint);
            p.endpoint = Some("127.0.0.1:51998".parse().unwrap());
            set_peers(&name, b, &[&p]).unwrap();
            assert_eq!(endpoint(p.public_key), p.endpoint);
            // A peer set without an address (a host name not looked up yet), then with one.
            let mut q = peer(10);
            q.endpoint = None;
            set_peers(&name, b, &[&q]).unwrap();
            q.endpoint = Some("127.0.0.1:51997".parse().unwrap());
            set_peers(&name, b, &[&q]).unwrap();
            assert_eq!(endpoint(q.public_key), q.endpoint);
            assert_eq!(endpoint(p.public_key), p.endpoint);
        })
        .unwrap();
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("wg0").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a-very-long-name0").is_err());
        assert!(check_name("../x").is_err());
    }
}
