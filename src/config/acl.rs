//! `[[server.acl]]`: access rules by query type and client network (CoreDNS `acl`), read and
//! checked. Each entry is one `acl` directive: the zones it guards and its rules in order.

use ipnet::IpNet;
use serde::Deserialize;

use super::{FieldError, field_error};

/// One `acl` directive: names in `zones` meet `rules` in order, and the first rule that
/// matches the query's type and the client's address decides.
#[derive(Debug, Clone, PartialEq)]
pub struct AclConfig {
    /// Lower-case, no trailing dot, `""` the root; the block's zones by default.
    pub zones: Vec<String>,
    pub rules: Vec<AclRule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AclRule {
    pub action: AclAction,
    /// Query types matched; `None`: every type (`*`).
    pub types: Option<Vec<u16>>,
    /// Client networks matched; `None`: every address (`*`).
    pub nets: Option<Vec<IpNet>>,
}

/// What a matching rule does with the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclAction {
    /// On to the next plugin; later rules and `acl` entries are not looked at.
    Allow,
    /// REFUSED, with the extended DNS error "Blocked".
    Block,
    /// NOERROR without records, with the extended DNS error "Filtered".
    Filter,
    /// No reply at all.
    Drop,
}

impl AclAction {
    /// The action's name as the Corefile writes it (any case there).
    pub fn parse(word: &str) -> Option<AclAction> {
        match word.to_ascii_lowercase().as_str() {
            "allow" => Some(AclAction::Allow),
            "block" => Some(AclAction::Block),
            "filter" => Some(AclAction::Filter),
            "drop" => Some(AclAction::Drop),
            _ => None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAcl {
    zones: Option<Vec<String>>,
    #[serde(default)]
    rules: Vec<RawAclRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAclRule {
    action: String,
    types: Option<Vec<String>>,
    nets: Option<Vec<String>>,
}

impl RawAcl {
    pub(super) fn validate(self, key: &str, block: &[String]) -> Result<AclConfig, FieldError> {
        let zones = super::stage_zones(&format!("{key}.zones"), self.zones.as_deref(), block)?;
        let rules = super::each(&format!("{key}.rules"), self.rules, |r, k| r.validate(k))?;
        Ok(AclConfig { zones, rules })
    }
}

impl RawAclRule {
    fn validate(self, key: &str) -> Result<AclRule, FieldError> {
        let action = AclAction::parse(&self.action).ok_or_else(|| {
            field_error(
                format!("{key}.action"),
                format!(
                    "{:?}: expected \"allow\", \"block\", \"filter\" or \"drop\"",
                    self.action
                ),
            )
        })?;
        let types = match self.types {
            None => None,
            Some(words) => each(&format!("{key}.types"), &words, qtype)?,
        };
        let nets = match self.nets {
            None => None,
            Some(words) => each(&format!("{key}.nets"), &words, net)?,
        };
        Ok(AclRule {
            action,
            types,
            nets,
        })
    }
}

/// Reads a list where `*` means "all" (`None`); an empty list is an error, as in CoreDNS.
fn each<T>(
    key: &str,
    words: &[String],
    read: fn(&str) -> Result<Option<T>, String>,
) -> Result<Option<Vec<T>>, FieldError> {
    if words.is_empty() {
        return Err(field_error(key, "needs at least one entry (\"*\" for all)"));
    }
    let mut out = Vec::new();
    for (i, word) in words.iter().enumerate() {
        match read(word).map_err(|why| field_error(format!("{key}[{i}]"), why))? {
            // CoreDNS stops reading the section at `*`.
            None => return Ok(None),
            Some(v) => out.push(v),
        }
    }
    Ok(Some(out))
}

/// A query type as CoreDNS names it (upper case, as miekg/dns's table), `*` for all (`None`).
pub fn qtype(word: &str) -> Result<Option<u16>, String> {
    use std::str::FromStr;
    if word == "*" {
        return Ok(None);
    }
    // Types CoreDNS knows that hickory's table leaves out.
    const MORE: &[(&str, u16)] = &[
        ("MD", 3),
        ("MF", 4),
        ("MB", 7),
        ("MG", 8),
        ("MR", 9),
        ("WKS", 11),
        ("MINFO", 14),
        ("RP", 17),
        ("AFSDB", 18),
        ("X25", 19),
        ("ISDN", 20),
        ("RT", 21),
        ("PX", 26),
        ("GPOS", 27),
        ("LOC", 29),
        ("KX", 36),
        ("A6", 38),
        ("OPT", 41),
        ("APL", 42),
        ("DHCID", 49),
        ("HIP", 55),
        ("ZONEMD", 63),
        ("SPF", 99),
        ("EUI48", 108),
        ("EUI64", 109),
        ("TKEY", 249),
        ("IXFR", 251),
        ("MAILB", 253),
        ("MAILA", 254),
        ("URI", 256),
        ("AVC", 258),
        ("DOA", 259),
        ("TA", 32768),
        ("DLV", 32769),
    ];
    if let Some((_, code)) = MORE.iter().find(|(name, _)| *name == word) {
        return Ok(Some(*code));
    }
    match hickory_proto::rr::RecordType::from_str(word) {
        Ok(t) if word != "ANAME" => Ok(Some(u16::from(t))),
        _ => Err(format!(
            "{word:?} is not a query type (upper-case names such as A, AAAA, SRV, or \"*\")"
        )),
    }
}

/// A network as CoreDNS reads it: a CIDR, or one address (a /32 or /128), `*` for all.
pub fn net(word: &str) -> Result<Option<IpNet>, String> {
    if word == "*" {
        return Ok(None);
    }
    let parsed = if word.contains('/') {
        word.parse::<IpNet>().ok()
    } else {
        word.parse::<std::net::IpAddr>().ok().map(IpNet::from)
    };
    // Host bits are allowed (Go's ParseCIDR masks them), as in CoreDNS.
    parsed
        .map(|n| Some(n.trunc()))
        .ok_or_else(|| format!("{word:?} is not an address or a CIDR"))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    fn error(acl: &str) -> String {
        let text = format!("[[server]]\nzones = [\"example.org\"]\n{acl}");
        match Config::parse(&text, Path::new("c.toml")) {
            Ok(_) => panic!("accepted: {acl}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn errors_name_the_key_and_defaults_are_coredns() {
        let cases = [
            (
                "action = \"permit\"",
                "server[0].acl[0].rules[0].action: \"permit\"",
            ),
            (
                "action = \"block\"\ntypes = [\"a\"]",
                "server[0].acl[0].rules[0].types[0]: \"a\" is not a query type",
            ),
            (
                "action = \"block\"\nnets = []",
                "server[0].acl[0].rules[0].nets: needs at least one entry",
            ),
            (
                "action = \"drop\"\nnets = [\"10.0.0.0/8\", \"nope\"]",
                "server[0].acl[0].rules[0].nets[1]: \"nope\"",
            ),
        ];
        for (rule, want) in cases {
            let e = error(&format!("[[server.acl]]\n[[server.acl.rules]]\n{rule}\n"));
            assert!(e.contains(want), "{rule}: {e}");
        }
        let ok = Config::parse(
            "[[server]]\nzones = [\"example.org\"]\n[[server.acl]]\nrules = [{ action = \"Block\", types = [\"A\", \"*\", \"junk\"] }]\n",
            Path::new("c.toml"),
        )
        .unwrap();
        let entry = &ok.servers[0].acl[0];
        assert_eq!(entry.zones, ["example.org"], "the block's zones");
        assert_eq!(entry.rules[0].types, None, "`*`: every type");
        assert_eq!(entry.rules[0].nets, None, "no nets: every address");
    }
}
