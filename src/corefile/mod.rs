//! CoreDNS Corefiles: read as CoreDNS reads them (imports, snippets, environment variables,
//! NodeLocal DNSCache placeholders) and translated into clusterdns's config, for
//! `clusterdns convert-corefile` and for running straight from one (`--corefile`).
//!
//! - [`grammar`]: Corefile text → server blocks of directives, every error with file and line.
//! - [`convert`]: server blocks → TOML; what clusterdns does not implement is listed with its
//!   file and line, never dropped.
//! - [`ConfigSource`]: the config a process runs, from TOML or a Corefile, and what its reload
//!   watcher compares.

mod acl;
mod autopath;
pub mod convert;
mod dns64;
mod file;
pub mod grammar;
mod lexer;
mod nodelocal;
mod plugins;
mod rewrite;
mod source;
mod template;
mod tls;
mod transfer;

use std::path::Path;

pub use convert::{Conversion, Issue, Options, convert};
pub use grammar::{Directive, Error, Loc, ServerBlock, Sources, Vars};
pub use nodelocal::NodeLocal;
pub use source::{ConfigSource, LoadError, Loaded};

/// Reads the Corefile at `path` with its imports and converts it; also returns every file read.
pub fn convert_file(
    path: &Path,
    vars: &Vars,
    options: Options,
) -> (Result<Conversion, Error>, Sources) {
    let (blocks, sources) = grammar::load(path, vars);
    (blocks.map(|b| convert(&b, path, options)), sources)
}
