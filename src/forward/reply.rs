//! Upstream replies as bytes: walked once to find what the forwarder checks (ID, question) and
//! what the cache patches (TTLs, flags, the question's case), then re-served without decoding.

use std::ops::Range;

const HEADER_LEN: usize = 12;
const TYPE_SOA: u16 = 6;
const TYPE_OPT: u16 = 41;
/// Our advertised EDNS UDP payload size, as in the cluster zone's answers.
const ADVERTISED_UDP_PAYLOAD: u16 = 1232;

pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;

/// The question of a query as wire bytes: the name as the client spelled it, type and class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireQuestion {
    /// Uncompressed wire name followed by type and class.
    pub bytes: Vec<u8>,
}

impl WireQuestion {
    /// Reads the one question of a message (`None` when it has not exactly one).
    pub fn of(message: &[u8]) -> Option<WireQuestion> {
        if message.len() < HEADER_LEN || u16::from_be_bytes([message[4], message[5]]) != 1 {
            return None;
        }
        // The first name of a message cannot be compressed: nothing precedes it.
        if !is_plain(message, HEADER_LEN) {
            return None;
        }
        let name_end = skip_name(message, HEADER_LEN)?;
        let end = name_end.checked_add(4).filter(|e| *e <= message.len())?;
        Some(WireQuestion {
            bytes: message[HEADER_LEN..end].to_vec(),
        })
    }

    pub fn qtype(&self) -> u16 {
        let n = self.bytes.len();
        u16::from_be_bytes([self.bytes[n - 4], self.bytes[n - 3]])
    }

    /// The name in lower case with type, class and the bits that change an answer: the cache key.
    pub fn cache_key(&self, dnssec_ok: bool, checking_disabled: bool) -> Box<[u8]> {
        let n = self.bytes.len();
        let mut key = Vec::with_capacity(n + 1);
        key.extend(self.bytes[..n - 4].iter().map(u8::to_ascii_lowercase));
        key.extend_from_slice(&self.bytes[n - 4..]);
        key.push(u8::from(dnssec_ok) | (u8::from(checking_disabled) << 1));
        key.into_boxed_slice()
    }

    /// Does `other` (from a reply) ask the same: name case-insensitively, type and class exactly.
    pub fn matches(&self, other: &[u8]) -> bool {
        let n = self.bytes.len();
        other.len() == n
            && self.bytes[..n - 4].eq_ignore_ascii_case(&other[..n - 4])
            && self.bytes[n - 4..] == other[n - 4..]
    }
}

/// Every label of the name at `pos` is a plain length-prefixed label (no pointer).
fn is_plain(message: &[u8], mut pos: usize) -> bool {
    while let Some(&len) = message.get(pos) {
        if len == 0 {
            return true;
        }
        if len & 0xc0 != 0 {
            return false;
        }
        pos += 1 + usize::from(len);
    }
    false
}

/// Position after the (possibly compressed) name at `pos`.
fn skip_name(message: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *message.get(pos)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Some(pos + 1),
            0x00 => pos += 1 + usize::from(len),
            0xc0 => return (pos + 2 <= message.len()).then_some(pos + 2),
            _ => return None,
        }
    }
}

/// Position after the name at `pos`, walked as a decoder reads it (pointers followed), or `None`
/// when it is malformed or reads bytes that [`Reply::write_for`] changes per client: the header
/// (ID, flags, counts) and the TTL fields in `ttl_offsets` (ascending). A pointer there would
/// make the re-served name differ from the upstream's, or not parse. Every pointer must point
/// before itself and everything read through it must lie before it (a prior occurrence, RFC
/// 1035 §4.1.4), so the walk ends and never reads a TTL field not yet in `ttl_offsets`.
fn walk_name(message: &[u8], start: usize, ttl_offsets: &[u32]) -> Option<usize> {
    let rewritten = |from: usize, to: usize| {
        let next = ttl_offsets.partition_point(|&o| o as usize + 4 <= from);
        from < HEADER_LEN || ttl_offsets.get(next).is_some_and(|&o| (o as usize) < to)
    };
    let (mut pos, mut limit, mut end, mut name_len) = (start, message.len(), None, 0usize);
    loop {
        let len = *message.get(pos)?;
        let next = pos + 1 + usize::from(len & 0x3f);
        if len & 0xc0 == 0xc0 {
            if pos + 2 > limit || rewritten(pos, pos + 2) {
                return None;
            }
            end.get_or_insert(pos + 2);
            limit = pos;
            pos = usize::from(u16::from_be_bytes([len & 0x3f, message[pos + 1]]));
            if pos >= limit {
                return None;
            }
            continue;
        }
        name_len += next - pos;
        if len & 0xc0 != 0 || next > limit || rewritten(pos, next) || name_len > 255 {
            return None;
        }
        if len == 0 {
            return Some(end.unwrap_or(next));
        }
        pos = next;
    }
}

/// Where the names a decoder decompresses sit in a record's data: bytes before them and how
/// many follow in a row (the RFC 1035 types, and those RFC 3597 §4 and hickory decompress).
fn rdata_names(rtype: u16, rdata: &[u8]) -> Option<(usize, usize)> {
    match rtype {
        // NS MD MF CNAME MB MG MR PTR DNAME TSIG ANAME
        2 | 3 | 4 | 5 | 7 | 8 | 9 | 12 | 39 | 250 | 65305 => Some((0, 1)),
        6 | 14 | 17 => Some((0, 2)),                 // SOA MINFO RP
        15 | 18 | 21 | 36 | 64 | 65 => Some((2, 1)), // MX AFSDB RT KX SVCB HTTPS
        26 => Some((2, 2)),                          // PX
        33 => Some((6, 1)),                          // SRV
        35 => {
            // NAPTR: order, preference, flags, services, regexp, replacement.
            let mut at = 4;
            for _ in 0..3 {
                at += 1 + usize::from(*rdata.get(at)?);
            }
            Some((at, 1))
        }
        _ => None,
    }
}

fn read_u16(message: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_be_bytes([
        *message.get(pos)?,
        *message.get(pos + 1)?,
    ]))
}

fn read_u32(message: &[u8], pos: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        message.get(pos..pos + 4)?.try_into().ok()?,
    ))
}

/// What a reply holds, found by one walk over its bytes.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The reply without its OPT record, ID zeroed.
    bytes: Box<[u8]>,
    /// Offsets of every record's TTL field.
    ttl_offsets: Box<[u32]>,
    /// End of the question; start of the answer section.
    question_end: usize,
    /// Start of the additional section (after answers and authority).
    additional_start: usize,
    pub rcode: u8,
    pub answer_count: u16,
    /// The smallest TTL over answer, authority and additional records.
    pub min_ttl: Option<u32>,
    /// RFC 2308 §5: for a negative answer, min(SOA TTL, SOA MINIMUM) from the authority SOA.
    pub negative_ttl: Option<u32>,
}

/// Why a reply is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("malformed reply")]
    Malformed,
    #[error("reply carries an extended rcode")]
    ExtendedRcode,
    #[error("OPT record is not the last record")]
    OptNotLast,
}

/// What the client asked with, so a stored reply can be dressed for it.
#[derive(Debug, Clone, Copy)]
pub struct ClientView<'q> {
    pub id: u16,
    pub recursion_desired: bool,
    pub checking_disabled: bool,
    /// `Some(do bit)` when the client sent EDNS.
    pub edns_dnssec_ok: Option<bool>,
    /// The size the client accepts (512, its EDNS payload, or 65535 over TCP).
    pub limit: usize,
    /// The client's question (for its spelling of the name).
    pub question: &'q WireQuestion,
}

impl Reply {
    /// Walks a reply. The OPT record is dropped (every client gets its own); a reply whose OPT
    /// is not last, or that carries an extended rcode, is refused.
    pub fn parse(message: &[u8]) -> Result<Reply, ReplyError> {
        use ReplyError::Malformed;
        if message.len() < HEADER_LEN {
            return Err(Malformed);
        }
        let count = |i: usize| usize::from(u16::from_be_bytes([message[i], message[i + 1]]));
        let (qd, an, ns, ar) = (count(4), count(6), count(8), count(10));
        if qd != 1 {
            return Err(Malformed);
        }
        let question_end = walk_name(message, HEADER_LEN, &[])
            .map(|p| p + 4)
            .filter(|p| *p <= message.len())
            .ok_or(Malformed)?;
        let mut pos = question_end;
        let mut ttl_offsets = Vec::with_capacity(an + ns + ar);
        let mut min_ttl: Option<u32> = None;
        let mut negative_ttl = None;
        let mut additional_start = None;
        let mut opt: Option<Range<usize>> = None;
        for i in 0..an + ns + ar {
            if i == an + ns {
                additional_start = Some(pos);
            }
            let start = pos;
            let name_end = walk_name(message, pos, &ttl_offsets).ok_or(Malformed)?;
            let rtype = read_u16(message, name_end).ok_or(Malformed)?;
            let ttl = read_u32(message, name_end + 4).ok_or(Malformed)?;
            let rdlen = usize::from(read_u16(message, name_end + 8).ok_or(Malformed)?);
            let rdata = name_end + 10;
            pos = rdata + rdlen;
            if pos > message.len() {
                return Err(Malformed);
            }
            if rtype == TYPE_OPT {
                if opt.is_some() || i < an + ns {
                    return Err(Malformed);
                }
                if ttl >> 24 != 0 {
                    return Err(ReplyError::ExtendedRcode);
                }
                opt = Some(start..pos);
                continue;
            }
            if opt.is_some() {
                return Err(ReplyError::OptNotLast);
            }
            ttl_offsets.push(u32::try_from(name_end + 4).map_err(|_| Malformed)?);
            if rdlen > 0
                && let Some((skip, names)) = rdata_names(rtype, &message[rdata..pos])
            {
                let mut at = rdata + skip;
                for _ in 0..names {
                    at = walk_name(message, at, &ttl_offsets)
                        .filter(|end| *end <= pos)
                        .ok_or(Malformed)?;
                }
            }
            // TTLs above 2^31 - 1 are read as 0 (RFC 2181 §8).
            let ttl = if ttl > i32::MAX as u32 { 0 } else { ttl };
            min_ttl = Some(min_ttl.map_or(ttl, |m| m.min(ttl)));
            if rtype == TYPE_SOA && (an..an + ns).contains(&i) && rdlen >= 20 {
                let minimum = read_u32(message, pos - 4).ok_or(Malformed)?;
                negative_ttl = Some(ttl.min(minimum));
            }
        }
        let additional_start = additional_start.unwrap_or(pos);
        let mut bytes = message[..pos].to_vec();
        if let Some(range) = opt {
            bytes.truncate(range.start);
            let arcount = (ar - 1) as u16;
            bytes[10..12].copy_from_slice(&arcount.to_be_bytes());
        }
        bytes[0] = 0;
        bytes[1] = 0;
        Ok(Reply {
            bytes: bytes.into_boxed_slice(),
            ttl_offsets: ttl_offsets.into_boxed_slice(),
            question_end,
            additional_start,
            rcode: message[3] & 0x0f,
            answer_count: an as u16,
            min_ttl,
            negative_ttl,
        })
    }

    /// Is the TC bit set?
    pub fn truncated(&self) -> bool {
        self.bytes[2] & 0x02 != 0
    }

    /// The stored header flags' AA bit.
    pub fn authoritative(&self) -> bool {
        self.bytes[2] & 0x04 != 0
    }

    /// Writes the reply for a client into `out`: its ID, RD and CD bits, its spelling of the
    /// name, every TTL replaced by `ttl` (or kept when `None`), an OPT record when the client
    /// sent EDNS, and truncation to the client's size (additional section first, then TC).
    pub fn write_for(&self, client: &ClientView<'_>, ttl: Option<u32>, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.bytes);
        out[0..2].copy_from_slice(&client.id.to_be_bytes());
        out[2] = (out[2] & !0x01) | u8::from(client.recursion_desired);
        out[3] = (out[3] & !0x10) | (u8::from(client.checking_disabled) << 4);
        // Recursion is available wherever a reply came from an upstream.
        out[3] |= 0x80;
        let q = &client.question.bytes;
        if out.len() >= HEADER_LEN + q.len() {
            out[HEADER_LEN..HEADER_LEN + q.len()].copy_from_slice(q);
        }
        if let Some(ttl) = ttl {
            let ttl = ttl.to_be_bytes();
            for &offset in self.ttl_offsets.iter() {
                let o = offset as usize;
                out[o..o + 4].copy_from_slice(&ttl);
            }
        }
        let opt_len = if client.edns_dnssec_ok.is_some() {
            11
        } else {
            0
        };
        let limit = client.limit.max(512);
        if out.len() + opt_len > limit {
            // First without the additional section, then without any record and TC set.
            if self.additional_start + opt_len <= limit && self.additional_start <= out.len() {
                out.truncate(self.additional_start);
                out[10..12].copy_from_slice(&[0, 0]);
            } else {
                out.truncate(self.question_end);
                out[6..12].copy_from_slice(&[0; 6]);
                out[2] |= 0x02;
            }
        }
        if let Some(dnssec_ok) = client.edns_dnssec_ok {
            let arcount = u16::from_be_bytes([out[10], out[11]]) + 1;
            out[10..12].copy_from_slice(&arcount.to_be_bytes());
            out.push(0);
            out.extend_from_slice(&TYPE_OPT.to_be_bytes());
            out.extend_from_slice(&ADVERTISED_UDP_PAYLOAD.to_be_bytes());
            out.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0]);
            out.extend_from_slice(&[0, 0]);
        }
    }
}

/// Does a reply belong to the query: same ID, QR set, same question (name case-insensitive)?
pub fn belongs_to(reply: &[u8], id: u16, question: &WireQuestion) -> bool {
    reply.len() >= HEADER_LEN + question.bytes.len()
        && u16::from_be_bytes([reply[0], reply[1]]) == id
        && reply[2] & 0x80 != 0
        && u16::from_be_bytes([reply[4], reply[5]]) == 1
        && is_plain(reply, HEADER_LEN)
        && question.matches(&reply[HEADER_LEN..HEADER_LEN + question.bytes.len()])
}

#[cfg(test)]
mod tests;
