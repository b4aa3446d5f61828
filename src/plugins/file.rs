//! `file`: authoritative zones from RFC 1035 zone files, as CoreDNS 1.11's `file` plugin
//! serves them.
//!
//! - A question in one of the zones (the longest that holds it) is answered from it, AA set:
//!   the records of the name, a CNAME followed through the zone (an out-of-zone target is asked
//!   of another zone here, or appended by the block's forwarder as `template` does), a wildcard
//!   with the question's name as owner, NODATA or NXDOMAIN with the SOA in authority (as written
//!   in the file, TTL included), NODATA for an empty non-terminal, and a referral with glue and
//!   AA clear below a delegation. Positive answers carry the apex NS in authority, MX and SRV
//!   answers the addresses of their in-zone targets in additional (see [`zone`]).
//! - Names outside the zones go on to the next plugin; a zone whose file could not be read yet
//!   answers SERVFAIL.
//! - Every `reload` (1m; 0: never) the file is read again off the query path; it is taken when
//!   its first SOA's serial differs from the one served (as CoreDNS), swapped in whole. A file
//!   that breaks keeps the zone served, and the error (file and line) is logged.

pub(crate) mod parse;
mod zone;

use std::path::Path;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

pub use parse::{ReadError, read_zone};
pub use zone::{Outcome, Zone};

use super::{Flow, Work};
use crate::config::FileConfig;
use crate::dns::{Request, rcode, rtype};
use crate::metrics::dns::{Plugin, QueryReport};
use crate::zone::lookup::in_zone;

/// A configured `file`: all its zones; clones share them.
#[derive(Debug, Clone)]
pub struct File {
    zones: Arc<[Arc<Source>]>,
}

/// One zone of one file.
#[derive(Debug)]
struct Source {
    path: std::path::PathBuf,
    origin: String,
    /// `None` until the file has been read once.
    zone: RwLock<Option<Arc<Zone>>>,
}

impl File {
    /// Reads every zone (a missing file is logged and read again at each reload, unless
    /// reload is 0; a broken one is an error) and starts the reload threads.
    pub fn start(configs: &[FileConfig]) -> anyhow::Result<Option<File>> {
        if configs.is_empty() {
            return Ok(None);
        }
        let mut zones = Vec::new();
        for config in configs {
            let sources: Vec<Arc<Source>> = config
                .zones
                .iter()
                .map(|origin| Source::first(config, origin).map(Arc::new))
                .collect::<anyhow::Result<_>>()?;
            if !config.reload.is_zero() {
                spawn_reloader(sources.iter().map(Arc::downgrade).collect(), config.reload);
            }
            zones.extend(sources);
        }
        Ok(Some(File {
            zones: zones.into(),
        }))
    }

    /// Reads every file now, as the reload threads do; how many zones were replaced.
    pub fn refresh(&self) -> usize {
        self.zones.iter().filter(|s| s.refresh()).count()
    }

    fn source_for(&self, qname: &str) -> Option<&Source> {
        (self.zones.iter())
            .filter(|s| in_zone(qname, &s.origin))
            .max_by_key(|s| s.origin.len())
            .map(|s| &**s)
    }

    pub fn handle(
        &self,
        request: &Request<'_>,
        qname: &str,
        work: &mut Work,
        report: &mut QueryReport,
    ) -> Flow {
        let Some(source) = self.source_for(qname) else {
            return Flow::Next;
        };
        report.plugin = Plugin::File;
        let Some(zone) = source.current() else {
            return Flow::Rcode(u16::from(rcode::SERVFAIL));
        };
        if matches!(request.qtype, rtype::AXFR | rtype::IXFR) {
            return Flow::Rcode(u16::from(rcode::REFUSED));
        }
        let held = Held::of(&self.zones);
        let reply = zone.lookup(&held, qname, request.qtype, 0);
        write(reply, work)
    }
}

/// The zones as they stand for one question (each read once, so a CNAME chain sees one
/// version of each).
struct Held(Vec<Arc<Zone>>);

impl Held {
    fn of(sources: &[Arc<Source>]) -> Held {
        Held(sources.iter().filter_map(|s| s.current()).collect())
    }
}

impl zone::Zones for Held {
    fn lookup_any<'z>(&'z self, qname: &str, qtype: u16, depth: usize) -> Option<zone::Reply<'z>> {
        let zone = (self.0.iter())
            .filter(|z| in_zone(qname, z.origin()))
            .max_by_key(|z| z.origin().len())?;
        Some(zone.lookup(self, qname, qtype, depth))
    }
}

/// Encodes the reply into [`Work::encoded`] as the handler writes sections.
fn write(reply: zone::Reply<'_>, work: &mut Work) -> Flow {
    let rcode = match reply.outcome {
        Outcome::ServerFailure if reply.sections[0].is_empty() => {
            return Flow::Rcode(u16::from(rcode::SERVFAIL));
        }
        Outcome::ServerFailure => rcode::SERVFAIL,
        Outcome::NameError => rcode::NXDOMAIN,
        _ => rcode::NOERROR,
    };
    work.encoded.clear();
    let scratch = &mut work.template;
    scratch.ends.clear();
    // The handler appends the forwarder's answer for the target, as for template's CNAMEs.
    scratch.chase = reply.chase;
    let mut counts = [0u16; 3];
    for (count, section) in counts.iter_mut().zip(&reply.sections) {
        for (owner, record) in section {
            zone::put(&mut work.encoded, owner, record);
            scratch.ends.push(work.encoded.len());
            *count += 1;
        }
    }
    if reply.outcome == Outcome::Delegation && counts[0] == 0 {
        return Flow::Referral { counts };
    }
    Flow::Sections {
        rcode: u16::from(rcode),
        counts,
    }
}

impl Source {
    /// The zone as first read; a file that cannot be opened is looked for again at reloads.
    fn first(config: &FileConfig, origin: &str) -> anyhow::Result<Source> {
        let zone = match read_zone(&config.path, origin, None) {
            Ok(records) => Some(Arc::new(build(&config.path, origin, records)?)),
            Err(ReadError::Bad(why)) if !config.reload.is_zero() && !config.path.exists() => {
                tracing::warn!(error = %why, "file: cannot read the zone file; trying again at each reload");
                None
            }
            Err(ReadError::Bad(why)) => anyhow::bail!("file: {why}"),
            Err(ReadError::Unchanged) => None,
        };
        if let Some(z) = &zone {
            loaded(&config.path, z);
        }
        Ok(Source {
            path: config.path.clone(),
            origin: origin.to_owned(),
            zone: RwLock::new(zone),
        })
    }

    fn current(&self) -> Option<Arc<Zone>> {
        self.zone.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reads the file again; whether a zone with another serial was taken.
    fn refresh(&self) -> bool {
        let serial = self.current().map(|z| z.serial);
        let zone = read_zone(&self.path, &self.origin, serial)
            .map_err(|e| match e {
                ReadError::Bad(why) => Some(why),
                ReadError::Unchanged => None,
            })
            .and_then(|records| {
                build(&self.path, &self.origin, records).map_err(|e| Some(e.to_string()))
            });
        match zone {
            Ok(zone) => {
                loaded(&self.path, &zone);
                *self.zone.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(zone));
                true
            }
            Err(None) => false,
            Err(Some(why)) => {
                tracing::error!(zone = %self.origin, error = %why, "file: the zone file does not load; serving the zone last read");
                false
            }
        }
    }
}

fn build(path: &Path, origin: &str, records: Vec<parse::ReadRecord>) -> anyhow::Result<Zone> {
    Zone::build(origin, records)
        .ok_or_else(|| anyhow::anyhow!("{}: no SOA record for origin {origin}", path.display()))
}

fn loaded(path: &Path, zone: &Zone) {
    tracing::info!(
        file = %path.display(),
        zone = zone.origin(),
        serial = zone.serial,
        names = zone.names(),
        "file: zone loaded"
    );
}

fn spawn_reloader(sources: Vec<Weak<Source>>, every: Duration) {
    let spawned = std::thread::Builder::new()
        .name("file-reload".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                let live: Vec<Arc<Source>> = sources.iter().filter_map(Weak::upgrade).collect();
                if live.is_empty() {
                    return;
                }
                for s in live {
                    s.refresh();
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "file: cannot start the reload thread; the zones are not reloaded");
    }
}

#[cfg(test)]
mod tests;
