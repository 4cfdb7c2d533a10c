//! Plain-text address sources, read line by line:
//! - CIDR / range lists: one `1.2.3.0/24`, `1.2.3.4`, or `1.2.3.0-1.2.3.255` per
//!   line (`#` and `;` comments) — `config list` files of format `cidr`, and
//!   per-country files (`us.zone`, `us.txt`, `us.cidr`) in a GeoIP folder;
//! - country CSV: `start,end,CC` with addresses or integers (ip-location-db's
//!   `dbip-country-ipv4.csv` / `-num.csv`, IPFire/tor `geoip` files).

use std::{
    collections::{HashMap, HashSet},
    fs::File,
    io::{BufRead, BufReader, Read},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
};

use super::{SourceError, ranges::CountryBuilder};

/// Longest line of a text list (a longer one: not a text list).
const MAX_LINE: usize = 4096;

fn open(path: &Path) -> Result<BufReader<File>, SourceError> {
    super::open_regular(path).map(|f| BufReader::with_capacity(64 * 1024, f))
}

/// Reads every line, handing each trimmed, comment-free, non-empty line to `f`
/// with its number. Stops at the first error, naming the line.
pub fn for_each_line(
    path: &Path,
    f: impl FnMut(&str) -> Result<(), String>,
) -> Result<(), SourceError> {
    lines_of(open(path)?, path, f)
}

/// [`for_each_line`] on an open reader (`path` names it in errors).
fn lines_of(
    mut r: impl BufRead,
    path: &Path,
    mut f: impl FnMut(&str) -> Result<(), String>,
) -> Result<(), SourceError> {
    let mut line = Vec::new();
    let mut n = 0;
    loop {
        line.clear();
        // At most one byte past the limit: a file with no line end must not
        // be read whole into one line before it is measured.
        let got = (&mut r)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| SourceError::Io(e.to_string()))?;
        if got == 0 {
            return Ok(());
        }
        n += 1;
        if line.len() > MAX_LINE {
            return Err(SourceError::Format(format!(
                "{}:{n}: line too long (not a text list?)",
                path.display()
            )));
        }
        let text = std::str::from_utf8(&line)
            .map_err(|_| SourceError::Format(format!("{}:{n}: not UTF-8 text", path.display())))?;
        let text = strip_comment(text).trim();
        if text.is_empty() || text.starts_with(';') {
            continue;
        }
        f(text)
            .map_err(|e| SourceError::Format(format!("{}:{n}: {}", path.display(), redact(&e))))?;
    }
}

/// A reader's message with every quoted piece of the file cut out: errors go
/// to logs, `status` and the API, and a list pointed at a file it should not
/// read must not leak that file's lines through them. Everything from the
/// first `'` to the last goes: the quoted text may hold a `'` of its own,
/// which must not end the cut (the readers quote every piece they echo).
pub fn redact(message: &str) -> String {
    let Some(first) = message.find('\'') else {
        return message.to_string();
    };
    let last = message.rfind('\'').filter(|&l| l > first);
    let rest = last.map_or("", |l| &message[l + 1..]);
    format!("{}…{rest}", &message[..first])
}

/// Cuts a `#` comment: at the line start or after whitespace (dnsmasq values
/// such as `4#inet#fw4#set` keep theirs).
fn strip_comment(line: &str) -> &str {
    let b = line.as_bytes();
    match (0..b.len()).find(|&i| b[i] == b'#' && (i == 0 || b[i - 1].is_ascii_whitespace())) {
        Some(i) => &line[..i],
        None => line,
    }
}

/// `1.2.3.0/24`, `1.2.3.4`, `1.2.3.0-1.2.3.255`, `::/0` → pushed into `b`.
pub fn push_net(b: &mut CountryBuilder, text: &str) -> Result<(), String> {
    if let Some((a, len)) = text.split_once('/') {
        let ip: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("'{text}' is not a CIDR"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len: u32 = len
            .trim()
            .parse()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("'{text}' has a bad prefix length"))?;
        b.push_cidr(ip, len);
        Ok(())
    } else if let Some((s, e)) = text.split_once('-') {
        let s: IpAddr = s
            .trim()
            .parse()
            .map_err(|_| format!("'{text}' is not a range"))?;
        let e: IpAddr = e
            .trim()
            .parse()
            .map_err(|_| format!("'{text}' is not a range"))?;
        b.push_range(s, e)
    } else {
        let ip: IpAddr = text
            .parse()
            .map_err(|_| format!("'{text}' is not an address"))?;
        b.push_range(ip, ip)
    }
}

/// A CIDR/range list file.
pub fn read_nets(path: &Path) -> Result<CountryBuilder, SourceError> {
    let mut b = CountryBuilder::default();
    for_each_line(path, |l| push_net(&mut b, l))?;
    Ok(b)
}

/// An address column: dotted / colon form, or an integer (the `-num.csv` files).
fn csv_addr(text: &str, v6_hint: bool) -> Result<IpAddr, String> {
    let t = text.trim().trim_matches('"');
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(ip);
    }
    let n: u128 = t.parse().map_err(|_| format!("'{t}' is not an address"))?;
    Ok(if !v6_hint && n <= u128::from(u32::MAX) {
        IpAddr::V4(Ipv4Addr::from(n as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(n))
    })
}

/// Reads a `start,end,CC` CSV. `v6` says how integer columns are meant (the
/// `ipv6-num` files); files named `*ipv6*` set it. Returns the row count.
pub fn extract_csv(
    path: &Path,
    wanted: Option<&HashSet<[u8; 2]>>,
    out: &mut HashMap<[u8; 2], CountryBuilder>,
) -> Result<usize, SourceError> {
    let v6 = path.to_string_lossy().contains("ipv6");
    let mut rows = 0;
    for_each_line(path, |l| {
        let mut cols = l.split(',');
        let (Some(s), Some(e), Some(cc)) = (cols.next(), cols.next(), cols.next()) else {
            return Err(format!("'{l}' is not start,end,country"));
        };
        rows += 1;
        let cc = cc.trim().trim_matches('"').as_bytes();
        if cc.len() != 2
            || !cc.iter().all(u8::is_ascii_alphabetic)
            || cc.eq_ignore_ascii_case(b"zz")
        {
            // ZZ, "-", empty: unassigned space.
            return Ok(());
        }
        let cc = [cc[0].to_ascii_lowercase(), cc[1].to_ascii_lowercase()];
        if wanted.is_some_and(|w| !w.contains(&cc)) {
            return Ok(());
        }
        let (s, e) = (csv_addr(s, v6)?, csv_addr(e, v6)?);
        out.entry(cc).or_default().push_range(s, e)
    })?;
    Ok(rows)
}

/// A folder of per-country files: `<cc>.<anything>` (`us.zone`, `us-aggregated.zone`,
/// `us.txt`), each a CIDR/range list. Returns how many files were read.
pub fn extract_dir(
    dir: &Path,
    wanted: Option<&HashSet<[u8; 2]>>,
    out: &mut HashMap<[u8; 2], CountryBuilder>,
) -> Result<usize, SourceError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| SourceError::Io(format!("{}: {e}", dir.display())))?;
    let mut files = 0;
    for entry in entries {
        let entry = entry.map_err(|e| SourceError::Io(e.to_string()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let b = name.as_bytes();
        if b.len() < 3
            || !b[..2].iter().all(u8::is_ascii_alphabetic)
            || b[2].is_ascii_alphanumeric()
        {
            continue;
        }
        let cc = [b[0].to_ascii_lowercase(), b[1].to_ascii_lowercase()];
        if wanted.is_some_and(|w| !w.contains(&cc)) {
            continue;
        }
        let builder = out.entry(cc).or_default();
        for_each_line(&entry.path(), |l| push_net(builder, l))?;
        files += 1;
    }
    Ok(files)
}

/// A country set (or any ranges) as the fewest CIDRs.
pub fn to_nets(set: &super::ranges::CountrySet) -> Vec<ipnet::IpNet> {
    let mut nets = Vec::new();
    for &(s, e) in set.v4.ranges() {
        for (a, len) in super::ranges::cidrs(s, e) {
            nets.push(ipnet::IpNet::V4(
                ipnet::Ipv4Net::new(Ipv4Addr::from(a), len as u8).expect("len ≤ 32"),
            ));
        }
    }
    for &(s, e) in set.v6.ranges() {
        for (a, len) in super::ranges::cidrs(s, e) {
            nets.push(ipnet::IpNet::V6(
                ipnet::Ipv6Net::new(Ipv6Addr::from(a), len as u8).expect("len ≤ 128"),
            ));
        }
    }
    nets
}

/// The CIDRs of every `format cidr` list an enabled rule or `server.doh_list` uses, for the planner
/// (`plan::Inputs::list_cidrs`). Lists that fail to read are left out with a
/// message on stderr (their rules then match nothing from them). Files are
/// re-read only when their size or modification time changes, so the engine
/// can ask on every check.
pub fn list_cidrs(
    config: &crate::config::Config,
) -> std::collections::BTreeMap<String, Vec<ipnet::IpNet>> {
    use std::{
        collections::BTreeMap,
        sync::{Arc, Mutex},
        time::SystemTime,
    };
    type Key = (String, u64, Option<SystemTime>);
    type Entry = (Key, Result<Arc<Vec<ipnet::IpNet>>, String>);
    static CACHE: Mutex<BTreeMap<String, Entry>> = Mutex::new(BTreeMap::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = BTreeMap::new();
    for list in &config.lists {
        if list.format != Some(crate::config::ListFormat::Cidr)
            || !(config.server.doh_list.contains(&list.name)
                || config
                    .rules
                    .iter()
                    .any(|r| r.enabled_or_default() && r.list.contains(&list.name)))
        {
            continue;
        }
        let meta = std::fs::metadata(&list.path).ok();
        let key: Key = (
            list.path.clone(),
            meta.as_ref().map_or(0, |m| m.len()),
            meta.as_ref().and_then(|m| m.modified().ok()),
        );
        if cache.get(&list.name).is_none_or(|(k, _)| *k != key) {
            // Read (again): new list, or the file changed. Errors are said once.
            let nets = read_nets(Path::new(&list.path)).map(|b| Arc::new(to_nets(&b.build())));
            if let Err(e) = &nets {
                eprintln!("wgsplit: list {}: {e}", list.name);
            }
            cache.insert(list.name.clone(), (key, nets.map_err(|e| e.to_string())));
        }
        if let Some((_, Ok(nets))) = cache.get(&list.name) {
            out.insert(list.name.clone(), (**nets).clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::mmdb::tests::tempfile_path::TempPath;

    #[test]
    fn errors_never_quote_the_file() {
        assert_eq!(redact("'root:x:0' is not a range"), "… is not a range");
        assert_eq!(redact("unexpected 'a' after 'b'"), "unexpected …");
        assert_eq!(redact("no quotes"), "no quotes");
        assert_eq!(redact("'unclosed secret"), "…");
        let f = TempPath::new("secret");
        std::fs::write(&f.0, "root:$6$SECRET:19000::\n").unwrap();
        let e = read_nets(&f.0).err().unwrap().to_string();
        assert!(!e.contains("SECRET") && e.contains(":1:"), "{e}");
        let e = crate::sources::domains::for_each(
            &crate::config::List {
                path: f.0.to_string_lossy().into_owned(),
                format: Some(crate::config::ListFormat::V2fly),
                ..Default::default()
            },
            &mut |_| {},
        )
        .err()
        .unwrap()
        .to_string();
        assert!(!e.contains("SECRET") && !e.contains("root"), "{e}");
    }

    #[test]
    fn an_apostrophe_in_the_file_does_not_end_the_redaction() {
        // The file's text is quoted in the reader's message; a `'` inside it
        // must not close the quote and let the rest of the line through.
        let e = redact("'root's SECRET:x' is not a range");
        assert!(!e.contains("SECRET"), "{e}");
        assert_eq!(redact("'a/b': no closing '/'"), "…");
        let f = TempPath::new("apostrophe");
        std::fs::write(&f.0, "it's SECRET here\n").unwrap();
        let e = read_nets(&f.0).err().unwrap().to_string();
        assert!(!e.contains("SECRET") && e.contains(":1:"), "{e}");
    }

    #[test]
    fn a_line_is_measured_as_it_is_read_not_after() {
        // A FIFO fed 64 KB with no line end, then held open: a reader that
        // takes the whole line before measuring it waits for the writer (and,
        // on a file, holds the whole line in memory); ours stops at the limit.
        let f = TempPath::new("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&f.0)
            .status()
            .unwrap();
        assert!(made.success());
        let path = f.0.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut w = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            let _ = w.write_all(&[b'1'; 64 * 1024]);
            std::thread::sleep(std::time::Duration::from_secs(5));
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let path = f.0.clone();
        std::thread::spawn(move || {
            // Opened here, blocking (a list path naming a FIFO is refused by
            // `open_regular`; this checks the line reader itself).
            let r = BufReader::new(File::open(&path).unwrap());
            let mut b = CountryBuilder::default();
            let got = lines_of(r, &path, |l| push_net(&mut b, l));
            let _ = tx.send(got.map_err(|e| e.to_string()));
        });
        let got = rx.recv_timeout(std::time::Duration::from_secs(2));
        let e = got
            .expect("the reader waited for the end of an endless line")
            .unwrap_err();
        assert!(e.contains("line too long"), "{e}");
    }

    #[test]
    fn csv_both_forms() {
        let f = TempPath::new("csv");
        std::fs::write(
            &f.0,
            "1.0.0.0,1.0.0.255,AU\n1.0.1.0,1.0.3.255,CN\n16778240,16779263,au\n2001::,2001::ffff,US\n3.0.0.0,3.0.0.9,ZZ\n",
        )
        .unwrap();
        let mut out = HashMap::new();
        assert_eq!(extract_csv(&f.0, None, &mut out).unwrap(), 5);
        let au = out.remove(b"au").unwrap().build();
        assert_eq!(au.v4.len(), 2);
        assert!(au.contains("1.0.5.1".parse().unwrap()));
        assert!(out.remove(b"us").unwrap().build().v6.len() == 1);
        assert!(out.contains_key(b"cn"));
        assert!(!out.contains_key(b"zz"));

        std::fs::write(&f.0, "1.0.0.0,1.0.0.255,AU\nbroken line\n").unwrap();
        let err = extract_csv(&f.0, None, &mut HashMap::new()).unwrap_err();
        assert!(err.to_string().contains(":2:"), "{err}");
    }

    #[test]
    fn cidr_lists_for_the_planner() {
        let f = TempPath::new("cidrlist");
        std::fs::write(&f.0, "10.0.0.0-10.0.0.5\n192.0.2.0/24\n2001:db8::/48\n").unwrap();
        let text = format!(
            "config server\n\toption address 10.9.0.1/24\n\toption private_key '4EqAuesGDDDllVFRw6LW42qz0RGOaO4UN+emBozZgU0='\n\
             config client 'c'\n\tlist address '10.9.0.2/32'\n\toption public_key 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw='\n\
             config rule\n\toption client 'c'\n\toption action 'block'\n\tlist list 'nets'\n\
             config list 'nets'\n\toption path '{}'\n\toption format 'cidr'\n",
            f.0.display()
        );
        let config = crate::config::parse_valid(&text).unwrap();
        let got: Vec<String> = list_cidrs(&config)["nets"]
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(
            got,
            vec![
                "10.0.0.0/30",
                "10.0.0.4/31",
                "192.0.2.0/24",
                "2001:db8::/48"
            ]
        );
        // Changed on disk: read again.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&f.0, "198.51.100.7\n").unwrap();
        let got: Vec<String> = list_cidrs(&config)["nets"]
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(got, vec!["198.51.100.7/32"]);
    }

    #[test]
    fn cidr_lists_and_dirs() {
        let d = TempPath::new("dir");
        std::fs::create_dir(&d.0).unwrap();
        std::fs::write(
            d.0.join("us.zone"),
            "# US\n1.2.3.0/24\n1.2.4.0 - 1.2.4.255\n5.5.5.5\n2001:db8::/32 # v6\n",
        )
        .unwrap();
        std::fs::write(d.0.join("cn-aggregated.zone"), "9.0.0.0/8\n").unwrap();
        std::fs::write(d.0.join("README"), "not a country\n").unwrap();
        let mut out = HashMap::new();
        assert_eq!(extract_dir(&d.0, None, &mut out).unwrap(), 2);
        let us = out.remove(b"us").unwrap().build();
        assert_eq!(us.v4.ranges().len(), 2);
        assert_eq!(us.v6.len(), 1);
        std::fs::write(d.0.join("us.zone"), "1.2.3.0/33\n").unwrap();
        assert!(extract_dir(&d.0, None, &mut HashMap::new()).is_err());
        let mut b = CountryBuilder::default();
        assert!(push_net(&mut b, "1.2.3.4-::1").is_err());
        assert!(push_net(&mut b, "hello").is_err());
    }
}
