//! A question `rewrite` changed: the rest of the block's pipeline answers the new question,
//! and the answer (written now, or when the upstream's comes) is turned back for the client.

use super::{Handled, Router, bare, owned_reply};
use crate::dns::{Flags, Rejected, Request, rcode};
use crate::metrics::dns::QueryReport;
use crate::plugins::rewrite::Rewritten;
use crate::plugins::{Pending, Work};

impl Router {
    /// `client`: the client's request and its name as routed.
    pub(super) fn rewritten<'s>(
        &self,
        block: usize,
        client: (&Request<'_>, &str),
        flags: Flags,
        resume: usize,
        work: &'s mut Work,
        report: &mut QueryReport,
    ) -> Handled<'s> {
        let (request, qname) = client;
        let Some(Rewritten { message, revert }) = work.rewritten.take() else {
            let rcode = u16::from(rcode::SERVFAIL);
            return bare(request, Flags { rcode, ..flags }, work);
        };
        let mut new_qname = String::new();
        let (inner, name) = match &message {
            None => (*request, qname),
            Some(bytes) => match Request::parse(bytes, request.transport, &mut new_qname) {
                Ok(inner) => (inner, new_qname.as_str()),
                // A type or class no stage serves (AXFR, class HS, …): the client's question
                // with that rcode.
                Err(Rejected::Reply { rcode, .. }) => {
                    return bare(request, Flags { rcode, ..flags }, work);
                }
                Err(Rejected::Drop) => return Handled::Drop,
            },
        };
        let inner = Request {
            max_udp: request.max_udp,
            peer: request.peer,
            ..inner
        };
        let flow = self.blocks[block]
            .pipeline
            .resume(resume, &inner, name, work, report);
        match self.outcome(block, &inner, flags, flow, work, report) {
            Handled::Reply(answer) => {
                let response = revert.response(answer);
                owned_reply(&response, work)
            }
            Handled::Pending(inner) => Handled::Pending(Box::new(Pending::Reverted {
                inner,
                revert: Box::new(revert),
            })),
            Handled::Drop => Handled::Drop,
            Handled::Panicked => Handled::Panicked,
            Handled::Transfer(messages) => {
                Handled::Transfer(messages.iter().map(|m| revert.response(m)).collect())
            }
        }
    }
}
