//! `[[server.template]]`: answers built from templates (CoreDNS `template`), read and checked:
//! the class, type and rcode by name, the zones, every regex compiled and every record
//! template parsed, so a template that cannot work is an error naming its key.

use serde::Deserialize;

use super::{FieldError, field_error, zone_names};
use crate::plugins::template;

/// One template, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateConfig {
    /// The question class it answers (255: any).
    pub class: u16,
    /// The question type it answers (255: any).
    pub rtype: u16,
    /// Lower-case, no trailing dot, `""` the root; the block's zones by default.
    pub zones: Vec<String>,
    /// Regexes tried in order against the absolute, lower-case question name; none: all names.
    pub matches: Vec<String>,
    /// Record templates (`NAME [TTL] [CLASS] TYPE DATA`) of each section.
    pub answer: Vec<String>,
    pub authority: Vec<String>,
    pub additional: Vec<String>,
    pub rcode: u8,
    /// Zones whose names no regex matches go on (`""`: all); none: SERVFAIL.
    pub fallthrough: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTemplate {
    #[serde(default = "any")]
    class: String,
    #[serde(default = "any", rename = "type")]
    rtype: String,
    zones: Option<Vec<String>>,
    #[serde(default, rename = "match")]
    matches: Vec<String>,
    #[serde(default)]
    answer: Vec<String>,
    #[serde(default)]
    authority: Vec<String>,
    #[serde(default)]
    additional: Vec<String>,
    #[serde(default = "noerror")]
    rcode: String,
    #[serde(default)]
    fallthrough: Vec<String>,
}

fn any() -> String {
    "ANY".into()
}

fn noerror() -> String {
    "NOERROR".into()
}

impl RawTemplate {
    pub(super) fn validate(
        self,
        key: &str,
        block: &[String],
    ) -> Result<TemplateConfig, FieldError> {
        let class = template::class_code(&self.class).ok_or_else(|| {
            field_error(
                format!("{key}.class"),
                format!("{:?} is not a class (IN, CH, HS, NONE, ANY)", self.class),
            )
        })?;
        let rtype = template::type_code(&self.rtype).ok_or_else(|| {
            field_error(
                format!("{key}.type"),
                format!(
                    "{:?} is not a record type (upper-case: A, AAAA, ANY, …)",
                    self.rtype
                ),
            )
        })?;
        let rcode = template::rcode_code(&self.rcode).ok_or_else(|| {
            field_error(
                format!("{key}.rcode"),
                format!(
                    "{:?} is not an rcode a template can answer (NOERROR, FORMERR, SERVFAIL, \
                     NXDOMAIN, NOTIMP, REFUSED, YXDOMAIN, YXRRSET, NXRRSET, NOTAUTH, NOTZONE)",
                    self.rcode
                ),
            )
        })?;
        let zones = super::stage_zones(&format!("{key}.zones"), self.zones.as_deref(), block)?;
        let fallthrough = zone_names(&format!("{key}.fallthrough"), &self.fallthrough)?;
        let config = TemplateConfig {
            class,
            rtype,
            zones,
            matches: self.matches,
            answer: self.answer,
            authority: self.authority,
            additional: self.additional,
            rcode,
            fallthrough,
        };
        template::compile_check(&config)
            .map_err(|(sub, why)| field_error(format!("{key}.{sub}"), why))?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    const BLOCK: &str = "[[server]]\nlisten = [\"127.0.0.1:5353\"]\nzones = [\"example.org\"]\n";

    fn parse(template: &str) -> Result<Config, String> {
        let text = format!("{BLOCK}[[server.template]]\n{template}\n");
        Config::parse(&text, Path::new("/tmp/t.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_take_every_question_of_the_block() {
        let config = parse("").unwrap();
        let t = &config.servers[0].template[0];
        assert_eq!((t.class, t.rtype, t.rcode), (255, 255, 0));
        assert_eq!(t.zones, ["example.org"]);
        assert!(t.matches.is_empty() && t.answer.is_empty() && t.fallthrough.is_empty());
        let t = parse("class = \"CH\"\ntype = \"TXT\"\nrcode = \"NXDOMAIN\"\nzones = [\"10.0.0.0/8\"]\nfallthrough = [\".\"]")
            .unwrap()
            .servers[0]
            .template[0]
            .clone();
        assert_eq!((t.class, t.rtype, t.rcode), (3, 16, 3));
        assert_eq!(
            (t.zones, t.fallthrough),
            (vec!["10.in-addr.arpa".to_owned()], vec![String::new()])
        );
    }

    #[test]
    fn errors_name_the_key() {
        for (body, key) in [
            ("class = \"XX\"", "server[0].template[0].class:"),
            ("type = \"a\"", "server[0].template[0].type:"),
            ("rcode = \"BADVERS\"", "server[0].template[0].rcode:"),
            ("zones = []", "server[0].template[0].zones:"),
            (
                "match = [\"ok\", \"((\"]",
                "server[0].template[0].match[1]:",
            ),
            (
                "answer = [\"{{ .Name\"]",
                "server[0].template[0].answer[0]:",
            ),
            (
                "additional = [\"{{ if .Name }}{{ end }}\"]",
                "server[0].template[0].additional[0]:",
            ),
            (
                "fallthrough = [\"bad..zone\"]",
                "server[0].template[0].fallthrough[0]:",
            ),
            ("answers = []", "server[0].template[0].answers:"),
        ] {
            let e = parse(body).expect_err(body);
            assert!(e.contains(key), "{body}: {e}");
        }
    }
}
