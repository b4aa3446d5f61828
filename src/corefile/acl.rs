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
            _ => {
                return Err(format!(
                    "unexpected token {section:?}; expected type or net"
                ));
            }
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{AclAction, Config};
    use crate::corefile::grammar::{Vars, parse_text};
    use crate::corefile::{Conversion, Options, convert};

    fn conv(text: &str) -> Conversion {
        let blocks = parse_text(text, Path::new("Corefile"), &Vars::default()).unwrap();
        convert(&blocks, Path::new("Corefile"), Options { ipv6: false })
    }

    fn refusals(text: &str) -> Vec<String> {
        conv(text)
            .untranslated
            .iter()
            .map(|i| i.to_string())
            .collect()
    }

    #[test]
    fn acl_lines_become_rules_in_order_with_coredns_defaults() {
        let c = conv(
            "example.org:53 {\n  acl {\n    ALLOW net 10.0.0.1 fd00::/8\n    block type A AAAA net 10.0.0.0/8\n    filter type * net 192.168.0.0/16\n    drop net * 10.0.0.0/8\n  }\n  acl a.example.org 10.0.0.0/24 {\n    block TYPE MX type TXT\n  }\n  any\n  minimal\n  whoami\n}\n",
        );
        assert!(c.untranslated.is_empty(), "{:?}", c.untranslated);
        let config = Config::parse(&c.toml, Path::new("x.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
        let server = &config.servers[0];
        assert!(server.any && server.minimal && server.whoami);
        let [first, second] = server.acl.as_slice() else {
            panic!("two acl entries: {:?}", server.acl)
        };
        assert_eq!(first.zones, ["example.org"], "the block's zones");
        let shape: Vec<_> = first
            .rules
            .iter()
            .map(|r| (r.action, r.types.clone(), r.nets.as_ref().map(Vec::len)))
            .collect();
        assert_eq!(
            shape,
            [
                (AclAction::Allow, None, Some(2)),
                (AclAction::Block, Some(vec![1, 28]), Some(1)),
                (AclAction::Filter, None, Some(1)),
                (AclAction::Drop, None, None),
            ]
        );
        assert_eq!(
            first.rules[0].nets.as_ref().unwrap()[0].to_string(),
            "10.0.0.1/32",
            "an address alone is a /32"
        );
        assert_eq!(second.zones, ["a.example.org", "0.0.10.in-addr.arpa"]);
        assert_eq!(second.rules[0].types, Some(vec![15, 16]), "sections add up");
    }

    #[test]
    fn what_coredns_would_not_start_with_is_refused_with_its_line() {
        let cases = [
            ("permit net 10.0.0.0/8", "unexpected token \"permit\""),
            ("block type a", "\"a\" is not a query type"),
            ("block type", "no token in the \"type\" section"),
            (
                "block net 10.0.0.0/33",
                "\"10.0.0.0/33\" is not an address or a CIDR",
            ),
            (
                "block from 10.0.0.0/8",
                "unexpected token \"from\"; expected type or net",
            ),
        ];
        for (line, why) in cases {
            let issues = refusals(&format!(".:53 {{\n  acl {{\n    {line}\n  }}\n}}\n"));
            assert_eq!(issues.len(), 1, "{line}: {issues:?}");
            assert!(
                issues[0].starts_with("Corefile:3: acl ") && issues[0].contains(why),
                "{line}: {issues:?}"
            );
        }
        // After `*` CoreDNS reads no more of the section: nothing there is checked.
        assert!(refusals(".:53 {\n  acl {\n    block type * bogus\n  }\n}\n").is_empty());
    }
}
