//! `file DBFILE [ZONES…] { reload DURATION }` → a `[[server.file]]` table.

use toml::{Table, Value};

use super::convert::Out;
use super::grammar::Directive;

/// The table, or `None` (refused) for what clusterdns does not translate.
pub fn file(d: &Directive, out: &mut Out) -> Option<Table> {
    let Some((path, zones)) = d.args.split_first() else {
        out.refuse(
            &d.loc,
            "file",
            "needs a zone file (CoreDNS does not start without one)",
        );
        return None;
    };
    let mut table = Table::new();
    table.insert("path".into(), Value::String(path.clone()));
    if !zones.is_empty() {
        let zones = zones.iter().map(|z| Value::String(z.clone())).collect();
        table.insert("zones".into(), Value::Array(zones));
    }
    for option in &d.block {
        let subject = format!("file {}", option.name);
        match (option.name.as_str(), option.args.as_slice()) {
            ("reload", [duration, ..]) => {
                table.insert("reload".into(), Value::String(duration.clone()));
            }
            ("reload", []) => {
                out.refuse(&option.loc, &subject, "needs a DURATION");
                return None;
            }
            // Ignored by CoreDNS 1.11 ("remove soon").
            ("upstream", _) => out.note(&option.loc, &subject, "ignored, as CoreDNS ignores it"),
            _ => {
                out.refuse(
                    &option.loc,
                    &subject,
                    "unknown option (CoreDNS 1.11 does not start)",
                );
                return None;
            }
        }
    }
    Some(table)
}
