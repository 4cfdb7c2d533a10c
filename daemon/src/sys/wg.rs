//! WireGuard devices through wireguard-control: kernel on routers, userspace
//! (boringtun) on hosts without the module.

use std::{
    path::Path,
    process::{Command, Stdio},
    str::FromStr,
    time::{Duration, Instant},
};

use ipnet::IpNet;
use wireguard_control::{
    Backend as WgBackend, Device, DeviceUpdate, InterfaceName, Key, PeerConfigBuilder,
};

use crate::{
    config::Backend,
    plan::{ObservedWg, WgPeer},
};

const SOCKET_DIR: &str = "/var/run/wireguard";

fn backend(b: Backend) -> WgBackend {
    match b {
        Backend::Kernel => WgBackend::Kernel,
        Backend::Userspace => WgBackend::Userspace,
    }
}

fn ifname(name: &str) -> Result<InterfaceName, String> {
    InterfaceName::from_str(name).map_err(|e| format!("interface name '{name}': {e}"))
}

/// Reads a device's configuration (`None` when there is no such device).
pub fn get(name: &str, b: Backend) -> Option<ObservedWg> {
    if b == Backend::Userspace {
        return get_userspace(name);
    }
    let dev = Device::get(&ifname(name).ok()?, backend(b)).ok()?;
    let mut peers: Vec<WgPeer> = dev
        .peers
        .iter()
        .map(|p| {
            let mut allowed_ips: Vec<IpNet> = p
                .config
                .allowed_ips
                .iter()
                .filter_map(|a| IpNet::new(a.address, a.cidr).ok())
                .map(|n| n.trunc())
                .collect();
            allowed_ips.sort();
            WgPeer {
                public_key: p.config.public_key.0,
                preshared_key: p
                    .config
                    .preshared_key
                    .as_ref()
                    .map(|k| k.0)
                    .filter(|k| k != &[0u8; 32]),
                endpoint: p.config.endpoint,
                allowed_ips,
                keepalive: p.config.persistent_keepalive_interval.filter(|k| *k != 0),
                label: String::new(),
            }
        })
        .collect();
    peers.sort_by_key(|p| p.public_key);
    Some(ObservedWg {
        public_key: dev.public_key.map(|k| k.0).or_else(|| {
            dev.private_key
                .map(|k| crate::keys::public_from_private(&k.0))
        }),
        listen_port: dev.listen_port.filter(|p| *p != 0),
        peers,
    })
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

/// The cross-platform UAPI `get=1` over the control socket (boringtun answers
/// `own_public_key` rather than the private key; wireguard-control ignores it).
fn get_userspace(name: &str) -> Option<ObservedWg> {
    use std::io::{BufRead, BufReader, Write};
    let sock = Path::new(SOCKET_DIR).join(format!("{name}.sock"));
    let mut s = std::os::unix::net::UnixStream::connect(sock).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"get=1\n\n").ok()?;
    let mut dev = ObservedWg {
        public_key: None,
        listen_port: None,
        peers: Vec::new(),
    };
    for line in BufReader::new(s).lines() {
        let line = line.ok()?;
        if line.is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "private_key" => {
                dev.public_key = hex32(v).map(|p| crate::keys::public_from_private(&p))
            }
            "own_public_key" => dev.public_key = hex32(v),
            "listen_port" => dev.listen_port = v.parse().ok().filter(|p| *p != 0),
            "public_key" => dev.peers.push(WgPeer {
                public_key: hex32(v)?,
                preshared_key: None,
                endpoint: None,
                allowed_ips: Vec::new(),
                keepalive: None,
                label: String::new(),
            }),
            "errno" if v != "0" => return None,
            _ => {
                let Some(p) = dev.peers.last_mut() else {
                    continue;
                };
                match k {
                    "preshared_key" => p.preshared_key = hex32(v).filter(|k| k != &[0u8; 32]),
                    "endpoint" => p.endpoint = v.parse().ok(),
                    "persistent_keepalive_interval" => {
                        p.keepalive = v.parse().ok().filter(|k| *k != 0)
                    }
                    "allowed_ip" => {
                        if let Ok(n) = v.parse::<IpNet>() {
                            p.allowed_ips.push(n.trunc());
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    for p in &mut dev.peers {
        p.allowed_ips.sort();
    }
    dev.peers.sort_by_key(|p| p.public_key);
    Some(dev)
}

/// Creates the interface: a kernel `wireguard` link, or a boringtun process.
pub fn create(name: &str, b: Backend) -> Result<(), String> {
    match b {
        Backend::Kernel => DeviceUpdate::new()
            .apply(&ifname(name)?, WgBackend::Kernel)
            .map_err(|e| format!("create wireguard link {name}: {e}")),
        Backend::Userspace => {
            let sock = Path::new(SOCKET_DIR).join(format!("{name}.sock"));
            if sock.exists() && get(name, b).is_some() {
                return Ok(());
            }
            let _ = std::fs::create_dir_all(SOCKET_DIR);
            let _ = std::fs::remove_file(&sock);
            let program = std::env::var("WG_USERSPACE_IMPLEMENTATION")
                .unwrap_or_else(|_| "boringtun-cli".to_string());
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
                if sock.exists() && get(name, b).is_some() {
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
    let mut u = DeviceUpdate::new().set_private_key(Key(*private_key));
    if let Some(p) = port {
        u = u.set_listen_port(p);
    }
    u.apply(&ifname(name)?, backend(b))
        .map_err(|e| format!("configure {name}: {e}"))
}

fn peer_builder(p: &WgPeer) -> PeerConfigBuilder {
    let mut pc = PeerConfigBuilder::new(&Key(p.public_key)).replace_allowed_ips();
    for n in &p.allowed_ips {
        pc = pc.add_allowed_ip(n.addr(), n.prefix_len());
    }
    pc = match p.preshared_key {
        Some(k) => pc.set_preshared_key(Key(k)),
        None => pc.unset_preshared_key(),
    };
    if let Some(e) = p.endpoint {
        pc = pc.set_endpoint(e);
    }
    pc.set_persistent_keepalive_interval(p.keepalive.unwrap_or(0))
}

/// Sets several peers of one device in one update.
pub fn set_peers(name: &str, b: Backend, peers: &[&WgPeer]) -> Result<(), String> {
    let builders: Vec<PeerConfigBuilder> = peers.iter().map(|p| peer_builder(p)).collect();
    DeviceUpdate::new()
        .add_peers(&builders)
        .apply(&ifname(name)?, backend(b))
        .map_err(|e| {
            let labels: Vec<&str> = peers.iter().map(|p| p.label.as_str()).collect();
            format!("peers {} on {name}: {e}", labels.join(", "))
        })
}

pub fn remove_peer(name: &str, b: Backend, public_key: &[u8; 32]) -> Result<(), String> {
    DeviceUpdate::new()
        .remove_peer_by_key(&Key(*public_key))
        .apply(&ifname(name)?, backend(b))
        .map_err(|e| format!("remove peer on {name}: {e}"))
}

/// Stops a userspace device: its control socket goes, and the process serving it
/// (found by its command line, the one wgsplit started) is asked to stop.
pub fn stop_userspace(name: &str) {
    let program = std::env::var("WG_USERSPACE_IMPLEMENTATION")
        .unwrap_or_else(|_| "boringtun-cli".to_string());
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
                // SAFETY: plain kill(2) on a pid we just read.
                unsafe {
                    libc_kill(pid, 15);
                }
            }
        }
    }
    let _ = std::fs::remove_file(Path::new(SOCKET_DIR).join(format!("{name}.sock")));
    let _ = std::fs::remove_file(Path::new(SOCKET_DIR).join(format!("{name}.name")));
}

fn same_netns(pid: i32) -> bool {
    let mine = std::fs::read_link("/proc/self/ns/net").ok();
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
    mine.is_some() && mine == theirs
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
