//! `log`: a line per query whose response is of the configured classes, written after the
//! response is sent (`server::account`), so it records the final rcode, size and duration.
//! The stage only marks the query with the classes to log.

use super::Flow;
use crate::config::LogClasses;
use crate::dns::rcode;
use crate::metrics::dns::QueryReport;

pub fn handle(classes: LogClasses, report: &mut QueryReport) -> Flow {
    report.log = classes;
    Flow::Next
}

/// Is a response of `classes`? CoreDNS's classes: success (NOERROR with answers), denial
/// (NXDOMAIN, or NOERROR without answers: NODATA), error (every other rcode).
pub fn wanted(classes: LogClasses, rcode: u16, answers: u16) -> bool {
    match u8::try_from(rcode) {
        Ok(rcode::NOERROR) if answers > 0 => classes.success,
        Ok(rcode::NOERROR | rcode::NXDOMAIN) => classes.denial,
        _ => classes.error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_fall_in_coredns_classes() {
        let errors = LogClasses {
            error: true,
            ..LogClasses::default()
        };
        assert!(wanted(errors, 2, 0) && wanted(errors, 5, 0) && wanted(errors, 16, 0));
        assert!(!wanted(errors, 0, 1) && !wanted(errors, 3, 0) && !wanted(errors, 0, 0));
        let denial = LogClasses {
            denial: true,
            ..LogClasses::default()
        };
        assert!(wanted(denial, 3, 0) && wanted(denial, 0, 0) && !wanted(denial, 0, 2));
        assert!(wanted(LogClasses::ALL, 0, 2));
    }
}
