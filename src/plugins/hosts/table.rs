//! The tables of one hosts source (the file, or the inline entries): names → addresses and
//! addresses → names, built once and never changed (a reload builds new ones).
//!
//! Compact on purpose, since hosts files of ad blockers run to 100,000s of lines: each entry
//! is its name (one `Arc<str>`, shared by the entries of a name and handed out as PTR targets
//! without allocating), a 32-bit hash and the address, in one sorted array per family; the
//! reverse index is an array of positions into it. No hash map, no per-name vector.

use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::zone::lookup::in_zone;

/// One name with one address.
#[derive(Debug, Clone)]
struct Entry<A> {
    name: Arc<str>,
    hash: u32,
    addr: A,
}

/// The entries of one address family.
#[derive(Debug)]
struct Family<A> {
    /// Sorted by `(hash, name)`; the entries of one name in the order they were read.
    by_name: Box<[Entry<A>]>,
    /// Positions in `by_name`, sorted by address; the names of one address in the order they
    /// were read. Empty with `no_reverse`.
    by_addr: Box<[u32]>,
}

impl<A> Default for Family<A> {
    fn default() -> Self {
        Family {
            by_name: Box::new([]),
            by_addr: Box::new([]),
        }
    }
}

/// The names and addresses of one source.
#[derive(Debug, Default)]
pub struct Table {
    v4: Family<[u8; 4]>,
    v6: Family<[u8; 16]>,
}

/// The hash of a name (lower-case, no trailing dot) the tables are sorted by: FNV-1a.
pub fn name_hash(name: &str) -> u32 {
    name.bytes().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

impl Table {
    /// Entries (names with an address) in the table.
    pub fn len(&self) -> usize {
        self.v4.by_name.len() + self.v6.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The IPv4 addresses of `name` (lower-case, no trailing dot; `hash` its [`name_hash`]).
    pub fn v4<'a>(&'a self, name: &'a str, hash: u32) -> impl Iterator<Item = Ipv4Addr> + 'a {
        self.v4.addrs_of(name, hash).map(Ipv4Addr::from)
    }

    pub fn v6<'a>(&'a self, name: &'a str, hash: u32) -> impl Iterator<Item = Ipv6Addr> + 'a {
        self.v6.addrs_of(name, hash).map(Ipv6Addr::from)
    }

    /// Whether `name` has an address of either family.
    pub fn has_name(&self, name: &str, hash: u32) -> bool {
        self.v4.addrs_of(name, hash).next().is_some()
            || self.v6.addrs_of(name, hash).next().is_some()
    }

    /// The names of an IPv4 address, in the order they were read (none with `no_reverse`).
    pub fn names_v4(&self, addr: Ipv4Addr) -> impl Iterator<Item = &Arc<str>> + '_ {
        self.v4.names_of(addr.octets())
    }

    pub fn names_v6(&self, addr: Ipv6Addr) -> impl Iterator<Item = &Arc<str>> + '_ {
        self.v6.names_of(addr.octets())
    }
}

impl<A: Copy + Ord> Family<A> {
    fn addrs_of<'a>(&'a self, name: &'a str, hash: u32) -> impl Iterator<Item = A> + 'a {
        let start = self.by_name.partition_point(|e| e.hash < hash);
        self.by_name[start..]
            .iter()
            .take_while(move |e| e.hash == hash)
            .filter(move |e| &*e.name == name)
            .map(|e| e.addr)
    }

    fn names_of(&self, addr: A) -> impl Iterator<Item = &Arc<str>> + '_ {
        let entry = |i: &u32| &self.by_name[*i as usize];
        let start = self.by_addr.partition_point(|i| entry(i).addr < addr);
        self.by_addr[start..]
            .iter()
            .map(entry)
            .take_while(move |e| e.addr == addr)
            .map(|e| &e.name)
    }

    /// Sorts entries read in order into a family, keeping that order within a name and
    /// within an address; the entries of one name share one `Arc`.
    fn build(read: Vec<Entry<A>>, reverse: bool) -> Family<A> {
        let n = read.len();
        let mut order: Vec<u32> = (0..n as u32).collect();
        // Stable sorts: equal keys keep the order they were read in.
        order.sort_by(|a, b| {
            let (a, b) = (&read[*a as usize], &read[*b as usize]);
            (a.hash, &a.name).cmp(&(b.hash, &b.name))
        });
        let mut by_addr = Vec::new();
        if reverse {
            let mut position = vec![0u32; n];
            for (new, old) in order.iter().enumerate() {
                position[*old as usize] = new as u32;
            }
            let mut by_read: Vec<u32> = (0..n as u32).collect();
            by_read.sort_by_key(|i| read[*i as usize].addr);
            by_addr = by_read.iter().map(|old| position[*old as usize]).collect();
        }
        let mut by_name: Vec<Entry<A>> = Vec::with_capacity(n);
        for i in order {
            let mut e = read[i as usize].clone();
            if let Some(prev) = by_name.last()
                && prev.hash == e.hash
                && prev.name == e.name
            {
                e.name = prev.name.clone();
            }
            by_name.push(e);
        }
        drop(read);
        Family {
            by_name: by_name.into_boxed_slice(),
            by_addr: by_addr.into_boxed_slice(),
        }
    }
}

/// Reads hosts lines into a [`Table`].
pub struct Builder<'z> {
    /// Names outside these zones are skipped, as CoreDNS does.
    zones: &'z [String],
    reverse: bool,
    v4: Vec<Entry<[u8; 4]>>,
    v6: Vec<Entry<[u8; 16]>>,
    /// Reused for each name while it is checked.
    name: String,
}

impl<'z> Builder<'z> {
    pub fn new(zones: &'z [String], reverse: bool) -> Self {
        Builder {
            zones,
            reverse,
            v4: Vec::new(),
            v6: Vec::new(),
            name: String::new(),
        }
    }

    /// Reads every line of `reader`.
    pub fn read(&mut self, mut reader: impl BufRead) -> std::io::Result<()> {
        let mut line = Vec::with_capacity(256);
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            self.line(&line);
        }
    }

    /// One `/etc/hosts` line: `ADDRESS NAME…`, `#` starting a comment. Lines without a valid
    /// address or without a name, and names that are no DNS name or lie outside the zones,
    /// are skipped, as CoreDNS skips them.
    pub fn line(&mut self, line: &[u8]) {
        let Some((addr, names)) = split_line(line) else {
            return;
        };
        for raw in names {
            if !normal_name(raw, &mut self.name)
                || !self.zones.iter().any(|z| in_zone(&self.name, z))
            {
                continue;
            }
            let name: Arc<str> = Arc::from(self.name.as_str());
            let hash = name_hash(&name);
            match addr {
                IpAddr::V4(v4) => self.v4.push(Entry {
                    name,
                    hash,
                    addr: v4.octets(),
                }),
                IpAddr::V6(v6) => self.v6.push(Entry {
                    name,
                    hash,
                    addr: v6.octets(),
                }),
            }
        }
    }

    pub fn finish(self) -> Table {
        Table {
            v4: Family::build(self.v4, self.reverse),
            v6: Family::build(self.v6, self.reverse),
        }
    }
}

/// A line without its comment: the address and the names after it; `None` when it has no
/// valid address or no name.
fn split_line(line: &[u8]) -> Option<(IpAddr, impl Iterator<Item = &[u8]>)> {
    let line = match line.iter().position(|b| *b == b'#') {
        Some(i) => &line[..i],
        None => line,
    };
    let mut fields = line
        .split(u8::is_ascii_whitespace)
        .filter(|f| !f.is_empty());
    let addr = parse_addr(fields.next()?)?;
    let mut names = fields.peekable();
    names.peek()?;
    Some((addr, names))
}

/// An address as Go's `net.ParseIP` reads it after CoreDNS drops an IPv6 zone (`%eth0`):
/// IPv4-mapped IPv6 addresses are IPv4 addresses.
pub fn parse_addr(field: &[u8]) -> Option<IpAddr> {
    let field = match field.iter().position(|b| *b == b'%') {
        Some(i) => &field[..i],
        None => field,
    };
    let addr: IpAddr = std::str::from_utf8(field).ok()?.parse().ok()?;
    Some(addr.to_canonical())
}

/// `raw` lower-cased without its trailing dot into `out`, when it is a name a query can ask
/// for: labels of 1 to 63 printable ASCII bytes (no `?`, which stands for the bytes queries
/// cannot spell here), at most 253 bytes in all.
pub fn normal_name(raw: &[u8], out: &mut String) -> bool {
    out.clear();
    let raw = raw.strip_suffix(b".").unwrap_or(raw);
    if raw.is_empty()
        || raw.len() > 253
        || raw
            .split(|b| *b == b'.')
            .any(|l| l.is_empty() || l.len() > 63)
        || !raw.iter().all(|b| b.is_ascii_graphic() && *b != b'?')
    {
        return false;
    }
    out.extend(raw.iter().map(|b| b.to_ascii_lowercase() as char));
    true
}

/// Checks one inline entry as the config gives it: `Err` says what is wrong; `Ok(false)` for
/// a blank or comment-only line.
pub fn check_entry(line: &str, zones: &[String]) -> Result<bool, String> {
    let text = line.split('#').next().unwrap_or_default();
    let mut fields = text.split_ascii_whitespace();
    let Some(first) = fields.next() else {
        return Ok(false);
    };
    if parse_addr(first.as_bytes()).is_none() {
        return Err(format!(
            "{first:?} is not an IP address (expected \"ADDRESS NAME…\")"
        ));
    }
    let mut names = 0;
    let mut name = String::new();
    for raw in fields {
        names += 1;
        if !normal_name(raw.as_bytes(), &mut name) {
            return Err(format!("{raw:?} is not a DNS name"));
        }
        if !zones.iter().any(|z| in_zone(&name, z)) {
            return Err(format!(
                "{raw:?} is in none of the hosts zones, so it would never be served"
            ));
        }
    }
    if names == 0 {
        return Err(format!("no name after the address {first}"));
    }
    Ok(true)
}

/// The address a reverse name (lower-case, no trailing dot) stands for, read as CoreDNS
/// reads it: the labels before `in-addr.arpa` reversed and joined by dots; those before
/// `ip6.arpa` reversed and joined four by four (labels past a multiple of four are
/// dropped). No allocation.
pub fn reverse_addr(qname: &str) -> Option<IpAddr> {
    let mut buf = [0u8; 64];
    let mut len = 0;
    let mut put = |bytes: &[u8]| -> Option<()> {
        buf.get_mut(len..len + bytes.len())?.copy_from_slice(bytes);
        len += bytes.len();
        Some(())
    };
    if let Some(rest) = qname.strip_suffix(".in-addr.arpa") {
        for (i, label) in rest.rsplit('.').enumerate() {
            if i > 0 {
                put(b".")?;
            }
            put(label.as_bytes())?;
        }
        let addr: IpAddr = std::str::from_utf8(&buf[..len]).ok()?.parse().ok()?;
        return match addr {
            IpAddr::V4(_) => Some(addr),
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
        };
    }
    let rest = qname.strip_suffix(".ip6.arpa")?;
    let groups = rest.split('.').count() / 4;
    for (i, label) in rest.rsplit('.').take(groups * 4).enumerate() {
        if i > 0 && i % 4 == 0 {
            put(b":")?;
        }
        put(label.as_bytes())?;
    }
    let addr: IpAddr = std::str::from_utf8(&buf[..len]).ok()?.parse().ok()?;
    Some(addr.to_canonical())
}
