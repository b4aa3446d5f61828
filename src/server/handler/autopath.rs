//! The autopath walk (see [`crate::plugins::autopath`]): the stages after `autopath` answer
//! each name of the search path in turn, here while their answers are at hand, then in a task
//! once one must wait for an upstream.

use super::{Asked, Handled, Router, owned_reply};
use crate::dns::{Client, Flags, Request};
use crate::metrics::dns::QueryReport;
use crate::plugins::autopath::{self, Walk};
use crate::plugins::{Pending, Work};

impl Router {
    pub(super) fn autopath<'s>(
        &self,
        block: usize,
        request: &Request<'_>,
        flags: Flags,
        walk: Walk,
        work: &'s mut Work,
        report: &mut QueryReport,
    ) -> Handled<'s> {
        let client = request.client();
        let mut first: Option<Vec<u8>> = None;
        for (i, name) in walk.names.iter().enumerate() {
            // The question itself is asked as the client wrote it; a name too long to ask is
            // skipped.
            let message = match i {
                0 => None,
                _ => match crate::dns::query::with_name(request, name) {
                    Some(m) => Some(m),
                    None => continue,
                },
            };
            let bytes = message.as_deref().unwrap_or(request.bytes);
            match self.ask(block, walk.resume, request, bytes, flags, work, report) {
                Asked::Now(answer) if autopath::goes_on(&answer) => {
                    first.get_or_insert(answer);
                }
                Asked::Now(answer) => {
                    return owned_reply(&autopath::cnamer(&answer, &client), work);
                }
                Asked::Later(pending) => {
                    let rest = Rest {
                        router: self.clone(),
                        block,
                        walk: Walk {
                            resume: walk.resume,
                            names: walk.names[i + 1..].to_vec(),
                        },
                        request: request.bytes.to_vec(),
                        peer: request.peer,
                        flags,
                        client,
                        first,
                    };
                    return Handled::Pending(Box::new(Pending::Task(Box::pin(
                        rest.finish(pending),
                    ))));
                }
                Asked::Nothing => return Handled::Drop,
            }
        }
        match first {
            Some(answer) => owned_reply(&answer, work),
            None => Handled::Drop,
        }
    }

    /// The answer of the stages from `resume` on to `bytes` (a query like the client's).
    #[allow(clippy::too_many_arguments)]
    fn ask(
        &self,
        block: usize,
        resume: usize,
        client: &Request<'_>,
        bytes: &[u8],
        flags: Flags,
        work: &mut Work,
        report: &mut QueryReport,
    ) -> Asked {
        let mut qname = String::new();
        let Ok(parsed) = Request::parse(bytes, client.transport, &mut qname) else {
            return Asked::Nothing;
        };
        let request = Request {
            max_udp: client.max_udp,
            peer: client.peer,
            ..parsed
        };
        let flow = self.blocks[block]
            .pipeline
            .resume(resume, &request, &qname, work, report);
        self.respond(&request, flags, flow, work, report).into()
    }
}

/// The rest of a walk that waits for an upstream.
struct Rest {
    router: Router,
    block: usize,
    walk: Walk,
    /// The client's query and address.
    request: Vec<u8>,
    peer: std::net::SocketAddr,
    flags: Flags,
    client: Client,
    /// The answer to the question itself, once known.
    first: Option<Vec<u8>>,
}

impl Rest {
    async fn finish(mut self, mut pending: Box<Pending>) -> Vec<u8> {
        let mut names = std::mem::take(&mut self.walk.names).into_iter();
        let mut work = Work::default();
        loop {
            let answer = Box::pin(pending.resolve()).await;
            if !autopath::goes_on(&answer) {
                return autopath::cnamer(&answer, &self.client);
            }
            self.first.get_or_insert(answer);
            pending = loop {
                let Some(name) = names.next() else {
                    return self.first.take().unwrap_or_default();
                };
                match self.ask(&name, &mut work) {
                    Asked::Now(answer) if autopath::goes_on(&answer) => {}
                    Asked::Now(answer) => return autopath::cnamer(&answer, &self.client),
                    Asked::Later(next) => break next,
                    Asked::Nothing => return self.first.take().unwrap_or_default(),
                }
            };
        }
    }

    fn ask(&self, name: &str, work: &mut Work) -> Asked {
        let mut qname = String::new();
        let Ok(mut client) = Request::parse(&self.request, self.client.transport, &mut qname)
        else {
            return Asked::Nothing;
        };
        client.peer = self.peer;
        client.max_udp = self.router.blocks[self.block].max_udp_size;
        let Some(bytes) = crate::dns::query::with_name(&client, name) else {
            // Too long to ask: as if it did not exist.
            return Asked::Now(self.client.error_reply(crate::dns::rcode::NXDOMAIN));
        };
        let mut report = QueryReport::default();
        let (block, resume) = (self.block, self.walk.resume);
        self.router.ask(
            block,
            resume,
            &client,
            &bytes,
            self.flags,
            work,
            &mut report,
        )
    }
}
