//! Upstream replies as bytes: walked once to find what the forwarder checks (ID, question) and
//! what the cache patches (TTLs, flags, the question's case), then re-served without decoding.

use std::ops::Range;

use crate::dns::header::put_opt;
use crate::dns::{Client, HEADER_LEN, OPT_LEN, UDP_MIN_PAYLOAD, WireQuestion, flag, name, rcode};
use crate::dns::{read_u16, read_u32, rtype};

/// Position after the name at `start`, walked as a decoder reads it, or `None` when it is
/// malformed or reads bytes that [`Reply::write_for`] changes per client: the header (ID,
/// flags, counts) and the TTL fields in `ttl_offsets` (ascending). A pointer there would make
/// the re-served name differ from the upstream's, or not parse.
fn walk_name(message: &[u8], start: usize, ttl_offsets: &[u32]) -> Option<usize> {
    name::walk(message, start, |from, to| {
        let next = ttl_offsets.partition_point(|&o| o as usize + 4 <= from);
        from < HEADER_LEN || ttl_offsets.get(next).is_some_and(|&o| (o as usize) < to)
    })
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
    /// Where each record ends, in order (the OPT record left out): truncation keeps whole
    /// records.
    record_ends: Box<[u32]>,
    pub rcode: u8,
    pub answer_count: u16,
    authority_count: u16,
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
        let mut record_ends = Vec::with_capacity(an + ns + ar);
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
            let rr_type = read_u16(message, name_end).ok_or(Malformed)?;
            let ttl = read_u32(message, name_end + 4).ok_or(Malformed)?;
            let rdlen = usize::from(read_u16(message, name_end + 8).ok_or(Malformed)?);
            let rdata = name_end + 10;
            pos = rdata + rdlen;
            if pos > message.len() {
                return Err(Malformed);
            }
            if rr_type == rtype::OPT {
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
            record_ends.push(u32::try_from(pos).map_err(|_| Malformed)?);
            if rdlen > 0
                && let Some((skip, names)) = rdata_names(rr_type, &message[rdata..pos])
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
            if rr_type == rtype::SOA && (an..an + ns).contains(&i) && rdlen >= 20 {
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
            record_ends: record_ends.into_boxed_slice(),
            rcode: message[3] & 0x0f,
            answer_count: an as u16,
            authority_count: ns as u16,
            min_ttl,
            negative_ttl,
        })
    }

    /// Bytes the reply holds (its message and TTL offsets), for the cache's weight.
    pub fn size(&self) -> usize {
        self.bytes.len() + 8 * self.ttl_offsets.len()
    }

    /// Is the TC bit set?
    pub fn truncated(&self) -> bool {
        self.bytes[2] & flag::TC != 0
    }

    /// The stored header flags' AA bit.
    pub fn authoritative(&self) -> bool {
        self.bytes[2] & flag::AA != 0
    }

    /// Writes the reply for a client into `out`: its ID, RD and CD bits, its spelling of the
    /// name, every TTL replaced by `ttl` (or kept when `None`), an OPT record when the client
    /// sent EDNS, and truncation to the client's size (additional section first, then TC).
    pub fn write_for(&self, client: &Client, ttl: Option<u32>, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.bytes);
        let header = &client.header;
        out[0..2].copy_from_slice(&header.id.to_be_bytes());
        out[2] = (out[2] & !flag::RD) | u8::from(header.recursion_desired);
        out[3] = (out[3] & !flag::CD) | (u8::from(header.checking_disabled) << 4);
        // Recursion is available wherever a reply came from an upstream.
        out[3] |= flag::RA;
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
        let opt_len = if client.edns.is_some() { OPT_LEN } else { 0 };
        let room = client.limit.max(UDP_MIN_PAYLOAD) - opt_len;
        if out.len() > room {
            self.truncate(out, room);
        }
        if let Some(edns) = client.edns {
            let arcount = u16::from_be_bytes([out[10], out[11]]) + 1;
            out[10..12].copy_from_slice(&arcount.to_be_bytes());
            put_opt(out, edns, u16::from(rcode::NOERROR));
        }
    }
}

impl Reply {
    /// Cuts `out` (this reply as written) to `room` bytes at a record boundary, as much kept as
    /// fits: first the additional records that do not fit go (glue is optional: no TC, RFC 2181
    /// §9), then the authority section, then answer records from the end, with TC set. Names
    /// only point backwards, so what is kept still reads.
    fn truncate(&self, out: &mut Vec<u8>, room: usize) {
        let (an, ns) = (
            usize::from(self.answer_count),
            usize::from(self.authority_count),
        );
        let ends = &self.record_ends;
        let fitting = |records: &[u32]| records.iter().take_while(|e| **e as usize <= room).count();
        let answers_end = an
            .checked_sub(1)
            .map_or(self.question_end, |i| ends[i] as usize);
        let (answers, authority, additional) = if self.additional_start <= room {
            let keep = fitting(&ends[an + ns..]);
            let end = (an + ns + keep)
                .checked_sub(1)
                .map_or(self.question_end, |i| ends[i] as usize);
            out.truncate(end.max(self.additional_start));
            (an, ns, keep)
        } else if an > 0 && answers_end <= room {
            out.truncate(answers_end);
            (an, 0, 0)
        } else {
            let keep = fitting(&ends[..an]);
            let end = keep
                .checked_sub(1)
                .map_or(self.question_end, |i| ends[i] as usize);
            out.truncate(end);
            out[2] |= flag::TC;
            (keep, 0, 0)
        };
        for (at, count) in [(6, answers), (8, authority), (10, additional)] {
            out[at..at + 2].copy_from_slice(&(count as u16).to_be_bytes());
        }
    }
}

/// Does a reply belong to the query: same ID, QR set, same question (name case-insensitive)?
pub fn belongs_to(reply: &[u8], id: u16, question: &WireQuestion) -> bool {
    reply.len() >= HEADER_LEN + question.bytes.len()
        && u16::from_be_bytes([reply[0], reply[1]]) == id
        && reply[2] & flag::QR != 0
        && u16::from_be_bytes([reply[4], reply[5]]) == 1
        && name::plain_end(reply, HEADER_LEN).is_some()
        && question.matches(&reply[HEADER_LEN..HEADER_LEN + question.bytes.len()])
}

#[cfg(test)]
mod tests;
