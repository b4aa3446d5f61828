//! `autopath [ZONES…] RESOLV-CONF` → `[server.autopath]`.

use toml::{Table, Value};

use super::convert::Out;
use super::grammar::Directive;
use super::plugins::{Kube, zones_of};

/// `kube`: the block's `kubernetes`, which `@kubernetes` needs with `pods verified`; without
/// it CoreDNS's autopath does nothing, so it is left out (noted).
pub fn autopath(d: &Directive, kube: Option<&Kube>, out: &mut Out) -> Option<Table> {
    if !d.block.is_empty() {
        out.refuse(&d.loc, "autopath", "takes no options block");
        return None;
    }
    let Some((from, zones)) = d.args.split_last() else {
        out.refuse(
            &d.loc,
            "autopath",
            "needs a RESOLV-CONF (a file or @kubernetes)",
        );
        return None;
    };
    let mut table = Table::new();
    match from.strip_prefix('@') {
        Some("kubernetes") => {
            let verified = kube
                .is_some_and(|k| k.table.get("pods").and_then(Value::as_str) == Some("verified"));
            if !verified {
                out.note(
                    &d.loc,
                    "autopath",
                    "@kubernetes searches nothing without kubernetes `pods verified` (as in CoreDNS): left out",
                );
                return None;
            }
        }
        Some(other) => {
            out.refuse(
                &d.loc,
                "autopath",
                format!("@{other} gives no search paths: only @kubernetes"),
            );
            return None;
        }
        None => {}
    }
    table.insert("from".into(), Value::String(from.clone()));
    match zones_of(zones) {
        Ok(z) if z.is_empty() => {}
        Ok(z) => {
            table.insert("zones".into(), z.into());
        }
        Err(why) => {
            out.refuse(&d.loc, "autopath", why);
            return None;
        }
    }
    Some(table)
}
