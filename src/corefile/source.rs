//! Where the running config comes from: a TOML file (`--config`) or a Corefile converted in
//! memory (`--corefile`), at start and at every reload, with what a reload watcher compares.

use std::path::{Path, PathBuf};

use super::convert::{Issue, Options};
use super::grammar::{self, Vars};
use crate::config::{Config, ConfigError};

#[derive(Debug, Clone)]
pub enum ConfigSource {
    Toml(PathBuf),
    Corefile { path: PathBuf, vars: Vars },
}

/// A config and, from a Corefile, what was translated with a difference worth knowing.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub notes: Vec<Issue>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A Corefile syntax, import or placeholder error.
    #[error(transparent)]
    Corefile(#[from] grammar::Error),
    /// Directives clusterdns does not implement: one line each.
    #[error("{}", .0.iter().map(|i| format!("{}: not translated: {}", i.loc, i.text)).collect::<Vec<_>>().join("\n"))]
    Untranslated(Vec<Issue>),
    /// The TOML a Corefile converted to is invalid (a value out of clusterdns's range).
    #[error(
        "{0} (in the config converted from the Corefile; `clusterdns convert-corefile` prints it)"
    )]
    Converted(ConfigError),
}

impl LoadError {
    /// 1 when something is not translated, 2 when the file is invalid (as `convert-corefile`).
    pub fn exit_code(&self) -> u8 {
        match self {
            LoadError::Untranslated(_) => 1,
            _ => 2,
        }
    }
}

impl ConfigSource {
    pub fn path(&self) -> &Path {
        match self {
            ConfigSource::Toml(path) | ConfigSource::Corefile { path, .. } => path,
        }
    }

    /// Reads (and converts) the config. A Corefile with anything clusterdns does not
    /// implement is refused: serving without it would answer differently, silently.
    pub fn load(&self) -> Result<Loaded, LoadError> {
        match self {
            ConfigSource::Toml(path) => Ok(Loaded {
                config: Config::load(path)?,
                notes: Vec::new(),
            }),
            ConfigSource::Corefile { path, vars } => {
                let options = Options {
                    ipv6: ipv6_available(),
                };
                let conversion = super::convert_file(path, vars, options).0?;
                if !conversion.untranslated.is_empty() {
                    return Err(LoadError::Untranslated(conversion.untranslated));
                }
                let config = Config::parse(&conversion.toml, path).map_err(LoadError::Converted)?;
                Ok(Loaded {
                    config,
                    notes: conversion.notes,
                })
            }
        }
    }

    /// What a reload watcher compares: the TOML file's bytes, or the Corefile's and those of
    /// every file it imports (read through their paths, so a ConfigMap volume's symlink swap
    /// shows). `None` when the main file cannot be read.
    pub fn snapshot(&self) -> Option<Vec<u8>> {
        match self {
            ConfigSource::Toml(path) => std::fs::read(path).ok(),
            ConfigSource::Corefile { path, vars } => {
                let (_, sources) = grammar::load(path, vars);
                if sources.is_empty() {
                    return None;
                }
                let mut out = Vec::new();
                for (file, bytes) in sources {
                    out.extend_from_slice(file.as_os_str().as_encoded_bytes());
                    out.push(0);
                    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
                    out.extend_from_slice(&bytes);
                }
                Some(out)
            }
        }
    }
}

/// Can this machine listen on IPv6 (`[::]`)? Not where the kernel was booted without it.
fn ipv6_available() -> bool {
    std::net::UdpSocket::bind("[::]:0").is_ok()
}
