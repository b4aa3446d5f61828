use super::*;

#[test]
fn levels_run_from_the_apex_down() {
    let dir = std::env::temp_dir().join(format!("clusterdns-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("db");
    std::fs::write(
        &path,
        "@ 60 IN SOA ns hm 1 1 1 1 30\n@ 60 NS ns\nns 60 A 192.0.2.53\n*.w 60 A 192.0.2.9\n\
         a.b.c 60 TXT x\nsub 60 NS ns.sub\nns.sub 60 A 192.0.2.1\n",
    )
    .unwrap();
    let zone = Zone::build(
        "example.org",
        read_zone(&path, "example.org", None).unwrap(),
    )
    .unwrap();
    let held = Held(vec![Arc::new(zone)]);
    let ask = |name: &str, qtype| {
        let r = held.0[0].lookup(&held, name, qtype, 0);
        (r.outcome, r.sections.map(|s| s.len()))
    };
    assert_eq!(ask("x.w.example.org", 1), (Outcome::Success, [1, 1, 0]));
    assert_eq!(ask("b.c.example.org", 1), (Outcome::Success, [0, 1, 0]));
    assert_eq!(ask("nope.example.org", 1), (Outcome::NameError, [0, 1, 0]));
    assert_eq!(
        ask("x.sub.example.org", 1),
        (Outcome::Delegation, [0, 1, 1])
    );
    assert_eq!(ask("example.org", 2), (Outcome::Success, [1, 0, 1]));
}
