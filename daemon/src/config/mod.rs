//! The config: read from UCI storage, shown as JSON, validated as a whole.

pub mod confine;
pub mod convert;
pub mod model;
pub mod store;
pub mod types;
pub mod uci;
pub mod validate;

use std::{
    fmt, fs,
    path::{Path, PathBuf},
};

pub use model::*;

pub const DEFAULT_PATH: &str = crate::util::paths::DEFAULT_CONFIG;

/// The config file to use: `--config`, else `$WGSPLIT_CONFIG`, else the UCI default.
pub fn resolve_path(flag: Option<PathBuf>) -> PathBuf {
    crate::util::paths::config(flag)
}

/// One thing wrong with a config, named by its uci path (`alice.address`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(path: &str, message: impl Into<String>) -> Self {
        Self {
            path: path.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Problems one per line, as `config check` prints them.
pub struct ProblemList<'a>(pub &'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

#[derive(Debug)]
pub enum Error {
    Io(PathBuf, std::io::Error),
    Syntax(uci::ParseError),
    Json(String),
    Invalid(Vec<Problem>),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(path, e) => write!(f, "{}: {e}", path.display()),
            Self::Syntax(e) => write!(f, "{e}"),
            Self::Json(e) => write!(f, "JSON: {e}"),
            Self::Invalid(problems) => write!(f, "{}", ProblemList(problems)),
        }
    }
}

impl std::error::Error for Error {}

/// Parses and validates UCI text, reporting every problem at once.
pub fn parse_valid(text: &str) -> Result<Config, Error> {
    let mut builder = convert::Builder::default();
    uci::parse_each(text, |s| builder.add(s)).map_err(Error::Syntax)?;
    let (config, mut problems) = builder.finish();
    // A value that failed to read is left out of the model; don't report it twice.
    let seen: std::collections::HashSet<String> = problems.iter().map(|p| p.path.clone()).collect();
    problems.extend(
        validate::validate(&config)
            .into_iter()
            .filter(|p| !seen.contains(&p.path)),
    );
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(Error::Invalid(problems))
    }
}

pub fn check(config: Config) -> Result<Config, Error> {
    let problems = validate::validate(&config);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(Error::Invalid(problems))
    }
}

pub fn to_uci(config: &Config) -> String {
    uci::write(None, &convert::to_sections(config))
}

pub fn to_json(config: &Config) -> String {
    let mut text = serde_json::to_string_pretty(config).expect("the model always serialises");
    text.push('\n');
    text
}

/// Parses JSON into the model; a type error names its path (`clients[0].enabled`).
pub fn from_json(text: &str) -> Result<Config, Error> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        Error::Json(format!("{path}: {}", e.into_inner()))
    })
}

/// Reads and validates the config file.
pub fn load(path: &Path) -> Result<Config, Error> {
    let bytes = fs::read(path).map_err(|e| Error::Io(path.into(), e))?;
    parse_valid(uci::text(&bytes).map_err(Error::Syntax)?)
}

/// Writes UCI text atomically: a temporary file beside it, fsync, rename. The
/// file keeps its mode; a new file is 0600 because it holds private keys.
pub fn save(path: &Path, config: &Config) -> Result<(), Error> {
    crate::util::fs::write_atomic(path, to_uci(config).as_bytes())
        .map_err(|e| Error::Io(path.into(), e))
}
