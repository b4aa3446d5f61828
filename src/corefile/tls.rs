//! `tls CERT KEY [CA] { client_auth nocert|request|require|verify_if_given|require_and_verify }`
//! → `[server.tls]`, the certificate of the block's `tls://` keys (DNS over TLS, RFC 7858).

use toml::{Table, Value};

use super::convert::Out;
use super::grammar::Directive;

/// The table, or `None` (refused) for what CoreDNS would not start with or clusterdns does not
/// implement (`keylog`, certificates from ACME).
pub fn tls(d: &Directive, out: &mut Out) -> Option<Table> {
    let mut table = Table::new();
    let keys: &[&str] = match d.args.len() {
        2 => &["cert", "key"],
        3 => &["cert", "key", "ca"],
        _ => {
            out.refuse(
                &d.loc,
                "tls",
                "expects CERT KEY [CA] (certificates from ACME are not implemented)",
            );
            return None;
        }
    };
    for (key, path) in keys.iter().zip(&d.args) {
        if !path.starts_with('/') {
            out.note(
                &d.loc,
                "tls",
                format!("{path:?} is read from the config file's directory (CoreDNS: the root directive's, else its working directory)"),
            );
        }
        table.insert((*key).into(), Value::String(path.clone()));
    }
    for o in &d.block {
        let subject = format!("tls {}", o.name);
        match (o.name.as_str(), o.args.as_slice()) {
            ("client_auth", [mode])
                if [
                    "nocert",
                    "request",
                    "require",
                    "verify_if_given",
                    "require_and_verify",
                ]
                .contains(&mode.as_str()) =>
            {
                table.insert("client_auth".into(), Value::String(mode.clone()));
            }
            ("client_auth", _) => {
                out.refuse(
                    &o.loc,
                    &subject,
                    "expects one of nocert, request, require, verify_if_given, require_and_verify",
                );
                return None;
            }
            ("keylog", _) => {
                out.refuse(
                    &o.loc,
                    &subject,
                    "not implemented (it writes TLS secrets to a file, for debugging)",
                );
                return None;
            }
            _ => {
                out.refuse(&o.loc, &subject, "unknown option (CoreDNS does not start)");
                return None;
            }
        }
    }
    Some(table)
}
