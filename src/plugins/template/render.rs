//! The part of Go's `text/template` that CoreDNS `template` records are written in, parsed once
//! at config load and rendered per answered query into a reused buffer.
//!
//! Text with actions `{{ … }}` (`{{-`/`-}}` trim the whitespace beside them; `{{/* … */}}` is a
//! comment). An action is one command: a value (`.Name`, `.Zone`, `.Class`, `.Type`, `.Regex`,
//! `.Match`, `.Group`, `.Group.NAME`, `.Question.Name|Qtype|Qclass`, a string or a number), the
//! method `.Meta "NAME"` (empty: there is no `metadata` plugin), or a call of `index` or
//! `parseInt` (`strconv.ParseUint`), whose arguments may be parenthesised commands. Printed as Go
//! prints them: a list `[a b]`, a map `map[k:v …]`, a missing map key `<no value>`.
//!
//! What CoreDNS would only find out when a query comes (an unknown field, a control structure
//! this renderer lacks) is a parse error here, so `check` names it.

use std::fmt::Write;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Box<[Part]>,
}

#[derive(Debug, Clone)]
enum Part {
    Text(Box<str>),
    Action(Term),
}

/// One operand or command.
#[derive(Debug, Clone)]
enum Term {
    Field(Field),
    /// `.Group.NAME`
    Group(Box<str>),
    Str(Box<str>),
    Int(i64),
    /// `.Meta "NAME"`: no metadata here, always empty.
    Meta,
    Index(Box<[Term; 2]>),
    ParseInt(Box<[Term; 3]>),
}

#[derive(Debug, Clone, Copy)]
enum Field {
    Zone,
    Name,
    Regex,
    Class,
    Type,
    Match,
    Group,
    QuestionName,
    QuestionQtype,
    QuestionQclass,
    Remote,
}

/// What a template sees of the query (CoreDNS's `templateData`).
#[derive(Debug, Default)]
pub struct Data<'a> {
    /// The matched zone, absolute (`example.org.`, `.`).
    pub zone: &'a str,
    /// The question name, lower-case, absolute.
    pub name: &'a str,
    pub regex: &'a str,
    pub class: &'a str,
    pub rtype: &'a str,
    /// The whole match, then each group (`""` for one that did not take part).
    pub matches: &'a [&'a str],
    /// Group names by position (`None` for unnamed groups).
    pub names: &'a [Option<&'a str>],
    /// The question name as the client spelled it, absolute.
    pub question_name: &'a str,
    pub qtype: u16,
    pub qclass: u16,
    /// The client's address, as CoreDNS's `.Remote` prints it (no port).
    pub remote: &'a str,
}

/// A value while rendering.
enum Value<'a> {
    Str(&'a str),
    Uint(u64),
    Int(i64),
    List,
    Map,
    /// A missing map key, printed `<no value>`.
    Missing,
}

impl Template {
    /// Parses `text`; the error says what is wrong and where.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut trim_next = false;
        while let Some(open) = rest.find("{{") {
            let mut literal = &rest[..open];
            if trim_next {
                literal = literal.trim_start();
            }
            let after = &rest[open + 2..];
            let (trim_left, inner_start) = match after.strip_prefix('-') {
                Some(r) if r.starts_with(is_space) => (true, r),
                _ => (false, after),
            };
            if trim_left {
                literal = literal.trim_end();
            }
            push_text(&mut parts, literal);
            let close = inner_start
                .find("}}")
                .ok_or_else(|| format!("unclosed action at {:?}", &rest[open..]))?;
            let mut inner = &inner_start[..close];
            trim_next = false;
            if let Some(r) = inner.strip_suffix('-')
                && r.ends_with(is_space)
            {
                inner = r;
                trim_next = true;
            }
            if let Some(term) = action(inner.trim())? {
                parts.push(Part::Action(term));
            }
            rest = &inner_start[close + 2..];
        }
        push_text(&mut parts, if trim_next { rest.trim_start() } else { rest });
        Ok(Template {
            parts: parts.into(),
        })
    }

    /// Appends the rendering to `out`; an error is what Go's `Execute` would fail with.
    pub fn render(&self, data: &Data<'_>, out: &mut String) -> Result<(), String> {
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Action(term) => print(&eval(term, data)?, data, out),
            }
        }
        Ok(())
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn push_text(parts: &mut Vec<Part>, text: &str) {
    if !text.is_empty() {
        parts.push(Part::Text(text.into()));
    }
}

/// The inside of `{{ }}`: a comment (`None`) or one command.
fn action(inner: &str) -> Result<Option<Term>, String> {
    if let Some(comment) = inner.strip_prefix("/*") {
        return match comment.strip_suffix("*/") {
            Some(_) => Ok(None),
            None => Err(format!("unclosed comment in {{{{{inner}}}}}")),
        };
    }
    let words = words(inner)?;
    if words.is_empty() {
        return Err("empty action {{}}".into());
    }
    let mut at = 0;
    let term = command(&words, &mut at, inner)?;
    match words.get(at) {
        None => {}
        Some(Word::Other(w)) => return Err(unsupported(w)),
        Some(w) => return Err(format!("unexpected {w:?} in {{{{{inner}}}}}")),
    }
    Ok(Some(term))
}

/// A lexical word of an action.
#[derive(Debug, Clone, PartialEq)]
enum Word {
    Field(String),
    Ident(String),
    Str(String),
    Int(i64),
    Open,
    Close,
    Other(String),
}

fn words(text: &str) -> Result<Vec<Word>, String> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if is_space(c) {
            chars.next();
            continue;
        }
        let word = match c {
            '(' => {
                chars.next();
                Word::Open
            }
            ')' => {
                chars.next();
                Word::Close
            }
            '"' | '`' => Word::Str(string_literal(text, i, &mut chars)?),
            _ => {
                let end = text[i..]
                    .find(|c: char| is_space(c) || c == '(' || c == ')')
                    .map_or(text.len(), |n| i + n);
                while chars.peek().is_some_and(|(j, _)| *j < end) {
                    chars.next();
                }
                bare_word(&text[i..end])
            }
        };
        out.push(word);
    }
    Ok(out)
}

fn bare_word(w: &str) -> Word {
    if w.starts_with('.') {
        Word::Field(w.to_owned())
    } else if let Ok(n) = w.parse::<i64>() {
        Word::Int(n)
    } else if w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Word::Ident(w.to_owned())
    } else {
        Word::Other(w.to_owned())
    }
}

/// A Go string literal: `"…"` with backslash escapes, or a raw `` `…` ``.
fn string_literal(
    text: &str,
    start: usize,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
) -> Result<String, String> {
    let (_, quote) = chars.next().unwrap_or((start, '"'));
    let mut s = String::new();
    while let Some((_, c)) = chars.next() {
        match c {
            c if c == quote => return Ok(s),
            '\\' if quote == '"' => match chars.next().map(|(_, e)| e) {
                Some('n') => s.push('\n'),
                Some('t') => s.push('\t'),
                Some('r') => s.push('\r'),
                Some(e @ ('\\' | '"' | '\'')) => s.push(e),
                other => return Err(format!("unknown escape \\{other:?} in a string")),
            },
            c => s.push(c),
        }
    }
    Err(format!("unterminated string in {:?}", &text[start..]))
}

/// A command from `words[*at..]`: a function call or a single operand (a method call for
/// `.Meta`).
fn command(words: &[Word], at: &mut usize, inner: &str) -> Result<Term, String> {
    match &words[*at] {
        Word::Ident(f) => {
            *at += 1;
            let mut args = Vec::new();
            while *at < words.len() && words[*at] != Word::Close {
                args.push(operand(words, at, inner)?);
            }
            call(f, args)
        }
        Word::Field(f) if f == ".Meta" => {
            *at += 1;
            match words.get(*at) {
                Some(Word::Str(_)) => {
                    *at += 1;
                    Ok(Term::Meta)
                }
                _ => Err(".Meta takes one string: .Meta \"NAME\"".into()),
            }
        }
        _ => operand(words, at, inner),
    }
}

fn operand(words: &[Word], at: &mut usize, inner: &str) -> Result<Term, String> {
    let word = words
        .get(*at)
        .ok_or_else(|| format!("missing operand in {{{{{inner}}}}}"))?;
    *at += 1;
    match word {
        Word::Field(f) => field(f),
        Word::Str(s) => Ok(Term::Str(s.as_str().into())),
        Word::Int(n) => Ok(Term::Int(*n)),
        Word::Open => {
            let term = command(words, at, inner)?;
            match words.get(*at) {
                Some(Word::Close) => {
                    *at += 1;
                    Ok(term)
                }
                _ => Err(format!("unclosed ( in {{{{{inner}}}}}")),
            }
        }
        Word::Ident(f) => Err(format!(
            "function {f:?} used as an argument: parenthesise the call, ({f} …)"
        )),
        Word::Close => Err(format!("unexpected ) in {{{{{inner}}}}}")),
        Word::Other(w) => Err(unsupported(w)),
    }
}

fn unsupported(w: &str) -> String {
    if w.starts_with('$') {
        format!("{w:?}: template variables are not supported")
    } else if w == "|" {
        "pipelines (|) are not supported: call the function with its arguments".into()
    } else {
        format!("{w:?} is not supported")
    }
}

fn call(f: &str, args: Vec<Term>) -> Result<Term, String> {
    match (f, <[Term; 2]>::try_from(args)) {
        ("index", Ok(two)) => Ok(Term::Index(Box::new(two))),
        ("index", Err(_)) => {
            Err("index takes two arguments here: index .Match N, index .Group \"NAME\"".into())
        }
        ("parseInt", Err(args)) => match <[Term; 3]>::try_from(args) {
            Ok(three) => Ok(Term::ParseInt(Box::new(three))),
            Err(_) => Err("parseInt takes three arguments: parseInt STRING BASE BITS".into()),
        },
        ("parseInt", Ok(_)) => {
            Err("parseInt takes three arguments: parseInt STRING BASE BITS".into())
        }
        ("if" | "else" | "end" | "range" | "with" | "define" | "template" | "block", _) => {
            Err(format!("{{{{{f}}}}}: control structures are not supported"))
        }
        _ => Err(format!(
            "function {f:?} is not supported (index and parseInt are)"
        )),
    }
}

/// A field chain: `.Name`, `.Group.NAME`, `.Question.Name`.
fn field(chain: &str) -> Result<Term, String> {
    let path: Vec<&str> = chain[1..].split('.').collect();
    let simple = |f| Ok(Term::Field(f));
    match path.as_slice() {
        ["Zone"] => simple(Field::Zone),
        ["Name"] => simple(Field::Name),
        ["Regex"] => simple(Field::Regex),
        ["Class"] => simple(Field::Class),
        ["Type"] => simple(Field::Type),
        ["Match"] => simple(Field::Match),
        ["Group"] => simple(Field::Group),
        ["Group", name] if !name.is_empty() => Ok(Term::Group((*name).into())),
        ["Question", "Name"] => simple(Field::QuestionName),
        ["Question", "Qtype"] => simple(Field::QuestionQtype),
        ["Question", "Qclass"] => simple(Field::QuestionQclass),
        ["Remote"] => simple(Field::Remote),
        ["Message", ..] | ["Question"] => Err(format!(
            "{chain} is not supported (.Question.Name, .Question.Qtype and .Question.Qclass are)"
        )),
        [""] => Err("{{ . }} (the whole data) is not supported".into()),
        _ => Err(format!(
            "{chain}: no such field (Zone, Name, Regex, Class, Type, Match, Group, Question, Meta)"
        )),
    }
}

fn eval<'a>(term: &'a Term, data: &Data<'a>) -> Result<Value<'a>, String> {
    Ok(match term {
        Term::Field(f) => field_value(*f, data),
        Term::Group(name) => match group(data, name) {
            Some(v) => Value::Str(v),
            None => Value::Missing,
        },
        Term::Str(s) => Value::Str(s),
        Term::Int(n) => Value::Int(*n),
        Term::Meta => Value::Str(""),
        Term::Index(args) => index(eval(&args[0], data)?, &eval(&args[1], data)?, data)?,
        Term::ParseInt(args) => {
            let text = eval(&args[0], data)?;
            let base = eval(&args[1], data)?;
            let bits = eval(&args[2], data)?;
            Value::Uint(parse_uint(&text, &base, &bits)?)
        }
    })
}

fn field_value<'a>(f: Field, data: &Data<'a>) -> Value<'a> {
    match f {
        Field::Zone => Value::Str(data.zone),
        Field::Name => Value::Str(data.name),
        Field::Regex => Value::Str(data.regex),
        Field::Class => Value::Str(data.class),
        Field::Type => Value::Str(data.rtype),
        Field::Match => Value::List,
        Field::Group => Value::Map,
        Field::QuestionName => Value::Str(data.question_name),
        Field::QuestionQtype => Value::Uint(u64::from(data.qtype)),
        Field::QuestionQclass => Value::Uint(u64::from(data.qclass)),
        Field::Remote => Value::Str(data.remote),
    }
}

/// The `.Group` map: `"0"`, `"1"`, … for every group, then the named ones.
fn group<'a>(data: &Data<'a>, key: &str) -> Option<&'a str> {
    let named = data
        .names
        .iter()
        .zip(data.matches)
        .rev()
        .find(|(n, _)| *n == &Some(key));
    if let Some((_, v)) = named {
        return Some(v);
    }
    let i: usize = key.parse().ok().filter(|_| !key.starts_with('+'))?;
    (key == i.to_string()).then(|| data.matches.get(i).copied())?
}

/// The map's keys, as Go sorts them for printing.
fn group_keys<'a>(data: &Data<'a>) -> Vec<String> {
    let mut keys: Vec<String> = (0..data.matches.len()).map(|i| i.to_string()).collect();
    keys.extend(data.names.iter().flatten().map(|n| (*n).to_owned()));
    keys.sort();
    keys.dedup();
    keys
}

fn index<'a>(on: Value<'a>, key: &Value<'_>, data: &Data<'a>) -> Result<Value<'a>, String> {
    match (on, key) {
        (Value::List, Value::Int(i)) => usize::try_from(*i)
            .ok()
            .and_then(|i| data.matches.get(i))
            .map(|v| Value::Str(v))
            .ok_or_else(|| format!("index out of range: {i}")),
        (Value::List, Value::Uint(i)) => usize::try_from(*i)
            .ok()
            .and_then(|i| data.matches.get(i))
            .map(|v| Value::Str(v))
            .ok_or_else(|| format!("index out of range: {i}")),
        // A missing key is the zero value, "".
        (Value::Map, Value::Str(k)) => Ok(Value::Str(group(data, k).unwrap_or(""))),
        _ => Err("index: cannot index that value with that key".into()),
    }
}

fn as_int(v: &Value<'_>) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        Value::Uint(n) => i64::try_from(*n).ok(),
        _ => None,
    }
}

/// `strconv.ParseUint(text, base, bits)`.
fn parse_uint(text: &Value<'_>, base: &Value<'_>, bits: &Value<'_>) -> Result<u64, String> {
    let text = match text {
        Value::Str(s) => *s,
        _ => return Err("parseInt: the first argument must be a string".into()),
    };
    let (Some(base), Some(bits)) = (as_int(base), as_int(bits)) else {
        return Err("parseInt: base and bit size must be integers".into());
    };
    let bits = if bits == 0 { 64 } else { bits };
    if !(1..=64).contains(&bits) {
        return Err(format!("parseInt: invalid bit size {bits}"));
    }
    let (digits, radix) = match base {
        0 => with_prefix(text),
        2..=36 => (text, base as u32),
        _ => return Err(format!("parseInt: invalid base {base}")),
    };
    let invalid = || format!("parseInt: parsing {text:?}: invalid syntax");
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return Err(invalid());
    }
    let digits = if base == 0 {
        digits.replace('_', "")
    } else {
        digits.to_owned()
    };
    let n = u64::from_str_radix(&digits, radix).map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow => {
            format!("parseInt: parsing {text:?}: value out of range")
        }
        _ => invalid(),
    })?;
    if bits < 64 && n >> bits != 0 {
        return Err(format!("parseInt: parsing {text:?}: value out of range"));
    }
    Ok(n)
}

/// Base 0: the prefix decides (`0x`, `0o`, `0b`, a leading `0` is octal).
fn with_prefix(text: &str) -> (&str, u32) {
    let lower = text.get(..2).map(str::to_ascii_lowercase);
    match lower.as_deref() {
        Some("0x") => (&text[2..], 16),
        Some("0o") => (&text[2..], 8),
        Some("0b") => (&text[2..], 2),
        _ if text.len() > 1 && text.starts_with('0') => (&text[1..], 8),
        _ => (text, 10),
    }
}

fn print(value: &Value<'_>, data: &Data<'_>, out: &mut String) {
    match value {
        Value::Str(s) => out.push_str(s),
        Value::Uint(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Value::List => {
            out.push('[');
            out.push_str(&data.matches.join(" "));
            out.push(']');
        }
        Value::Map => {
            out.push_str("map[");
            let keys = group_keys(data);
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                let _ = write!(out, "{k}:{}", group(data, k).unwrap_or(""));
            }
            out.push(']');
        }
        Value::Missing => out.push_str("<no value>"),
    }
}
