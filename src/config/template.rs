//! `[[server.template]]`: answers built from templates (CoreDNS `template`), read and checked:
//! the class, type and rcode by name, the zones, every regex compiled and every record
//! template parsed, so a template that cannot work is an error naming its key.

use serde::Deserialize;

use super::{FieldError, field_error, zone_name, zones_or_cidrs};
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
                format!("{:?} is not a record type (upper-case: A, AAAA, ANY, …)", self.rtype),
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
        let zones = match &self.zones {
            None => block.to_vec(),
            Some(given) if given.is_empty() => {
                return Err(field_error(
                    format!("{key}.zones"),
                    "needs at least one zone (leave it out for the block's zones)",
                ));
            }
            Some(given) => zones_or_cidrs(&format!("{key}.zones"), given)?,
        };
        let fallthrough = self
            .fallthrough
            .iter()
            .enumerate()
            .map(|(i, z)| zone_name(&format!("{key}.fallthrough[{i}]"), z))
            .collect::<Result<Vec<_>, _>>()?;
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
