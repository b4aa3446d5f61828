//! A rendered record, `NAME [TTL] [CLASS] TYPE RDATA` as in a zone file (TTL and class in
//! either order; TTL 3600 and class IN when left out, relative names under the root, as
//! miekg/dns's `NewRR` reads it), encoded in wire form. The owner and header are read here;
//! the RDATA by hickory-proto's zone-text parsers, which know every common type.

use std::str::FromStr;

use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use hickory_proto::serialize::txt::parse_ttl;

/// The TTL of a record that gives none (miekg/dns's default).
const DEFAULT_TTL: u32 = 3600;

/// What the stage needs to know of an encoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub rtype: RecordType,
    /// A CNAME's target, lower-case, without the trailing dot.
    pub cname: Option<String>,
}

/// Parses one record and appends it to `out` (names uncompressed).
pub fn encode(text: &str, out: &mut Vec<u8>) -> Result<Encoded, String> {
    let record = parse(text)?;
    let start = out.len();
    let emitted = {
        let mut encoder = BinEncoder::with_offset(out, start as u32);
        encoder.set_name_encoding(NameEncoding::Uncompressed);
        record.emit(&mut encoder)
    };
    if let Err(e) = emitted {
        // Nothing half-written stays behind.
        out.truncate(start);
        return Err(format!("{text:?}: cannot encode: {e}"));
    }
    let cname = match &record.data {
        RData::CNAME(target) => Some(lower_dotless(&target.0)),
        _ => None,
    };
    Ok(Encoded {
        rtype: record.record_type(),
        cname,
    })
}

fn lower_dotless(name: &Name) -> String {
    let mut text = name.to_ascii().to_ascii_lowercase();
    if text.ends_with('.') {
        text.pop();
    }
    text
}

/// The record `text` describes.
pub fn parse(text: &str) -> Result<Record, String> {
    let bad = |why: &str| format!("{text:?}: {why}");
    let text_trimmed = text.trim_start();
    if text_trimmed.len() != text.len() || text.is_empty() {
        return Err(bad("no owner name (the record must start with it)"));
    }
    let (owner, mut rest) = split_word(text);
    let mut name = Name::from_ascii(owner).map_err(|e| bad(&format!("owner: {e}")))?;
    name.set_fqdn(true);
    let (mut ttl, mut class) = (None, None);
    let rtype = loop {
        let (word, after) = split_word(rest);
        if word.is_empty() {
            return Err(bad("no record type"));
        }
        rest = after;
        let upper = word.to_ascii_uppercase();
        if ttl.is_none() && word.starts_with(|c: char| c.is_ascii_digit()) {
            ttl = Some(parse_ttl(word).map_err(|e| bad(&format!("TTL: {e}")))?);
        } else if class.is_none()
            && let Some(c) = class_of(&upper)
        {
            class = Some(c);
        } else {
            break RecordType::from_str(&upper).map_err(|_| bad("unknown record type"))?;
        }
    };
    if matches!(
        rtype,
        RecordType::OPT | RecordType::ANY | RecordType::AXFR | RecordType::IXFR
    ) {
        return Err(bad("not a record type for an answer"));
    }
    let rdata = RData::try_from_str(rtype, rest).map_err(|e| bad(&format!("{rtype} data: {e}")))?;
    let mut record = Record::from_rdata(name, ttl.unwrap_or(DEFAULT_TTL), rdata);
    record.dns_class = class.unwrap_or(DNSClass::IN);
    Ok(record)
}

fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    (&text[..end], &text[end..])
}

fn class_of(upper: &str) -> Option<DNSClass> {
    crate::plugins::file::parse::class_code(upper).map(DNSClass::from)
}
