//! `transfer`: AXFR of the cluster zone over TCP to the clients listed, as CoreDNS 1.11's
//! transfer plugin serves the kubernetes plugin's zone. IXFR is answered as AXFR, or with the
//! SOA alone when the client's serial is current.
//!
//! Not a transfer question: the next stage decides. Over UDP, or from a client not listed:
//! REFUSED. A name under none of the `zones`: the next stage (no later stage serves
//! transfers, so REFUSED). The records are [`crate::zone::transfer`]'s, written into as many
//! messages as they need ([`Flow::Transfer`]), which the TCP server sends in order.

use std::net::IpAddr;
use std::sync::Arc;

use super::Flow;
use crate::config::is_reverse_zone;
use crate::config::transfer::{TransferConfig, TransferPeer};
use crate::dns::header::Flags;
use crate::dns::writer::{MessageWriter, Sections};
use crate::dns::{HEADER_LEN, Request, TCP_MAX_MESSAGE, Transport, name, rcode, rtype};
use crate::zone::lookup::{best_zone, in_zone, label_count};
use crate::zone::{ClusterZone, Rr, transfer as records};

/// Records per message at most, as CoreDNS 1.11.1 batches them (fewer when 64 KiB is reached).
pub const RECORDS_PER_MESSAGE: usize = 500;

/// RFC 1996's NOTAUTH: a name that is not the apex of a zone transferred here.
const NOTAUTH: u16 = 9;

#[derive(Debug, Clone)]
pub struct Transfer {
    pub config: Arc<TransferConfig>,
    pub zone: ClusterZone,
}

/// Is this a zone transfer question?
pub fn is_transfer(qtype: u16) -> bool {
    matches!(qtype, rtype::AXFR | rtype::IXFR)
}

impl Transfer {
    pub fn handle(&self, request: &Request<'_>, qname: &str, writer: &mut MessageWriter) -> Flow {
        if !is_transfer(request.qtype) {
            return Flow::Next;
        }
        if request.transport != Transport::Tcp {
            return Flow::Rcode(u16::from(rcode::REFUSED));
        }
        if !self.config.zones.iter().any(|z| in_zone(qname, z)) {
            return Flow::Next;
        }
        if !self.allowed(request.peer.ip()) {
            return Flow::Rcode(u16::from(rcode::REFUSED));
        }
        let client_serial = match request.qtype {
            rtype::IXFR => match ixfr_serial(request.bytes) {
                Some(serial) => Some(serial),
                // IXFR carries the client's SOA in the authority section (RFC 1995 §3).
                None => return Flow::Rcode(u16::from(rcode::SERVFAIL)),
            },
            _ => None,
        };
        let Some(matched) = best_zone(&self.zone.config.zones, qname) else {
            return Flow::Next;
        };
        // CoreDNS transfers any name under its zones as if it were a zone of its own (owners
        // like `x.ns.svc.svc.cluster.local`, reverse zones full of forward names): here only
        // a forward zone's apex is a zone to transfer.
        if matched != qname || is_reverse_zone(matched) {
            return Flow::Rcode(NOTAUTH);
        }
        let soa = records::soa(&self.zone);
        let zone_labels = label_count(matched);
        if client_serial.is_some_and(|s| !older(s, soa.serial)) {
            let flags = Flags::reply_to(&request.header, 0);
            let only_soa = [records::soa_record(soa)];
            let message = write(writer, flags, request, &only_soa, zone_labels);
            return Flow::Transfer(vec![message.to_vec()]);
        }
        let all = records::zone_records(&self.zone, matched);
        Flow::Transfer(messages(writer, request, &all, zone_labels))
    }

    fn allowed(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.config.to.iter().any(|peer| match peer {
            TransferPeer::Any => true,
            TransferPeer::Ip(allowed) => *allowed == ip,
        })
    }
}

/// Is the client's serial older than ours (RFC 1982 arithmetic)? An equal or newer one gets
/// the SOA alone (RFC 1995 §4).
fn older(client: u32, ours: u32) -> bool {
    client != ours && (ours.wrapping_sub(client) as i32) > 0
}

/// `records` in messages of at most [`RECORDS_PER_MESSAGE`] records and 64 KiB each.
fn messages(
    writer: &mut MessageWriter,
    request: &Request<'_>,
    records: &[Rr],
    zone_labels: usize,
) -> Vec<Vec<u8>> {
    let flags = Flags {
        authoritative: true,
        ..Flags::reply_to(&request.header, 0)
    };
    let mut out = Vec::new();
    let mut rest = records;
    while !rest.is_empty() {
        let mut chunk = &rest[..rest.len().min(RECORDS_PER_MESSAGE)];
        let mut kept = answer_count(write(writer, flags, request, chunk, zone_labels));
        if kept < chunk.len() {
            // Over 64 KiB: the records that fit, written again without the TC bit.
            chunk = &chunk[..kept];
            kept = answer_count(write(writer, flags, request, chunk, zone_labels));
        }
        if kept == 0 {
            break; // one record larger than a message: cannot be, names are short
        }
        out.push(writer.buf.clone());
        rest = &rest[kept..];
    }
    out
}

fn write<'w>(
    writer: &'w mut MessageWriter,
    flags: Flags,
    request: &Request<'_>,
    answers: &[Rr],
    zone_labels: usize,
) -> &'w [u8] {
    let sections = Sections {
        answers,
        soa: None,
        zone_labels,
        additionals: &[],
    };
    let question = Some(request.question);
    writer.write(flags, question, &sections, request.edns, TCP_MAX_MESSAGE)
}

fn answer_count(message: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([message[6], message[7]]))
}

/// The serial of the SOA an IXFR question carries as its only authority record.
fn ixfr_serial(message: &[u8]) -> Option<u32> {
    let count = |i: usize| u16::from_be_bytes([message[i], message[i + 1]]);
    if count(8) != 1 {
        return None;
    }
    let mut pos = HEADER_LEN;
    for _ in 0..count(4) {
        pos = name::skip(message, pos)? + 4;
    }
    for _ in 0..count(6) {
        pos = skip_record(message, pos)?;
    }
    let name_end = name::skip(message, pos)?;
    let rr_type = u16::from_be_bytes([*message.get(name_end)?, *message.get(name_end + 1)?]);
    if rr_type != rtype::SOA {
        return None;
    }
    let rdata = name_end + 10;
    let serial_at = name::skip(message, name::skip(message, rdata)?)?;
    let serial = message.get(serial_at..serial_at + 4)?;
    Some(u32::from_be_bytes(serial.try_into().ok()?))
}

fn skip_record(message: &[u8], pos: usize) -> Option<usize> {
    let name_end = name::skip(message, pos)?;
    let len = message.get(name_end + 8..name_end + 10)?;
    Some(name_end + 10 + usize::from(u16::from_be_bytes([len[0], len[1]])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_compare_in_rfc_1982_arithmetic() {
        assert!(older(5, 6));
        assert!(!older(6, 6));
        assert!(!older(7, 6));
        assert!(older(u32::MAX, 3), "wrapped: 3 is newer than 2^32-1");
        assert!(!older(3, u32::MAX));
    }

    #[test]
    fn the_ixfr_serial_is_read_from_the_authority_soa() {
        let mut m = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0];
        m.extend_from_slice(b"\x07cluster\x05local\x00\x00\xfb\x00\x01");
        // Owner: a pointer to the question name; SOA IN, TTL 0, rdata: two root names + 5 u32.
        m.extend_from_slice(&[0xc0, 12, 0, 6, 0, 1, 0, 0, 0, 0, 0, 22, 0, 0]);
        m.extend_from_slice(&[0, 0, 0, 42]);
        m.extend_from_slice(&[0; 16]);
        assert_eq!(ixfr_serial(&m), Some(42));
        m[9] = 0;
        assert_eq!(ixfr_serial(&m), None, "no authority record");
    }
}
