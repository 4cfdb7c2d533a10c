//! The `log` crate's messages on stderr (procd hands a service's stderr to the
//! system log). `WGSPLIT_LOG=error|warn|info|debug` picks the level; warnings
//! and errors by default.

use std::time::SystemTime;

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
            eprintln!("wgsplit: {level}{}", r.args());
        }
    }

    fn flush(&self) {}
}

/// A timestamped line on stderr (procd puts it in the system log): the daemon's
/// record of what it changed and why.
pub fn say(msg: &str) {
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    eprintln!("[{t:.3}] wgsplit: {msg}");
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
    fn levels_from_the_environment_value() {
        assert_eq!(level_from(None), LevelFilter::Warn);
        assert_eq!(level_from(Some("DEBUG")), LevelFilter::Debug);
        assert_eq!(level_from(Some("info")), LevelFilter::Info);
        assert_eq!(level_from(Some("nonsense")), LevelFilter::Warn);
    }
}
