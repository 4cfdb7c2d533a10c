//! The active probe: a DNS query for `.` NS to the upstream's resolver, sent
//! from a socket bound to the upstream's interface and carrying its firewall
//! mark, so it can only travel through that tunnel. Any well-formed answer
//! with our id (even SERVFAIL or REFUSED) proves the tunnel carries traffic.

use std::{
    io,
    net::{SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use crate::sys::sock;

/// A query for the root NS records, id `id`, recursion desired.
pub fn query(id: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(17);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; 1 question
    q.push(0); // the root name
    q.extend_from_slice(&[0, 2, 0, 1]); // NS, IN
    q
}

/// Is `reply` an answer to our query `id`?
pub fn is_answer(reply: &[u8], id: u16) -> bool {
    reply.len() >= 12 && reply[..2] == id.to_be_bytes() && reply[2] & 0x80 != 0
}

/// Sends one query to `server` through `ifname` (with `mark` when non-zero) and
/// waits up to `timeout`; returns the round trip in milliseconds.
pub fn dns_probe(
    server: SocketAddr,
    ifname: &str,
    mark: u32,
    timeout: Duration,
) -> Result<u64, String> {
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let sock = UdpSocket::bind(bind).map_err(|e| format!("socket: {e}"))?;
    sock::bind_to_device(&sock, ifname).map_err(|e| format!("bind to {ifname}: {e}"))?;
    if mark != 0 {
        sock::set_mark(&sock, mark).map_err(|e| format!("mark: {e}"))?;
    }
    let id: u16 = rand_core::RngCore::next_u32(&mut rand_core::OsRng) as u16;
    let start = Instant::now();
    sock.send_to(&query(id), server)
        .map_err(|e| format!("send to {server}: {e}"))?;
    let mut buf = [0u8; 1500];
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(format!(
                "no answer from {server} in {} ms",
                timeout.as_millis()
            ));
        }
        sock.set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        match sock.recv_from(&mut buf) {
            Ok((n, from)) if from == server && is_answer(&buf[..n], id) => {
                return Ok(start.elapsed().as_millis() as u64);
            }
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!(
                    "no answer from {server} in {} ms",
                    timeout.as_millis()
                ));
            }
            Err(e) => return Err(format!("{server}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_shape() {
        let q = query(0xabcd);
        assert_eq!(q.len(), 17);
        assert_eq!(&q[..2], &[0xab, 0xcd]);
        let mut a = q.clone();
        a[2] |= 0x80;
        assert!(is_answer(&a, 0xabcd));
        assert!(!is_answer(&q, 0xabcd), "a query is not an answer");
        assert!(!is_answer(&a, 0x1234));
    }
}
