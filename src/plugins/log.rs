//! `log`: a line per query, written after the response is sent (`server::account`), so it
//! records the final rcode, size and duration. The stage only marks the query.

use super::Flow;
use crate::metrics::dns::QueryReport;

pub fn handle(report: &mut QueryReport) -> Flow {
    report.log = true;
    Flow::Next
}
