//! The socket: one `NETLINK_NETFILTER` socket per engine or resolver, a batch
//! sent in as few writes as the buffer allows, one acknowledgement per message
//! read back and mapped to the operation that caused it.

use super::*;

/// A persistent nf_tables netlink socket bound to one table.
pub struct NftSock {
    fd: OwnedFd,
    family: u8,
    table: String,
    seq: u32,
    sndbuf: usize,
    rcv: Vec<u8>,
}

impl fmt::Debug for NftSock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NftSock({} {})", self.family, self.table)
    }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn setsockopt_int(fd: &OwnedFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: a valid fd and a pointer to a live c_int of the given size.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    })
    .map(drop)
}

fn getsockopt_int(fd: &OwnedFd, level: i32, name: i32) -> io::Result<i32> {
    let mut value: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: a valid fd and pointers to live values of the given sizes.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut i32).cast(),
            &mut len,
        )
    })?;
    Ok(value)
}

impl NftSock {
    /// A socket for `table inet wgsplit` in the current network namespace.
    pub fn open() -> io::Result<Self> {
        Self::open_table(NFPROTO_INET, NFT_TABLE)
    }

    pub fn open_table(family: u8, table: &str) -> io::Result<Self> {
        // SAFETY: plain socket(2); the result is checked and owned right away.
        let raw = cvt(unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                NETLINK_NETFILTER,
            )
        })?;
        // SAFETY: raw is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_nl is plain data; zeroed is a valid value.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: a valid fd and a sockaddr_nl of the given size.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        })?;
        // Acks carry only the header (not our whole message back) plus the TLVs
        // that name the offending attribute.
        let _ = setsockopt_int(&fd, SOL_NETLINK, NETLINK_CAP_ACK, 1);
        let _ = setsockopt_int(&fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
        let rcv = 1 << 20;
        if setsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, rcv).is_err() {
            let _ = setsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, rcv);
        }
        let sndbuf = getsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF)? as usize;
        let seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() as u32);
        Ok(Self {
            fd,
            family,
            table: table.to_string(),
            seq,
            sndbuf,
            rcv: vec![0; 64 * 1024],
        })
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Sends `ops` as one batch and reads every acknowledgement. Either all of it
    /// is in the kernel (`Ok`) or none of it (`Err(Refused)`), unless the batch
    /// is larger than the socket can take in one write (> 64 MiB, or no
    /// CAP_NET_ADMIN to raise the buffer): then it goes as several batches, each
    /// atomic on its own.
    pub fn apply(&mut self, ops: &[Op]) -> Result<(), Error> {
        if ops.is_empty() {
            return Ok(());
        }
        let batch = encode(self.family, &self.table, ops, self.seq);
        self.seq = batch.end_seq.wrapping_add(1);
        let need = batch.buf.len() + 4096;
        if need > self.sndbuf.saturating_sub(64) && need <= MAX_BATCH {
            let want = need.next_power_of_two() as i32;
            if setsockopt_int(&self.fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, want).is_ok() {
                // The kernel doubles the value; read back what we got.
                self.sndbuf = getsockopt_int(&self.fd, libc::SOL_SOCKET, libc::SO_SNDBUF)
                    .map_or(self.sndbuf, |v| v as usize);
            }
        }
        if batch.buf.len() + 64 <= self.sndbuf {
            return self.send_batch(&batch.buf, &batch);
        }
        // Too big for one write: split at message boundaries into batches.
        let mut errors = Vec::new();
        let limit = self.sndbuf.saturating_sub(4096).max(MAX_NEST * 2);
        let mut i = 0;
        while i < batch.msgs.len() {
            let mut j = i;
            let mut size = 0;
            while j < batch.msgs.len() {
                let len = msg_len(&batch, j);
                if j > i && size + len > limit {
                    break;
                }
                size += len;
                j += 1;
            }
            let sub = Batch {
                msgs: batch.msgs[i..j].to_vec(),
                elem_offsets: batch.elem_offsets.clone(),
                ..Default::default()
            };
            let mut buf = Vec::with_capacity(size + 64);
            let at = msg_start(
                &mut buf,
                NFNL_MSG_BATCH_BEGIN,
                NLM_F_REQUEST,
                self.next_seq(),
                0,
                NFNL_SUBSYS_NFTABLES,
            );
            msg_end(&mut buf, at);
            let first = batch.msgs[i].start;
            let last = batch.msgs[j - 1].start + msg_len(&batch, j - 1);
            buf.extend_from_slice(&batch.buf[first..last]);
            // This part's last message asks for the ack that ends its answer.
            let last_start = buf.len() - msg_len(&batch, j - 1);
            ask_ack(&mut buf, last_start);
            let at = msg_start(
                &mut buf,
                NFNL_MSG_BATCH_END,
                NLM_F_REQUEST,
                self.next_seq(),
                0,
                NFNL_SUBSYS_NFTABLES,
            );
            msg_end(&mut buf, at);
            match self.send_batch(&buf, &sub) {
                Ok(()) => {}
                Err(Error::Refused(mut e)) => errors.append(&mut e),
                Err(e) => return Err(e),
            }
            i = j;
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Refused(errors))
        }
    }

    fn next_seq(&mut self) -> u32 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(1);
        s
    }

    fn send_batch(&mut self, bytes: &[u8], batch: &Batch) -> Result<(), Error> {
        // SAFETY: sockaddr_nl is plain data; zeroed means "the kernel".
        let mut to: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        to.nl_family = libc::AF_NETLINK as u16;
        loop {
            // SAFETY: a valid fd, a live buffer and address of the given sizes.
            let r = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    0,
                    (&to as *const libc::sockaddr_nl).cast(),
                    std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if r >= 0 {
                break;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e.into());
            }
        }
        // The kernel handles the batch inside sendto(): every reply is queued by
        // now. Only the last message asks for an ack (`ask_ack`); errors for
        // earlier ones come before it.
        let last_seq = batch.msgs.last().map(|m| m.seq);
        let mut pending = usize::from(last_seq.is_some());
        let mut errors = Vec::new();
        let mut blocking = false;
        while pending > 0 {
            let flags = if blocking { 0 } else { libc::MSG_DONTWAIT };
            // SAFETY: a valid fd and a live buffer of the given size.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.rcv.as_mut_ptr().cast(),
                    self.rcv.len(),
                    flags,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    // Acks for a refused batch can stop early (the kernel aborts
                    // before the end): what we have is the answer.
                    io::ErrorKind::WouldBlock if !errors.is_empty() => break,
                    io::ErrorKind::WouldBlock => {
                        // Should not happen (synchronous processing); wait once
                        // with a timeout rather than spin.
                        if blocking {
                            return Err(e.into());
                        }
                        let tv = libc::timeval {
                            tv_sec: 1,
                            tv_usec: 0,
                        };
                        // SAFETY: a valid fd and a timeval of the given size.
                        unsafe {
                            libc::setsockopt(
                                self.fd.as_raw_fd(),
                                libc::SOL_SOCKET,
                                libc::SO_RCVTIMEO,
                                (&tv as *const libc::timeval).cast(),
                                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
                            );
                        }
                        blocking = true;
                        continue;
                    }
                    _ => return Err(e.into()),
                }
            }
            let data = &self.rcv[..n as usize];
            for ack in parse_acks(data) {
                if ack.seq == batch.begin_seq || ack.seq == batch.end_seq {
                    if ack.errno != 0 {
                        errors.push(OpError {
                            op: None,
                            elem: None,
                            errno: ack.errno,
                            message: ack.message,
                        });
                        pending = 0;
                    }
                    continue;
                }
                let Some(m) = batch.msgs.iter().find(|m| m.seq == ack.seq) else {
                    continue;
                };
                if Some(ack.seq) == last_seq {
                    pending = 0;
                }
                if ack.errno != 0 {
                    let elem = ack.offset.and_then(|off| {
                        match batch.elem_offsets(m).binary_search(&off) {
                            Ok(i) => Some(i),
                            Err(0) => None,
                            Err(i) => Some(i - 1),
                        }
                        .map(|i| m.first_elem + i)
                    });
                    errors.push(OpError {
                        op: Some(m.op),
                        elem,
                        errno: ack.errno,
                        message: ack.message,
                    });
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Refused(errors))
        }
    }
}

impl NftSock {
    /// Sends one `NFT_MSG_GET*` request (`flags`: `NLM_F_DUMP` for a dump, or
    /// `NLM_F_ACK` for one object) with string attributes, and hands each reply
    /// (its type without the subsystem, the bytes after the nfgenmsg header) to
    /// `f` until the kernel is done. A kernel error is returned as it is.
    pub fn query(
        &mut self,
        get: u16,
        flags: u16,
        attrs: &[(u16, &str)],
        mut f: impl FnMut(u16, &[u8]),
    ) -> io::Result<()> {
        const NLMSG_DONE: u16 = 3;
        let seq = self.next_seq();
        let mut req = Vec::with_capacity(128);
        let at = msg_start(
            &mut req,
            (NFNL_SUBSYS_NFTABLES << 8) | get,
            NLM_F_REQUEST | flags,
            seq,
            self.family,
            0,
        );
        for (kind, value) in attrs {
            put_attr_str(&mut req, *kind, value);
        }
        msg_end(&mut req, at);
        // SAFETY: a valid fd and a live buffer of the given size.
        cvt(unsafe { libc::send(self.fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) as i32 })?;
        loop {
            // SAFETY: a valid fd and a live buffer of the given size.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.rcv.as_mut_ptr().cast(),
                    self.rcv.len(),
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let mut data = &self.rcv[..n as usize];
            while data.len() >= NLMSG_HDRLEN {
                let len = u32::from_ne_bytes(data[0..4].try_into().unwrap()) as usize;
                if len < NLMSG_HDRLEN || len > data.len() {
                    return Err(io::Error::other("truncated netlink message"));
                }
                let kind = u16::from_ne_bytes(data[4..6].try_into().unwrap());
                let mseq = u32::from_ne_bytes(data[8..12].try_into().unwrap());
                if mseq == seq {
                    match kind {
                        NLMSG_DONE => return Ok(()),
                        NLMSG_ERROR if len >= NLMSG_HDRLEN + 4 => {
                            let err = i32::from_ne_bytes(data[16..20].try_into().unwrap());
                            return if err == 0 {
                                Ok(())
                            } else {
                                Err(io::Error::from_raw_os_error(-err))
                            };
                        }
                        _ if len >= NLMSG_HDRLEN + 4 => {
                            f(kind & 0xff, &data[NLMSG_HDRLEN + 4..len]);
                        }
                        _ => {}
                    }
                }
                data = data.get(align4(len)..).unwrap_or(&[]);
            }
        }
    }

    /// Dumps one kind of object of the socket's table; a missing table is an
    /// empty answer, not an error.
    pub fn dump(&mut self, get: u16, table_attr: u16) -> io::Result<Vec<Vec<u8>>> {
        const NLM_F_DUMP: u16 = 0x300;
        let table = self.table.clone();
        let mut out = Vec::new();
        match self.query(get, NLM_F_DUMP, &[(table_attr, &table)], |_, body| {
            out.push(body.to_vec())
        }) {
            Ok(()) => Ok(out),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

fn msg_len(batch: &Batch, i: usize) -> usize {
    let s = batch.msgs[i].start;
    u32::from_ne_bytes(batch.buf[s..s + 4].try_into().unwrap()) as usize
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct Ack {
    pub(super) seq: u32,
    pub(super) errno: i32,
    pub(super) offset: Option<u32>,
    pub(super) message: Option<String>,
}

/// Parses the `NLMSG_ERROR` messages (acks and errors) in a receive buffer.
pub(super) fn parse_acks(mut data: &[u8]) -> Vec<Ack> {
    let mut out = Vec::new();
    while data.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes(data[0..4].try_into().unwrap()) as usize;
        if len < NLMSG_HDRLEN || len > data.len() {
            break;
        }
        let kind = u16::from_ne_bytes(data[4..6].try_into().unwrap());
        let flags = u16::from_ne_bytes(data[6..8].try_into().unwrap());
        let msg = &data[..len];
        if kind == NLMSG_ERROR && len >= NLMSG_HDRLEN + 4 + NLMSG_HDRLEN {
            let err = i32::from_ne_bytes(msg[16..20].try_into().unwrap());
            let orig = &msg[20..];
            let orig_len = u32::from_ne_bytes(orig[0..4].try_into().unwrap()) as usize;
            let seq = u32::from_ne_bytes(orig[8..12].try_into().unwrap());
            let mut ack = Ack {
                seq,
                errno: -err,
                offset: None,
                message: None,
            };
            if flags & NLM_F_ACK_TLVS != 0 {
                let skip = if flags & NLM_F_CAPPED != 0 {
                    NLMSG_HDRLEN
                } else {
                    orig_len
                };
                let mut tlv = orig.get(align4(skip)..).unwrap_or(&[]);
                while tlv.len() >= 4 {
                    let l = u16::from_ne_bytes(tlv[0..2].try_into().unwrap()) as usize;
                    let t = u16::from_ne_bytes(tlv[2..4].try_into().unwrap()) & 0x3fff;
                    if l < 4 || l > tlv.len() {
                        break;
                    }
                    let v = &tlv[4..l];
                    match t {
                        NLMSGERR_ATTR_MSG => {
                            let s = v.split(|&b| b == 0).next().unwrap_or(&[]);
                            ack.message = Some(String::from_utf8_lossy(s).into_owned());
                        }
                        NLMSGERR_ATTR_OFFS if v.len() >= 4 => {
                            ack.offset = Some(u32::from_ne_bytes(v[0..4].try_into().unwrap()));
                        }
                        _ => {}
                    }
                    tlv = tlv.get(align4(l)..).unwrap_or(&[]);
                }
            }
            out.push(ack);
        }
        data = data.get(align4(len)..).unwrap_or(&[]);
    }
    out
}
