//! Writes responses straight into a reused buffer: header, the question as the client spelled
//! it, then records described by the zone. Owners that echo the question are compression
//! pointers to it; glue owners point at the SRV target they follow. Truncation drops additional
//! records from the end, then the authority section, then whole answer records (setting TC).

use super::header::{Flags, put_header, put_opt};
use super::{CLASS_IN, HEADER_LEN, OPT_LEN, UDP_MIN_PAYLOAD, request::Edns, rtype};
use crate::zone::{Owner, Rdata, Rr, SoaValues, Suffix, Target};

/// The most name pointers remembered per message (glue owners); beyond it names are spelled out.
const MAX_REMEMBERED: usize = 256;

/// Reused per socket task: the output buffer and the bookkeeping of one message.
#[derive(Debug, Default)]
pub struct MessageWriter {
    pub buf: Vec<u8>,
    /// Offsets of the question's labels, left to right.
    question_labels: Vec<u16>,
    /// Where each answer record ends (for truncation).
    answer_ends: Vec<usize>,
    /// Where each additional record ends, to keep the ones that fit.
    additional_ends: Vec<usize>,
    /// `(Arc pointer of a target's labels, offset where the name was written)`.
    remembered: Vec<(usize, u16)>,
}

/// The sections of a response.
pub struct Sections<'a> {
    pub answers: &'a [Rr],
    /// The zone SOA for the authority section (negative answers).
    pub soa: Option<SoaValues>,
    /// Label count of the zone the SOA belongs to (a suffix of the question).
    pub zone_labels: usize,
    pub additionals: &'a [Rr],
}

impl MessageWriter {
    /// Writes a whole response and returns its bytes. `question` is the question's wire bytes
    /// as received (plain name, type, class); `limit` is the size the client accepts.
    pub fn write<'s>(
        &'s mut self,
        mut flags: Flags,
        question: Option<&[u8]>,
        sections: &Sections<'_>,
        edns: Option<Edns>,
        limit: usize,
    ) -> &'s [u8] {
        self.buf.clear();
        self.question_labels.clear();
        self.answer_ends.clear();
        self.additional_ends.clear();
        self.remembered.clear();
        self.buf.extend_from_slice(&[0u8; HEADER_LEN]);
        let qdcount = match question {
            Some(q) => {
                self.write_question(q);
                1
            }
            None => 0,
        };
        let question_end = self.buf.len();
        let zone_offset = self.zone_offset(sections.zone_labels);
        for rr in sections.answers {
            self.write_rr(rr, zone_offset);
            self.answer_ends.push(self.buf.len());
        }
        let answers_end = self.buf.len();
        if let Some(soa) = sections.soa {
            self.write_soa_authority(soa, zone_offset);
        }
        let authority_end = self.buf.len();
        for rr in sections.additionals {
            self.write_rr(rr, zone_offset);
            self.additional_ends.push(self.buf.len());
        }
        let opt_len = if edns.is_some() { OPT_LEN } else { 0 };
        let limit = limit.max(UDP_MIN_PAYLOAD);

        let mut counts = (
            sections.answers.len(),
            usize::from(sections.soa.is_some()),
            sections.additionals.len(),
        );
        if self.buf.len() + opt_len > limit {
            if authority_end + opt_len <= limit {
                // Glue is optional (RFC 2181 §9: no TC): keep the additional records that fit,
                // as CoreDNS does. Their names only point backwards, so cutting the tail is safe.
                let keep = self
                    .additional_ends
                    .iter()
                    .take_while(|end| **end + opt_len <= limit)
                    .count();
                self.buf.truncate(match keep {
                    0 => authority_end,
                    n => self.additional_ends[n - 1],
                });
                counts.2 = keep;
            } else if answers_end + opt_len <= limit {
                self.buf.truncate(answers_end);
                counts.1 = 0;
                counts.2 = 0;
            } else {
                let keep = self
                    .answer_ends
                    .iter()
                    .take_while(|end| **end + opt_len <= limit)
                    .count();
                let end = match keep {
                    0 => question_end,
                    n => self.answer_ends[n - 1],
                };
                self.buf.truncate(end);
                counts = (keep, 0, 0);
                flags.truncated = true;
            }
        }
        if let Some(edns) = edns {
            put_opt(&mut self.buf, edns, flags.rcode);
            counts.2 += 1;
        }
        put_header(
            &mut self.buf[..HEADER_LEN],
            &flags,
            [qdcount, counts.0, counts.1, counts.2],
        );
        &self.buf
    }

    /// A response whose `answers` records are already encoded in `records` (owners pointing
    /// at the question, see [`put_txt`]); over `limit` they are all dropped and TC set.
    pub fn write_encoded<'s>(
        &'s mut self,
        mut flags: Flags,
        question: &[u8],
        records: &[u8],
        answers: usize,
        edns: Option<Edns>,
        limit: usize,
    ) -> &'s [u8] {
        self.buf.clear();
        self.buf.extend_from_slice(&[0u8; HEADER_LEN]);
        self.buf.extend_from_slice(question);
        let opt_len = if edns.is_some() { OPT_LEN } else { 0 };
        let fits = self.buf.len() + records.len() + opt_len <= limit.max(UDP_MIN_PAYLOAD);
        if fits {
            self.buf.extend_from_slice(records);
        }
        flags.truncated = !fits;
        if let Some(edns) = edns {
            put_opt(&mut self.buf, edns, flags.rcode);
        }
        let counts = [
            1,
            if fits { answers } else { 0 },
            0,
            usize::from(edns.is_some()),
        ];
        put_header(&mut self.buf[..HEADER_LEN], &flags, counts);
        &self.buf
    }

    /// A response whose records are already encoded in `records`, `counts` of them in the
    /// answer, authority and additional sections, each ending at its entry of `ends`. Over
    /// `limit`, the records that fit are kept in order and the rest dropped; TC is set when an
    /// answer record had to go (RFC 2181 §9).
    #[allow(clippy::too_many_arguments)]
    pub fn write_sections<'s>(
        &'s mut self,
        mut flags: Flags,
        question: &[u8],
        records: &[u8],
        ends: &[usize],
        counts: [u16; 3],
        edns: Option<Edns>,
        limit: usize,
    ) -> &'s [u8] {
        self.buf.clear();
        self.buf.extend_from_slice(&[0u8; HEADER_LEN]);
        self.buf.extend_from_slice(question);
        let opt_len = if edns.is_some() { OPT_LEN } else { 0 };
        let room = limit
            .max(UDP_MIN_PAYLOAD)
            .saturating_sub(self.buf.len() + opt_len);
        let kept = ends.iter().take_while(|end| **end <= room).count();
        let wanted = counts;
        let mut counts = counts.map(usize::from);
        let mut left = kept;
        for count in &mut counts {
            *count = (*count).min(left);
            left -= *count;
        }
        flags.truncated = counts[0] < usize::from(wanted[0]);
        let end = kept.checked_sub(1).map_or(0, |i| ends[i]);
        self.buf.extend_from_slice(&records[..end]);
        if let Some(edns) = edns {
            put_opt(&mut self.buf, edns, flags.rcode);
        }
        let [answers, authority, additional] = counts;
        put_header(
            &mut self.buf[..HEADER_LEN],
            &flags,
            [
                1,
                answers,
                authority,
                additional + usize::from(edns.is_some()),
            ],
        );
        &self.buf
    }

    /// A reply with no records (see [`super::header::bare_reply`]), in this writer's buffer.
    pub fn bare<'s>(
        &'s mut self,
        flags: Flags,
        question: Option<&[u8]>,
        edns: Option<Edns>,
    ) -> &'s [u8] {
        super::header::bare_reply(&mut self.buf, flags, question, edns);
        &self.buf
    }

    /// Copies the question and notes where each of its labels starts (its name is plain).
    fn write_question(&mut self, question: &[u8]) {
        let mut pos = 0;
        while let Some(&len) = question.get(pos).filter(|l| **l != 0) {
            self.question_labels.push((self.buf.len() + pos) as u16);
            pos += 1 + usize::from(len);
        }
        self.buf.extend_from_slice(question);
    }

    /// Offset of the question's last `labels` labels, if that is a proper suffix of it.
    fn zone_offset(&self, labels: usize) -> Option<u16> {
        let n = self.question_labels.len();
        (labels > 0 && labels <= n).then(|| self.question_labels[n - labels])
    }

    fn pointer(&mut self, offset: u16) {
        self.buf.extend_from_slice(&(0xC000 | offset).to_be_bytes());
    }

    fn labels(&mut self, dotted: &str) {
        super::name::put_labels(&mut self.buf, dotted);
    }

    /// The zone as the question spells it, written out (no pointer).
    fn zone_spelled(&mut self, zone_offset: Option<u16>) {
        if let Some(start) = zone_offset {
            let start = start as usize;
            let mut end = start;
            while self.buf[end] != 0 {
                end += 1 + self.buf[end] as usize;
            }
            self.buf.extend_from_within(start..end);
        }
        self.buf.push(0);
    }

    fn name(&mut self, target: &Target, zone_offset: Option<u16>, compress: bool) {
        let key = target.labels.as_ptr() as usize;
        if compress
            && target.suffix == Suffix::QueryZone
            && let Some((_, at)) = self.remembered.iter().find(|(k, _)| *k == key)
        {
            let at = *at;
            self.pointer(at);
            return;
        }
        let start = self.buf.len();
        if target.suffix == Suffix::QueryZone
            && start < 0x3fff
            && self.remembered.len() < MAX_REMEMBERED
        {
            self.remembered.push((key, start as u16));
        }
        self.labels(&target.labels);
        match &target.suffix {
            Suffix::QueryZone if compress => match zone_offset {
                Some(at) => self.pointer(at),
                None => self.buf.push(0),
            },
            Suffix::QueryZone => self.zone_spelled(zone_offset),
            Suffix::Zone(zone) => {
                self.labels(zone);
                self.buf.push(0);
            }
            Suffix::Root => self.buf.push(0),
        }
    }

    fn owner(&mut self, owner: &Owner, zone_offset: Option<u16>) {
        match owner {
            Owner::Query => self.pointer(HEADER_LEN as u16),
            Owner::QueryZone => match zone_offset {
                Some(at) => self.pointer(at),
                None => self.buf.push(0),
            },
            Owner::Name(target) => self.name(target, zone_offset, true),
        }
    }

    fn rr_header(&mut self, rtype: u16, ttl: u32) -> usize {
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&CLASS_IN.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.len()
    }

    fn finish_rdata(&mut self, rdata_start: usize) {
        let len = (self.buf.len() - rdata_start) as u16;
        self.buf[rdata_start - 2..rdata_start].copy_from_slice(&len.to_be_bytes());
    }

    fn write_rr(&mut self, rr: &Rr, zone_offset: Option<u16>) {
        self.owner(&rr.owner, zone_offset);
        let rtype = match &rr.data {
            Rdata::A(_) => rtype::A,
            Rdata::Aaaa(_) => rtype::AAAA,
            Rdata::Srv { .. } => rtype::SRV,
            Rdata::Ptr(_) => rtype::PTR,
            Rdata::Cname(_) => rtype::CNAME,
            Rdata::Ns(_) => rtype::NS,
            Rdata::Txt(_) => rtype::TXT,
            Rdata::Soa { .. } => rtype::SOA,
        };
        let start = self.rr_header(rtype, rr.ttl);
        match &rr.data {
            Rdata::A(a) => self.buf.extend_from_slice(&a.octets()),
            Rdata::Aaaa(a) => self.buf.extend_from_slice(&a.octets()),
            Rdata::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                self.buf.extend_from_slice(&priority.to_be_bytes());
                self.buf.extend_from_slice(&weight.to_be_bytes());
                self.buf.extend_from_slice(&port.to_be_bytes());
                // RFC 2782: no compression inside SRV rdata.
                self.name(target, zone_offset, false);
            }
            Rdata::Ptr(t) | Rdata::Cname(t) | Rdata::Ns(t) => self.name(t, zone_offset, true),
            Rdata::Txt(text) => {
                self.buf.push(text.len() as u8);
                self.buf.extend_from_slice(text.as_bytes());
            }
            Rdata::Soa {
                serial,
                minimum,
                apex,
            } => self.soa_rdata(*serial, *minimum, *apex, zone_offset),
        }
        self.finish_rdata(start);
    }

    fn soa_rdata(
        &mut self,
        serial: u32,
        minimum: u32,
        apex: Option<&str>,
        zone_offset: Option<u16>,
    ) {
        let names = match apex {
            None => [("ns.dns", ""), ("hostmaster", "")],
            Some(apex) => [("ns1", apex), ("hostmaster", apex)],
        };
        for (first, apex) in names {
            self.labels(first);
            if !apex.is_empty() {
                self.labels(apex);
            }
            match zone_offset {
                Some(at) => self.pointer(at),
                None => self.buf.push(0),
            }
        }
        for v in [
            serial,
            crate::zone::SOA_REFRESH,
            crate::zone::SOA_RETRY,
            crate::zone::SOA_EXPIRE,
            minimum,
        ] {
            self.buf.extend_from_slice(&v.to_be_bytes());
        }
    }

    fn write_soa_authority(&mut self, soa: SoaValues, zone_offset: Option<u16>) {
        self.owner(&Owner::QueryZone, zone_offset);
        let start = self.rr_header(rtype::SOA, soa.ttl);
        self.soa_rdata(soa.serial, soa.minimum, soa.apex, zone_offset);
        self.finish_rdata(start);
    }
}

/// Appends a TXT record of `class` owned by the question's name (a pointer to it): `text` cut
/// into character-strings of at most 255 octets.
pub fn put_txt(out: &mut Vec<u8>, class: u16, ttl: u32, text: &str) {
    out.extend_from_slice(&(0xC000 | HEADER_LEN as u16).to_be_bytes());
    out.extend_from_slice(&rtype::TXT.to_be_bytes());
    out.extend_from_slice(&class.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    let chunks: Vec<&[u8]> = text.as_bytes().chunks(255).collect();
    let rdlen = chunks.iter().map(|c| 1 + c.len()).sum::<usize>().max(1);
    out.extend_from_slice(&(rdlen as u16).to_be_bytes());
    if chunks.is_empty() {
        out.push(0);
    }
    for chunk in chunks {
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
}
