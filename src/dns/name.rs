//! Walking names on the wire: plain labels, compression pointers (RFC 1035 §4.1.4).

use super::{MAX_LABEL_LEN, MAX_NAME_LEN};

/// Every label of the name at `pos` is a plain length-prefixed label (no pointer), the
/// labels are at most 63 octets and the name at most 255. Returns the position after it.
pub fn plain_end(message: &[u8], mut pos: usize) -> Option<usize> {
    let start = pos;
    loop {
        let len = usize::from(*message.get(pos)?);
        if len > MAX_LABEL_LEN {
            return None;
        }
        pos += 1 + len;
        if pos - start > MAX_NAME_LEN {
            return None;
        }
        if len == 0 {
            return Some(pos);
        }
    }
}

/// Position after the (possibly compressed) name at `pos`, without following pointers; a
/// pointer must point before itself.
pub fn skip(message: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *message.get(pos)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Some(pos + 1),
            0x00 => pos += 1 + usize::from(len),
            0xc0 => {
                let target = usize::from(super::read_u16(message, pos)? & 0x3fff);
                return (target < pos).then_some(pos + 2);
            }
            _ => return None,
        }
    }
}

/// Position after the name at `start`, walked as a decoder reads it (pointers followed).
/// `None` when it is malformed or reads a byte range that `forbidden(from, to)` refuses.
/// Every pointer must point before itself and everything read through it must lie before it
/// (a prior occurrence), so the walk always ends.
pub fn walk(
    message: &[u8],
    start: usize,
    forbidden: impl Fn(usize, usize) -> bool,
) -> Option<usize> {
    let (mut pos, mut limit, mut end, mut name_len) = (start, message.len(), None, 0usize);
    loop {
        let len = *message.get(pos)?;
        let next = pos + 1 + usize::from(len & 0x3f);
        if len & 0xc0 == 0xc0 {
            if pos + 2 > limit || forbidden(pos, pos + 2) {
                return None;
            }
            end.get_or_insert(pos + 2);
            limit = pos;
            pos = usize::from(u16::from_be_bytes([len & 0x3f, message[pos + 1]]));
            if pos >= limit {
                return None;
            }
            continue;
        }
        name_len += next - pos;
        if len & 0xc0 != 0 || next > limit || forbidden(pos, next) || name_len > MAX_NAME_LEN {
            return None;
        }
        if len == 0 {
            return Some(end.unwrap_or(next));
        }
        pos = next;
    }
}

/// The labels of the plain name at `pos`, up to its root or the first pointer.
pub fn plain_labels(message: &[u8], mut pos: usize) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let len = usize::from(*message.get(pos)?);
        if len == 0 || len & 0xc0 != 0 {
            return None;
        }
        let label = message.get(pos + 1..pos + 1 + len).unwrap_or_default();
        pos += 1 + len;
        Some(label)
    })
}

/// The plain name at `pos`, lower-case and dotted without the trailing dot, into `out`.
/// Bytes that cannot occur in a cluster name (a dot inside a label, non-ASCII, control
/// characters) become `?`, so such a name still finds its zone but matches no object.
pub fn lower_dotted(message: &[u8], pos: usize, out: &mut String) {
    out.clear();
    for label in plain_labels(message, pos) {
        if !out.is_empty() {
            out.push('.');
        }
        out.extend(label.iter().map(|&b| match b {
            b'.' => '?',
            b if b.is_ascii_graphic() => b.to_ascii_lowercase() as char,
            _ => '?',
        }));
    }
}

/// The plain name at `pos` as the client spelled it, dotted with the trailing dot (`.` for
/// the root), for logs.
pub fn display(message: &[u8], pos: usize) -> String {
    let mut name = String::new();
    for label in plain_labels(message, pos) {
        name.push_str(&String::from_utf8_lossy(label));
        name.push('.');
    }
    if name.is_empty() {
        name.push('.');
    }
    name
}

/// A configured zone (lower-case, no trailing dot, `""` for the root) as CoreDNS labels and
/// prints it: absolute, `.` for the root.
pub fn zone_label(zone: &str) -> String {
    if zone.is_empty() {
        ".".into()
    } else {
        format!("{zone}.")
    }
}

/// Appends `dotted` (labels separated by dots; empty labels skipped, each cut at 63 octets)
/// as wire labels, without the terminating root. `false` if a label was too long.
pub fn put_labels(out: &mut Vec<u8>, dotted: &str) -> bool {
    let mut fits = true;
    for label in dotted.split('.').filter(|l| !l.is_empty()) {
        fits &= label.len() <= MAX_LABEL_LEN;
        let bytes = &label.as_bytes()[..label.len().min(MAX_LABEL_LEN)];
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
    fits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_end_after_their_root_and_respect_the_limits() {
        let m = b"\x03www\x07example\x00rest";
        assert_eq!(plain_end(m, 0), Some(13));
        assert_eq!(plain_end(b"\x03ww", 0), None, "cut short");
        assert_eq!(plain_end(b"\xc0\x00", 0), None, "pointer");
        let mut long = Vec::new();
        for _ in 0..5 {
            long.push(50);
            long.extend([b'a'; 50]);
        }
        long.push(0);
        assert_eq!(plain_end(&long, 0), None, "over 255 octets");
        let mut label64 = vec![64];
        label64.extend([b'a'; 64]);
        label64.push(0);
        assert_eq!(plain_end(&label64, 0), None, "label over 63");
    }

    #[test]
    fn skip_stops_at_a_backward_pointer_and_refuses_a_forward_one() {
        let m = b"\x01a\x00\x01b\xc0\x00";
        assert_eq!(skip(m, 3), Some(7));
        assert_eq!(skip(b"\x01b\xc0\x05\x00\x00", 0), None, "forward pointer");
        assert_eq!(skip(b"\x41", 0), None, "reserved label type");
    }

    #[test]
    fn walk_follows_pointers_and_stops_loops() {
        let m = b"\x01a\x00\x01b\xc0\x00";
        assert_eq!(walk(m, 3, |_, _| false), Some(7));
        assert_eq!(
            walk(m, 3, |from, _| from < 3),
            None,
            "reads a forbidden range"
        );
        assert_eq!(walk(b"\xc0\x00", 0, |_, _| false), None, "self pointer");
    }

    #[test]
    fn names_lower_dot_and_mask_odd_bytes() {
        let mut out = String::new();
        lower_dotted(b"\x03WwW\x03a.b\x02\x01z\x00", 0, &mut out);
        assert_eq!(out, "www.a?b.?z");
        lower_dotted(b"\x00", 0, &mut out);
        assert_eq!(out, "");
        assert_eq!(display(b"\x03WwW\x00", 0), "WwW.");
        assert_eq!(display(b"\x00", 0), ".");
        let mut wire = Vec::new();
        assert!(put_labels(&mut wire, "a.bc."));
        assert_eq!(wire, b"\x01a\x02bc");
        assert!(!put_labels(&mut wire, &"x".repeat(64)));
    }
}
