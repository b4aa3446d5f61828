//! `[server.dns64]`: AAAA records synthesized from A records for IPv6 clients (CoreDNS
//! `dns64`, RFC 6147).

use std::net::Ipv6Addr;

use serde::Deserialize;

use super::{FieldError, field_error};

/// The well-known prefix (RFC 6052 §2.1).
pub const DEFAULT_PREFIX: &str = "64:ff9b::/96";

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dns64Config {
    /// The prefix, its bits past `prefix_len` zero.
    pub prefix: Ipv6Addr,
    /// 32, 40, 48, 56, 64 or 96 (RFC 6052 §2.2).
    pub prefix_len: u8,
    /// Translate even answers that have AAAA records.
    pub translate_all: bool,
    /// Translate for IPv4 clients too.
    pub allow_ipv4: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDns64 {
    prefix: Option<String>,
    #[serde(default)]
    translate_all: bool,
    #[serde(default)]
    allow_ipv4: bool,
}

impl RawDns64 {
    pub(super) fn validate(self, key: &str) -> Result<Dns64Config, FieldError> {
        let text = self.prefix.as_deref().unwrap_or(DEFAULT_PREFIX);
        let (prefix, prefix_len) =
            parse_prefix(text).map_err(|why| field_error(format!("{key}.prefix"), why))?;
        Ok(Dns64Config {
            prefix,
            prefix_len,
            translate_all: self.translate_all,
            allow_ipv4: self.allow_ipv4,
        })
    }
}

/// `ADDRESS/LENGTH`, IPv6, a length RFC 6052 allows; the host bits cleared (as Go's
/// `ParseCIDR`, which CoreDNS uses, clears them).
pub fn parse_prefix(text: &str) -> Result<(Ipv6Addr, u8), String> {
    let (addr, len) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not ADDRESS/LENGTH"))?;
    let addr: Ipv6Addr = addr
        .parse()
        .map_err(|_| format!("{text:?}: {addr:?} is not an IPv6 address"))?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| [32, 40, 48, 56, 64, 96].contains(l))
        .ok_or_else(|| format!("{text:?}: the length must be 32, 40, 48, 56, 64 or 96"))?;
    let mask = u128::MAX << (128 - u32::from(len));
    Ok((Ipv6Addr::from(u128::from(addr) & mask), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_take_rfc_6052_lengths_only() {
        assert_eq!(
            parse_prefix("64:ff9b::/96"),
            Ok(("64:ff9b::".parse().unwrap(), 96))
        );
        assert_eq!(
            parse_prefix("2001:db8::ff/64"),
            Ok(("2001:db8::".parse().unwrap(), 64))
        );
        for bad in [
            "64:ff9b::",
            "64:ff9b::/97",
            "64:ff9b::/33",
            "10.0.0.0/8",
            "x/96",
            "::/128",
        ] {
            assert!(parse_prefix(bad).is_err(), "{bad}");
        }
    }
}
