//! `template`: answers built from Go-style templates, as CoreDNS 1.11's `template` plugin
//! builds them.
//!
//! - Templates are tried in the order configured. One whose zones, class and type (either side
//!   may be ANY) do not take the question is skipped before anything is allocated or matched.
//! - Its regexes are matched, in order, against the question name (lower-case, absolute: with
//!   the trailing dot); the first that matches decides (none configured: every name matches).
//! - No regex matches: the next template when `fallthrough` covers the name, else SERVFAIL.
//! - A match answers: rcode as configured (NOERROR by default; a SERVFAIL template answers a
//!   bare SERVFAIL), authoritative, the rendered `answer`, `authority` and `additional`
//!   records. A record that does not render or parse is a SERVFAIL and an error in the log.
//! - For an A or AAAA question, a CNAME answer's target is looked up and its records appended
//!   when a block here forwards it (CoreDNS asks its whole server; see the README).
//! - No template matched: the next plugin.

mod render;
mod rr;
#[cfg(test)]
mod tests;

use std::ops::Range;
use std::sync::Arc;

use regex::Regex;
use smallvec::{SmallVec, smallvec};

pub use render::{Data, Template as RecordTemplate};
pub use rr::{Encoded, encode, parse as parse_record};

use super::{Flow, Work};
use crate::config::TemplateConfig;
use crate::dns::{Request, rcode, rtype};
use crate::metrics::dns::{Plugin, QueryReport};
use crate::zone::lookup::{best_zone, in_zone};

/// Class and type ANY (255) take every question, and a question of ANY takes every template.
const ANY: u16 = 255;

/// The configured templates of a block, in order; clones share them.
#[derive(Debug, Clone)]
pub struct Templates {
    list: Arc<[Compiled]>,
    ends: LastOctets,
}

/// The last octets of every template zone: a name ending in none of them is no template's,
/// told in a few instructions whatever the number of templates (the cluster-name path).
#[derive(Debug, Clone, Copy, Default)]
struct LastOctets {
    set: [u64; 4],
    /// A template serves the root: every name may be its.
    root: bool,
}

impl LastOctets {
    fn of<'z>(zones: impl Iterator<Item = &'z String>) -> LastOctets {
        let mut ends = LastOctets::default();
        for zone in zones {
            match zone.as_bytes().last() {
                Some(&b) => ends.set[usize::from(b >> 6)] |= 1 << (b & 63),
                None => ends.root = true,
            }
        }
        ends
    }

    fn may_hold(&self, name: &str) -> bool {
        self.root
            || name
                .as_bytes()
                .last()
                .is_some_and(|&b| self.set[usize::from(b >> 6)] & (1 << (b & 63)) != 0)
    }
}

#[derive(Debug)]
struct Compiled {
    config: TemplateConfig,
    /// Empty: the default `.*`, which matches every name without being run.
    regexes: Box<[Regex]>,
    /// Answer, authority, additional: the order they are written in.
    sections: [Box<[RecordTemplate]>; 3],
}

/// Where a regex's groups are in the name (`None` for one that took no part); inline for
/// the usual few, so a template without records answers without allocating.
type Groups = SmallVec<[Option<Range<usize>>; 8]>;

/// Per-task space of the stage, reused across queries.
#[derive(Debug, Default)]
pub struct Scratch {
    /// Where each encoded record ends in [`Work::encoded`].
    pub ends: Vec<usize>,
    /// A CNAME target to look up and append (A/AAAA questions).
    pub chase: Option<String>,
    text: String,
    name: String,
}

/// Why the regexes or templates of one config cannot be used (the key relative to the
/// template's, e.g. `answer[1]`, and the problem).
pub type CompileError = (String, String);

impl Templates {
    pub fn new(configs: &[TemplateConfig]) -> Result<Templates, (usize, CompileError)> {
        let list = configs
            .iter()
            .enumerate()
            .map(|(i, c)| compile(c).map_err(|e| (i, e)))
            .collect::<Result<Vec<_>, _>>()?;
        let ends = LastOctets::of(configs.iter().flat_map(|c| &c.zones));
        Ok(Templates {
            list: list.into(),
            ends,
        })
    }

    /// The block's templates; `None` when it has none (no stage).
    pub fn configured(configs: &[TemplateConfig]) -> anyhow::Result<Option<Templates>> {
        if configs.is_empty() {
            return Ok(None);
        }
        Templates::new(configs)
            .map(Some)
            .map_err(|(i, (key, why))| anyhow::anyhow!("template[{i}].{key}: {why}"))
    }

    #[inline]
    pub fn handle(
        &self,
        request: &Request<'_>,
        qname: &str,
        work: &mut Work,
        report: &mut QueryReport,
    ) -> Flow {
        if !self.ends.may_hold(qname) {
            return Flow::Next;
        }
        self.try_each(request, qname, work, report)
    }

    #[inline(never)]
    fn try_each(
        &self,
        request: &Request<'_>,
        qname: &str,
        work: &mut Work,
        report: &mut QueryReport,
    ) -> Flow {
        let mut absolute = false;
        for t in self.list.iter() {
            if !t.takes(request.qclass, request.qtype, qname) {
                continue;
            }
            if !absolute {
                fqdn(qname, &mut work.template.name);
                absolute = true;
            }
            let Some((regex, groups)) = t.matching(&work.template.name) else {
                if t.config.fallthrough.iter().any(|z| in_zone(qname, z)) {
                    continue;
                }
                return Flow::Rcode(u16::from(rcode::SERVFAIL));
            };
            report.plugin = Plugin::Template;
            return t.answer(request, qname, regex, &groups, work);
        }
        Flow::Next
    }
}

/// Checks and compiles one template's regexes and records.
pub fn compile_check(config: &TemplateConfig) -> Result<(), CompileError> {
    compile(config).map(|_| ())
}

fn compile(config: &TemplateConfig) -> Result<Compiled, CompileError> {
    let regexes = config
        .matches
        .iter()
        .enumerate()
        .map(|(i, r)| Regex::new(r).map_err(|e| (format!("match[{i}]"), e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let section = |key: &str, list: &[String]| {
        list.iter()
            .enumerate()
            .map(|(i, t)| RecordTemplate::parse(t).map_err(|e| (format!("{key}[{i}]"), e)))
            .collect::<Result<Box<[_]>, _>>()
    };
    Ok(Compiled {
        sections: [
            section("answer", &config.answer)?,
            section("authority", &config.authority)?,
            section("additional", &config.additional)?,
        ],
        regexes: regexes.into(),
        config: config.clone(),
    })
}

/// `name` (lower-case, no trailing dot) absolute, into `out`.
fn fqdn(name: &str, out: &mut String) {
    out.clear();
    out.push_str(name);
    out.push('.');
}

impl Compiled {
    /// Zones, class and type: no allocation, no regex.
    fn takes(&self, qclass: u16, qtype: u16, qname: &str) -> bool {
        let c = &self.config;
        (c.class == ANY || qclass == ANY || qclass == c.class)
            && (c.rtype == ANY || qtype == ANY || qtype == c.rtype)
            && c.zones.iter().any(|z| in_zone(qname, z))
    }

    /// The first regex matching `name` (its index; `None` for the default `.*`) and where its
    /// groups are in `name` (`None` for a group that took no part).
    fn matching(&self, name: &str) -> Option<(Option<usize>, Groups)> {
        if self.regexes.is_empty() {
            return Some((None, smallvec![Some(0..name.len())]));
        }
        self.regexes.iter().enumerate().find_map(|(i, r)| {
            let captures = r.captures(name)?;
            Some((
                Some(i),
                captures.iter().map(|m| m.map(|m| m.range())).collect(),
            ))
        })
    }

    fn answer(
        &self,
        request: &Request<'_>,
        qname: &str,
        regex: Option<usize>,
        groups: &[Option<Range<usize>>],
        work: &mut Work,
    ) -> Flow {
        let rcode = u16::from(self.config.rcode);
        if rcode == u16::from(rcode::SERVFAIL) {
            return Flow::Rcode(rcode);
        }
        work.encoded.clear();
        let Scratch {
            ends,
            chase,
            text,
            name,
        } = &mut work.template;
        ends.clear();
        *chase = None;
        let mut counts = [0u16; 3];
        if self.sections.iter().all(|s| s.is_empty()) {
            return Flow::Sections { rcode, counts };
        }
        let matches: Vec<&str> = groups
            .iter()
            .map(|g| g.clone().map_or("", |r| &name[r]))
            .collect();
        let (regex, names) = match regex {
            Some(i) => (
                self.regexes[i].as_str(),
                self.regexes[i].capture_names().collect(),
            ),
            None => (".*", vec![None]),
        };
        let zone = best_zone(&self.config.zones, qname).map(crate::dns::name::zone_label);
        let question_name = crate::dns::name::display(request.bytes, crate::dns::HEADER_LEN);
        let (class, rtype) = self.names_for(request);
        let remote = request.peer.ip().to_canonical().to_string();
        let data = Data {
            zone: zone.as_deref().unwrap_or("."),
            name,
            regex,
            class,
            rtype: &rtype,
            matches: &matches,
            names: &names,
            question_name: &question_name,
            qtype: request.qtype,
            qclass: request.qclass,
            remote: &remote,
        };
        for (section, templates) in self.sections.iter().enumerate() {
            for t in templates.iter() {
                text.clear();
                let encoded = t
                    .render(&data, text)
                    .and_then(|()| encode(text, &mut work.encoded));
                let encoded = match encoded {
                    Ok(e) => e,
                    Err(e) => return failed(section, &data, &e),
                };
                ends.push(work.encoded.len());
                counts[section] += 1;
                if section == 0 && chase.is_none() && chases(request.qtype) {
                    *chase = encoded.cname;
                }
            }
        }
        Flow::Sections { rcode, counts }
    }

    /// `.Class` and `.Type`: the question's, or the template's when the question has ANY.
    fn names_for(&self, request: &Request<'_>) -> (&'static str, String) {
        let class = if request.qclass == ANY {
            self.config.class
        } else {
            request.qclass
        };
        let qtype = if request.qtype == ANY {
            self.config.rtype
        } else {
            request.qtype
        };
        (class_name(class), type_name(qtype))
    }
}

fn chases(qtype: u16) -> bool {
    qtype == rtype::A || qtype == rtype::AAAA
}

fn failed(section: usize, data: &Data<'_>, error: &str) -> Flow {
    let section = ["answer", "authority", "additional"][section];
    tracing::error!(
        name = data.name,
        zone = data.zone,
        section,
        error,
        "template: the record does not render"
    );
    Flow::Rcode(u16::from(rcode::SERVFAIL))
}

/// A class as miekg/dns names it; `""` for one it has no name for, as Go prints a missing
/// map entry.
pub fn class_name(class: u16) -> &'static str {
    match class {
        1 => "IN",
        2 => "CS",
        3 => "CH",
        4 => "HS",
        254 => "NONE",
        255 => "ANY",
        _ => "",
    }
}

/// The class a name stands for (upper-case, as CoreDNS reads the directive).
pub fn class_code(name: &str) -> Option<u16> {
    [1u16, 2, 3, 4, 254, 255]
        .into_iter()
        .find(|c| class_name(*c) == name)
}

/// A type as miekg/dns names it; `""` for one hickory does not know either.
pub fn type_name(qtype: u16) -> String {
    match hickory_proto::rr::RecordType::from(qtype) {
        hickory_proto::rr::RecordType::Unknown(_) => String::new(),
        t => t.to_string(),
    }
}

/// The type a name stands for (upper-case, as CoreDNS reads the directive).
pub fn type_code(name: &str) -> Option<u16> {
    if name.bytes().any(|b| b.is_ascii_lowercase()) {
        return None;
    }
    match name.parse::<hickory_proto::rr::RecordType>() {
        Ok(hickory_proto::rr::RecordType::Unknown(_)) | Err(_) => None,
        Ok(t) => Some(u16::from(t)),
    }
}

/// The rcodes a template may answer with (the header's four bits; the extended ones need
/// an OPT record a template does not write).
pub fn rcode_code(name: &str) -> Option<u8> {
    const NAMES: [&str; 11] = [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
        "NXRRSET", "NOTAUTH", "NOTZONE",
    ];
    NAMES.iter().position(|n| *n == name).map(|i| i as u8)
}
