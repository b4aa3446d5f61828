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
