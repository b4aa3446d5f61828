//! `[[server.rewrite]]`: CoreDNS 1.11 `rewrite` rules, one table per rule, applied in order.
//!
//! Names are kept as CoreDNS keeps them: a name given to match or to write (not a regex) is
//! lower-cased and made absolute (`db.example.com` → `db.example.com.`), and so is every `to`,
//! regex templates included. A regex is compiled here, once; a bad one is an error naming the
//! rule's key.

use serde::Deserialize;

use super::{FieldError, field_error};
use crate::plugins::template;

/// One validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RewriteRule {
    /// `stop` (the default): a rule that applies is the last one to apply.
    pub stop: bool,
    pub action: Action,
}

/// What a rule matches and changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The question name, and how the answer's names are turned back.
    Name(NameRule),
    /// The question type (`type`), from one type number to another.
    Type { from: u16, to: u16 },
    /// The question class (`class`).
    Class { from: u16, to: u16 },
    /// The TTL of every record of the answer to a matching name, clamped to `min..=max`.
    Ttl {
        matcher: Matcher,
        min: u32,
        max: u32,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct NameRule {
    pub matcher: Matcher,
    /// The new name (regex: a template with `{N}` group references), absolute, lower-case.
    pub to: String,
    /// `answer auto` (always for `exact`): names in the answer that the rewrite produced are
    /// turned back.
    pub auto: bool,
    /// `answer name|value FROM TO`, in order.
    pub answers: Vec<AnswerRule>,
}

/// How a name is matched; the strings are absolute and lower-case.
#[derive(Debug, Clone, PartialEq)]
pub enum Matcher {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Substring(String),
    Regex(Pattern),
}

/// `answer name FROM TO` (owner names) or `answer value FROM TO` (the names records point at).
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerRule {
    /// `true` for `value`.
    pub value: bool,
    pub pattern: Pattern,
    /// Absolute, lower-case, with `{N}` group references.
    pub to: String,
}

/// A compiled regex, equal to another when their sources are.
#[derive(Debug, Clone)]
pub struct Pattern(pub regex::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

// === the TOML form ===

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    field: Field,
    #[serde(rename = "match")]
    kind: Option<Kind>,
    from: Option<String>,
    to: Option<String>,
    ttl: Option<RawTtl>,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    answer_auto: bool,
    #[serde(default)]
    answer_name: Vec<RawAnswer>,
    #[serde(default)]
    answer_value: Vec<RawAnswer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Field {
    Name,
    Type,
    Class,
    Ttl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Substring,
    Regex,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    #[default]
    Stop,
    Continue,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnswer {
    from: String,
    to: String,
}

/// `ttl = 30` or `ttl = "30-300"` (`"-30"`, `"30-"`: open on one side).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawTtl {
    Seconds(i64),
    Text(String),
}

/// The largest TTL an open range reaches (CoreDNS's, 2^31 - 1).
const OPEN_MAX_TTL: u32 = 2_147_483_647;

/// One rule from its table (as the converter writes it); `Err` holds what is wrong, with
/// the key (`rule.from: …`).
pub fn rule_from_table(table: &toml::Table) -> Result<RewriteRule, String> {
    let raw: RawRule = toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_owned())?;
    raw.validate("rule")
        .map_err(|e| format!("{}: {}", e.key, e.message))
}

impl RawRule {
    pub(super) fn validate(self, key: &str) -> Result<RewriteRule, FieldError> {
        let stop = self.mode == Mode::Stop;
        self.only_for(key)?;
        let required = |name: &str, v: &Option<String>| {
            v.clone()
                .ok_or_else(|| field_error(format!("{key}.{name}"), "is required"))
        };
        let from = required("from", &self.from)?;
        let action = match self.field {
            Field::Name => Action::Name(self.name_rule(key, &from, &required("to", &self.to)?)?),
            Field::Type => {
                let to = required("to", &self.to)?;
                Action::Type {
                    from: type_number(&format!("{key}.from"), &from)?,
                    to: type_number(&format!("{key}.to"), &to)?,
                }
            }
            Field::Class => {
                let to = required("to", &self.to)?;
                Action::Class {
                    from: class_number(&format!("{key}.from"), &from)?,
                    to: class_number(&format!("{key}.to"), &to)?,
                }
            }
            Field::Ttl => {
                let (min, max) = match &self.ttl {
                    Some(t) => ttl_range(&format!("{key}.ttl"), t)?,
                    None => return Err(field_error(format!("{key}.ttl"), "is required")),
                };
                let matcher = matcher(key, self.kind.unwrap_or(Kind::Exact), &from)?;
                Action::Ttl { matcher, min, max }
            }
        };
        Ok(RewriteRule { stop, action })
    }

    /// The keys that only some fields take.
    fn only_for(&self, key: &str) -> Result<(), FieldError> {
        let field = self.field;
        let misplaced = [
            (
                "match",
                self.kind.is_some(),
                [Field::Name, Field::Ttl].contains(&field),
            ),
            ("to", self.to.is_some(), field != Field::Ttl),
            ("ttl", self.ttl.is_some(), field == Field::Ttl),
            ("answer_auto", self.answer_auto, field == Field::Name),
            (
                "answer_name",
                !self.answer_name.is_empty(),
                field == Field::Name,
            ),
            (
                "answer_value",
                !self.answer_value.is_empty(),
                field == Field::Name,
            ),
        ];
        match misplaced
            .iter()
            .find(|(_, given, allowed)| *given && !allowed)
        {
            Some((name, ..)) => Err(field_error(
                format!("{key}.{name}"),
                format!("is not a key of a field = \"{}\" rule", field.word()),
            )),
            None => Ok(()),
        }
    }

    fn name_rule(&self, key: &str, from: &str, to: &str) -> Result<NameRule, FieldError> {
        let kind = self.kind.unwrap_or(Kind::Exact);
        let matcher = matcher(key, kind, from)?;
        let to = normalize(to);
        if let Matcher::Regex(p) = &matcher {
            groups_fit(&format!("{key}.to"), &to, p)?;
        }
        if self.answer_auto && !self.answer_name.is_empty() {
            return Err(field_error(
                format!("{key}.answer_auto"),
                "cannot be combined with answer_name (CoreDNS: auto name answer rule cannot be combined with explicit name answer rules)",
            ));
        }
        let mut answers = Vec::new();
        for (value, list, name) in [
            (false, &self.answer_name, "answer_name"),
            (true, &self.answer_value, "answer_value"),
        ] {
            for (i, a) in list.iter().enumerate() {
                let k = format!("{key}.{name}[{i}]");
                let pattern = pattern(&format!("{k}.from"), &a.from)?;
                let to = normalize(&a.to);
                groups_fit(&format!("{k}.to"), &to, &pattern)?;
                answers.push(AnswerRule { value, pattern, to });
            }
        }
        Ok(NameRule {
            auto: self.answer_auto || kind == Kind::Exact,
            matcher,
            to,
            answers,
        })
    }
}

impl Field {
    fn word(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Type => "type",
            Field::Class => "class",
            Field::Ttl => "ttl",
        }
    }
}

fn matcher(key: &str, kind: Kind, from: &str) -> Result<Matcher, FieldError> {
    let name = normalize(from);
    Ok(match kind {
        Kind::Exact => Matcher::Exact(name),
        Kind::Prefix => Matcher::Prefix(name),
        Kind::Suffix => Matcher::Suffix(name),
        Kind::Substring => Matcher::Substring(name),
        Kind::Regex => Matcher::Regex(pattern(&format!("{key}.from"), from)?),
    })
}

fn pattern(key: &str, source: &str) -> Result<Pattern, FieldError> {
    regex::Regex::new(source)
        .map(Pattern)
        .map_err(|e| field_error(key, format!("invalid regex {source:?}: {}", one_line(&e))))
}

fn one_line(e: &regex::Error) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('^'))
        .unwrap_or_default()
        .to_owned()
}

/// A template may use no more `{N}` references than the regex has groups (CoreDNS counts the
/// distinct `{0}`…`{100}` it finds).
fn groups_fit(key: &str, template: &str, pattern: &Pattern) -> Result<(), FieldError> {
    let used = (0..=100)
        .filter(|i| template.contains(&format!("{{{i}}}")))
        .count();
    let groups = pattern.0.captures_len() - 1;
    if used > groups {
        return Err(field_error(
            key,
            format!(
                "{template:?} uses {used} group references; the regex {:?} has {groups} groups",
                pattern.0.as_str()
            ),
        ));
    }
    Ok(())
}

/// CoreDNS's `plugin.Name(s).Normalize()`: lower-case and absolute.
pub fn normalize(name: &str) -> String {
    let mut out = name.to_lowercase();
    if !is_absolute(&out) {
        out.push('.');
    }
    out
}

/// Ends with a dot that is not escaped (an even number of backslashes before it).
fn is_absolute(name: &str) -> bool {
    let Some(body) = name.strip_suffix('.') else {
        return false;
    };
    body.bytes().rev().take_while(|b| *b == b'\\').count() % 2 == 0
}

fn type_number(key: &str, word: &str) -> Result<u16, FieldError> {
    template::type_code(&word.to_ascii_uppercase())
        .ok_or_else(|| field_error(key, format!("{word:?} is not a record type")))
}

/// The classes CoreDNS names (miekg/dns `StringToClass`).
fn class_number(key: &str, word: &str) -> Result<u16, FieldError> {
    template::class_code(&word.to_ascii_uppercase()).ok_or_else(|| {
        field_error(
            key,
            format!("{word:?} is not a class (IN, CH, HS, CS, NONE, ANY)"),
        )
    })
}

/// `N` (exactly N), `MIN-MAX`, `MIN-` or `-MAX`, as CoreDNS reads them.
fn ttl_range(key: &str, ttl: &RawTtl) -> Result<(u32, u32), FieldError> {
    let text = match ttl {
        RawTtl::Seconds(n) => n.to_string(),
        RawTtl::Text(t) => t.clone(),
    };
    parse_ttl(&text).ok_or_else(|| {
        field_error(
            key,
            format!("{text:?} is not a TTL: SECONDS, MIN-MAX, MIN- or -MAX (0 to 4294967295, MIN at most MAX)"),
        )
    })
}

/// CoreDNS's `isValidTTL`.
pub fn parse_ttl(text: &str) -> Option<(u32, u32)> {
    let number = |s: &str| -> Option<u32> {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    match text.split('-').collect::<Vec<_>>().as_slice() {
        [one] => number(one).map(|n| (n, n)),
        ["", ""] => None,
        [min, max] => {
            let min = if min.is_empty() { 0 } else { number(min)? };
            let max = if max.is_empty() {
                OPEN_MAX_TTL
            } else {
                number(max)?
            };
            (min <= max).then_some((min, max))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Result<RewriteRule, String> {
        let table: toml::Table = toml::from_str(text).unwrap();
        let raw: RawRule = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string())?;
        raw.validate("r")
            .map_err(|e| format!("{}: {}", e.key, e.message))
    }

    #[test]
    fn names_are_normalised_and_exact_always_reverts() {
        let r = rule("field = \"name\"\nfrom = \"DB.Example.com\"\nto = \"db.prod\"\n").unwrap();
        assert!(r.stop);
        let Action::Name(n) = r.action else { panic!() };
        assert_eq!(n.matcher, Matcher::Exact("db.example.com.".into()));
        assert_eq!(n.to, "db.prod.");
        assert!(n.auto, "exact answers are always turned back");
        let r = rule(
            "field = \"name\"\nmatch = \"regex\"\nfrom = '(.*)\\.Corp'\nto = \"{1}.Svc\"\nmode = \"continue\"\n\
             answer_value = [{ from = '(.*)\\.svc', to = '{1}.corp' }]\n",
        )
        .unwrap();
        assert!(!r.stop);
        let Action::Name(n) = r.action else { panic!() };
        assert_eq!(n.to, "{1}.svc.", "the template is lower-cased and absolute");
        assert!(!n.auto);
        assert_eq!(n.answers.len(), 1);
        assert!(n.answers[0].value);
        assert_eq!(n.answers[0].to, "{1}.corp.");
    }

    #[test]
    fn bad_rules_name_their_key() {
        let cases = [
            (
                "field = \"name\"\nmatch = \"regex\"\nfrom = \"(\"\nto = \"x\"\n",
                "r.from: invalid regex",
            ),
            (
                "field = \"name\"\nmatch = \"regex\"\nfrom = \"a\"\nto = \"{1}\"\n",
                "r.to: \"{1}.\" uses 1 group references",
            ),
            ("field = \"name\"\nfrom = \"a\"\n", "r.to: is required"),
            (
                "field = \"type\"\nfrom = \"A\"\nto = \"NOPE\"\n",
                "r.to: \"NOPE\" is not a record type",
            ),
            (
                "field = \"class\"\nfrom = \"XX\"\nto = \"IN\"\n",
                "r.from: \"XX\" is not a class",
            ),
            (
                "field = \"ttl\"\nfrom = \"a\"\nttl = \"9-3\"\n",
                "r.ttl: \"9-3\" is not a TTL",
            ),
            ("field = \"ttl\"\nfrom = \"a\"\n", "r.ttl: is required"),
            (
                "field = \"type\"\nfrom = \"A\"\nto = \"MX\"\nanswer_auto = true\n",
                "r.answer_auto: is not a key",
            ),
            (
                "field = \"ttl\"\nfrom = \"a\"\nttl = 3\nto = \"b\"\n",
                "r.to: is not a key",
            ),
            (
                "field = \"name\"\nmatch = \"suffix\"\nfrom = \"a\"\nto = \"b\"\nanswer_auto = true\nanswer_name = [{ from = 'x', to = 'y' }]\n",
                "r.answer_auto: cannot be combined",
            ),
        ];
        for (text, want) in cases {
            let got = rule(text).unwrap_err();
            assert!(got.starts_with(want), "{text}: {got}");
        }
        assert!(
            rule("field = \"nom\"\nfrom = \"a\"\nto = \"b\"\n")
                .unwrap_err()
                .contains("unknown variant")
        );
    }

    #[test]
    fn ttl_ranges_read_as_coredns_reads_them() {
        assert_eq!(parse_ttl("15"), Some((15, 15)));
        assert_eq!(parse_ttl("30-300"), Some((30, 300)));
        assert_eq!(parse_ttl("-30"), Some((0, 30)));
        assert_eq!(parse_ttl("30-"), Some((30, OPEN_MAX_TTL)));
        assert_eq!(parse_ttl("4294967295"), Some((u32::MAX, u32::MAX)));
        for bad in ["-", "", "a", "300-30", "1-2-3", "4294967296", "+5", "-5-"] {
            assert_eq!(parse_ttl(bad), None, "{bad}");
        }
        let r = rule("field = \"ttl\"\nmatch = \"suffix\"\nfrom = \".Example.com\"\nttl = 15\n")
            .unwrap();
        assert_eq!(
            r.action,
            Action::Ttl {
                matcher: Matcher::Suffix(".example.com.".into()),
                min: 15,
                max: 15
            }
        );
    }

    #[test]
    fn an_escaped_final_dot_is_not_the_root() {
        assert_eq!(normalize("a\\."), "a\\..");
        assert_eq!(normalize("a\\\\."), "a\\\\.");
        assert_eq!(normalize("."), ".");
        assert_eq!(normalize(""), ".");
    }
}
