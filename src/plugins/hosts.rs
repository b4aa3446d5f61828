//! `hosts`: names from an `/etc/hosts`-style file and inline entries, as CoreDNS 1.11's
//! `hosts` plugin serves them.
//!
//! - A and AAAA from the entries (the file's, then the inline ones), PTR for their addresses
//!   unless `no_reverse`; TTL 3600 by default; every answer authoritative.
//! - A known name asked for another type (or an IPv4-only name for AAAA): NOERROR, no records.
//! - A name it does not know in its zones: the next plugin when `fallthrough` covers it, else
//!   SERVFAIL, as CoreDNS (it has no SOA to send an NXDOMAIN with). Names outside its zones go
//!   on, and so does every PTR question it has no name for.
//! - The file is checked every `reload` (5 s): a new inode, size, mtime or ctime behind the path
//!   (a ConfigMap's symlink swap included) loads it again, into a new [`Table`] swapped in at
//!   once; readers hold the lock only to clone an `Arc`. A file that goes away or cannot be
//!   read keeps the entries last read, and says so once in the log.
//!
//! A hit allocates nothing: the tables hand out `Arc<str>` names (`tests/alloc.rs`).

mod table;
#[cfg(test)]
mod tests;

use std::fs::{File, Metadata};
use std::io::BufReader;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

pub use table::{Builder, Table, check_entry, name_hash, reverse_addr};

use super::{Flow, Records, Work};
use crate::config::HostsConfig;
use crate::dns::{Request, rcode, rtype};
use crate::metrics::dns::{Plugin, QueryReport};
use crate::zone::lookup::in_zone;
use crate::zone::{Owner, Rdata, Rr, Suffix, Target};

/// Most records in one answer: more do not fit a 64 KiB message anyway.
const MAX_ANSWERS: usize = 4096;

/// A configured `hosts`; clones share the tables.
#[derive(Clone)]
pub struct Hosts {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Hosts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hosts")
            .field("config", &self.shared.config)
            .field("file_entries", &self.file_table().len())
            .field("inline_entries", &self.shared.inline.len())
            .finish()
    }
}

struct Shared {
    config: HostsConfig,
    inline: Table,
    /// The file's entries as last read; swapped whole on a reload.
    file: RwLock<Arc<Table>>,
    /// What was read last; only the loader touches it.
    watch: Mutex<Watch>,
}

#[derive(Debug, Default)]
struct Watch {
    loaded: Option<Stamp>,
    /// The error last logged, so a file that stays away is reported once.
    failing: Option<String>,
}

/// What tells one version of the file from another, through the path (symlinks followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

impl Hosts {
    /// Builds the inline entries, reads the file (a missing one is logged and looked for again
    /// at every reload) and starts the reload thread, which ends once the last clone is gone.
    pub fn start(config: &HostsConfig) -> Hosts {
        let mut inline = Builder::new(&config.zones, !config.no_reverse);
        for line in &config.entries {
            inline.line(line.as_bytes());
        }
        let shared = Arc::new(Shared {
            config: config.clone(),
            inline: inline.finish(),
            file: RwLock::new(Arc::default()),
            watch: Mutex::new(Watch::default()),
        });
        shared.refresh();
        if config.file.is_some() && !config.reload.is_zero() {
            spawn_reloader(Arc::downgrade(&shared), config.reload);
        }
        Hosts { shared }
    }

    /// Checks the file now, as the reload thread does; whether new entries were loaded.
    pub fn refresh(&self) -> bool {
        self.shared.refresh()
    }

    /// The file's entries as last read.
    fn file_table(&self) -> Arc<Table> {
        self.shared
            .file
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Entries served: the file's and the inline ones.
    pub fn len(&self) -> usize {
        self.file_table().len() + self.shared.inline.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn handle(
        &self,
        request: &Request<'_>,
        qname: &str,
        work: &mut Work,
        report: &mut QueryReport,
    ) -> Flow {
        let config = &self.shared.config;
        let qtype = request.qtype;
        // PTR questions need not be in the zones: the names they answer with are.
        if qtype != rtype::PTR && !config.zones.iter().any(|z| in_zone(qname, z)) {
            return Flow::Next;
        }
        let file = self.file_table();
        let tables = [&*file, &self.shared.inline];
        let out = &mut work.answer;
        out.clear();
        let hash = name_hash(qname);
        let record = |data| Rr {
            owner: Owner::Query,
            ttl: config.ttl,
            data,
        };
        match qtype {
            rtype::PTR => {
                for t in tables {
                    ptr_records(t, qname, config.ttl, &mut out.answers);
                }
                if out.answers.is_empty() {
                    return Flow::Next;
                }
            }
            rtype::A => {
                let found = tables.iter().flat_map(|t| t.v4(qname, hash));
                out.answers
                    .extend(found.take(MAX_ANSWERS).map(|a| record(Rdata::A(a))));
            }
            rtype::AAAA => {
                let found = tables.iter().flat_map(|t| t.v6(qname, hash));
                out.answers
                    .extend(found.take(MAX_ANSWERS).map(|a| record(Rdata::Aaaa(a))));
            }
            _ => {}
        }
        if out.answers.is_empty() && !tables.iter().any(|t| t.has_name(qname, hash)) {
            if config.fallthrough.iter().any(|z| in_zone(qname, z)) {
                return Flow::Next;
            }
            return Flow::Rcode(u16::from(rcode::SERVFAIL));
        }
        report.plugin = Plugin::Hosts;
        Flow::Records(Records {
            rcode: u16::from(rcode::NOERROR),
            zone_labels: 0,
            soa: None,
        })
    }
}

/// PTR records for the address a reverse name stands for.
fn ptr_records(table: &Table, qname: &str, ttl: u32, out: &mut Vec<Rr>) {
    let Some(addr) = reverse_addr(qname) else {
        return;
    };
    let record = |name: &Arc<str>| Rr {
        owner: Owner::Query,
        ttl,
        data: Rdata::Ptr(Target {
            labels: name.clone(),
            suffix: Suffix::Root,
        }),
    };
    let room = MAX_ANSWERS.saturating_sub(out.len());
    match addr {
        std::net::IpAddr::V4(v4) => out.extend(table.names_v4(v4).take(room).map(record)),
        std::net::IpAddr::V6(v6) => out.extend(table.names_v6(v6).take(room).map(record)),
    }
}

impl Shared {
    /// Loads the file if it changed since it was last read.
    fn refresh(&self) -> bool {
        let Some(path) = &self.config.file else {
            return false;
        };
        let mut watch = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        let stamp = match std::fs::metadata(path) {
            Ok(m) => Stamp::of(&m),
            Err(e) => return watch.failed(path, &e, self.entries()),
        };
        if watch.loaded == Some(stamp) {
            return false;
        }
        let started = Instant::now();
        let table = match read_file(path, &self.config) {
            Ok(t) => t,
            Err(e) => return watch.failed(path, &e, self.entries()),
        };
        // Changed while it was read: take what was read, and read it again next time.
        let settled = std::fs::metadata(path).is_ok_and(|m| Stamp::of(&m) == stamp);
        watch.loaded = settled.then_some(stamp);
        watch.failing = None;
        let entries = table.len();
        *self.file.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(table);
        tracing::info!(
            file = %path.display(),
            entries,
            inline = self.inline.len(),
            ms = started.elapsed().as_millis() as u64,
            "hosts: file loaded"
        );
        true
    }

    fn entries(&self) -> usize {
        self.file.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Watch {
    /// Logs a read error once (until the file is read again); the entries stay.
    fn failed(&mut self, path: &Path, error: &std::io::Error, kept: usize) -> bool {
        let text = error.to_string();
        if self.failing.as_deref() != Some(text.as_str()) {
            tracing::error!(
                file = %path.display(),
                error = %text,
                kept,
                "hosts: cannot read the hosts file; serving the entries last read"
            );
            self.failing = Some(text);
        }
        // Whatever appears at the path next is read, even with the old stamp.
        self.loaded = None;
        false
    }
}

fn read_file(path: &Path, config: &HostsConfig) -> std::io::Result<Table> {
    let file = File::open(path)?;
    let mut builder = Builder::new(&config.zones, !config.no_reverse);
    builder.read(BufReader::with_capacity(64 * 1024, file))?;
    Ok(builder.finish())
}

fn spawn_reloader(shared: Weak<Shared>, every: Duration) {
    let spawned = std::thread::Builder::new()
        .name("hosts-reload".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                match shared.upgrade() {
                    Some(s) => {
                        s.refresh();
                    }
                    None => return,
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "hosts: cannot start the reload thread; the file is not reloaded");
    }
}
