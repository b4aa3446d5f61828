//! Names as CoreDNS's `rewrite` sees them: miekg/dns presentation format, absolute (`a.b.`,
//! `.` for the root), the bytes `. space ' @ ; ( ) " \` escaped with a backslash and those
//! outside `!`..`~` as `\DDD`. Rules match the question name lower-cased; answers keep their
//! case.

use std::fmt::Write as _;

use crate::dns::{MAX_LABEL_LEN, MAX_NAME_LEN};

/// Appends one label and its dot.
fn push_label(label: &[u8], lower: bool, out: &mut String) {
    for &b in label {
        let b = if lower { b.to_ascii_lowercase() } else { b };
        match b {
            b'.' | b' ' | b'\'' | b'@' | b';' | b'(' | b')' | b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            b'!'..=b'~' => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('.');
}

/// Labels as one absolute name into `out` (cleared first), lower-cased when `lower`.
pub fn presentation<'a>(labels: impl Iterator<Item = &'a [u8]>, lower: bool, out: &mut String) {
    out.clear();
    for label in labels {
        push_label(label, lower, out);
    }
    if out.is_empty() {
        out.push('.');
    }
}

/// The bytes the routed name masks (`?`) or presentation escapes, as a table: this runs for
/// every name in a block with rules (a lookup per byte measured cheapest; see `rewrite/*`).
const ODD: [bool; 256] = {
    let mut table = [false; 256];
    let odd = b"?'@;()\"\\";
    let mut i = 0;
    while i < odd.len() {
        table[odd[i] as usize] = true;
        i += 1;
    }
    table
};

/// The question's name as rules match it: lower-case, absolute, escaped. `qname` is the name
/// as routed (lower-case, dotted, `?` for a byte that cannot be in a cluster name): when it has
/// nothing to escape, it is the name, and the wire is not read again.
pub fn question(question: &[u8], qname: &str, out: &mut String) {
    let plain = !qname.bytes().any(|b| ODD[usize::from(b)]);
    if plain {
        out.clear();
        out.push_str(qname);
        out.push('.');
    } else {
        presentation(crate::dns::name::plain_labels(question, 0), true, out);
    }
}

/// The labels of a name in presentation format, `None` unless it is a domain name CoreDNS
/// (miekg/dns `IsDomainName`) accepts and fits the wire: no empty label but the root's, labels
/// of at most 63 octets, at most 255 octets in all. A name without its final dot is absolute.
pub fn labels(name: &str) -> Option<Vec<Vec<u8>>> {
    if name == "." {
        return Some(Vec::new());
    }
    let mut labels = Vec::new();
    let mut label = Vec::new();
    let mut bytes = name.bytes();
    let mut wire = 1;
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => label.push(unescape(&mut bytes)?),
            b'.' => {
                if label.is_empty() || label.len() > MAX_LABEL_LEN {
                    return None;
                }
                wire += 1 + label.len();
                labels.push(std::mem::take(&mut label));
            }
            _ => label.push(b),
        }
    }
    if !label.is_empty() {
        if label.len() > MAX_LABEL_LEN {
            return None;
        }
        wire += 1 + label.len();
        labels.push(label);
    }
    (wire <= MAX_NAME_LEN).then_some(labels)
}

/// The byte after a backslash: `\DDD` (decimal) or the character itself.
fn unescape(bytes: &mut std::str::Bytes<'_>) -> Option<u8> {
    let first = bytes.next()?;
    if !first.is_ascii_digit() {
        return Some(first);
    }
    let rest = bytes.clone().take(2).collect::<Vec<u8>>();
    if rest.len() < 2 || !rest.iter().all(u8::is_ascii_digit) {
        return Some(first);
    }
    bytes.nth(1);
    let value =
        u32::from(first - b'0') * 100 + u32::from(rest[0] - b'0') * 10 + u32::from(rest[1] - b'0');
    // miekg/dns keeps the low byte of a value over 255.
    Some(value as u8)
}

/// Appends the wire form of `labels` with the root.
pub fn put_wire(labels: &[Vec<u8>], out: &mut Vec<u8>) {
    for label in labels {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(labels: &[&[u8]], lower: bool) -> String {
        let mut out = String::new();
        presentation(labels.iter().copied(), lower, &mut out);
        out
    }

    #[test]
    fn presentation_escapes_as_miekg_dns() {
        assert_eq!(
            shown(&[b"WwW", b"Example", b"com"], true),
            "www.example.com."
        );
        assert_eq!(shown(&[b"WwW", b"Example"], false), "WwW.Example.");
        assert_eq!(shown(&[], true), ".");
        assert_eq!(
            shown(&[b"a.b", b"c d", b"x\\y"], false),
            "a\\.b.c\\ d.x\\\\y."
        );
        assert_eq!(
            shown(&[b"\x00\x7f\xff", b"@;()'\""], false),
            "\\000\\127\\255.\\@\\;\\(\\)\\'\\\"."
        );
        assert_eq!(shown(&[b"_http", b"_tcp", b"*"], true), "_http._tcp.*.");
    }

    #[test]
    fn the_routed_name_is_used_only_when_it_is_the_presentation() {
        let labels: [&[&[u8]]; 8] = [
            &[b"WwW", b"Example", b"com"],
            &[],
            &[b"we'ird", b"x"],
            &[b"a b", b"c"],
            &[b"q?x", b"y"],
            &[b"x\\y"],
            &[b"a.b", b"c"],
            &[b"\xff@", b"(x);\""],
        ];
        for name in labels {
            let mut wire = Vec::new();
            put_wire(
                &name.iter().map(|l| l.to_vec()).collect::<Vec<_>>(),
                &mut wire,
            );
            let mut qname = String::new();
            crate::dns::name::lower_dotted(&wire, 0, &mut qname);
            let (mut fast, mut exact) = (String::new(), String::new());
            question(&wire, &qname, &mut fast);
            presentation(name.iter().copied(), true, &mut exact);
            assert_eq!(fast, exact, "{name:?}");
        }
    }

    #[test]
    fn names_read_back_and_bad_ones_are_refused() {
        assert_eq!(labels("."), Some(vec![]));
        assert_eq!(labels("a.b."), Some(vec![b"a".to_vec(), b"b".to_vec()]));
        assert_eq!(labels("a.b"), Some(vec![b"a".to_vec(), b"b".to_vec()]));
        assert_eq!(
            labels("a\\.b.\\099\\ ."),
            Some(vec![b"a.b".to_vec(), b"c ".to_vec()])
        );
        assert_eq!(
            labels("\\1a."),
            Some(vec![b"1a".to_vec()]),
            "not three digits"
        );
        for bad in ["a..b.", ".a.", "..", "a\\"] {
            assert_eq!(labels(bad), None, "{bad}");
        }
        let label63 = "x".repeat(63);
        assert!(labels(&format!("{label63}.")).is_some());
        assert!(labels(&format!("{label63}x.")).is_none(), "a label over 63");
        // 4 labels of 63 and one of 1: 4*64 + 2 + 1 = 259 octets.
        let long = format!("{label63}.{label63}.{label63}.{label63}.a.");
        assert!(labels(&long).is_none(), "over 255 octets");
        let fits = format!("{label63}.{label63}.{label63}.{}.", "y".repeat(61));
        assert!(labels(&fits).is_some(), "255 octets");
        for name in ["a.b.", "a\\.b.c\\ d.x\\\\y.", "\\000\\127\\255."] {
            let l = labels(name).unwrap();
            let mut back = String::new();
            presentation(l.iter().map(Vec::as_slice), false, &mut back);
            assert_eq!(back, name);
        }
    }
}
