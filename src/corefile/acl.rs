//! `acl [ZONES…] { ACTION [type QTYPE…] [net SOURCE…] … }` → one `[[server.acl]]` entry, read
//! as CoreDNS's `acl` setup reads it: actions and section words in any case, query types in
//! upper case, `*` ending a section ("all"), an address alone as a /32 or /128. What CoreDNS
//! would not start with is refused with its line, and the whole directive left out.

use toml::{Table, Value};

use super::convert::Out;
use super::grammar::Directive;
use super::plugins::zones_of;
use crate::config::AclAction;
use crate::config::acl::{net, qtype};

pub fn acl(d: &Directive, out: &mut Out) -> Option<Table> {
    let mut table = Table::new();
    if !d.args.is_empty() {
        match zones_of(&d.args) {
            Ok(zones) => {
                table.insert("zones".into(), zones.into());
            }
            Err(why) => {
                out.refuse(&d.loc, "acl", why);
                return None;
            }
        }
    }
    let mut rules = Vec::new();
    for line in &d.block {
        match rule(line) {
            Ok(t) => rules.push(Value::Table(t)),
            Err(why) => {
                out.refuse(&line.loc, &format!("acl {}", line.name), why);
                return None;
            }
        }
    }
    table.insert("rules".into(), Value::Array(rules));
    Some(table)
}

/// One `ACTION [type …] [net …]` line as a rule table.
fn rule(line: &Directive) -> Result<Table, String> {
    let action = AclAction::parse(&line.name).ok_or_else(|| {
        format!(
            "unexpected token {:?}; expected allow, block, filter or drop",
            line.name
        )
    })?;
    let mut types = Words::default();
    let mut nets = Words::default();
    let mut rest = line.args.as_slice();
    while let Some((section, after)) = rest.split_first() {
        let (words, check): (&mut Words, Check) = match section.to_ascii_lowercase().as_str() {
            "type" => (&mut types, |w| qtype(w).map(drop)),
            "net" => (&mut nets, |w| net(w).map(drop)),
            _ => return Err(format!("unexpected token {section:?}; expected type or net")),
        };
        let n = after.iter().take_while(|w| !is_section(w)).count();
        if n == 0 {
            return Err(format!("no token in the {section:?} section"));
        }
        words.read(&after[..n], check)?;
        rest = &after[n..];
    }
    let mut t = Table::new();
    t.insert("action".into(), action_name(action).into());
    if let Some(list) = types.into_list() {
        t.insert("types".into(), list.into());
    }
    if let Some(list) = nets.into_list() {
        t.insert("nets".into(), list.into());
    }
    Ok(t)
}

/// Whether a word is a valid type, or a valid network.
type Check = fn(&str) -> Result<(), String>;

fn is_section(word: &str) -> bool {
    word.eq_ignore_ascii_case("type") || word.eq_ignore_ascii_case("net")
}

fn action_name(action: AclAction) -> &'static str {
    match action {
        AclAction::Allow => "allow",
        AclAction::Block => "block",
        AclAction::Filter => "filter",
        AclAction::Drop => "drop",
    }
}

/// The words of one kind of section, over every section of that kind on the line.
#[derive(Default)]
struct Words {
    seen: bool,
    /// A `*` was read: everything matches.
    all: bool,
    list: Vec<String>,
}

impl Words {
    /// Reads a section's words up to its first `*` (CoreDNS stops there).
    fn read(&mut self, words: &[String], check: Check) -> Result<(), String> {
        self.seen = true;
        for word in words {
            if word == "*" {
                self.all = true;
                return Ok(());
            }
            check(word)?;
            self.list.push(word.clone());
        }
        Ok(())
    }

    /// The list for the config; `None` (every value) when the section is absent or had `*`.
    fn into_list(self) -> Option<Vec<String>> {
        (self.seen && !self.all).then_some(self.list)
    }
}
