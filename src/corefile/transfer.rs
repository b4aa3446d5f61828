//! `transfer [ZONES…] { to ADDRESS… }` → `[server.transfer]`.

use toml::{Table, Value};

use super::convert::{Out, zone_of};
use super::grammar::Directive;
use crate::config::transfer::peer;

/// Every `to` line's addresses together; CoreDNS 1.11.1 knows no other option (`source` came
/// later, with NOTIFY, which clusterdns does not send).
pub fn transfer(d: &Directive, out: &mut Out) -> Option<Table> {
    let mut to = Vec::new();
    for o in &d.block {
        let subject = format!("transfer {}", o.name);
        if o.name != "to" {
            out.refuse(
                &o.loc,
                &subject,
                "unknown option (CoreDNS 1.11 has only `to`)",
            );
            return None;
        }
        if o.args.is_empty() {
            out.refuse(&o.loc, &subject, "needs at least one ADDRESS or *");
            return None;
        }
        for address in &o.args {
            if peer(address).is_none() {
                let why = format!(
                    "{address:?} is not * or an IP address with an optional port (networks are not accepted, as in CoreDNS)"
                );
                out.refuse(&o.loc, &subject, why);
                return None;
            }
            to.push(Value::String(address.clone()));
        }
    }
    if to.is_empty() {
        out.refuse(&d.loc, "transfer", "needs a `to` line (as CoreDNS)");
        return None;
    }
    let mut table = Table::new();
    if !d.args.is_empty() {
        let zones = d.args.iter().map(|z| Value::String(zone_of(z))).collect();
        table.insert("zones".into(), Value::Array(zones));
    }
    table.insert("to".into(), Value::Array(to));
    Some(table)
}
