//! The `log` crate's messages on stderr (procd hands a service's stderr to the
//! system log). `WGSPLIT_LOG=error|warn|info|debug` picks the level; warnings
//! and errors by default.
//!
//! One format for every line, `say` and the log macros alike: `wgsplit: …`,
//! with the local time in front on a terminal only (under procd syslog stamps
//! the line itself; a raw Unix time helps nobody there).

use std::io::IsTerminal;

use log::{Level, LevelFilter, Log, Metadata, Record};

struct Stderr;

impl Log for Stderr {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record) {
        if self.enabled(r.metadata()) {
            let level = match r.level() {
                Level::Error => "error: ",
                Level::Warn => "warning: ",
                _ => "",
            };
            emit(&format!("{level}{}", r.args()));
        }
    }

    fn flush(&self) {}
}

/// A line on stderr (procd puts it in the system log): the daemon's record of
/// what it changed and why.
pub fn say(msg: &str) {
    emit(msg);
}

/// Writes one line in the one format (see the module's comment).
fn emit(msg: &str) {
    let stderr = std::io::stderr();
    if stderr.is_terminal() {
        eprintln!("{} wgsplit: {msg}", local_time(now_unix()));
    } else {
        eprintln!("wgsplit: {msg}");
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `2026-12-06 07:01:02` in the local time zone (`TZ`, /etc/localtime).
fn local_time(t: i64) -> String {
    let secs = t as libc::time_t;
    // SAFETY: localtime_r fills the tm we own from a time_t we own; no aliasing.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return t.to_string();
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

static LOGGER: Stderr = Stderr;

/// The level a `WGSPLIT_LOG` value asks for (unknown or unset: warnings).
pub fn level_from(value: Option<&str>) -> LevelFilter {
    match value.map(str::to_ascii_lowercase).as_deref() {
        Some("off") => LevelFilter::Off,
        Some("error") => LevelFilter::Error,
        Some("info") => LevelFilter::Info,
        Some("debug") => LevelFilter::Debug,
        Some("trace") => LevelFilter::Trace,
        _ => LevelFilter::Warn,
    }
}

/// Installs the logger once, for the whole process.
pub fn init() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level_from(super::paths::log_level().as_deref()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_is_a_calendar_time() {
        // Whatever the zone, the shape: date, space, time.
        let t = local_time(1_796_536_665);
        assert_eq!(t.len(), 19, "{t}");
        assert!(t.starts_with("2026-12-0"), "{t}");
        assert_eq!(&t[10..11], " ");
    }

    #[test]
    fn levels_from_the_environment_value() {
        assert_eq!(level_from(None), LevelFilter::Warn);
        assert_eq!(level_from(Some("DEBUG")), LevelFilter::Debug);
        assert_eq!(level_from(Some("info")), LevelFilter::Info);
        assert_eq!(level_from(Some("nonsense")), LevelFilter::Warn);
    }
}
