//! Rule tables, learnt from CoreDNS 1.11's `name_test.go`, `reverter_test.go` and
//! `ttl_test.go`: what a question becomes, and what the client sees of an answer.

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::{A, CNAME, MX, NS, NULL, PTR, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::*;
use crate::dns::Transport;

/// Rules from TOML lines, one rule per string (`key = value` lines).
fn rules(tables: &[&str]) -> Vec<RewriteRule> {
    tables
        .iter()
        .map(|t| {
            let table: toml::Table = toml::from_str(t).unwrap();
            crate::config::rewrite::rule_from_table(&table).unwrap()
        })
        .collect()
}

fn lower(name: &str) -> String {
    let mut out = String::new();
    let labels: Vec<&[u8]> = name
        .split('.')
        .filter(|l| !l.is_empty())
        .map(str::as_bytes)
        .collect();
    name::presentation(labels.into_iter(), true, &mut out);
    out
}

/// The name the rules make of `question` (type A), or `None` when none applies.
fn renamed(tables: &[&str], question: &str) -> Option<String> {
    match apply(&rules(tables), &lower(question), 1, 1) {
        Outcome::Applied(a) => Some(a.name.unwrap_or_else(|| lower(question))),
        Outcome::Untouched => None,
        Outcome::Invalid => Some("INVALID".into()),
    }
}

#[test]
fn names_are_rewritten_as_coredns_rewrites_them() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        // name_test.go TestRewriteNamePrefixSuffix: prefixes and suffixes are made absolute.
        (
            "match = 'prefix'\nfrom = 'foo'\nto = 'bar'",
            "foo.example.com",
            Some("bar.example.com."),
        ),
        (
            "match = 'prefix'\nfrom = 'foo.'\nto = 'bar.'",
            "foo.example.com",
            Some("bar.example.com."),
        ),
        (
            "match = 'suffix'\nfrom = 'com'\nto = 'org'",
            "foo.example.com",
            Some("foo.example.org."),
        ),
        (
            "match = 'suffix'\nfrom = '.com'\nto = '.org'",
            "foo.example.com",
            Some("foo.example.org."),
        ),
        (
            "match = 'suffix'\nfrom = '.ingress.coredns.rocks'\nto = 'nginx.coredns.rocks'",
            "coredns.ingress.coredns.rocks",
            Some("corednsnginx.coredns.rocks."),
        ),
        // TestRewriteNameNoRewrite.
        (
            "match = 'prefix'\nfrom = 'foo'\nto = 'bar'",
            "coredns.foo",
            None,
        ),
        (
            "match = 'suffix'\nfrom = 'com'\nto = 'org'",
            "com.coredns",
            None,
        ),
        (
            "match = 'substring'\nfrom = 'service'\nto = 'svc'",
            "com.coredns",
            None,
        ),
        // `prefix foo` is `foo.`: a label, not a string prefix.
        (
            "match = 'prefix'\nfrom = 'foo'\nto = 'bar'",
            "foobar.example.com",
            None,
        ),
        (
            "match = 'substring'\nfrom = 'service.us-west-1.example.org'\nto = 'service.us-west-1.consul'",
            "ftp.service.us-west-1.example.org",
            Some("ftp.service.us-west-1.consul."),
        ),
        // Exact, case-insensitively; the default match.
        (
            "from = 'coredns.rocks'\nto = 'Service.Consul'",
            "CoreDNS.Rocks",
            Some("service.consul."),
        ),
        (
            "from = 'coredns.org'\nto = 'service.consul'",
            "coredns.rocks",
            None,
        ),
        // Regex: the template is the whole new name; the name has its final dot.
        (
            "match = 'regex'\nfrom = '(.*)-(us-west-1)\\.example\\.org'\nto = '{1}.service.{2}.consul'",
            "ftp-us-west-1.example.org",
            Some("ftp.service.us-west-1.consul."),
        ),
        (
            "match = 'regex'\nfrom = '^(.*)\\.example\\.org$'\nto = '{1}.x'",
            "a.example.org",
            None,
        ),
        (
            "match = 'regex'\nfrom = '.*\\.nodes\\.vcluster\\.com'\nto = 'kubernetes.default.svc.cluster.local'",
            "node-1.nodes.vcluster.com",
            Some("kubernetes.default.svc.cluster.local."),
        ),
        // An unmatched group fills in nothing; `{0}` is the whole match.
        (
            "match = 'regex'\nfrom = '(a)|(b)'\nto = 'x{1}y{2}z'",
            "b.test",
            Some("xybz."),
        ),
        // `{0}` counts as a reference (CoreDNS): two groups for `{0}{1}`.
        (
            "match = 'regex'\nfrom = '(?:a|b)\\.(t)(e)'\nto = '{0}{1}'",
            "b.test",
            Some("b.tet."),
        ),
        // Gardener's search-path rewrite.
        (
            "match = 'regex'\nfrom = '(^(?:[^\\.]+\\.)+)svc\\.cluster\\.local\\.svc\\.cluster\\.local'\nto = '{1}svc.cluster.local'",
            "api.default.svc.cluster.local.svc.cluster.local",
            Some("api.default.svc.cluster.local."),
        ),
        // No domain name after the rewrite: SERVFAIL (TestRewriteIllegalName).
        (
            "from = 'example.org'\nto = 'example..org'",
            "example.org",
            Some("INVALID"),
        ),
        (
            "match = 'regex'\nfrom = '(.*)'\nto = '{1}.more'",
            "a.b",
            Some("INVALID"),
        ),
    ];
    for (rule, question, want) in cases {
        let rule = format!("field = 'name'\n{rule}\n");
        assert_eq!(
            renamed(&[&rule], question).as_deref(),
            *want,
            "{rule} on {question}"
        );
    }
}

#[test]
fn stop_ends_the_rules_and_continue_chains_them() {
    let chain = [
        "field = 'name'\nmatch = 'suffix'\nfrom = '.c1.test'\nto = '.c2.test'\nmode = 'continue'",
        "field = 'name'\nmatch = 'suffix'\nfrom = '.c2.test'\nto = '.c3.test'",
        "field = 'name'\nmatch = 'suffix'\nfrom = '.c3.test'\nto = '.c4.test'",
    ];
    assert_eq!(
        renamed(&chain, "a.c1.test").as_deref(),
        Some("a.c3.test."),
        "continue, then stop"
    );
    assert_eq!(renamed(&chain, "a.c2.test").as_deref(), Some("a.c3.test."));
    assert_eq!(renamed(&chain, "a.c3.test").as_deref(), Some("a.c4.test."));
    // Each rule applies once, in order: a loop of rules ends.
    let looping = [
        "field = 'name'\nfrom = 'one.test'\nto = 'two.test'\nmode = 'continue'",
        "field = 'name'\nfrom = 'two.test'\nto = 'one.test'\nmode = 'continue'",
    ];
    assert_eq!(renamed(&looping, "one.test").as_deref(), Some("one.test."));
    // A stop rule that does not apply does not stop the others.
    let skip = [
        "field = 'name'\nfrom = 'nope.test'\nto = 'x.test'",
        "field = 'name'\nfrom = 'a.test'\nto = 'b.test'",
    ];
    assert_eq!(renamed(&skip, "a.test").as_deref(), Some("b.test."));
}

#[test]
fn type_class_and_ttl_rules() {
    let r = rules(&[
        "field = 'type'\nfrom = 'ANY'\nto = 'HINFO'\nmode = 'continue'",
        "field = 'class'\nfrom = 'CH'\nto = 'IN'\nmode = 'continue'",
        "field = 'ttl'\nmatch = 'suffix'\nfrom = 'example.com'\nttl = '30-300'",
        "field = 'type'\nfrom = 'TXT'\nto = 'A'",
    ]);
    let Outcome::Applied(a) = apply(&r, "x.example.com.", 255, 3) else {
        panic!()
    };
    assert_eq!((a.name, a.qtype, a.qclass), (None, 13, 1));
    assert_eq!(a.steps, [Step::Rule(2)], "the ttl rule stopped the rest");
    let Outcome::Applied(a) = apply(&r, "x.example.org.", 16, 1) else {
        panic!()
    };
    assert_eq!((a.qtype, a.steps.len()), (1, 0));
    assert_eq!(apply(&r, "x.example.org.", 1, 1), Outcome::Untouched);
}

// === the answer, turned back ===

/// A name as spelled (`from_str` would lower-case it).
fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn record(owner: &str, ttl: u32, data: RData) -> Record {
    Record::from_rdata(name(owner), ttl, data)
}

fn a(owner: &str) -> Record {
    record(owner, 5, RData::A(A::new(10, 0, 0, 1)))
}

/// What the client gets: `question` asked (type `qtype`), the rules applied, and a later stage
/// answering the new question with `answers` and `additionals` (owners and data written for it).
fn client_sees(
    tables: &[&str],
    question: &str,
    qtype: RecordType,
    answers: Vec<Record>,
    additionals: Vec<Record>,
) -> Message {
    let rules: Arc<[RewriteRule]> = rules(tables).into();
    let bytes = query(question, u16::from(qtype));
    let mut qname = String::new();
    let request = Request::parse(&bytes, Transport::Udp, &mut qname).unwrap();
    let Outcome::Applied(applied) = apply(&rules, &lower(question), u16::from(qtype), 1) else {
        panic!("no rule applied to {question}")
    };
    let mut answer = Message::new(1, MessageType::Response, OpCode::Query);
    let asked = applied.name.clone().unwrap_or_else(|| lower(question));
    answer.add_query(Query::query(name(&asked), RecordType::from(applied.qtype)));
    answer.answers = answers;
    answer.additionals = additionals;
    let revert = Revert::new(rules, applied.steps, request.client());
    Message::from_vec(&revert.response(&answer.to_vec().unwrap())).unwrap()
}

/// A query for `name` spelled as given.
fn query(name: &str, qtype: u16) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    q
}

fn owners(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| r.name.to_string()).collect()
}

#[test]
fn the_client_always_gets_its_question_back() {
    let m = client_sees(
        &["field = 'type'\nfrom = 'TXT'\nto = 'A'\nmode = 'continue'"],
        "Mixed.Example.com",
        RecordType::TXT,
        vec![a("Mixed.Example.com.")],
        vec![],
    );
    assert_eq!(m.queries[0].name.to_string(), "Mixed.Example.com.");
    assert_eq!(m.queries[0].query_type, RecordType::TXT);
    assert_eq!(owners(&m.answers), ["Mixed.Example.com."]);
}

#[test]
fn exact_and_auto_map_the_new_name_and_its_subdomains_back() {
    // Exact: always (TestRewriteNameExactAnswer); the old name lower-cased.
    let m = client_sees(
        &["field = 'name'\nfrom = 'coredns.rocks'\nto = 'service.consul'"],
        "CoreDNS.rocks",
        RecordType::A,
        vec![
            record(
                "service.consul.",
                5,
                RData::CNAME(CNAME(name("web.service.consul."))),
            ),
            a("web.service.consul."),
            a("other.consul."),
        ],
        vec![],
    );
    assert_eq!(m.queries[0].name.to_string(), "CoreDNS.rocks.");
    assert_eq!(
        owners(&m.answers),
        ["coredns.rocks.", "web.coredns.rocks.", "other.consul."]
    );
    assert_eq!(
        m.answers[0].data,
        RData::CNAME(CNAME(name("web.coredns.rocks.")))
    );
    // Regex with answer auto; without, owners keep the new name (TestRewriteNameRegexAnswer).
    let regex =
        "field = 'name'\nmatch = 'regex'\nfrom = '(.*).coredns.rocks'\nto = '{1}.coredns.maps'";
    let m = client_sees(
        &[&format!("{regex}\nanswer_auto = true")],
        "foo.coredns.rocks",
        RecordType::A,
        vec![a("foo.coredns.maps.")],
        vec![],
    );
    assert_eq!(owners(&m.answers), ["foo.coredns.rocks."]);
    let m = client_sees(
        &[regex],
        "foo.coredns.rocks",
        RecordType::A,
        vec![a("foo.coredns.maps.")],
        vec![],
    );
    assert_eq!(owners(&m.answers), ["foo.coredns.maps."]);
    let named = format!(
        "{regex}\nanswer_name = [{{ from = '(.*).coredns.maps', to = '{{1}}.coredns.works' }}]"
    );
    let m = client_sees(
        &[&named],
        "foo.coredns.rocks",
        RecordType::A,
        vec![a("foo.coredns.maps.")],
        vec![],
    );
    assert_eq!(owners(&m.answers), ["foo.coredns.works."]);
}

#[test]
fn suffix_auto_swaps_the_suffixes_back_everywhere() {
    let m = client_sees(
        &[
            "field = 'name'\nmatch = 'suffix'\nfrom = '.sufa.test'\nto = '.example.net'\nanswer_auto = true",
        ],
        "alias.sufa.test",
        RecordType::A,
        vec![
            record(
                "alias.example.net.",
                300,
                RData::CNAME(CNAME(name("web.example.net."))),
            ),
            a("web.example.net."),
        ],
        vec![record(
            "example.net.",
            300,
            RData::NS(NS(name("ns.example.net."))),
        )],
    );
    assert_eq!(owners(&m.answers), ["alias.sufa.test.", "web.sufa.test."]);
    assert_eq!(
        m.answers[0].data,
        RData::CNAME(CNAME(name("web.sufa.test.")))
    );
    // The owner `example.net.` lacks the dotted suffix; its NS target has it.
    assert_eq!(owners(&m.additionals), ["example.net."]);
    assert_eq!(m.additionals[0].data, RData::NS(NS(name("ns.sufa.test."))));
}

/// reverter_test.go's value table: `answer name` and `answer value` on every record type
/// CoreDNS rewrites, answer and additional sections.
#[test]
fn answer_value_rewrites_the_names_records_point_at() {
    let rule = "field = 'name'\nmatch = 'regex'\nfrom = '(.*)\\.domain\\.uk'\nto = '{1}.cluster.local'\n\
        answer_name = [{ from = '(.*)\\.cluster\\.local', to = '{1}.domain.uk' }]\n\
        answer_value = [{ from = '(.*)\\.cluster\\.local', to = '{1}.domain.uk' }]";
    let soa = SOA::new(
        name("ns1.cluster.local."),
        name("admin.cluster.local."),
        1,
        2,
        3,
        4,
        5,
    );
    let dname = {
        let mut wire = Vec::new();
        name::put_wire(
            &[b"dname".to_vec(), b"cluster".to_vec(), b"local".to_vec()],
            &mut wire,
        );
        RData::Unknown {
            code: RecordType::DNAME,
            rdata: NULL::with(wire),
        }
    };
    let cases = [
        (
            RecordType::SRV,
            RData::SRV(SRV::new(0, 100, 100, name("srv1.my.cluster.local."))),
            "srv1.my.domain.uk.",
        ),
        (
            RecordType::CNAME,
            RData::CNAME(CNAME(name("cname.cluster.local."))),
            "cname.domain.uk.",
        ),
        (
            RecordType::MX,
            RData::MX(MX::new(1, name("mx1.cluster.local."))),
            "mx1.domain.uk.",
        ),
        (
            RecordType::NS,
            RData::NS(NS(name("ns1.cluster.local."))),
            "ns1.domain.uk.",
        ),
        (
            RecordType::PTR,
            RData::PTR(PTR(name("p.cluster.local."))),
            "p.domain.uk.",
        ),
        (RecordType::SOA, RData::SOA(soa), "ns1.domain.uk."),
        (RecordType::DNAME, dname, "dname.domain.uk."),
    ];
    for (qtype, data, target) in cases {
        let m = client_sees(
            &[rule],
            "my.domain.uk",
            qtype,
            vec![record("my.cluster.local.", 3600, data)],
            vec![a("srv1.my.cluster.local.")],
        );
        assert_eq!(owners(&m.answers), ["my.domain.uk."], "{qtype}");
        assert_eq!(owners(&m.additionals), ["srv1.my.domain.uk."], "{qtype}");
        let got = match &m.answers[0].data {
            RData::SRV(s) => s.target.to_string(),
            RData::CNAME(c) => c.0.to_string(),
            RData::MX(mx) => mx.exchange.to_string(),
            RData::NS(ns) => ns.0.to_string(),
            RData::PTR(p) => p.0.to_string(),
            RData::SOA(s) => s.mname.to_string(),
            RData::Unknown { rdata, .. } => {
                let mut shown = String::new();
                name::presentation(
                    crate::dns::name::plain_labels(&rdata.anything, 0),
                    false,
                    &mut shown,
                );
                shown
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(got, target, "{qtype}");
    }
}

#[test]
fn ttl_rules_clamp_every_section() {
    let clamp = |ttl: &str, have: u32| {
        let m = client_sees(
            &[&format!(
                "field = 'ttl'\nmatch = 'regex'\nfrom = '(.*)\\.coredns\\.rocks'\nttl = {ttl}"
            )],
            "a.coredns.rocks",
            RecordType::A,
            vec![record(
                "a.coredns.rocks.",
                have,
                RData::A(A::new(1, 2, 3, 4)),
            )],
            vec![record(
                "b.coredns.rocks.",
                have,
                RData::A(A::new(1, 2, 3, 5)),
            )],
        );
        (m.answers[0].ttl, m.additionals[0].ttl)
    };
    assert_eq!(clamp("15", 300), (15, 15));
    assert_eq!(clamp("15", 1), (15, 15));
    assert_eq!(clamp("'30-300'", 10), (30, 30));
    assert_eq!(clamp("'30-300'", 100), (100, 100));
    assert_eq!(clamp("'30-300'", 1000), (300, 300));
    assert_eq!(clamp("'-30'", 1000), (30, 30));
    assert_eq!(clamp("'30-'", 1_000_000), (1_000_000, 1_000_000));
}

#[test]
fn a_name_rewritten_into_no_name_is_servfail() {
    let m = client_sees(
        &[
            "field = 'name'\nmatch = 'regex'\nfrom = 'a\\.test'\nto = 'b.test'\nanswer_name = [{ from = '(.*)', to = '{1}.' }]",
        ],
        "a.test",
        RecordType::A,
        vec![a("b.test.")],
        vec![],
    );
    assert_eq!(u16::from(m.metadata.response_code), 2);
    assert!(m.answers.is_empty());
    assert_eq!(m.queries[0].name.to_string(), "a.test.");
}

#[test]
fn an_answer_that_grows_past_the_client_size_is_cut_with_tc() {
    // 30 owners of ~60 octets, uncompressible after the rewrite back: over 512.
    let long = "x".repeat(50);
    let answers = (0..30).map(|i| a(&format!("{long}{i}.b.test."))).collect();
    let m = client_sees(
        &["field = 'name'\nmatch = 'suffix'\nfrom = '.a.test'\nto = '.b.test'\nanswer_auto = true"],
        "q.a.test",
        RecordType::A,
        answers,
        vec![],
    );
    assert!(m.metadata.truncation);
    assert!(!m.answers.is_empty() && m.answers.len() < 30);
    assert!(m.to_vec().unwrap().len() <= 512);
}

#[test]
fn the_request_carries_the_new_question_and_the_clients_opt() {
    let edns = crate::dns::Edns {
        payload: 4096,
        version: 0,
        dnssec_ok: true,
    };
    let bytes = crate::dns::query::build("db.example.com", 1, Some(edns)).unwrap();
    let mut qname = String::new();
    let request = Request::parse(&bytes, Transport::Udp, &mut qname).unwrap();
    let applied = Applied {
        name: Some("db.prod.svc.cluster.local.".into()),
        qtype: 28,
        qclass: 1,
        steps: vec![],
    };
    let inner = inner_message(&request, &applied).unwrap();
    let mut new_qname = String::new();
    let parsed = Request::parse(&inner, Transport::Udp, &mut new_qname).unwrap();
    assert_eq!(new_qname, "db.prod.svc.cluster.local");
    assert_eq!((parsed.qtype, parsed.header), (28, request.header));
    assert_eq!(parsed.edns, request.edns);
    assert!(parsed.edns.is_some_and(|e| e.dnssec_ok));
    let same = Applied {
        name: None,
        qtype: 1,
        qclass: 1,
        steps: vec![],
    };
    assert!(
        inner_message(&request, &same).is_none(),
        "a ttl rule keeps the request"
    );
    let bytes = query("Db.Example.com", 1);
    let request = Request::parse(&bytes, Transport::Udp, &mut qname).unwrap();
    let typed = Applied { qtype: 16, ..same };
    let inner = inner_message(&request, &typed).unwrap();
    let parsed = Request::parse(&inner, Transport::Udp, &mut new_qname).unwrap();
    assert_eq!(
        &parsed.question[..parsed.question.len() - 4],
        &request.question[..request.question.len() - 4],
        "the client's spelling"
    );
}
