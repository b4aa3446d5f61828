//! `template CLASS TYPE [ZONES…] { match REGEX…; answer|authority|additional RR…; rcode CODE;
//! fallthrough [ZONES…]; upstream }` → one `[[server.template]]` table. What CoreDNS would
//! refuse to start with (an unknown class, type or rcode, a regex or template that does not
//! compile) is refused here at its line, and so is what clusterdns does not implement.

use regex::Regex;
use toml::{Table, Value};

use super::convert::{Out, zone_of};
use super::grammar::Directive;
use super::plugins::zones_of;
use crate::plugins::template::{self, RecordTemplate};

pub fn template(d: &Directive, out: &mut Out) -> Option<Table> {
    let mut t = Table::new();
    let (class, rtype, zones) = match d.args.as_slice() {
        [class, rtype, zones @ ..] => (class, rtype, zones),
        _ => {
            out.refuse(&d.loc, "template", "expects CLASS TYPE [ZONES…]");
            return None;
        }
    };
    if template::class_code(class).is_none() {
        out.refuse(&d.loc, "template", format!("invalid query class {class}"));
        return None;
    }
    if template::type_code(rtype).is_none() {
        out.refuse(&d.loc, "template", format!("invalid query type {rtype}"));
        return None;
    }
    t.insert("class".into(), class.as_str().into());
    t.insert("type".into(), rtype.as_str().into());
    if !zones.is_empty() {
        t.insert("zones".into(), zones_value(zones, d, out)?);
    }
    let mut ok = true;
    for o in &d.block {
        ok &= option(o, &mut t, out);
    }
    ok.then_some(t)
}

/// Zone arguments as the TOML writes them (names; CIDRs as their reverse zones).
fn zones_value(args: &[String], d: &Directive, out: &mut Out) -> Option<Value> {
    match zones_of(args) {
        Ok(zones) => Some(Value::Array(zones.into_iter().map(Value::String).collect())),
        Err(why) => {
            out.refuse(&d.loc, "template", why);
            None
        }
    }
}

/// One line of the block into `t`; `false` when it is refused.
fn option(o: &Directive, t: &mut Table, out: &mut Out) -> bool {
    let subject = format!("template {}", o.name);
    let args = o.args.as_slice();
    let refused = |out: &mut Out, why: String| {
        out.refuse(&o.loc, &subject, why);
        false
    };
    match o.name.as_str() {
        "match" | "answer" | "authority" | "additional" if args.is_empty() => {
            refused(out, "needs at least one argument".into())
        }
        "match" => match args
            .iter()
            .find_map(|r| Regex::new(r).err().map(|e| (r, e)))
        {
            Some((r, e)) => refused(out, format!("could not parse regex {r:?}: {e}")),
            None => append(t, "match", args),
        },
        "answer" | "authority" | "additional" => {
            match args.iter().find_map(|a| RecordTemplate::parse(a).err()) {
                Some(e) => refused(out, format!("could not compile template: {e}")),
                None => append(t, &o.name, args),
            }
        }
        "rcode" => match args {
            [code] if template::rcode_code(code).is_some() => {
                t.insert("rcode".into(), code.as_str().into());
                true
            }
            [code] if code.starts_with("BAD") => refused(
                out,
                format!("{code} is an extended rcode, which needs an OPT record: not implemented"),
            ),
            _ => refused(
                out,
                "expects one rcode (NOERROR, NXDOMAIN, SERVFAIL, …)".into(),
            ),
        },
        "fallthrough" => {
            let zones: Vec<String> = if args.is_empty() {
                vec![".".into()]
            } else {
                args.iter().map(|z| zone_of(z)).collect()
            };
            append(t, "fallthrough", &zones)
        }
        // CoreDNS 1.11 reads and ignores it ("remove soon"): CNAMEs are always chased.
        "upstream" => true,
        "ederror" => refused(
            out,
            "extended DNS errors (RFC 8914) are not implemented".into(),
        ),
        _ => refused(out, "unknown property".into()),
    }
}

fn append(t: &mut Table, key: &str, values: &[String]) -> bool {
    let list = t.entry(key).or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = list {
        list.extend(values.iter().cloned().map(Value::String));
    }
    true
}
