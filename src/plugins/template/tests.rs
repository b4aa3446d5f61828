//! The renderer against what Go's text/template prints, and rendered records in wire form.

use hickory_proto::rr::{DNSClass, RData, RecordType};

use super::render::{Data, Template};
use super::rr::{encode, parse};

fn data<'a>(matches: &'a [&'a str], names: &'a [Option<&'a str>]) -> Data<'a> {
    Data {
        zone: "example.org.",
        name: "ip-10-1-2-3.example.org.",
        regex: "^ip-(?P<a>[0-9]+)-([0-9]+)",
        class: "IN",
        rtype: "A",
        matches,
        names,
        question_name: "IP-10-1-2-3.Example.org.",
        qtype: 1,
        qclass: 1,
        remote: "127.0.0.2",
    }
}

fn render(text: &str) -> Result<String, String> {
    let matches = ["ip-10-1", "10", "1"];
    let names = [None, Some("a"), None];
    let mut out = String::from("kept:");
    Template::parse(text)?.render(&data(&matches, &names), &mut out)?;
    Ok(out["kept:".len()..].to_owned())
}

#[test]
fn fields_groups_and_index_print_as_go_prints_them() {
    let cases = [
        (
            "{{ .Name }} 60 IN A 1.2.3.4",
            "ip-10-1-2-3.example.org. 60 IN A 1.2.3.4",
        ),
        ("{{.Zone}}|{{ .Class }}|{{ .Type }}", "example.org.|IN|A"),
        ("{{ .Regex }}", "^ip-(?P<a>[0-9]+)-([0-9]+)"),
        ("{{ index .Match 0 }} {{ index .Match 2 }}", "ip-10-1 1"),
        ("{{ .Group.a }}", "10"),
        ("{{ index .Group \"a\" }}/{{ index .Group \"2\" }}", "10/1"),
        // A missing key: `<no value>` as a field, the zero value through index.
        (
            "[{{ .Group.zz }}][{{ index .Group \"zz\" }}]",
            "[<no value>][]",
        ),
        ("{{ .Match }}", "[ip-10-1 10 1]"),
        ("{{ .Group }}", "map[0:ip-10-1 1:10 2:1 a:10]"),
        (
            "{{ .Question.Name }} {{ .Question.Qtype }}",
            "IP-10-1-2-3.Example.org. 1",
        ),
        ("x{{ .Meta \"kubernetes/client-namespace\" }}y", "xy"),
        ("{{ .Remote }}", "127.0.0.2"),
        ("a  {{- .Group.a -}}  b", "a10b"),
        ("a {{/* a comment */}}b", "a b"),
        ("{{ `raw` }} {{ \"q\\\"d\" }} {{ 42 }}", "raw q\"d 42"),
        (
            "10.{{ parseInt \"7b\" 16 8 }}.{{ parseInt .Group.a 10 0 }}",
            "10.123.10",
        ),
        (
            "{{ parseInt \"0x1F\" 0 64 }} {{ parseInt \"017\" 0 64 }}",
            "31 15",
        ),
        ("{{ index .Match (parseInt \"1\" 10 8) }}", "10"),
        ("no actions }} at all", "no actions }} at all"),
    ];
    for (text, want) in cases {
        assert_eq!(render(text).as_deref(), Ok(want), "{text}");
    }
}

#[test]
fn what_go_fails_to_execute_fails_to_render() {
    for text in [
        "{{ index .Match 9 }}",
        "{{ parseInt \"300\" 10 8 }}",
        "{{ parseInt \"zz\" 16 8 }}",
        "{{ parseInt \"\" 10 8 }}",
        "{{ parseInt \"-1\" 10 8 }}",
        "{{ parseInt .Group.zz 10 8 }}",
    ] {
        assert!(render(text).is_err(), "{text} rendered");
    }
}

#[test]
fn templates_the_renderer_cannot_run_are_refused_when_parsed() {
    for (text, says) in [
        ("{{ .Name", "unclosed action"),
        ("{{ }}", "empty action"),
        ("{{ .Nope }}", "no such field"),
        ("{{ .Message }}", "not supported"),
        ("{{ if .Name }}x{{ end }}", "control structures"),
        ("{{ $x := .Name }}", "variables"),
        ("{{ .Name | printf \"%s\" }}", "pipelines"),
        ("{{ printf \"%s\" .Name }}", "not supported"),
        ("{{ index .Match }}", "two arguments"),
        ("{{ parseInt .Group.a 10 }}", "three arguments"),
        ("{{ \"open }}", "unterminated string"),
        ("{{/* open }}", "unclosed comment"),
        ("{{ .Meta }}", ".Meta takes one string"),
    ] {
        let error = Template::parse(text).expect_err(text);
        assert!(error.contains(says), "{text}: {error}");
    }
}

#[test]
fn records_read_as_miekg_reads_them() {
    let a = parse("www.example.org. 60 IN A 10.1.2.3").unwrap();
    assert_eq!(
        (a.name.to_ascii(), a.ttl, a.dns_class, a.record_type()),
        ("www.example.org.".into(), 60, DNSClass::IN, RecordType::A)
    );
    // Class before TTL, TTL and class left out, a relative name under the root.
    let b = parse("x.org CH 30 TXT \"hello world\" two").unwrap();
    assert_eq!(
        (b.name.to_ascii(), b.ttl, b.dns_class),
        ("x.org.".into(), 30, DNSClass::CH)
    );
    let RData::TXT(txt) = &b.data else {
        panic!("{:?}", b.data)
    };
    assert_eq!(txt.txt_data.len(), 2);
    assert_eq!(&*txt.txt_data[0], b"hello world");
    let c = parse("x.org AAAA fd00::1").unwrap();
    assert_eq!((c.ttl, c.dns_class), (3600, DNSClass::IN));
    let soa = parse("invalid. 60 IN SOA ns.invalid. hostmaster.invalid. (1 60 60 60 60)").unwrap();
    assert_eq!(soa.record_type(), RecordType::SOA);
    let mx = parse("m.org. 60 IN MX 10 mail.m.org.").unwrap();
    assert!(matches!(mx.data, RData::MX(_)));
    for text in [
        "x.org. 60 IN SRV 0 100 53 t.org.",
        "4.3.2.1.in-addr.arpa. 60 IN PTR ip-1-2-3-4.example.",
        "x.org. 60 IN NS ns0.x.org.",
        "x.org. 1h IN CNAME y.org.",
    ] {
        assert!(parse(text).is_ok(), "{text}");
    }
}

#[test]
fn bad_records_are_errors_never_panics() {
    for text in [
        "",
        " x.org. 60 IN A 1.2.3.4",
        "x.org. 60 IN",
        "x.org. 60 IN A 999.1.1.1",
        "x.org. 60 IN A",
        "x.org. 60 IN BOGUS 1",
        "x.org. 60 IN OPT 1",
        "x.org. 60 IN MX mail.x.org.",
        "x.org. <no value> IN A 1.2.3.4",
        "x.org. 60 IN A $INCLUDE /etc/passwd",
    ] {
        assert!(parse(text).is_err(), "{text:?} parsed");
    }
}

#[test]
fn records_are_encoded_back_to_back_with_cname_targets_noted() {
    let mut out = vec![0xAA];
    let a = encode("a.org. 60 IN A 10.0.0.1", &mut out).unwrap();
    assert_eq!((a.rtype, a.cname), (RecordType::A, None));
    // Owner, type, class, TTL, length, address.
    let want_a: &[u8] = &[
        1, b'a', 3, b'o', b'r', b'g', 0, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1,
    ];
    assert_eq!(&out[1..], want_a);
    let c = encode("a.org. 60 IN CNAME Target.Example.", &mut out).unwrap();
    assert_eq!(c.cname.as_deref(), Some("target.example"));
    // The name is spelled out again, not compressed.
    assert_eq!(&out[1 + want_a.len()..][..7], &want_a[..7]);
    let before = out.len();
    assert!(encode("a.org. 60 IN A nope", &mut out).is_err());
    assert_eq!(out.len(), before);
}

#[test]
fn names_outside_every_zone_are_told_by_their_last_octet() {
    let ends = super::LastOctets::of(["cloudapp.net".to_owned(), "example.com".to_owned()].iter());
    assert!(ends.may_hold("vm.cloudapp.net") && ends.may_hold("x.example.com"));
    // May: the last octet alone says so; the zones are compared after.
    assert!(ends.may_hold("other.dot"));
    assert!(!ends.may_hold("svc.cluster.local") && !ends.may_hold(""));
    let root = super::LastOctets::of([String::new()].iter());
    assert!(root.may_hold("svc.cluster.local") && root.may_hold(""));
}
