//! An RFC 1035 zone file read as miekg/dns's `ZoneParser` reads it for CoreDNS: `$ORIGIN`,
//! `$TTL`, `$INCLUDE FILE [ORIGIN]` (relative to the including file's directory), `@`,
//! relative names, an owner left blank for the last one, TTL and class in either order,
//! parentheses across lines, `;` comments. Each record's data is read by hickory-proto's
//! zone-text parsers once the names in it are made absolute here; errors name file and line.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use hickory_proto::rr::{RData, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use hickory_proto::serialize::txt::parse_ttl;

/// The TTL of a record when neither it nor `$TTL` nor an earlier record gives one.
const DEFAULT_TTL: u32 = 3600;
/// `$INCLUDE` nesting allowed (miekg/dns allows 7).
const MAX_INCLUDE_DEPTH: usize = 7;

/// One record as read: names lower-case, absolute, without the trailing dot (`""`: root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
    pub owner: String,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    /// The RDATA in wire form, names uncompressed.
    pub rdata: Vec<u8>,
    /// The name a CNAME, NS, MX or SRV points at (lower-case, no trailing dot).
    pub target: Option<String>,
    /// A SOA's serial.
    pub serial: Option<u32>,
}

/// Why a file was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The first SOA has the serial of the zone served: nothing else was read.
    Unchanged,
    /// `file:line: why` (or `file: why`).
    Bad(String),
}

/// The records of `path` for `origin` (lower-case, no trailing dot). With `serial`, the read
/// stops at the first SOA if it has that serial (CoreDNS takes a reload only when it differs).
pub fn read_zone(
    path: &Path,
    origin: &str,
    serial: Option<u32>,
) -> Result<Vec<ReadRecord>, ReadError> {
    let mut reader = Reader {
        records: Vec::new(),
        default_ttl: None,
        last_owner: None,
        unchanged: serial,
        seen_soa: false,
    };
    reader.file(path, &absolute(origin), 0)?;
    if !reader.seen_soa {
        return Err(ReadError::Bad(format!(
            "{}: no SOA record for origin {}",
            path.display(),
            crate::dns::name::zone_label(origin)
        )));
    }
    Ok(reader.records)
}

/// `name.` for a name without the dot; `.` for the root.
fn absolute(name: &str) -> String {
    crate::dns::name::zone_label(name)
}

struct Reader {
    records: Vec<ReadRecord>,
    /// The TTL of records without one, and whether `$TTL` set it (then records do not).
    default_ttl: Option<(u32, bool)>,
    last_owner: Option<String>,
    unchanged: Option<u32>,
    seen_soa: bool,
}

/// One entry: its first line, whether it began with a blank, its words (quotes kept).
struct Entry {
    line: usize,
    blank_start: bool,
    words: Vec<String>,
}

impl Reader {
    fn file(&mut self, path: &Path, origin: &str, depth: usize) -> Result<(), ReadError> {
        let at =
            |line: usize, why: &str| ReadError::Bad(format!("{}:{line}: {why}", path.display()));
        let text = std::fs::read_to_string(path)
            .map_err(|e| ReadError::Bad(format!("{}: {e}", path.display())))?;
        let entries = entries(&text).map_err(|(line, why)| at(line, &why))?;
        let mut origin = origin.to_owned();
        for e in entries {
            if !e.blank_start && e.words[0].starts_with('$') {
                match self.directive(path, &mut origin, &e, depth) {
                    Ok(()) => continue,
                    Err(ReadError::Bad(why)) => return Err(at(e.line, &why)),
                    Err(unchanged) => return Err(unchanged),
                }
            }
            match self.record(&origin, &e) {
                Ok(true) => return Err(ReadError::Unchanged),
                Ok(false) => {}
                Err(why) => return Err(at(e.line, &why)),
            }
        }
        Ok(())
    }

    fn directive(
        &mut self,
        path: &Path,
        origin: &mut String,
        e: &Entry,
        depth: usize,
    ) -> Result<(), ReadError> {
        let bad = |why: String| ReadError::Bad(why);
        let args = &e.words[1..];
        match e.words[0].to_ascii_uppercase().as_str() {
            "$ORIGIN" if args.len() == 1 => *origin = name_in(&args[0], origin).map_err(bad)?,
            "$TTL" if args.len() == 1 => {
                let ttl =
                    parse_ttl(&args[0]).map_err(|_| bad(format!("bad $TTL {:?}", args[0])))?;
                self.default_ttl = Some((ttl, true));
            }
            "$INCLUDE" if (1..=2).contains(&args.len()) => {
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(bad("too deeply nested $INCLUDE".into()));
                }
                let included = include_path(path, &args[0]);
                let inner_origin = match args.get(1) {
                    Some(o) => name_in(o, origin).map_err(bad)?,
                    None => origin.clone(),
                };
                return match self.file(&included, &inner_origin, depth + 1) {
                    Err(ReadError::Bad(why)) => Err(bad(format!("in $INCLUDE: {why}"))),
                    other => other,
                };
            }
            other => {
                let why = format!("bad directive {other} with {} arguments", args.len());
                return Err(bad(why));
            }
        }
        Ok(())
    }

    /// Reads one record; `true` when it is the first SOA and has the unchanged serial.
    fn record(&mut self, origin: &str, e: &Entry) -> Result<bool, String> {
        let mut words = e.words.iter().map(String::as_str);
        let owner = if e.blank_start {
            self.last_owner
                .clone()
                .ok_or("no owner name (the first record must start with it)")?
        } else {
            let word = words.next().unwrap_or_default();
            name_in(word, origin)?
        };
        self.last_owner = Some(owner.clone());
        let (mut ttl, mut class) = (None, None);
        let rtype = loop {
            let word = words.next().ok_or("no record type")?;
            let upper = word.to_ascii_uppercase();
            if ttl.is_none() && word.starts_with(|c: char| c.is_ascii_digit()) {
                ttl = Some(parse_ttl(word).map_err(|_| format!("bad TTL {word:?}"))?);
            } else if class.is_none()
                && let Some(c) = class_code(&upper)
            {
                class = Some(c);
            } else {
                break RecordType::from_str(&upper)
                    .map_err(|_| format!("unknown type {word:?}"))?;
            }
        };
        let ttl = self.ttl(ttl);
        let record = rdata(rtype, words.collect(), origin)?;
        let rtype_code = u16::from(rtype);
        if matches!(rtype, RecordType::NSEC3 | RecordType::NSEC3PARAM) {
            return Err("NSEC3 zones are not supported (as in CoreDNS)".into());
        }
        let serial = match &record.0 {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        };
        if serial.is_some() && !self.seen_soa {
            self.seen_soa = true;
            if self.unchanged.is_some() && self.unchanged == serial {
                return Ok(true);
            }
        }
        let mut wire = Vec::new();
        let mut encoder = BinEncoder::new(&mut wire);
        encoder.set_name_encoding(NameEncoding::Uncompressed);
        record
            .0
            .emit(&mut encoder)
            .map_err(|e| format!("cannot encode: {e}"))?;
        self.records.push(ReadRecord {
            owner: dotless(&owner),
            rtype: rtype_code,
            class: class.unwrap_or(1),
            ttl,
            rdata: wire,
            target: record.1.map(|t| dotless(&t)),
            serial,
        });
        Ok(false)
    }

    /// A record's TTL: its own (which becomes the default unless `$TTL` set one), else the
    /// default, else 3600.
    fn ttl(&mut self, given: Option<u32>) -> u32 {
        match (given, self.default_ttl) {
            (Some(t), Some((_, true))) => t,
            (Some(t), _) => {
                self.default_ttl = Some((t, false));
                t
            }
            (None, Some((t, _))) => t,
            (None, None) => DEFAULT_TTL,
        }
    }
}

fn include_path(from: &Path, file: &str) -> PathBuf {
    let file = Path::new(file);
    if file.is_absolute() {
        return file.to_path_buf();
    }
    from.parent().unwrap_or(Path::new(".")).join(file)
}

/// `word` as an absolute name (with the trailing dot): `@` is the origin, a name without the
/// dot is relative to it.
fn name_in(word: &str, origin: &str) -> Result<String, String> {
    if word.is_empty() {
        return Err("empty name".into());
    }
    let name = if word == "@" {
        origin.to_owned()
    } else if word.ends_with('.') && !word.ends_with("\\.") {
        word.to_owned()
    } else if origin == "." {
        format!("{word}.")
    } else {
        format!("{word}.{origin}")
    };
    hickory_proto::rr::Name::from_ascii(&name).map_err(|e| format!("bad name {word:?}: {e}"))?;
    Ok(name)
}

/// Lower-case, without the trailing dot (`""` for the root).
fn dotless(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    lower.strip_suffix('.').unwrap_or(&lower).to_owned()
}

/// Where the names are in a type's data, and whether CoreDNS lower-cases them.
fn name_positions(rtype: RecordType) -> (&'static [usize], bool) {
    match rtype {
        RecordType::CNAME | RecordType::NS => (&[0], true),
        RecordType::MX => (&[1], true),
        RecordType::SRV => (&[3], true),
        RecordType::SOA => (&[0, 1], true),
        RecordType::PTR => (&[0], false),
        _ => (&[], false),
    }
}

/// The data of a record, and the name a CNAME, NS, MX or SRV points at.
fn rdata(
    rtype: RecordType,
    words: Vec<&str>,
    origin: &str,
) -> Result<(RData, Option<String>), String> {
    let (positions, lower) = name_positions(rtype);
    let mut owned: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
    for &p in positions {
        let Some(word) = owned.get_mut(p) else {
            return Err(format!("{rtype} data: too few fields"));
        };
        let mut name = name_in(word, origin)?;
        if lower {
            name.make_ascii_lowercase();
        }
        *word = name;
    }
    let data =
        RData::try_from_str(rtype, &owned.join(" ")).map_err(|e| format!("{rtype} data: {e}"))?;
    let target = match rtype {
        RecordType::CNAME | RecordType::NS => Some(owned[0].clone()),
        RecordType::MX => Some(owned[1].clone()),
        RecordType::SRV => Some(owned[3].clone()),
        _ => None,
    };
    Ok((data, target))
}

pub(crate) fn class_code(upper: &str) -> Option<u16> {
    match upper {
        "IN" => Some(1),
        "CH" => Some(3),
        "HS" => Some(4),
        "NONE" => Some(254),
        "ANY" => Some(255),
        _ => upper.strip_prefix("CLASS")?.parse().ok(),
    }
}

/// The entries of a zone file: comments dropped, parentheses joined, quoted strings kept
/// whole (with their quotes). Errors carry the line.
fn entries(text: &str) -> Result<Vec<Entry>, (usize, String)> {
    let mut out = Vec::new();
    let (mut line, mut depth, mut quoted) = (1usize, 0usize, false);
    let mut entry = Entry {
        line: 1,
        blank_start: text.starts_with([' ', '\t']),
        words: Vec::new(),
    };
    let mut word = String::new();
    let mut chars = text.chars().peekable();
    let end_word = |word: &mut String, entry: &mut Entry, line: usize| {
        if !word.is_empty() {
            if entry.words.is_empty() {
                entry.line = line;
            }
            entry.words.push(std::mem::take(word));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                word.push(c);
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            '"' => {
                quoted = !quoted;
                word.push(c);
            }
            '\n' if quoted => return Err((line, "a quoted string runs past the line".into())),
            _ if quoted => word.push(c),
            ';' => while chars.next_if(|n| *n != '\n').is_some() {},
            '(' => {
                end_word(&mut word, &mut entry, line);
                depth += 1;
            }
            ')' => {
                end_word(&mut word, &mut entry, line);
                depth = depth
                    .checked_sub(1)
                    .ok_or((line, "a ')' without '('".into()))?;
            }
            '\n' => {
                end_word(&mut word, &mut entry, line);
                line += 1;
                if depth == 0 {
                    let next = Entry {
                        line,
                        blank_start: chars.peek().is_some_and(|n| *n == ' ' || *n == '\t'),
                        words: Vec::new(),
                    };
                    let done = std::mem::replace(&mut entry, next);
                    if !done.words.is_empty() {
                        out.push(done);
                    }
                }
            }
            c if c.is_whitespace() => end_word(&mut word, &mut entry, line),
            c => word.push(c),
        }
    }
    end_word(&mut word, &mut entry, line);
    if depth > 0 {
        return Err((entry.line, "a '(' is not closed".into()));
    }
    if quoted {
        return Err((entry.line, "a quoted string is not closed".into()));
    }
    if !entry.words.is_empty() {
        out.push(entry);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<ReadRecord>, ReadError> {
        let dir = std::env::temp_dir().join(format!("clusterdns-zone-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("db.{}", text.len()));
        std::fs::write(&path, text).unwrap();
        read_zone(&path, "example.org", None)
    }

    #[test]
    fn origin_ttl_relative_names_parentheses_and_comments_are_read() {
        let records = read(
            "$TTL 300\n@ IN SOA ns1 hostmaster.Example.org. (\n 2024 ; serial\n 1h 15m 1w 30 )\n\
             \tIN NS ns1\nWWW 60 IN A 192.0.2.1 ; web\n CNAME x\n$ORIGIN sub.example.org.\n\
             mx MX 10 Mail\ntxt TXT \"a ; b\" c\n",
        )
        .unwrap();
        let owners: Vec<_> = records
            .iter()
            .map(|r| (r.owner.as_str(), r.rtype, r.ttl))
            .collect();
        assert_eq!(
            owners,
            [
                ("example.org", 6, 300),
                ("example.org", 2, 300),
                ("www.example.org", 1, 60),
                ("www.example.org", 5, 300),
                ("mx.sub.example.org", 15, 300),
                ("txt.sub.example.org", 16, 300),
            ]
        );
        assert_eq!(records[0].serial, Some(2024));
        assert_eq!(records[3].target.as_deref(), Some("x.example.org"));
        assert_eq!(records[4].target.as_deref(), Some("mail.sub.example.org"));
        assert_eq!(records[5].rdata, b"\x05a ; b\x01c");
    }

    #[test]
    fn errors_name_the_line_and_a_zone_needs_a_soa() {
        let e = read("@ 60 IN SOA ns hm 1 1 1 1 1\n\nwww IN A 300.1.1.1\n").unwrap_err();
        let ReadError::Bad(why) = e else { panic!() };
        assert!(why.contains(":3: A data"), "{why}");
        let e = read("www 60 IN A 192.0.2.1\n").unwrap_err();
        assert!(matches!(e, ReadError::Bad(w) if w.contains("no SOA")));
        let e = read("@ 60 IN SOA ns hm 1 1 1 1 1 (\n").unwrap_err();
        assert!(matches!(e, ReadError::Bad(w) if w.contains(":1: a '(' is not closed")));
    }
}
