//! The DNS wire format, defined once: every constant, the request parsed once
//! ([`request::Request`]), bare replies (errors, slip), query building, label walking and the
//! response writer. Nothing here does I/O.

pub mod header;
pub mod name;
pub mod query;
pub mod request;
pub mod writer;

pub use header::Flags;
pub use request::{Client, Edns, Header, Rejected, Request, WireQuestion};

/// Every message starts with a 12-byte header.
pub const HEADER_LEN: usize = 12;
/// An OPT record without options: root owner, type, class, TTL, RDLENGTH.
pub const OPT_LEN: usize = 11;
/// The classic UDP limit without EDNS (RFC 1035 §4.2.1).
pub const UDP_MIN_PAYLOAD: usize = 512;
/// Our advertised EDNS UDP payload size (DNS Flag Day 2020).
pub const ADVERTISED_UDP_PAYLOAD: u16 = 1232;
/// Messages over TCP are limited by their 16-bit length prefix.
pub const TCP_MAX_MESSAGE: usize = 65535;
/// Longest name on the wire, length octets included (RFC 1035 §3.1).
pub const MAX_NAME_LEN: usize = 255;
/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

pub const OPCODE_QUERY: u8 = 0;
pub const CLASS_IN: u16 = 1;
/// CHAOS: only `chaos` answers it (version.bind and friends).
pub const CLASS_CH: u16 = 3;

/// Record types by their number (RFC 1035, 3596, 2782, 6891, 5936).
pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const PTR: u16 = 12;
    pub const MX: u16 = 15;
    pub const HINFO: u16 = 13;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
    pub const OPT: u16 = 41;
    pub const IXFR: u16 = 251;
    pub const AXFR: u16 = 252;
    pub const ANY: u16 = 255;
}

/// Response codes (RFC 1035 §4.1.1; BADVERS from RFC 6891, carried in the OPT record).
pub mod rcode {
    pub const NOERROR: u8 = 0;
    pub const FORMERR: u8 = 1;
    pub const SERVFAIL: u8 = 2;
    pub const NXDOMAIN: u8 = 3;
    pub const NOTIMP: u8 = 4;
    pub const REFUSED: u8 = 5;
    /// Extended: its upper bits go in the OPT record.
    pub const BADVERS: u16 = 16;
}

/// Header flag bits, by byte (byte 2: QR opcode AA TC RD; byte 3: RA Z AD CD rcode).
pub mod flag {
    pub const QR: u8 = 0x80;
    pub const AA: u8 = 0x04;
    pub const TC: u8 = 0x02;
    pub const RD: u8 = 0x01;
    pub const RA: u8 = 0x80;
    pub const CD: u8 = 0x10;
    /// The DO bit in the high byte of the OPT record's flags.
    pub const DO: u8 = 0x80;
}

/// What a message travels over: the one UDP-or-TCP type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// The `proto` label CoreDNS's metrics and logs use.
    pub fn label(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// A message's 16-bit field at `pos`, if it is there.
pub fn read_u16(message: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_be_bytes([
        *message.get(pos)?,
        *message.get(pos + 1)?,
    ]))
}

/// A message's 32-bit field at `pos`, if it is there.
pub fn read_u32(message: &[u8], pos: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        message.get(pos..pos + 4)?.try_into().ok()?,
    ))
}
