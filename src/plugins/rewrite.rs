//! `rewrite`: the question changed before the later stages see it, and their answer turned back
//! for the client, as CoreDNS 1.11's `rewrite` plugin does.
//!
//! - Rules apply once each, in order, to the question as the rules before left it; a rule that
//!   applies in `stop` mode (the default) is the last. Names are matched lower-cased and
//!   absolute, in presentation format ([`name`]).
//! - `name` rules change the question name (`exact`, `prefix`, `suffix`, `substring`, or a
//!   `regex` whose `{N}` references fill a template that becomes the whole name); `type` and
//!   `class` rules change the type and class; `ttl` rules only clamp the answer's TTLs.
//! - The later stages of the same block answer the new question; a name rewritten into
//!   another block's zone is not routed there, as in CoreDNS. A new name that is no domain
//!   name is SERVFAIL.
//! - The client gets its own question back, always, and the answer's names as the rules say
//!   ([`Revert`]): `exact` (and `answer auto` for `prefix`, `substring`, `regex`) maps the new
//!   name and its subdomains back to the old one in owners and in record data; a `suffix` rule
//!   with `answer auto` swaps the suffixes back; `answer name|value FROM TO` are regex rewrites
//!   of owners and of record data (CNAME, NS, PTR, MX, SRV, NAPTR targets, the SOA's MNAME).
//!   Without any of these, owners keep the new name, as CoreDNS leaves them.
//!
//! A name no rule matches costs matching the rules: the name is written once into a reused
//! buffer and a regex is asked only whether it matches. The rest runs only for a rewritten
//! question and decodes and re-encodes the answer with hickory-proto.

mod name;
mod revert;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use super::{Flow, Work};
use crate::config::rewrite::{Action, Matcher, NameRule, RewriteRule};
use crate::dns::{Request, rcode};

pub use revert::Revert;

/// A block's rules; clones share them.
#[derive(Debug, Clone)]
pub struct Rewrite {
    rules: Arc<[RewriteRule]>,
}

/// A question the rules changed, for the stages after `rewrite`.
#[derive(Debug)]
pub struct Rewritten {
    /// The request as the later stages see it; `None` when only the answer is changed (a
    /// `ttl` rule) and the client's request goes on as it is.
    pub message: Option<Vec<u8>>,
    pub revert: Revert,
}

/// One way the answer is turned back, in the order the rules applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A name equal to `from`, or ending in `.from`, gets `to` in place of `from` (owners and
    /// record data): `exact`, or `answer auto` of a `prefix`, `substring` or `regex` rule.
    Remap { from: String, to: String },
    /// Rule N's own answer rules: `answer auto` of a `suffix` rule, `answer name|value`, a TTL
    /// range.
    Rule(usize),
}

/// What the rules did to a question.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// No rule applied.
    Untouched,
    /// A rule made a name that is no domain name.
    Invalid,
    Applied(Applied),
}

/// The question after the rules that applied, and how the answer is turned back.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The new name, when a rule changed it (absolute, presentation format).
    pub name: Option<String>,
    pub qtype: u16,
    pub qclass: u16,
    pub steps: Vec<Step>,
}

impl Rewrite {
    pub fn new(rules: Vec<RewriteRule>) -> Rewrite {
        Rewrite {
            rules: rules.into(),
        }
    }

    pub fn handle(&self, request: &Request<'_>, qname: &str, work: &mut Work) -> Flow {
        name::question(request.question, qname, &mut work.rewrite_name);
        match apply(
            &self.rules,
            &work.rewrite_name,
            request.qtype,
            request.qclass,
        ) {
            Outcome::Untouched => Flow::Next,
            Outcome::Invalid => {
                tracing::debug!(name = %work.rewrite_name, "rewrite: the new name is no domain name");
                Flow::Rcode(u16::from(rcode::SERVFAIL))
            }
            Outcome::Applied(applied) => {
                work.rewritten = Some(Rewritten {
                    message: inner_message(request, &applied),
                    revert: Revert::new(self.rules.clone(), applied.steps, request.client()),
                });
                // The pipeline fills in where to resume.
                Flow::Rewritten { resume: 0 }
            }
        }
    }
}

/// Applies `rules` to a question (`name` lower-case, absolute, presentation format).
pub fn apply(rules: &[RewriteRule], name: &str, qtype: u16, qclass: u16) -> Outcome {
    // Most names match no rule: find the first that applies before building anything.
    let Some(first) = rules
        .iter()
        .position(|r| applies(&r.action, name, qtype, qclass))
    else {
        return Outcome::Untouched;
    };
    let mut now = Applied {
        name: None,
        qtype,
        qclass,
        steps: Vec::new(),
    };
    let mut any = false;
    for (i, rule) in rules.iter().enumerate().skip(first) {
        let current = now.name.as_deref().unwrap_or(name);
        let done = match &rule.action {
            Action::Name(n) => match rename(n, current) {
                Some(new) => {
                    if name::labels(&new).is_none() {
                        return Outcome::Invalid;
                    }
                    steps_of(n, i, current, &new, &mut now.steps);
                    now.name = Some(new);
                    true
                }
                None => false,
            },
            Action::Type { from, to } => swap(&mut now.qtype, *from, *to),
            Action::Class { from, to } => swap(&mut now.qclass, *from, *to),
            Action::Ttl { matcher, .. } => {
                let hit = matches(matcher, current);
                if hit {
                    now.steps.push(Step::Rule(i));
                }
                hit
            }
        };
        any |= done;
        if done && rule.stop {
            break;
        }
    }
    if any {
        Outcome::Applied(now)
    } else {
        Outcome::Untouched
    }
}

/// Would the rule apply to this question?
fn applies(action: &Action, name: &str, qtype: u16, qclass: u16) -> bool {
    match action {
        Action::Name(n) => matches(&n.matcher, name),
        Action::Type { from, to } => qtype == *from && *from > 0 && *to > 0,
        Action::Class { from, to } => qclass == *from && *from > 0 && *to > 0,
        Action::Ttl { matcher, .. } => matches(matcher, name),
    }
}

fn swap(value: &mut u16, from: u16, to: u16) -> bool {
    let hit = *value == from && from > 0 && to > 0;
    if hit {
        *value = to;
    }
    hit
}

/// The new name a name rule makes of `name`, if it matches.
fn rename(rule: &NameRule, name: &str) -> Option<String> {
    let to = rule.to.as_str();
    match &rule.matcher {
        Matcher::Exact(from) => (name == from).then(|| to.to_owned()),
        Matcher::Prefix(p) => name
            .strip_prefix(p.as_str())
            .map(|rest| format!("{to}{rest}")),
        Matcher::Suffix(s) => name
            .strip_suffix(s.as_str())
            .map(|head| format!("{head}{to}")),
        Matcher::Substring(s) => name
            .contains(s.as_str())
            .then(|| name.replace(s.as_str(), to)),
        Matcher::Regex(p) => {
            // `is_match` first: it allocates nothing, and most names do not match.
            if !p.0.is_match(name) {
                return None;
            }
            p.0.captures(name).map(|groups| substitute(to, &groups))
        }
    }
}

/// Does `name` match (a `ttl` rule)?
fn matches(matcher: &Matcher, name: &str) -> bool {
    match matcher {
        Matcher::Exact(from) => name == from,
        Matcher::Prefix(p) => name.starts_with(p.as_str()),
        Matcher::Suffix(s) => name.ends_with(s.as_str()),
        Matcher::Substring(s) => name.contains(s.as_str()),
        Matcher::Regex(p) => p.0.is_match(name),
    }
}

/// CoreDNS's template filling: `{0}`, `{1}`, … replaced in turn by the groups (an unmatched
/// group by nothing).
pub fn substitute(template: &str, groups: &regex::Captures<'_>) -> String {
    let mut out = template.to_owned();
    for (i, group) in groups.iter().enumerate() {
        let reference = format!("{{{i}}}");
        if out.contains(&reference) {
            out = out.replace(&reference, group.map_or("", |g| g.as_str()));
        }
    }
    out
}

/// How the answer to rule `i`'s new name is turned back.
fn steps_of(rule: &NameRule, i: usize, old: &str, new: &str, steps: &mut Vec<Step>) {
    let suffix = matches!(rule.matcher, Matcher::Suffix(_));
    if rule.auto && !suffix {
        steps.push(Step::Remap {
            from: new.to_owned(),
            to: old.to_owned(),
        });
    }
    if (rule.auto && suffix) || !rule.answers.is_empty() {
        steps.push(Step::Rule(i));
    }
}

/// The request with the new question: the client's header, the question, and the client's
/// OPT record (other records of a query are dropped). `None` when the question is unchanged.
fn inner_message(request: &Request<'_>, applied: &Applied) -> Option<Vec<u8>> {
    let same_name = applied.name.is_none();
    if same_name && applied.qtype == request.qtype && applied.qclass == request.qclass {
        return None;
    }
    let question = request.question;
    crate::dns::query::with_question(request, applied.qtype, applied.qclass, |out| {
        match &applied.name {
            Some(new) => name::put_wire(&name::labels(new)?, out),
            None => out.extend_from_slice(&question[..question.len() - 4]),
        }
        Some(())
    })
}
