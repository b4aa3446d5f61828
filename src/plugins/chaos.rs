//! `chaos`: CH-class TXT answers about the server, as CoreDNS's `chaos`: `version.bind` and
//! `version.server` (the version), `authors.bind` (one TXT per author, shuffled),
//! `hostname.bind` and `id.server` (the host name). Other CH queries pass on (and end REFUSED:
//! no other stage answers class CH).

use super::{Flow, Work};
use crate::dns::{CLASS_CH, Request, rcode, rtype, writer::put_txt};
use crate::metrics::dns::{Plugin, QueryReport};

#[derive(Debug, Clone, PartialEq)]
pub struct Chaos {
    pub version: String,
    pub authors: Vec<String>,
    pub hostname: String,
}

impl Chaos {
    pub fn new(version: String, authors: Vec<String>) -> Chaos {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        Chaos {
            version,
            authors,
            hostname,
        }
    }

    pub fn handle(
        &self,
        request: &Request<'_>,
        qname: &str,
        work: &mut Work,
        report: &mut QueryReport,
    ) -> Flow {
        if request.qclass != CLASS_CH || request.qtype != rtype::TXT {
            return Flow::Next;
        }
        let out = &mut work.encoded;
        out.clear();
        let answers = match qname {
            "version.bind" | "version.server" => {
                put_txt(out, CLASS_CH, 0, &self.version);
                1
            }
            "hostname.bind" | "id.server" => {
                put_txt(out, CLASS_CH, 0, &self.hostname);
                1
            }
            "authors.bind" => {
                let mut order: Vec<&String> = self.authors.iter().collect();
                shuffle(&mut order);
                for author in &order {
                    put_txt(out, CLASS_CH, 0, author);
                }
                order.len()
            }
            _ => return Flow::Next,
        };
        report.plugin = Plugin::Chaos;
        Flow::Encoded {
            rcode: u16::from(rcode::NOERROR),
            answers,
        }
    }
}

fn shuffle<T>(items: &mut [T]) {
    use rand::RngExt;
    let mut rng = rand::rng();
    for i in (1..items.len()).rev() {
        items.swap(i, rng.random_range(0..=i));
    }
}
