//! The `dns64` translation (see [`crate::plugins::dns64`]): the stages after `dns64` answer
//! the AAAA question; when that answer is to be translated, the A question goes through the
//! whole server again (as CoreDNS's `upstream` sends it), here while answers are at hand, in a
//! task once one must wait for an upstream.

use std::net::SocketAddr;

use super::{Asked, Handled, Router, Scratch, owned_reply};
use crate::dns::{Client, Flags, HEADER_LEN, Request, Transport, rtype};
use crate::metrics::dns::QueryReport;
use crate::plugins::dns64::{Dns64, Translate, synthesize};
use crate::plugins::{Flow, Pending, Work};

impl Router {
    /// `client`: the client's request and its name as routed.
    pub(super) fn dns64<'s>(
        &self,
        block: usize,
        client: (&Request<'_>, &str),
        flags: Flags,
        translate: Translate,
        work: &'s mut Work,
        report: &mut QueryReport,
    ) -> Handled<'s> {
        let (request, qname) = client;
        let pipeline = &self.blocks[block].pipeline;
        let flow = pipeline.resume(translate.resume, request, qname, work, report);
        let aaaa = match flow {
            Flow::Rewritten { resume } => {
                self.rewritten(block, client, flags, resume, work, report)
            }
            flow => self.outcome(block, request, flags, flow, work, report),
        };
        let lookup = Lookup {
            router: self.clone(),
            dns64: translate.dns64,
            query: a_query(request),
            transport: request.transport,
            peer: request.peer,
            client: request.client(),
            recursion_available: flags.recursion_available,
        };
        let answer = match aaaa {
            Handled::Reply(answer) => answer.to_vec(),
            Handled::Pending(pending) => {
                return Handled::Pending(Box::new(Pending::Task(Box::pin(lookup.after(pending)))));
            }
            // Rebuilt, not passed on: `work` is written again below.
            Handled::Drop => return Handled::Drop,
            Handled::Panicked => return Handled::Panicked,
            // Never for an AAAA question.
            Handled::Transfer(messages) => return Handled::Transfer(messages),
        };
        if !lookup.dns64.wants_a(&answer) {
            return owned_reply(&answer, work);
        }
        match lookup.ask_a() {
            Asked::Now(a) => owned_reply(&lookup.answer(answer, Some(a)), work),
            Asked::Later(pending) => {
                Handled::Pending(Box::new(Pending::Task(Box::pin(async move {
                    let a = Box::pin(pending.resolve()).await;
                    lookup.answer(answer, Some(a))
                }))))
            }
            Asked::Nothing => owned_reply(&answer, work),
        }
    }
}

/// The client's query asking A instead of AAAA (its ID, flags, OPT and all), the name in
/// lower case as CoreDNS asks it. Length octets (< 64) are no ASCII letters.
fn a_query(request: &Request<'_>) -> Vec<u8> {
    let mut query = request.bytes.to_vec();
    let at = HEADER_LEN + request.question.len() - 4;
    query[HEADER_LEN..at].make_ascii_lowercase();
    query[at..at + 2].copy_from_slice(&rtype::A.to_be_bytes());
    query
}

/// What the A lookup and the synthesis need, owned for a task.
struct Lookup {
    router: Router,
    dns64: Dns64,
    /// The A query.
    query: Vec<u8>,
    transport: Transport,
    peer: SocketAddr,
    client: Client,
    recursion_available: bool,
}

impl Lookup {
    /// The whole server's answer to the A query (routing, every stage).
    fn ask_a(&self) -> Asked {
        let mut scratch = Scratch::default();
        let mut report = QueryReport::default();
        let handled = (self.router).handle(
            &self.query,
            self.transport,
            self.peer,
            &mut scratch,
            &mut report,
        );
        handled.into()
    }

    /// The synthesized answer, or the AAAA answer where there is none.
    fn answer(&self, aaaa: Vec<u8>, a: Option<Vec<u8>>) -> Vec<u8> {
        let synthesized = a.and_then(|a| {
            synthesize(
                &self.dns64,
                &self.client,
                &aaaa,
                &a,
                self.recursion_available,
            )
        });
        synthesized.unwrap_or(aaaa)
    }

    /// The AAAA answer came from an upstream: translate it once it is here.
    async fn after(self, pending: Box<Pending>) -> Vec<u8> {
        let aaaa = Box::pin(pending.resolve()).await;
        if !self.dns64.wants_a(&aaaa) {
            return aaaa;
        }
        let a = match self.ask_a() {
            Asked::Now(a) => Some(a),
            Asked::Later(pending) => Some(Box::pin(pending.resolve()).await),
            Asked::Nothing => None,
        };
        self.answer(aaaa, a)
    }
}
