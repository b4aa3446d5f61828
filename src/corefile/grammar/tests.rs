use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A scratch directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "clusterdns-corefile-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn parse(text: &str) -> Result<Vec<ServerBlock>, Error> {
    parse_text(text, Path::new("Corefile"), &Vars::default())
}

fn keys(block: &ServerBlock) -> Vec<&str> {
    block.keys.iter().map(|k| k.text.as_str()).collect()
}

/// `name args…` per directive, nested blocks as `{…}`.
fn outline(directives: &[Directive]) -> Vec<String> {
    directives
        .iter()
        .map(|d| {
            let mut s = std::iter::once(d.name.as_str())
                .chain(d.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ");
            if !d.block.is_empty() {
                s.push_str(&format!(" {{{}}}", outline(&d.block).join("; ")));
            }
            s
        })
        .collect()
}

fn message(result: Result<Vec<ServerBlock>, Error>) -> String {
    result.unwrap_err().to_string()
}

#[test]
fn keys_in_every_spelling() {
    let blocks = parse(
        ".:53 .:30053 {\n}\ncluster.local:53,in-addr.arpa:53 {\n}\na.:53, b.:53,\n  dns://c.:53\n{\n}\n10.2.0.0/15:9254 {\n}\n",
    )
    .unwrap();
    let all: Vec<Vec<&str>> = blocks.iter().map(keys).collect();
    assert_eq!(
        all,
        [
            vec![".:53", ".:30053"],
            vec!["cluster.local:53", "in-addr.arpa:53"],
            vec!["a.:53", "b.:53", "dns://c.:53"],
            vec!["10.2.0.0/15:9254"],
        ]
    );
    assert_eq!(blocks[2].loc.line, 5);
    assert_eq!(blocks[2].keys[2].loc.line, 6);
}

#[test]
fn directives_arguments_blocks_comments_and_odd_spacing() {
    let text = "# head\n.:53 {   # after the brace\n    errors {\n    }\n\n    kubernetes  cluster.local  in-addr.arpa {\n       pods insecure\n        }   # after a closing brace\n    template ANY ANY x {\n      match \"^(?:[^.]+\\.){4,}x\\.$\"\n      rcode NXDOMAIN\n    }\n    hosts { \n      10.0.0.1 a.example\n    }\n    cache { success 10 }\n}  # end\n";
    let blocks = parse(text).unwrap();
    assert_eq!(
        outline(&blocks[0].directives),
        [
            "errors",
            "kubernetes cluster.local in-addr.arpa {pods insecure}",
            "template ANY ANY x {match ^(?:[^.]+\\.){4,}x\\.$; rcode NXDOMAIN}",
            "hosts {10.0.0.1 a.example}",
            "cache {success 10}",
        ]
    );
    let lines: Vec<usize> = blocks[0].directives.iter().map(|d| d.loc.line).collect();
    assert_eq!(lines, [3, 6, 9, 13, 16]);
}

#[test]
fn one_block_needs_no_braces_and_a_block_brace_may_open_on_the_next_line() {
    let blocks = parse(".:53\nerrors\nforward . 1.1.1.1\n").unwrap();
    assert_eq!(
        outline(&blocks[0].directives),
        ["errors", "forward . 1.1.1.1"]
    );
    let blocks = parse("a:53\n{\n  log\n}\nb:53\n{\n  errors\n}\n").unwrap();
    assert_eq!(blocks.len(), 2);
    assert_eq!(outline(&blocks[1].directives), ["errors"]);
}

#[test]
fn environment_variables_in_both_spellings() {
    let mut vars = Vars::default();
    vars.env.insert("ZONE".into(), "example.org".into());
    vars.env.insert("UP".into(), "10.0.0.1".into());
    let blocks = parse_text(
        "{$ZONE}:53 {\n  forward . {%UP%} {$UNSET}x\n}\n",
        Path::new("Corefile"),
        &vars,
    )
    .unwrap();
    assert_eq!(keys(&blocks[0]), ["example.org:53"]);
    assert_eq!(outline(&blocks[0].directives), ["forward . 10.0.0.1 x"]);
}

#[test]
fn snippets_are_imported_at_the_top_and_inside_blocks() {
    let text = "(common) {\n  errors\n  cache 30\n}\n(server) {\n  b:53 {\n    log\n  }\n}\na:53 {\n  import common\n  import common\n  forward . 1.1.1.1\n}\nimport server\n";
    let blocks = parse(text).unwrap();
    assert_eq!(blocks.len(), 2);
    assert_eq!(
        outline(&blocks[0].directives),
        [
            "errors",
            "cache 30",
            "errors",
            "cache 30",
            "forward . 1.1.1.1"
        ]
    );
    assert_eq!(keys(&blocks[1]), ["b:53"]);
    // A directive from a snippet points at the snippet's line.
    assert_eq!(blocks[0].directives[1].loc.line, 3);
    assert_eq!(
        message(parse("(a) {\n}\n(a) {\n}\n")),
        "Corefile:3: snippet (a) is defined twice"
    );
    assert_eq!(
        message(parse("(a) {\n  import a\n}\nx:53 {\n  import a\n}\n")),
        "Corefile:2: import cycle: (a) imports (a)"
    );
}

#[test]
fn files_and_globs_import_relative_to_the_importing_file() {
    let dir = Dir::new();
    dir.write(
        "custom/b.server",
        "b.example:53 {\n  import ../snippets/log.conf\n}\n",
    );
    dir.write("custom/a.server", "a.example:53 {\n  errors\n}\n");
    dir.write("custom/x.override", "loadbalance\n");
    dir.write("snippets/log.conf", "log\n");
    let main = dir.write(
        "Corefile",
        ".:53 {\n  import custom/*.override\n  import nothing/*.matches\n}\nimport custom/*.server\n",
    );
    let (blocks, sources) = load(&main, &Vars::default());
    let blocks = blocks.unwrap();
    assert_eq!(
        blocks.iter().map(keys).collect::<Vec<_>>(),
        [vec![".:53"], vec!["a.example:53"], vec!["b.example:53"]]
    );
    assert_eq!(outline(&blocks[0].directives), ["loadbalance"]);
    assert_eq!(outline(&blocks[2].directives), ["log"]);
    assert_eq!(
        blocks[2].directives[0].loc.to_string(),
        format!("{}:1", dir.0.join("custom/../snippets/log.conf").display())
    );
    let read: Vec<String> = sources
        .iter()
        .map(|(p, _)| p.strip_prefix(&dir.0).unwrap().display().to_string())
        .collect();
    assert_eq!(
        read,
        [
            "Corefile",
            "custom/x.override",
            "custom/a.server",
            "custom/b.server",
            "custom/../snippets/log.conf"
        ]
    );
}

#[test]
fn import_errors_name_the_file_and_line() {
    let dir = Dir::new();
    dir.write("broken.conf", "log\n  cache {\n");
    let main = dir.write("Corefile", ".:53 {\n  import missing.conf\n}\n");
    let err = load(&main, &Vars::default()).0.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2: import missing.conf: no such file or snippet",
            main.display()
        )
    );
    let main = dir.write("Corefile", ".:53 {\n  import broken.conf\n}\n");
    let err = load(&main, &Vars::default()).0.unwrap_err();
    assert_eq!(err.loc.file.as_ref(), dir.0.join("broken.conf"));
    assert_eq!(
        (err.loc.line, err.message.as_str()),
        (2, "`{` is never closed")
    );
    let main = dir.write("Corefile", ".:53 {\n  import a b\n  import\n}\n");
    assert_eq!(
        load(&main, &Vars::default()).0.unwrap_err().message,
        "import takes one argument"
    );
    let main = dir.write("Corefile", ".:53 {\n  import **.conf\n}\n");
    assert!(
        load(&main, &Vars::default())
            .0
            .unwrap_err()
            .message
            .contains("one `*`")
    );
}

#[test]
fn an_import_cycle_is_an_error_naming_the_files() {
    let dir = Dir::new();
    dir.write("a.conf", "import b.conf\n");
    dir.write("b.conf", "log\nimport a.conf\n");
    let main = dir.write("Corefile", ".:53 {\n  import a.conf\n}\n");
    let err = load(&main, &Vars::default()).0.unwrap_err();
    let real = |name: &str| std::fs::canonicalize(dir.0.join(name)).unwrap();
    assert_eq!(err.loc.file.as_ref(), dir.0.join("b.conf"));
    assert_eq!(err.loc.line, 2);
    assert_eq!(
        err.message,
        format!(
            "import cycle: {} imports {} imports {}",
            real("a.conf").display(),
            real("b.conf").display(),
            real("a.conf").display()
        )
    );
    let main = dir.write("Corefile", "import Corefile\n");
    assert!(
        load(&main, &Vars::default())
            .0
            .unwrap_err()
            .message
            .starts_with("import cycle: ")
    );
}

#[test]
fn syntax_errors_name_the_line() {
    assert_eq!(
        message(parse(".:53 {\n  cache 30\n")),
        "Corefile:1: `{` is never closed"
    );
    assert_eq!(
        message(parse(".:53 {\n  cache 30 {\n    success 1\n")),
        "Corefile:2: `{` is never closed"
    );
    // The last `}` closes `cache`: the server block is the one left open.
    assert_eq!(
        message(parse(".:53 {\n  cache 30 {\n    success 1\n}\n")),
        "Corefile:1: `{` is never closed"
    );
    assert_eq!(message(parse("}\n")), "Corefile:1: unexpected `}`");
    assert_eq!(
        message(parse(".:53 {\n  log\n  {\n  }\n}\n")),
        "Corefile:3: unexpected `{`: a block opens on the line of its directive"
    );
    assert_eq!(
        message(parse(".:53 {\n  log \"x\n}\n")),
        "Corefile:2: a quote (\") is never closed"
    );
    assert_eq!(
        message(parse("a:53 {\n}\nb:53\nlog\n")),
        "Corefile:4: expected `{` after the server block keys, found \"log\""
    );
    assert_eq!(
        message(parse("a:53,\n")),
        "Corefile:1: a key list ends with `,`"
    );
    assert_eq!(
        message(parse("{\n  log\n}\n")),
        "Corefile:1: a server block needs at least one key"
    );
}

#[test]
fn placeholders_are_substituted_in_words_and_missing_ones_name_their_line() {
    let vars = Vars {
        env: Default::default(),
        pillars: vec![
            Pillar {
                token: "__PILLAR__LOCAL__DNS__",
                value: Ok("169.254.20.10 10.96.0.10".into()),
            },
            Pillar {
                token: "__PILLAR__DNS__SERVER__",
                value: Ok(String::new()),
            },
            Pillar {
                token: "__PILLAR__CLUSTER__DNS__",
                value: Err("$KUBE_DNS_SERVICE_HOST".into()),
            },
        ],
    };
    let text = "# __PILLAR__CLUSTER__DNS__ in a comment is left alone\n.:53 {\n  bind __PILLAR__LOCAL__DNS__ __PILLAR__DNS__SERVER__\n  health __PILLAR__LOCAL__DNS__:8080\n}\n";
    let blocks = parse_text(text, Path::new("Corefile"), &vars).unwrap();
    assert_eq!(
        outline(&blocks[0].directives),
        [
            "bind 169.254.20.10 10.96.0.10",
            "health 169.254.20.10 10.96.0.10:8080"
        ]
    );
    let err = parse_text(
        ".:53 {\n  forward . __PILLAR__CLUSTER__DNS__\n}\n",
        Path::new("Corefile"),
        &vars,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Corefile:2: __PILLAR__CLUSTER__DNS__ needs $KUBE_DNS_SERVICE_HOST"
    );
}

#[test]
fn globs_match_one_star_and_one_question_mark() {
    assert!(wildcard("*.server", "a.server"));
    assert!(wildcard("*.server", ".server"));
    assert!(!wildcard("*.server", "a.server.bak"));
    assert!(wildcard("a?c*", "abcdef"));
    assert!(!wildcard("a?c", "ac"));
    assert!(wildcard("*", ""));
}
