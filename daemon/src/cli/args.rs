//! What every command shares: its context, its failure, and the one argument
//! parser (positionals, `--name value` options, `--flag`s) over lexopt.

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use lexopt::{Arg, Parser, ValueExt};

use crate::config;

/// What every subcommand gets: the config path and the remaining arguments.
pub struct Context {
    pub config_path: PathBuf,
}

impl Context {
    pub fn load(&self) -> Result<config::Config, String> {
        config::load(&self.config_path).map_err(|e| e.to_string())
    }
}

/// A command's failure: the message and the exit code.
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self { message, code: 1 }
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        message.to_string().into()
    }
}

impl From<wgsplit::config::store::EditError> for Failure {
    fn from(e: wgsplit::config::store::EditError) -> Self {
        e.to_string().into()
    }
}

pub type CmdResult = Result<(), Failure>;

/// Parsed arguments: positionals, `--name value` options and `--flag`s.
#[derive(Debug, Default)]
pub struct Args {
    pub positional: Vec<String>,
    values: Vec<(String, String)>,
    pub flags: Vec<String>,
}

impl Args {
    pub fn parse(parser: &mut Parser, valued: &[&str], flags: &[&str]) -> Result<Self, Failure> {
        let mut args = Self::default();
        let err = |e: lexopt::Error| Failure::from(e.to_string());
        while let Some(arg) = parser.next().map_err(err)? {
            match arg {
                Arg::Value(v) => args.positional.push(v.string().map_err(err)?),
                Arg::Long(name) if valued.contains(&name) => {
                    let name = name.to_string();
                    let value = parser.value().map_err(err)?.string().map_err(err)?;
                    args.values.push((name, value));
                }
                Arg::Short('o') if valued.contains(&"output") => {
                    let value = parser.value().map_err(err)?.string().map_err(err)?;
                    args.values.push(("output".into(), value));
                }
                Arg::Long(name) if flags.contains(&name) => args.flags.push(name.to_string()),
                other => return Err(usage(other.unexpected().to_string())),
            }
        }
        Ok(args)
    }

    pub fn one(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }
}

pub fn usage(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: 2,
    }
}

/// Collects positional arguments; rejects unknown flags except those in `flags`,
/// whose presence is returned.
pub fn positional_and_flags(
    parser: &mut Parser,
    flags: &[&str],
) -> Result<(Vec<String>, Vec<String>), Failure> {
    let args = Args::parse(parser, &[], flags).map_err(|f| Failure { code: 1, ..f })?;
    Ok((args.positional, args.flags))
}

/// Reads a file, or standard input for `-`.
pub fn read_input(file: &str) -> Result<String, String> {
    if file == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("stdin: {e}"))?;
        Ok(text)
    } else {
        std::fs::read_to_string(Path::new(file)).map_err(|e| format!("{file}: {e}"))
    }
}
