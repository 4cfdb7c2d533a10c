//! Who gets answers besides the configured clients: the networks of the
//! `dns_listen` addresses (the LAN a listen address is on), the router itself,
//! and nobody else. An open resolver on a reachable address is an
//! amplifier for anyone's spoofed floods and a free resolver for strangers.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use ipnet::IpNet;

/// How often, at most, the interfaces are read again when a `dns_listen`
/// address had none yet (the resolver binds with IP_FREEBIND and may start
/// before the LAN interface has its address).
pub const RESCAN_EVERY: Duration = Duration::from_secs(5);

/// The networks whose hosts may ask, besides the clients.
#[derive(Debug, Clone, Default)]
pub struct Networks {
    /// The `dns_listen` addresses.
    listen: Vec<IpAddr>,
    nets: Vec<IpNet>,
    /// Some `dns_listen` address was on no interface at the last scan.
    incomplete: bool,
    scanned: Option<Instant>,
}

impl Networks {
    /// For the `dns_listen` addresses, from the interfaces as they are now.
    pub fn new(listen: Vec<IpAddr>) -> Self {
        let mut n = Self {
            listen,
            ..Self::default()
        };
        n.scan(&interface_networks());
        n
    }

    fn scan(&mut self, interfaces: &[IpNet]) {
        let (nets, incomplete) = networks_of(&self.listen, interfaces);
        self.nets = nets;
        self.incomplete = incomplete;
        self.scanned = Some(Instant::now());
    }

    /// Does `ip` belong to a `dns_listen` network (or the router)?
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_loopback() || self.listen.contains(&ip) || self.nets.iter().any(|n| n.contains(&ip))
    }

    /// Reads the interfaces again if an address was missing and the last
    /// scan is older than `RESCAN_EVERY`. True when it did.
    pub fn rescan_if_due(&mut self) -> bool {
        if !self.incomplete || self.scanned.is_some_and(|t| t.elapsed() < RESCAN_EVERY) {
            return false;
        }
        self.scan(&interface_networks());
        true
    }
}

/// The networks of the interface addresses equal to the listen addresses (a
/// wildcard listen address: every interface network). The flag: some listen
/// address is on no interface.
pub fn networks_of(listen: &[IpAddr], interfaces: &[IpNet]) -> (Vec<IpNet>, bool) {
    let mut nets = Vec::new();
    let mut incomplete = false;
    for &a in listen {
        let found: Vec<IpNet> = interfaces
            .iter()
            .filter(|n| {
                if a.is_unspecified() {
                    n.addr().is_ipv4() == a.is_ipv4() && !n.addr().is_loopback()
                } else {
                    n.addr() == a
                }
            })
            .map(IpNet::trunc)
            .collect();
        incomplete |= found.is_empty();
        nets.extend(found);
    }
    nets.sort();
    nets.dedup();
    (nets, incomplete)
}

/// Every address of every interface, with its prefix (getifaddrs).
fn interface_networks() -> Vec<IpNet> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: a node of the list getifaddrs returned, alive until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        // SAFETY: the pointers are null or point at sockaddrs of their family.
        if let (Some(addr), Some(mask)) =
            unsafe { (sockaddr_ip(ifa.ifa_addr), sockaddr_ip(ifa.ifa_netmask)) }
        {
            let prefix = match mask {
                IpAddr::V4(m) => u32::from(m).leading_ones() as u8,
                IpAddr::V6(m) => u128::from(m).leading_ones() as u8,
            };
            if let Ok(n) = IpNet::new(addr, prefix) {
                out.push(n);
            }
        }
    }
    // SAFETY: the list from getifaddrs, freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

/// The address in a sockaddr of family AF_INET or AF_INET6.
///
/// # Safety
/// `sa` is null or points at a valid sockaddr of the family it names.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: the caller's promise; the family says which struct it is.
    unsafe {
        match i32::from((*sa).sa_family) {
            libc::AF_INET => {
                let sin = &*(sa as *const libc::sockaddr_in);
                Some(IpAddr::from(
                    u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
                ))
            }
            libc::AF_INET6 => {
                let sin6 = &*(sa as *const libc::sockaddr_in6);
                Some(IpAddr::from(sin6.sin6_addr.s6_addr))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn listen_address_gives_its_interface_network() {
        let ifs: Vec<IpNet> = [
            "127.0.0.1/8",
            "192.168.1.1/24",
            "10.8.0.1/24",
            "fd00:1::1/64",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let (nets, incomplete) = networks_of(&[ip("192.168.1.1"), ip("fd00:1::1")], &ifs);
        assert_eq!(
            nets,
            [
                "192.168.1.0/24".parse().unwrap(),
                "fd00:1::/64".parse().unwrap()
            ]
        );
        assert!(!incomplete);
        // Not there yet: nothing but the flag (and a rescan later).
        let (nets, incomplete) = networks_of(&[ip("192.168.7.1")], &ifs);
        assert!(nets.is_empty() && incomplete);
        // Wildcard: every interface network of that family but loopback.
        let (nets, _) = networks_of(&[ip("0.0.0.0")], &ifs);
        assert_eq!(nets.len(), 2);

        let n = Networks {
            listen: vec![ip("192.168.1.1")],
            nets: vec!["192.168.1.0/24".parse().unwrap()],
            ..Networks::default()
        };
        assert!(n.contains(ip("192.168.1.77")));
        assert!(n.contains(ip("127.0.0.1")));
        assert!(
            !n.contains(ip("10.8.0.9")),
            "the VPN net is for clients only"
        );
        assert!(!n.contains(ip("203.0.113.5")));
    }

    #[test]
    fn this_machine_has_interfaces() {
        // Loopback at least: getifaddrs is read right.
        assert!(interface_networks().iter().any(|n| n.addr().is_loopback()));
    }
}
