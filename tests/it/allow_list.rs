//! The allow-lists of the differential tests: each known difference from CoreDNS with its
//! reason, one per line: `[SCOPE] QTYPES NAMES RCODES ASPECTS [CONTAINS] | reason`.

use std::path::Path;
use std::sync::atomic::AtomicUsize;

pub struct AllowEntry {
    pub line: usize,
    /// The first column's globs where the list has one (the Corefiles), else empty.
    pub scope: Vec<String>,
    /// Record types, or `*`.
    pub qtypes: Vec<String>,
    /// Query name globs, lower-case.
    pub names: Vec<String>,
    /// `(CoreDNS rcode, clusterdns rcode)`, each `*` for any.
    pub rcodes: (String, String),
    /// Aspects, or `*`.
    pub aspects: Vec<String>,
    /// Text that the difference or either answer must contain.
    pub contains: Option<String>,
    pub reason: String,
    pub used: AtomicUsize,
}

impl AllowEntry {
    /// Does the entry cover a difference in `aspect` for this question and these rcodes?
    /// (Scope and `contains` are the caller's to check.)
    pub fn covers(&self, qtype: &str, name: &str, rcodes: (&str, &str), aspect: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.qtypes.iter().any(|t| t == "*" || t == qtype)
            && self
                .names
                .iter()
                .any(|g| glob_name(g.as_bytes(), name.as_bytes()))
            && (self.rcodes.0 == "*" || self.rcodes.0 == rcodes.0)
            && (self.rcodes.1 == "*" || self.rcodes.1 == rcodes.1)
            && self.aspects.iter().any(|a| a == "*" || a == aspect)
    }
}

/// Reads an allow-list; `scope` names its first column when it has one. Every entry must give
/// a reason, and name only known `aspects`.
pub fn read(path: &Path, scope: Option<&str>, aspects: &[&str]) -> Vec<AllowEntry> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let skip = usize::from(scope.is_some());
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let n = i + 1;
        let (pattern, reason) = line
            .split_once('|')
            .unwrap_or_else(|| panic!("allow-list line {n}: no `| reason`"));
        let reason = reason.trim();
        assert!(
            reason.len() >= 20,
            "allow-list line {n}: the reason must say why"
        );
        let parts: Vec<&str> = pattern.split_whitespace().collect();
        assert!(
            parts.len() == skip + 4 || parts.len() == skip + 5,
            "allow-list line {n}: {}QTYPES NAMES RCODES ASPECTS [CONTAINS] | reason",
            scope.map_or(String::new(), |s| format!("{s} "))
        );
        let list = |s: &str| -> Vec<String> { s.split(',').map(str::to_owned).collect() };
        let fields = &parts[skip..];
        let rcodes = if fields[2] == "*" {
            ("*".to_owned(), "*".to_owned())
        } else {
            let (c, x) = fields[2].split_once('/').unwrap_or_else(|| {
                panic!("allow-list line {n}: RCODES is * or COREDNS/CLUSTERDNS")
            });
            (c.to_owned(), x.to_owned())
        };
        let named = list(fields[3]);
        for a in &named {
            assert!(
                aspects.contains(&a.as_str()) || a == "*",
                "allow-list line {n}: unknown aspect {a:?} (one of {aspects:?})"
            );
        }
        entries.push(AllowEntry {
            line: n,
            scope: if skip == 1 {
                list(parts[0])
            } else {
                Vec::new()
            },
            qtypes: list(&fields[0].to_ascii_uppercase()),
            names: list(&fields[1].to_ascii_lowercase()),
            rcodes,
            aspects: named,
            contains: fields.get(4).map(|c| (*c).to_owned()),
            reason: reason.to_owned(),
            used: AtomicUsize::new(0),
        });
    }
    entries
}

/// `**` matches any run of characters, `*` any run without a dot (within one label).
pub fn glob_name(pattern: &[u8], text: &[u8]) -> bool {
    match pattern {
        [] => text.is_empty(),
        [b'*', b'*', rest @ ..] => (0..=text.len()).any(|i| glob_name(rest, &text[i..])),
        [b'*', rest @ ..] => (0..=text.len())
            .take_while(|i| *i == 0 || text[i - 1] != b'.')
            .any(|i| glob_name(rest, &text[i..])),
        [c, rest @ ..] => text.first() == Some(c) && glob_name(rest, &text[1..]),
    }
}
