//! A request parsed once, without allocating: the header, the one question (as the client
//! spelled it), the EDNS record; every section walked so a malformed message is FORMERR.

use super::{
    CLASS_IN, HEADER_LEN, OPCODE_QUERY, TCP_MAX_MESSAGE, Transport, UDP_MIN_PAYLOAD, flag, name,
    rcode, read_u16, read_u32, rtype,
};

/// The request header fields a response echoes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    pub opcode: u8,
    pub recursion_desired: bool,
    pub checking_disabled: bool,
}

/// The client's EDNS (RFC 6891): its UDP payload size, version and DO bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    pub payload: u16,
    pub version: u8,
    pub dnssec_ok: bool,
}

/// A query worth answering.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub header: Header,
    /// The question as received: the name (plain labels), type and class.
    pub question: &'a [u8],
    pub qtype: u16,
    pub qclass: u16,
    pub edns: Option<Edns>,
    pub transport: Transport,
    /// The largest UDP answer the server sends, whatever the client's EDNS size (the block's
    /// `max_udp_size`; 1232 until a block is chosen).
    pub max_udp: usize,
    /// The whole message, for forwarding it as it came.
    pub bytes: &'a [u8],
    /// Where it came from (the socket's peer); the unspecified address until the server sets it.
    pub peer: std::net::SocketAddr,
}

/// Why a message is not a query to answer, and what to answer instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected<'a> {
    /// Nothing is sent: no whole header, or a response (QR set), so two servers cannot
    /// bounce messages at each other.
    Drop,
    /// A bare reply with this rcode, echoing the header, the question when it was read, and
    /// EDNS when it was.
    Reply {
        header: Header,
        rcode: u16,
        question: Option<&'a [u8]>,
        edns: Option<Edns>,
    },
}

impl<'a> Request<'a> {
    /// Parses a request and writes its name, lower-case and dotted, into `qname` (see
    /// [`name::lower_dotted`]).
    pub fn parse(
        bytes: &'a [u8],
        transport: Transport,
        qname: &mut String,
    ) -> Result<Request<'a>, Rejected<'a>> {
        qname.clear();
        if bytes.len() < HEADER_LEN || bytes[2] & flag::QR != 0 {
            return Err(Rejected::Drop);
        }
        let header = Header {
            id: u16::from_be_bytes([bytes[0], bytes[1]]),
            opcode: (bytes[2] >> 3) & 0x0f,
            recursion_desired: bytes[2] & flag::RD != 0,
            checking_disabled: bytes[3] & flag::CD != 0,
        };
        let reject = |rcode, question, edns| Rejected::Reply {
            header,
            rcode,
            question,
            edns,
        };
        let Some(sections) = Sections::walk(bytes) else {
            return Err(reject(u16::from(rcode::FORMERR), None, None));
        };
        let edns = sections.edns;
        let Some(question) = sections.question else {
            let code = if header.opcode == OPCODE_QUERY {
                rcode::FORMERR
            } else {
                rcode::NOTIMP
            };
            return Err(reject(u16::from(code), None, edns));
        };
        let n = question.len();
        let qtype = u16::from_be_bytes([question[n - 4], question[n - 3]]);
        let qclass = u16::from_be_bytes([question[n - 2], question[n - 1]]);
        let refuse = |code: u16| Err(reject(code, Some(question), edns));
        if edns.is_some_and(|e| e.version > 0) {
            return refuse(rcode::BADVERS);
        }
        if header.opcode != OPCODE_QUERY {
            return refuse(u16::from(rcode::NOTIMP));
        }
        let class_served = qclass == CLASS_IN || qclass == super::CLASS_CH;
        // AXFR and IXFR go on: a block's `transfer` answers them (else the pipeline refuses).
        if !class_served {
            return refuse(u16::from(rcode::REFUSED));
        }
        name::lower_dotted(bytes, HEADER_LEN, qname);
        Ok(Request {
            header,
            question,
            qtype,
            qclass,
            edns,
            transport,
            max_udp: usize::from(super::ADVERTISED_UDP_PAYLOAD),
            bytes,
            peer: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
        })
    }

    /// The largest response to send: over UDP the client's EDNS size capped at `max_udp` (a
    /// small query must not draw kilobytes: no amplifier), at least 512; 65535 over TCP.
    pub fn limit(&self) -> usize {
        match self.transport {
            Transport::Tcp => TCP_MAX_MESSAGE,
            Transport::Udp => self
                .edns
                .map_or(UDP_MIN_PAYLOAD, |e| {
                    usize::from(e.payload).min(self.max_udp)
                })
                .max(UDP_MIN_PAYLOAD),
        }
    }

    /// The client's side of the query, owned, for answers that outlive the receive buffer.
    pub fn client(&self) -> Client {
        Client {
            header: self.header,
            edns: self.edns,
            limit: self.limit(),
            transport: self.transport,
            question: WireQuestion {
                bytes: self.question.to_vec(),
            },
        }
    }
}

/// What a walk over every section found.
struct Sections<'a> {
    /// The question when there is exactly one.
    question: Option<&'a [u8]>,
    edns: Option<Edns>,
}

impl<'a> Sections<'a> {
    /// `None` when the message is malformed: a question name that is not plain, a record cut
    /// short, a pointer that does not point back, an OPT out of place, twice, or with options
    /// that do not fill it exactly.
    fn walk(bytes: &'a [u8]) -> Option<Sections<'a>> {
        let count = |i| usize::from(u16::from_be_bytes([bytes[i], bytes[i + 1]]));
        let (qd, an, ns, ar) = (count(4), count(6), count(8), count(10));
        let mut pos = HEADER_LEN;
        let mut question = None;
        for i in 0..qd {
            // The first name cannot be compressed: nothing precedes it.
            let end = if i == 0 {
                name::plain_end(bytes, pos)?
            } else {
                name::skip(bytes, pos)?
            };
            let end = end.checked_add(4).filter(|e| *e <= bytes.len())?;
            if qd == 1 {
                question = Some(&bytes[pos..end]);
            }
            pos = end;
        }
        let mut edns = None;
        for i in 0..an + ns + ar {
            let name_end = name::skip(bytes, pos)?;
            let rr_type = read_u16(bytes, name_end)?;
            let rdlen = usize::from(read_u16(bytes, name_end + 8)?);
            let rdata = name_end + 10;
            let end = rdata.checked_add(rdlen).filter(|e| *e <= bytes.len())?;
            if rr_type == rtype::OPT {
                let in_additional = i >= an + ns;
                if !in_additional || edns.is_some() || name_end != pos + 1 {
                    return None;
                }
                options_fit(&bytes[rdata..end])?;
                let ttl = read_u32(bytes, name_end + 4)?;
                edns = Some(Edns {
                    payload: read_u16(bytes, name_end + 2)?,
                    version: (ttl >> 16) as u8,
                    dnssec_ok: ttl & 0x8000 != 0,
                });
            }
            pos = end;
        }
        Some(Sections { question, edns })
    }
}

/// The EDNS options (code, length, data) fill the OPT's data exactly.
fn options_fit(mut data: &[u8]) -> Option<()> {
    while !data.is_empty() {
        let len = usize::from(read_u16(data, 2)?);
        data = data.get(4 + len..)?;
    }
    Some(())
}

/// The question of a query as owned wire bytes: the name as the client spelled it, type and
/// class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireQuestion {
    /// Uncompressed wire name followed by type and class.
    pub bytes: Vec<u8>,
}

impl WireQuestion {
    /// Reads the one question of a message (`None` when it has not exactly one, or its name
    /// is not plain).
    pub fn of(message: &[u8]) -> Option<WireQuestion> {
        if read_u16(message, 4)? != 1 {
            return None;
        }
        let end = name::plain_end(message, HEADER_LEN)?
            .checked_add(4)
            .filter(|e| *e <= message.len())?;
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

/// The client's side of a query, owned so it can outlive the receive buffer: what a stored
/// or forwarded reply is dressed for.
#[derive(Debug, Clone)]
pub struct Client {
    pub header: Header,
    pub edns: Option<Edns>,
    /// The size the client accepts (512, its EDNS payload, or 65535 over TCP).
    pub limit: usize,
    pub transport: Transport,
    pub question: WireQuestion,
}

impl Client {
    /// The cache key of its question.
    pub fn cache_key(&self) -> Box<[u8]> {
        self.question.cache_key(
            self.edns.is_some_and(|e| e.dnssec_ok),
            self.header.checking_disabled,
        )
    }

    /// A reply with no records: the question, the rcode, RA set, OPT when the client sent EDNS.
    pub fn error_reply(&self, rcode: u8) -> Vec<u8> {
        let flags = super::Flags {
            recursion_available: true,
            ..super::Flags::reply_to(&self.header, u16::from(rcode))
        };
        let mut out = Vec::with_capacity(self.question.bytes.len() + 2 * HEADER_LEN);
        super::header::bare_reply(&mut out, flags, Some(&self.question.bytes), self.edns);
        out
    }
}

#[cfg(test)]
mod tests;
