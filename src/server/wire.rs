//! Writes responses straight into a reused buffer: header, the question as the client spelled
//! it, then records described by the zone. Owners that echo the question are compression
//! pointers to it; glue owners point at the SRV target they follow. Truncation drops additional
//! records from the end, then the authority section, then whole answer records (setting TC).

use hickory_proto::rr::Name;

use crate::zone::{Owner, Rdata, Rr, SoaValues, Suffix, Target};

/// The header flags a response carries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags {
    pub id: u16,
    pub opcode: u8,
    pub authoritative: bool,
    pub recursion_desired: bool,
    pub recursion_available: bool,
    pub checking_disabled: bool,
    /// The full (possibly extended) rcode; bits above 4 go in the OPT record.
    pub rcode: u16,
}

/// The client's EDNS, echoed in the response's OPT record.
#[derive(Debug, Clone, Copy)]
pub struct Edns {
    pub dnssec_ok: bool,
}

/// Our advertised EDNS UDP payload size (DNS Flag Day 2020).
pub const ADVERTISED_UDP_PAYLOAD: u16 = 1232;
const HEADER_LEN: usize = 12;
const OPT_LEN: usize = 11;
const TYPE_A: u16 = 1;
const TYPE_NS: u16 = 2;
const TYPE_CNAME: u16 = 5;
const TYPE_SOA: u16 = 6;
const TYPE_PTR: u16 = 12;
const TYPE_TXT: u16 = 16;
const TYPE_AAAA: u16 = 28;
const TYPE_SRV: u16 = 33;
const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;
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

/// One question: the name as received, its type and class.
pub struct Question<'a> {
    pub name: &'a Name,
    pub qtype: u16,
    pub qclass: u16,
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
    /// Writes a whole response and returns its bytes. `limit` is the size the client accepts.
    pub fn write<'s>(
        &'s mut self,
        flags: Flags,
        question: Option<&Question<'_>>,
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
        let limit = limit.max(512);

        let mut counts = (
            sections.answers.len(),
            usize::from(sections.soa.is_some()),
            sections.additionals.len(),
        );
        let mut truncated = false;
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
                truncated = true;
            }
        }
        if let Some(edns) = edns {
            self.write_opt(edns, flags.rcode);
            counts.2 += 1;
        }
        self.write_header(flags, truncated, qdcount, counts);
        &self.buf
    }

    fn write_header(
        &mut self,
        flags: Flags,
        truncated: bool,
        qdcount: u16,
        counts: (usize, usize, usize),
    ) {
        let mut b2 = 0x80 | ((flags.opcode & 0x0f) << 3);
        if flags.authoritative {
            b2 |= 0x04;
        }
        if truncated {
            b2 |= 0x02;
        }
        if flags.recursion_desired {
            b2 |= 0x01;
        }
        let mut b3 = (flags.rcode & 0x0f) as u8;
        if flags.recursion_available {
            b3 |= 0x80;
        }
        if flags.checking_disabled {
            b3 |= 0x10;
        }
        let h = &mut self.buf[..HEADER_LEN];
        h[0..2].copy_from_slice(&flags.id.to_be_bytes());
        h[2] = b2;
        h[3] = b3;
        h[4..6].copy_from_slice(&qdcount.to_be_bytes());
        h[6..8].copy_from_slice(&(counts.0 as u16).to_be_bytes());
        h[8..10].copy_from_slice(&(counts.1 as u16).to_be_bytes());
        h[10..12].copy_from_slice(&(counts.2 as u16).to_be_bytes());
    }

    fn write_question(&mut self, q: &Question<'_>) {
        for label in q.name.iter() {
            self.question_labels.push(self.buf.len() as u16);
            self.buf.push(label.len() as u8);
            self.buf.extend_from_slice(label);
        }
        self.buf.push(0);
        self.buf.extend_from_slice(&q.qtype.to_be_bytes());
        self.buf.extend_from_slice(&q.qclass.to_be_bytes());
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
        for label in dotted.split('.').filter(|l| !l.is_empty()) {
            let bytes = &label.as_bytes()[..label.len().min(63)];
            self.buf.push(bytes.len() as u8);
            self.buf.extend_from_slice(bytes);
        }
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
            Rdata::A(_) => TYPE_A,
            Rdata::Aaaa(_) => TYPE_AAAA,
            Rdata::Srv { .. } => TYPE_SRV,
            Rdata::Ptr(_) => TYPE_PTR,
            Rdata::Cname(_) => TYPE_CNAME,
            Rdata::Ns(_) => TYPE_NS,
            Rdata::Txt(_) => TYPE_TXT,
            Rdata::Soa { .. } => TYPE_SOA,
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
            Rdata::Soa { serial, minimum } => self.soa_rdata(*serial, *minimum, zone_offset),
        }
        self.finish_rdata(start);
    }

    fn soa_rdata(&mut self, serial: u32, minimum: u32, zone_offset: Option<u16>) {
        for mailbox in ["ns.dns", "hostmaster"] {
            self.labels(mailbox);
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
        let start = self.rr_header(TYPE_SOA, soa.ttl);
        self.soa_rdata(soa.serial, soa.minimum, zone_offset);
        self.finish_rdata(start);
    }

    fn write_opt(&mut self, edns: Edns, rcode: u16) {
        self.buf.push(0); // root owner
        self.buf.extend_from_slice(&TYPE_OPT.to_be_bytes());
        self.buf
            .extend_from_slice(&ADVERTISED_UDP_PAYLOAD.to_be_bytes());
        self.buf.push((rcode >> 4) as u8); // extended rcode
        self.buf.push(0); // version
        self.buf.push(if edns.dnssec_ok { 0x80 } else { 0 });
        self.buf.push(0);
        self.buf.extend_from_slice(&[0, 0]); // no options
    }
}
