//! `dns64 [PREFIX] { prefix PREFIX; translate_all; allow_ipv4 }` → `[server.dns64]`.

use toml::{Table, Value};

use super::convert::Out;
use super::grammar::Directive;
use crate::config::dns64::parse_prefix;

/// The table, or `None` (refused) for what CoreDNS would not start with.
pub fn dns64(d: &Directive, out: &mut Out) -> Option<Table> {
    let mut table = Table::new();
    match d.args.as_slice() {
        [] => {}
        [prefix] => {
            table.insert("prefix".into(), Value::String(prefix_of(d, prefix, out)?));
        }
        _ => {
            out.refuse(&d.loc, "dns64", "takes one PREFIX at most");
            return None;
        }
    }
    if !d.args.is_empty() {
        return after_prefix(d, table, out);
    }
    for option in &d.block {
        let subject = format!("dns64 {}", option.name);
        match (option.name.as_str(), option.args.as_slice()) {
            ("prefix", [prefix, ..]) => {
                let prefix = prefix_of(option, prefix, out)?;
                table.insert("prefix".into(), Value::String(prefix));
            }
            ("prefix", []) => {
                out.refuse(&option.loc, &subject, "needs a PREFIX");
                return None;
            }
            // CoreDNS reads no arguments of these.
            ("translate_all" | "allow_ipv4", _) => {
                table.insert(option.name.clone(), Value::Boolean(true));
            }
            _ => {
                out.refuse(&option.loc, &subject, "unknown option");
                return None;
            }
        }
    }
    Some(table)
}

/// A prefix CoreDNS accepts (IPv6, length 32, 40, 48, 56, 64 or 96), as written.
fn prefix_of(d: &Directive, prefix: &str, out: &mut Out) -> Option<String> {
    match parse_prefix(prefix) {
        Ok(_) => Some(prefix.to_owned()),
        Err(why) => {
            out.refuse(&d.loc, "dns64", why);
            None
        }
    }
}

/// `dns64 PREFIX { … }`: CoreDNS reads no options after a PREFIX argument, but each line of
/// the block as another `dns64 [PREFIX]` line: one word after the first sets the prefix
/// (`prefix P` does), a bare word is ignored (`translate_all`, `allow_ipv4`), more is an
/// error. The conversion does the same and notes what is ignored.
fn after_prefix(d: &Directive, mut table: Table, out: &mut Out) -> Option<Table> {
    for line in &d.block {
        match line.args.as_slice() {
            [] => out.note(
                &line.loc,
                &format!("dns64 {}", line.name),
                "ignored, as CoreDNS ignores options after a PREFIX argument: write the prefix inside the block",
            ),
            [prefix] => {
                table.insert("prefix".into(), Value::String(prefix_of(line, prefix, out)?));
            }
            _ => {
                out.refuse(&line.loc, "dns64", "takes one PREFIX at most");
                return None;
            }
        }
    }
    Some(table)
}
