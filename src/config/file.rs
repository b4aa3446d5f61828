//! `[[server.file]]`: an authoritative zone from an RFC 1035 zone file (CoreDNS `file`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{FieldError, RawDuration};

#[derive(Debug, Clone, PartialEq)]
pub struct FileConfig {
    /// The zone file (absolute).
    pub path: PathBuf,
    /// The zones (origins) read from it, lower-case, no trailing dot; the block's by default.
    pub zones: Vec<String>,
    /// How often the file is read again (0: never); 1m by default, as CoreDNS.
    pub reload: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    path: PathBuf,
    zones: Option<Vec<String>>,
    reload: Option<RawDuration>,
}

impl RawFile {
    pub(super) fn validate(
        self,
        key: &str,
        base: &Path,
        block: &[String],
    ) -> Result<FileConfig, FieldError> {
        let zones = super::stage_zone_names(&format!("{key}.zones"), self.zones.as_deref(), block)?;
        let path = if self.path.is_absolute() {
            self.path
        } else {
            base.join(self.path)
        };
        Ok(FileConfig {
            path,
            zones,
            reload: super::duration(&format!("{key}.reload"), self.reload, "1m")?,
        })
    }
}
