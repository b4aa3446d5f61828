//! The answer to a rewritten question, turned back for the client (CoreDNS's
//! `ResponseReverter`): the client's own question, then each record of the authority, answer
//! and additional sections through the steps in order (owner names, the names in record data,
//! TTLs). The OPT record is left alone. Decoded and re-encoded with hickory-proto; an answer
//! that grew past the client's size loses records from the end (additional first, then
//! authority, then answers with TC set).

use std::sync::Arc;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::{Step, name, substitute};
use crate::config::rewrite::{Action, Matcher, RewriteRule};
use crate::dns::{Client, rcode};

/// How one rewritten question's answer is turned back.
#[derive(Debug)]
pub struct Revert {
    rules: Arc<[RewriteRule]>,
    steps: Vec<Step>,
    /// The client's side: its question, header, EDNS and size.
    client: Client,
}

/// One string rewrite of a name in presentation format; `None` when it leaves it as is.
enum Rewriter<'a> {
    /// The name or a subdomain of it (CoreDNS's remap).
    Remap { from: &'a str, to: &'a str },
    /// A suffix swapped for another.
    Suffix { suffix: &'a str, to: &'a str },
    /// A match of the regex makes the whole name from the template.
    Regex {
        pattern: &'a regex::Regex,
        to: &'a str,
    },
}

impl Rewriter<'_> {
    fn apply(&self, src: &str) -> Option<String> {
        match *self {
            Rewriter::Remap { from, to } => {
                if src == from {
                    return Some(to.to_owned());
                }
                let head = src.strip_suffix(from)?;
                head.ends_with('.').then(|| format!("{head}{to}"))
            }
            Rewriter::Suffix { suffix, to } => {
                src.strip_suffix(suffix).map(|head| format!("{head}{to}"))
            }
            Rewriter::Regex { pattern, to } => {
                pattern.captures(src).map(|groups| substitute(to, &groups))
            }
        }
    }
}

/// Which name of a record a rewriter changes.
#[derive(Clone, Copy)]
enum Part {
    Owner,
    Value,
}

impl Revert {
    pub fn new(rules: Arc<[RewriteRule]>, steps: Vec<Step>, client: Client) -> Revert {
        Revert {
            rules,
            steps,
            client,
        }
    }

    /// The response for the client; SERVFAIL when the answer cannot be read or a rule turns a
    /// name into something that is no name.
    pub fn response(&self, answer: &[u8]) -> Vec<u8> {
        self.turned_back(answer).unwrap_or_else(|| {
            tracing::debug!("rewrite: the answer cannot be turned back; SERVFAIL");
            self.client.error_reply(rcode::SERVFAIL)
        })
    }

    fn turned_back(&self, answer: &[u8]) -> Option<Vec<u8>> {
        let mut message = Message::from_vec(answer).ok()?;
        let question = Query::read(&mut BinDecoder::new(&self.client.question.bytes)).ok()?;
        message.queries = vec![question];
        if !self.steps.is_empty() {
            let sections = [
                &mut message.authorities,
                &mut message.answers,
                &mut message.additionals,
            ];
            for record in sections.into_iter().flat_map(|s| s.iter_mut()) {
                self.record(record)?;
            }
        }
        crate::plugins::encode_within(message, self.client.limit)
    }

    /// Every step, in order, on one record.
    fn record(&self, record: &mut Record) -> Option<()> {
        for step in &self.steps {
            match step {
                Step::Remap { from, to } => {
                    let remap = Rewriter::Remap { from, to };
                    rewrite(record, Part::Owner, &remap)?;
                    rewrite(record, Part::Value, &remap)?;
                }
                Step::Rule(i) => self.rule(&self.rules[*i].action, record)?,
            }
        }
        Some(())
    }

    fn rule(&self, action: &Action, record: &mut Record) -> Option<()> {
        match action {
            Action::Name(rule) => {
                if let (true, Matcher::Suffix(suffix)) = (rule.auto, &rule.matcher) {
                    // The suffixes exchanged: the new one back to the old.
                    let back = Rewriter::Suffix {
                        suffix: &rule.to,
                        to: suffix,
                    };
                    rewrite(record, Part::Owner, &back)?;
                    rewrite(record, Part::Value, &back)?;
                }
                for answer in &rule.answers {
                    let part = if answer.value {
                        Part::Value
                    } else {
                        Part::Owner
                    };
                    let rewriter = Rewriter::Regex {
                        pattern: &answer.pattern.0,
                        to: &answer.to,
                    };
                    rewrite(record, part, &rewriter)?;
                }
            }
            Action::Ttl { min, max, .. } => record.ttl = record.ttl.clamp(*min, *max),
            Action::Type { .. } | Action::Class { .. } => {}
        }
        Some(())
    }
}

/// Rewrites one name of the record; `None` when the result is no domain name.
fn rewrite(record: &mut Record, part: Part, rewriter: &Rewriter<'_>) -> Option<()> {
    let target = match part {
        Part::Owner => &mut record.name,
        Part::Value => match value_name(&mut record.data) {
            Value::Name(name) => name,
            Value::Wire(wire) => return rewrite_wire(wire, rewriter),
            Value::None => return Some(()),
        },
    };
    let mut shown = String::new();
    name::presentation(target.iter(), false, &mut shown);
    if let Some(new) = rewriter.apply(&shown)
        && new != shown
    {
        let labels = name::labels(&new)?;
        *target = Name::from_labels(labels.iter().map(Vec::as_slice)).ok()?;
    }
    Some(())
}

/// A DNAME's target, an uncompressed wire name (left alone if it is not one).
fn rewrite_wire(wire: &mut Vec<u8>, rewriter: &Rewriter<'_>) -> Option<()> {
    if crate::dns::name::plain_end(wire, 0) != Some(wire.len()) {
        return Some(());
    }
    let mut shown = String::new();
    name::presentation(crate::dns::name::plain_labels(wire, 0), false, &mut shown);
    if let Some(new) = rewriter.apply(&shown)
        && new != shown
    {
        wire.clear();
        name::put_wire(&name::labels(&new)?, wire);
    }
    Some(())
}

/// Where a record keeps the name it points at.
enum Value<'a> {
    Name(&'a mut Name),
    Wire(&'a mut Vec<u8>),
    None,
}

/// The name a record points at, for the types CoreDNS rewrites.
fn value_name(data: &mut RData) -> Value<'_> {
    match data {
        RData::CNAME(n) => Value::Name(&mut n.0),
        RData::NS(n) => Value::Name(&mut n.0),
        RData::PTR(n) => Value::Name(&mut n.0),
        RData::SRV(srv) => Value::Name(&mut srv.target),
        RData::MX(mx) => Value::Name(&mut mx.exchange),
        RData::NAPTR(naptr) => Value::Name(&mut naptr.replacement),
        RData::SOA(soa) => Value::Name(&mut soa.mname),
        // hickory-proto keeps a DNAME as its bytes.
        RData::Unknown { code, rdata } if *code == RecordType::DNAME => {
            Value::Wire(&mut rdata.anything)
        }
        _ => Value::None,
    }
}
