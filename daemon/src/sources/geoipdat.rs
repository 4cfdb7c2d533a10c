//! v2fly / Loyalsoldier `geoip.dat`, read streaming: the file is a `GeoIPList`
//! (`repeated GeoIP entry = 1`), each `GeoIP` holds `country_code = 1` and
//! `repeated CIDR cidr = 2` (`bytes ip = 1`, `uint32 prefix = 2`). Entries of
//! countries nobody uses are skipped by seeking past them, so memory stays at one
//! CIDR whatever the file size (a full decode costs ~110 MB).

use std::{
    collections::{HashMap, HashSet},
    io::BufReader,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
};

use super::{
    SourceError,
    protobuf::{LEN, Pb, VARINT},
    ranges::CountryBuilder,
};

/// Adds the CIDRs of the wanted countries (lowercase; `None` = every two-letter
/// code) to `out`. Returns how many entries the file has.
pub fn extract(
    path: &Path,
    wanted: Option<&HashSet<[u8; 2]>>,
    out: &mut HashMap<[u8; 2], CountryBuilder>,
) -> Result<usize, SourceError> {
    let file = super::open_regular(path)?;
    let size = file
        .metadata()
        .map_err(|e| SourceError::Io(e.to_string()))?
        .len();
    let mut pb = Pb::new(BufReader::with_capacity(64 * 1024, file), size);
    let mut entries = 0;
    let mut buf = Vec::new();
    while !pb.at_end()? {
        let (field, wire) = pb.tag()?;
        if field != 1 || wire != LEN {
            pb.skip_value(wire, size)?;
            continue;
        }
        let len = pb.len(size)?;
        let end = pb.pos() + len;
        entries += 1;
        let mut code: Option<[u8; 2]> = None;
        let mut inverse = false;
        let mut target: Option<&mut CountryBuilder> = None;
        let mut decided = false;
        while pb.pos() < end {
            let (f, w) = pb.tag()?;
            match (f, w) {
                (1, LEN) => {
                    pb.bytes(end, &mut buf)?;
                    code = (buf.len() == 2 && buf.iter().all(u8::is_ascii_alphabetic))
                        .then(|| [buf[0].to_ascii_lowercase(), buf[1].to_ascii_lowercase()]);
                    let keep = code.is_some_and(|c| wanted.is_none_or(|w| w.contains(&c)));
                    if !keep {
                        // Not a country we use: seek past the rest of the entry.
                        pb.skip(end - pb.pos())?;
                        break;
                    }
                    decided = true;
                    target = Some(out.entry(code.expect("kept")).or_default());
                }
                (2, LEN) => {
                    if !decided {
                        return Err(SourceError::Format(
                            "CIDRs before the country code (unsupported layout)".into(),
                        ));
                    }
                    let n = pb.len(end)?;
                    let cidr_end = pb.pos() + n;
                    let mut ip = None;
                    let mut prefix = None;
                    while pb.pos() < cidr_end {
                        let (cf, cw) = pb.tag()?;
                        match (cf, cw) {
                            (1, LEN) => {
                                pb.bytes(cidr_end, &mut buf)?;
                                ip = match buf.len() {
                                    4 => Some(IpAddr::V4(Ipv4Addr::new(
                                        buf[0], buf[1], buf[2], buf[3],
                                    ))),
                                    16 => {
                                        let a: [u8; 16] = buf[..].try_into().expect("16");
                                        Some(IpAddr::V6(Ipv6Addr::from(a)))
                                    }
                                    l => {
                                        return Err(SourceError::Format(format!(
                                            "CIDR address of {l} bytes at byte {}",
                                            pb.pos()
                                        )));
                                    }
                                };
                            }
                            (2, VARINT) => prefix = Some(pb.varint()?),
                            _ => pb.skip_value(cw, cidr_end)?,
                        }
                    }
                    let (Some(ip), Some(prefix)) = (ip, prefix.or(Some(0))) else {
                        return Err(SourceError::Format("CIDR without an address".into()));
                    };
                    let max = if ip.is_ipv4() { 32 } else { 128 };
                    if prefix > max {
                        return Err(SourceError::Format(format!("prefix /{prefix} for {ip}")));
                    }
                    if let Some(t) = target.as_deref_mut() {
                        t.push_cidr(ip, prefix as u32);
                    }
                }
                (3, VARINT) => inverse = pb.varint()? != 0,
                _ => pb.skip_value(w, end)?,
            }
        }
        if inverse && decided {
            return Err(SourceError::Format(format!(
                "entry {} is an inverse match (unsupported)",
                String::from_utf8_lossy(&code.unwrap_or_default())
            )));
        }
        if pb.pos() != end {
            return Err(SourceError::Format("entry runs past its length".into()));
        }
    }
    Ok(entries)
}

/// Encodes a geoip.dat (tests and test data).
pub fn encode(entries: &[(&str, Vec<(IpAddr, u32)>)]) -> Vec<u8> {
    use super::protobuf::encode as e;
    let mut out = Vec::new();
    for (code, cidrs) in entries {
        let mut g = Vec::new();
        e::bytes(1, code.as_bytes(), &mut g);
        for (ip, prefix) in cidrs {
            let mut c = Vec::new();
            match ip {
                IpAddr::V4(a) => e::bytes(1, &a.octets(), &mut c),
                IpAddr::V6(a) => e::bytes(1, &a.octets(), &mut c),
            }
            e::uint(2, u64::from(*prefix), &mut c);
            e::bytes(2, &c, &mut g);
        }
        e::bytes(1, &g, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::mmdb::tests::tempfile_path::TempPath;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn extracts_wanted_countries() {
        let dat = encode(&[
            (
                "US",
                vec![
                    (ip("1.0.0.0"), 24),
                    (ip("1.0.1.0"), 24),
                    (ip("2001:db8::"), 32),
                ],
            ),
            ("CN", vec![(ip("2.0.0.0"), 8)]),
            ("PRIVATE", vec![(ip("10.0.0.0"), 8)]),
            ("RU", vec![(ip("5.0.0.0"), 16)]),
        ]);
        let f = TempPath::new("geoip");
        std::fs::write(&f.0, &dat).unwrap();
        let wanted: HashSet<[u8; 2]> = [*b"us", *b"ru"].into();
        let mut out = HashMap::new();
        assert_eq!(extract(&f.0, Some(&wanted), &mut out).unwrap(), 4);
        let us = out.remove(b"us").unwrap().build();
        assert_eq!(us.v4.len(), 1);
        assert_eq!(us.v6.len(), 1);
        assert!(us.contains(ip("1.0.1.9")));
        assert!(out.remove(b"ru").unwrap().build().contains(ip("5.0.255.1")));
        assert!(out.is_empty());

        // Every truncation is an error, never a silent partial load.
        for cut in [1, 7, dat.len() / 2, dat.len() - 1] {
            std::fs::write(&f.0, &dat[..cut]).unwrap();
            let r = extract(&f.0, None, &mut HashMap::new());
            assert!(r.is_err(), "cut at {cut}: {r:?}");
        }
        std::fs::write(&f.0, b"\x00\x01garbage").unwrap();
        assert!(extract(&f.0, None, &mut HashMap::new()).is_err());
    }
}
