//! The admin password of the built-in pages: set once by the first-run setup,
//! kept only as a salted PBKDF2-HMAC-SHA256 hash in a 0600 file, checked in
//! constant time; and the limit on login attempts.
//!
//! PBKDF2 over the crate's own SHA-256 (`sources::sha256`) rather than a crypto
//! crate: a router binary counts its bytes, and this is forty lines.

use std::{
    fs,
    io::Write,
    net::IpAddr,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::Path,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::{api::auth::constant_time_eq, sources::sha256::Sha256};

/// Iterations for a new hash: slow on purpose (two SHA-256 blocks each, paid
/// once per login and per guess). Stored with the hash, so it can be raised
/// later without breaking existing files.
pub const PBKDF2_ITERATIONS: u32 = 100_000;
/// Fewest iterations a stored hash may claim: a file edited down to 1 would
/// make guessing cheap again.
pub const MIN_ITERATIONS: u32 = 10_000;
/// Most iterations a stored hash may claim: bounds the work one login costs.
pub const MAX_ITERATIONS: u32 = 10_000_000;
const SALT_BYTES: usize = 16;
/// Shortest password the setup accepts (characters).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password (bytes): the login body is small anyway (`http::MAX_LOGIN_BODY`).
pub const MAX_PASSWORD_BYTES: usize = 1024;
const SCHEME: &str = "pbkdf2-sha256";

/// HMAC-SHA256 with the key's inner and outer states computed once, as PBKDF2
/// hashes with the same key (the password) a hundred thousand times.
struct Hmac {
    inner: Sha256,
    outer: Sha256,
}

impl Hmac {
    fn new(key: &[u8]) -> Self {
        let mut block = [0u8; 64];
        if key.len() > 64 {
            let mut h = Sha256::default();
            h.update(key);
            block[..32].copy_from_slice(&h.finish());
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let (mut inner, mut outer) = (Sha256::default(), Sha256::default());
        inner.update(&block.map(|b| b ^ 0x36));
        outer.update(&block.map(|b| b ^ 0x5c));
        Self { inner, outer }
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut i = self.inner.clone();
        for p in parts {
            i.update(p);
        }
        let mut o = self.outer.clone();
        o.update(&i.finish());
        o.finish()
    }
}

/// PBKDF2-HMAC-SHA256 (RFC 8018), one 32-byte block.
pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let hmac = Hmac::new(password);
    let mut u = hmac.mac(&[salt, &1u32.to_be_bytes()]);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac.mac(&[&u]);
        for (o, x) in out.iter_mut().zip(u) {
            *o ^= x;
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// The stored line: `pbkdf2-sha256$ITERATIONS$SALT_HEX$HASH_HEX`.
pub fn hash_line(password: &str, iterations: u32) -> String {
    let mut salt = [0u8; SALT_BYTES];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut salt);
    let hash = pbkdf2_sha256(password.as_bytes(), &salt, iterations);
    format!("{SCHEME}${iterations}${}${}", hex(&salt), hex(&hash))
}

/// Whether `password` matches a stored line; a malformed line matches nothing.
pub fn verify(line: &str, password: &str) -> bool {
    let parts: Vec<&str> = line.trim().split('$').collect();
    let [SCHEME, iterations, salt, hash] = parts.as_slice() else {
        return false;
    };
    let (Ok(iterations), Some(salt), Some(hash)) =
        (iterations.parse::<u32>(), unhex(salt), unhex(hash))
    else {
        return false;
    };
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) || hash.len() != 32 {
        return false;
    }
    constant_time_eq(
        &pbkdf2_sha256(password.as_bytes(), &salt, iterations),
        &hash,
    )
}

/// What the setup refuses, naming the field.
pub fn check_new(password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(format!(
            "password: at least {MIN_PASSWORD_CHARS} characters (this one has {chars})"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("password: at most {MAX_PASSWORD_BYTES} bytes"));
    }
    Ok(())
}

/// The stored line, `None` while no password is set (first run).
pub fn load(path: &Path) -> std::io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes the first password: a new 0600 file (its folder 0700), never over
/// an existing one, so two setups racing cannot both win.
pub fn create(path: &Path, line: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(format!("{line}\n").as_bytes())?;
    file.sync_all()
}

/// Most login attempts in [`LOGIN_WINDOW`] from one source (an IPv4 address,
/// an IPv6 /64: what one attacker holds), so one guesser cannot lock the
/// admin out; and from all sources together, so many addresses cannot guess
/// faster (each attempt also costs a slow hash). The API token still logs in
/// while the pages are locked.
pub const MAX_LOGIN_ATTEMPTS: usize = 5;
pub const MAX_LOGIN_ATTEMPTS_ALL: usize = 60;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(60);

/// Whose attempts count together: an IPv4 address, an IPv6 /64 (`None`: the
/// server could not tell).
type Source = Option<[u8; 8]>;

fn source_of(ip: Option<IpAddr>) -> Source {
    ip.map(|ip| match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            [4, o[0], o[1], o[2], o[3], 0, 0, 0]
        }
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => source_of(Some(IpAddr::V4(v4))).expect("an address"),
            None => a.octets()[..8].try_into().expect("8 bytes"),
        },
    })
}

/// An attempt taken, to forgive when it succeeds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ticket {
    source: Source,
    at: Instant,
}

/// Attempts are counted when they start (so parallel guesses count too) and
/// forgiven when they succeed. Bounded: at most [`MAX_LOGIN_ATTEMPTS_ALL`]
/// attempts are kept, so at most that many sources.
#[derive(Default)]
pub struct LoginLimiter {
    attempts: Mutex<Vec<Ticket>>,
}

impl LoginLimiter {
    /// Takes an attempt for `source`, or says how long until one is free.
    pub fn begin(&self, source: Option<IpAddr>, now: Instant) -> Result<Ticket, Duration> {
        let source = source_of(source);
        let mut a = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        a.retain(|t| now.saturating_duration_since(t.at) < LOGIN_WINDOW);
        let wait = |oldest: Option<Instant>| {
            LOGIN_WINDOW.saturating_sub(now.saturating_duration_since(oldest.unwrap_or(now)))
        };
        let mine = a.iter().filter(|t| t.source == source);
        if mine.clone().count() >= MAX_LOGIN_ATTEMPTS {
            return Err(wait(mine.map(|t| t.at).min()));
        }
        if a.len() >= MAX_LOGIN_ATTEMPTS_ALL {
            return Err(wait(a.iter().map(|t| t.at).min()));
        }
        let ticket = Ticket { source, at: now };
        a.push(ticket);
        Ok(ticket)
    }

    /// A successful login does not count against the limit.
    pub fn forgive(&self, ticket: Ticket) {
        let mut a = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = a.iter().position(|t| *t == ticket) {
            a.swap_remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn known_answers() {
        // RFC 4231, test case 2.
        assert_eq!(
            hex(&Hmac::new(b"Jefe").mac(&[b"what do ya want ", b"for nothing?"])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A key longer than a block is hashed first (RFC 4231, test case 6).
        assert_eq!(
            hex(&Hmac::new(&[0xaa; 131])
                .mac(&[b"Test Using Larger Than Block-Size Key - Hash Key First"])),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        // PBKDF2-HMAC-SHA256 vectors (RFC 7914 §11 and the widely used set).
        assert_eq!(
            hex(&pbkdf2_sha256(b"password", b"salt", 1)),
            "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"
        );
        assert_eq!(
            hex(&pbkdf2_sha256(b"password", b"salt", 2)),
            "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43"
        );
        assert_eq!(
            hex(&pbkdf2_sha256(b"password", b"salt", 4096)),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
    }

    #[test]
    fn hashes_verify_and_refuse() {
        let line = hash_line("correct horse", MIN_ITERATIONS);
        assert!(line.starts_with("pbkdf2-sha256$10000$"));
        assert!(!line.contains("correct horse"));
        assert!(verify(&line, "correct horse"));
        assert!(!verify(&line, "correct hors"));
        assert!(!verify(&line, ""));
        // Two hashes of one password differ (salted).
        assert_ne!(line, hash_line("correct horse", MIN_ITERATIONS));
        // A line whose iterations were edited below the floor, or is garbled,
        // matches nothing.
        let weak = line.replacen("$10000$", "$1$", 1);
        assert!(!verify(&weak, "correct horse"));
        for bad in [
            "",
            "pbkdf2-sha256$10000$zz$00",
            "md5$1$aa$bb",
            &line[..line.len() - 2],
        ] {
            assert!(!verify(bad, "correct horse"), "{bad}");
        }
        assert_eq!(
            PBKDF2_ITERATIONS.clamp(MIN_ITERATIONS, MAX_ITERATIONS),
            PBKDF2_ITERATIONS
        );
    }

    #[test]
    fn new_passwords_are_checked() {
        assert!(check_new(&"x".repeat(MIN_PASSWORD_CHARS)).is_ok());
        let e = check_new(&"x".repeat(MIN_PASSWORD_CHARS - 1)).unwrap_err();
        assert!(e.starts_with("password: "), "{e}");
        // Characters, not bytes: eight Cyrillic letters are enough.
        assert!(check_new("пароль12").is_ok());
        assert!(check_new(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }

    #[test]
    fn the_file_is_made_once_and_private() {
        let dir = std::env::temp_dir().join(format!("wsui-pw-{}", std::process::id()));
        let path = dir.join("sub/ui.password");
        assert_eq!(load(&path).unwrap(), None);
        create(&path, "line").unwrap();
        assert!(create(&path, "other").is_err());
        assert_eq!(load(&path).unwrap().as_deref(), Some("line"));
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn login_attempts_are_limited() {
        let l = LoginLimiter::default();
        let me: Option<IpAddr> = Some("192.168.1.20".parse().unwrap());
        let t0 = Instant::now();
        let tickets: Vec<Ticket> = (0..MAX_LOGIN_ATTEMPTS)
            .map(|i| l.begin(me, t0 + Duration::from_millis(i as u64)).unwrap())
            .collect();
        // One more within the window is refused, and told when to come back.
        let wait = l.begin(me, t0 + Duration::from_secs(1)).unwrap_err();
        assert!(wait <= LOGIN_WINDOW && wait > LOGIN_WINDOW - Duration::from_secs(2));
        // A success frees its attempt.
        l.forgive(tickets[0]);
        assert!(l.begin(me, t0 + Duration::from_secs(2)).is_ok());
        assert!(l.begin(me, t0 + Duration::from_secs(2)).is_err());
        // Once the window has passed, attempts are free again.
        assert!(
            l.begin(me, t0 + LOGIN_WINDOW + Duration::from_secs(3))
                .is_ok()
        );
    }

    #[test]
    fn one_guesser_does_not_lock_out_the_admin() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // A guesser spends its attempts, from an address and from others in
        // its IPv6 /64 (one attacker's share).
        for i in 0..MAX_LOGIN_ATTEMPTS {
            l.begin(ip(&format!("2001:db8:1:2::{i:x}")), t0).unwrap();
        }
        assert!(l.begin(ip("2001:db8:1:2::ffff"), t0).is_err());
        assert!(
            l.begin(ip("::ffff:192.168.1.66"), t0).is_ok(),
            "v4-mapped is its own v4"
        );
        // The admin, elsewhere, still logs in.
        assert!(l.begin(ip("2001:db8:1:3::1"), t0).is_ok());
        assert!(l.begin(ip("192.168.1.20"), t0).is_ok());
        // Many addresses together still cannot guess faster than the cap.
        let mut refused = 0;
        for i in 0..200u32 {
            let a = format!("10.{}.{}.1", i / 256, i % 256);
            if l.begin(ip(&a), t0).is_err() {
                refused += 1;
            }
        }
        assert_eq!(
            refused,
            200 - (MAX_LOGIN_ATTEMPTS_ALL - MAX_LOGIN_ATTEMPTS - 3)
        );
        // What is kept stays bounded by the global cap.
        assert!(l.attempts.lock().unwrap().len() <= MAX_LOGIN_ATTEMPTS_ALL);
    }
}
