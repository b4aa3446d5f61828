//! `rewrite` → one `[[server.rewrite]]` table per directive, read as CoreDNS 1.11 reads it:
//! `rewrite [continue|stop] FIELD ARGS…`, or a block (`rewrite [continue|stop] { … }`) whose
//! lines are one rule's words. `edns0` and `cname` rules are refused by name; what CoreDNS
//! would not start with is refused with its reason.

use toml::{Table, Value};

use super::convert::Out;
use super::grammar::Directive;

const MATCH_TYPES: [&str; 5] = ["exact", "prefix", "suffix", "substring", "regex"];

/// The rule of one `rewrite` directive, checked as the config checks it.
pub fn rule(d: &Directive, out: &mut Out) -> Option<Table> {
    let table = words(d).and_then(|w| parse(&w)).and_then(|t| {
        crate::config::rewrite::rule_from_table(&t)
            .map(|_| t)
            .map_err(|why| why.trim_start_matches("rule.").to_owned())
    });
    match table {
        Ok(t) => Some(t),
        Err(why) => {
            out.refuse(&d.loc, "rewrite", why);
            None
        }
    }
}

/// The rule's words: the directive's arguments, and with fewer than two, its block's words
/// in order (CoreDNS reads a block only then).
fn words(d: &Directive) -> Result<Vec<String>, String> {
    let mut words = d.args.clone();
    if d.block.is_empty() {
        return Ok(words);
    }
    if words.len() >= 2 {
        return Err("a block after a rule's arguments (CoreDNS reads a block only after `rewrite [continue|stop]`)".into());
    }
    for line in &d.block {
        if !line.block.is_empty() {
            return Err("a block inside the rule's block".into());
        }
        words.push(line.name.clone());
        words.extend(line.args.iter().cloned());
    }
    Ok(words)
}

fn parse(words: &[String]) -> Result<Table, String> {
    let mut t = Table::new();
    let first = words.first().ok_or("no rule type specified for rewrite")?;
    let rest = match first.to_lowercase().as_str() {
        mode @ ("continue" | "stop") => {
            if words.len() < 2 {
                return Err(format!("{mode} rule must begin with a rule type"));
            }
            if mode == "continue" {
                t.insert("mode".into(), "continue".into());
            }
            &words[1..]
        }
        _ => words,
    };
    let field = rest[0].to_lowercase();
    let args = &rest[1..];
    match field.as_str() {
        "name" => name_rule(args, &mut t)?,
        "type" | "class" => match args {
            [from, to] => {
                t.insert("from".into(), from.as_str().into());
                t.insert("to".into(), to.as_str().into());
            }
            _ => return Err(format!("{field} rules must have exactly two arguments")),
        },
        "ttl" => ttl_rule(args, &mut t)?,
        "answer" => return Err("response rewrites must begin with a name rule".into()),
        "edns0" | "cname" => {
            return Err(format!("{field} rules are not implemented by clusterdns"));
        }
        _ => return Err(format!("invalid rule type {:?}", rest[0])),
    }
    t.insert("field".into(), field.into());
    Ok(t)
}

/// `name [MATCH] FROM TO [answer auto | answer name|value FROM TO]…`
fn name_rule(args: &[String], t: &mut Table) -> Result<(), String> {
    let (kind, from, to, answers) = match args {
        [from, to] => ("exact".to_owned(), from, to, &[][..]),
        [kind, from, to, answers @ ..] => (kind.to_lowercase(), from, to, answers),
        _ => return Err("too few arguments for a name rule".into()),
    };
    if !MATCH_TYPES.contains(&kind.as_str()) {
        return Err(format!(
            "name rule supports only exact, prefix, suffix, substring, and regex name matching, received: {kind}"
        ));
    }
    t.insert("match".into(), kind.as_str().into());
    t.insert("from".into(), from.as_str().into());
    t.insert("to".into(), to.as_str().into());
    if !answers.is_empty() {
        answer_rules(&kind, answers, t)?;
    }
    Ok(())
}

/// CoreDNS's `parseAnswerRules`: the first must start with `answer`, the others may.
fn answer_rules(kind: &str, args: &[String], t: &mut Table) -> Result<(), String> {
    if args.len() < 2 {
        return Err(format!("invalid arguments for {kind} rule"));
    }
    let (mut names, mut values) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < args.len() {
        if i == 0 && args[0] != "answer" {
            return Err(format!(
                "exceeded the number of arguments for a non-answer rule argument for {kind} rule"
            ));
        }
        if args[i] == "answer" {
            i += 1;
        }
        let Some(what) = args.get(i) else {
            return Err(format!("type missing for answer rule for {kind} rule"));
        };
        i += 1;
        let list = match what.as_str() {
            "auto" => {
                t.insert("answer_auto".into(), true.into());
                continue;
            }
            "name" => &mut names,
            "value" => &mut values,
            other => {
                return Err(format!(
                    "invalid type {other:?} for answer rule for {kind} rule"
                ));
            }
        };
        let [from, to] = args
            .get(i..i + 2)
            .and_then(|p| <&[String; 2]>::try_from(p).ok())
            .ok_or_else(|| format!("{what} answer rule for {kind} rule: 2 arguments required"))?;
        let mut pair = Table::new();
        pair.insert("from".into(), from.as_str().into());
        pair.insert("to".into(), to.as_str().into());
        list.push(Value::Table(pair));
        i += 2;
    }
    for (key, list) in [("answer_name", names), ("answer_value", values)] {
        if !list.is_empty() {
            t.insert(key.into(), Value::Array(list));
        }
    }
    Ok(())
}

/// `ttl [MATCH] NAME SECONDS|MIN-MAX`
fn ttl_rule(args: &[String], t: &mut Table) -> Result<(), String> {
    let (kind, name, ttl) = match args {
        [name, ttl] => ("exact".to_owned(), name, ttl),
        [kind, name, ttl] => (kind.to_lowercase(), name, ttl),
        [] | [_] => return Err(format!("too few ({}) arguments for a ttl rule", args.len())),
        _ => return Err("invalid TTL '' for a ttl rule".into()),
    };
    if crate::config::rewrite::parse_ttl(ttl).is_none() {
        return Err(format!("invalid TTL '{ttl}' for a ttl rule"));
    }
    if !MATCH_TYPES.contains(&kind.as_str()) {
        return Err(
            "ttl rule supports only exact, prefix, suffix, substring, and regex name matching"
                .into(),
        );
    }
    t.insert("match".into(), kind.into());
    t.insert("from".into(), name.as_str().into());
    let value = match ttl.parse::<i64>() {
        Ok(n) => Value::Integer(n),
        Err(_) => Value::String(ttl.clone()),
    };
    t.insert("ttl".into(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::convert::{Options, convert};
    use super::super::grammar::{Vars, parse_text};
    use crate::config::Config;
    use crate::config::rewrite::{Action, Matcher};

    /// The rules of a one-block Corefile, or what was refused.
    fn rules(body: &str) -> Result<Vec<crate::config::rewrite::RewriteRule>, Vec<String>> {
        let text = format!(".:53 {{\n{body}\n    forward . 127.0.0.1\n}}\n");
        let blocks = parse_text(&text, Path::new("Corefile"), &Vars::default()).unwrap();
        let c = convert(&blocks, Path::new("Corefile"), Options { ipv6: false });
        if !c.untranslated.is_empty() {
            return Err(c.untranslated.iter().map(ToString::to_string).collect());
        }
        let config = Config::parse(&c.toml, Path::new("/etc/coredns/Corefile"))
            .unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
        Ok(config.servers[0].rewrite.clone())
    }

    /// CoreDNS's `TestNewNameRule` table: which name rules start and which do not.
    #[test]
    fn name_rules_are_accepted_and_refused_as_coredns_does() {
        let cases: &[(&str, bool)] = &[
            ("exact srv3.coredns.rocks srv4.coredns.rocks", true),
            ("srv1.coredns.rocks srv2.coredns.rocks", true),
            ("suffix coredns.rocks coredns.rocks.", true),
            ("regex srv1.coredns.rocks 10", true),
            ("regex (.*).coredns.rocks {1}.coredns.rocks", true),
            ("regex (.*).coredns.rocks {1}.{2}.coredns.rocks", false),
            ("suffix staging.mydomain.com coredns.rock answer", false),
            (
                "suffix staging.mydomain.com coredns.rock answer name",
                false,
            ),
            (
                "suffix staging.mydomain.com coredns.rock answer other",
                false,
            ),
            ("suffix staging.mydomain.com coredns.rock answer auto", true),
            ("regex staging.mydomain.com coredns.rock answer auto", true),
            ("regex staging.mydomain.com coredns.rock answer name", false),
            (
                "regex staging.mydomain.com coredns.rock answer name coredns.rock staging.mydomain.com",
                true,
            ),
            (
                "regex s.com c.rock answer name (.*).c.rock {1}.{2}.s.com",
                false,
            ),
            (
                "regex s.com c.rock answer name (.*).c.rock {1}.s.com name (.*).c.rock {1}.s.com",
                true,
            ),
            (
                "regex s.com c.rock answer name (.*).c.rock {1}.s.com answer name (.*).c.rock {1}.s.com",
                true,
            ),
            (
                "regex s.com c.rock answer name (.*).c.rock {1}.s.com name (.*).c.rock",
                false,
            ),
            (
                "regex s.com c.rock answer name (.*).c.rock {1}.s.com value (.*).c.rock {1}.s.com",
                true,
            ),
            (
                "regex s.com c.rock answer name (.*).c.rock {1}.s.com value (.*).c.rock",
                false,
            ),
            (
                "suffix s.com. c.rock. answer value (.*).c.rock {1}.s.com name (.*).c.rock {1}.s.com",
                true,
            ),
            (
                "suffix s.com. c.rock. answer auto name (.*).c.rock {1}.s.com",
                false,
            ),
            ("suffix s.com. c.rock. extra", false),
            ("nomatch a b", false),
            ("a", false),
        ];
        for (args, ok) in cases {
            for mode in ["", "continue ", "stop "] {
                let got = rules(&format!("    rewrite {mode}name {args}"));
                assert_eq!(got.is_ok(), *ok, "rewrite {mode}name {args}: {got:?}");
            }
        }
    }

    #[test]
    fn every_directive_is_one_rule_in_order_and_a_block_is_one_rule() {
        let got = rules(
            "    rewrite name exact db.example.com db.prod.svc.cluster.local\n\
             \x20   rewrite continue {\n        name regex (.*)\\.corp {1}.svc\n        answer name (.*)\\.svc {1}.corp\n        answer value (.*)\\.svc {1}.corp\n    }\n\
             \x20   rewrite CONTINUE type ANY hinfo\n\
             \x20   rewrite class CH IN\n\
             \x20   rewrite ttl regex (.*)\\.example\\.com 30-\n\
             \x20   rewrite ttl example.org 15",
        )
        .unwrap();
        assert_eq!(got.len(), 6);
        let stops: Vec<bool> = got.iter().map(|r| r.stop).collect();
        assert_eq!(stops, [true, false, false, true, true, true]);
        let Action::Name(block) = &got[1].action else {
            panic!()
        };
        assert_eq!(block.to, "{1}.svc.");
        assert_eq!(block.answers.len(), 2);
        assert_eq!(got[2].action, Action::Type { from: 255, to: 13 });
        assert_eq!(got[3].action, Action::Class { from: 3, to: 1 });
        assert!(matches!(
            &got[4].action,
            Action::Ttl {
                matcher: Matcher::Regex(_),
                min: 30,
                max: 2_147_483_647
            }
        ));
        assert_eq!(
            got[5].action,
            Action::Ttl {
                matcher: Matcher::Exact("example.org.".into()),
                min: 15,
                max: 15
            }
        );
    }

    #[test]
    fn what_coredns_1_11_does_not_start_with_or_clusterdns_lacks_is_refused_by_name() {
        let cases = [
            (
                "rewrite edns0 local set 0xffee abcd",
                "edns0 rules are not implemented",
            ),
            (
                "rewrite cname exact a.example. b.example.",
                "cname rules are not implemented",
            ),
            (
                "rewrite rcode SERVFAIL NXDOMAIN",
                "invalid rule type \"rcode\"",
            ),
            (
                "rewrite answer name a b",
                "response rewrites must begin with a name rule",
            ),
            (
                "rewrite type A",
                "type rules must have exactly two arguments",
            ),
            ("rewrite type A NOPE", "to: \"NOPE\" is not a record type"),
            (
                "rewrite class CH",
                "class rules must have exactly two arguments",
            ),
            ("rewrite ttl a.example. 9-3", "invalid TTL '9-3'"),
            ("rewrite ttl a.example. 1 2 3", "invalid TTL ''"),
            (
                "rewrite ttl wild a.example. 5",
                "ttl rule supports only exact",
            ),
            (
                "rewrite continue",
                "continue rule must begin with a rule type",
            ),
            ("rewrite name regex ( x", "from: invalid regex"),
            (
                "rewrite name exact a b {\n        answer auto\n    }",
                "a block after a rule's arguments",
            ),
        ];
        for (line, want) in cases {
            let got = rules(&format!("    {line}")).unwrap_err();
            assert_eq!(got.len(), 1, "{line}: {got:?}");
            assert!(
                got[0].starts_with("Corefile:2: rewrite: "),
                "{line}: {got:?}"
            );
            assert!(got[0].contains(want), "{line}: {got:?}");
        }
    }
}
