//! `[server.autopath]`: server-side search paths (CoreDNS `autopath`). A query that is the
//! first search-path expansion of a name is answered for the first expansion that exists,
//! with a CNAME from the name asked.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{FieldError, field_error};

/// Where the search path comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchPath {
    /// `@kubernetes`: the asking pod's `<ns>.svc.<zone>`, `svc.<zone>`, `<zone>` (the pod
    /// known from the source address), then these host search domains.
    Kubernetes { host: Vec<String> },
    /// The search domains of a resolv.conf, for every client.
    Fixed(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct AutopathConfig {
    /// Names under these zones are searched (lower-case, no trailing dot).
    pub zones: Vec<String>,
    pub search: SearchPath,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAutopath {
    zones: Option<Vec<String>>,
    /// `@kubernetes` or a resolv.conf path.
    from: String,
    /// With `@kubernetes`: the resolv.conf whose search domains follow the pod's.
    resolv_conf: Option<PathBuf>,
}

impl RawAutopath {
    pub(super) fn validate(
        self,
        key: &str,
        base: &Path,
        block: &[String],
    ) -> Result<AutopathConfig, FieldError> {
        let zones = match &self.zones {
            Some(given) => super::zones_or_cidrs(&format!("{key}.zones"), given)?,
            None => block.to_vec(),
        };
        let search = if self.from == "@kubernetes" {
            let path = self
                .resolv_conf
                .as_deref()
                .map_or_else(|| PathBuf::from("/etc/resolv.conf"), |p| base.join(p));
            // As CoreDNS: no readable resolv.conf, no host search domains.
            SearchPath::Kubernetes {
                host: search_domains(&path).unwrap_or_default(),
            }
        } else if let Some(mw) = self.from.strip_prefix('@') {
            return Err(field_error(
                format!("{key}.from"),
                format!("@{mw}: only @kubernetes gives search paths"),
            ));
        } else {
            let path = base.join(&self.from);
            let domains = search_domains(&path).map_err(|e| {
                field_error(format!("{key}.from"), format!("{}: {e}", path.display()))
            })?;
            if domains.is_empty() {
                return Err(field_error(
                    format!("{key}.from"),
                    format!("{} has no search domains", path.display()),
                ));
            }
            SearchPath::Fixed(domains)
        };
        Ok(AutopathConfig { zones, search })
    }
}

/// The `search` domains of a resolv.conf, lower-case, without trailing dots.
pub fn search_domains(path: &Path) -> Result<Vec<String>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let config = resolv_conf::Config::parse(&bytes).map_err(|e| e.to_string())?;
    Ok(config
        .get_search()
        .map(|list| {
            list.iter()
                .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
                .filter(|d| !d.is_empty())
                .collect()
        })
        .unwrap_or_default())
}
