//! The Corefile grammar, as CoreDNS reads it through Caddy's caddyfile parser: server blocks
//! (`KEY… { directives }`, keys split by white space or commas, a trailing comma continuing on
//! the next line, a lone block without braces), snippets `(name) { … }`, `import FILE|GLOB|SNIPPET`
//! at the top level and at the start of any line inside blocks (relative to the importing
//! file's directory; a glob that matches nothing imports nothing), `{$VAR}` / `{%VAR%}` from
//! the environment, and the NodeLocal DNSCache `__PILLAR__…__` placeholders. Every error names
//! a file and a line; import cycles name the files that form them.

use std::collections::HashMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::lexer::{self, Lexeme};

/// A place in a Corefile or a file it imports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    pub file: Arc<Path>,
    /// 1-based; 0 when the file itself is meant.
    pub line: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => write!(f, "{}", self.file.display()),
            n => write!(f, "{}:{n}", self.file.display()),
        }
    }
}

/// A syntax, import or substitution error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{loc}: {message}")]
pub struct Error {
    pub loc: Loc,
    pub message: String,
}

fn error(loc: &Loc, message: impl Into<String>) -> Error {
    Error {
        loc: loc.clone(),
        message: message.into(),
    }
}

/// One directive (plugin or option): its name, the arguments on its line and its block.
#[derive(Debug, Clone, PartialEq)]
pub struct Directive {
    pub loc: Loc,
    pub name: String,
    pub args: Vec<String>,
    pub block: Vec<Directive>,
}

/// A server block key (`.:53`, `dns://cluster.local`, `10.0.0.0/8:53`) as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub loc: Loc,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerBlock {
    pub loc: Loc,
    pub keys: Vec<Key>,
    pub directives: Vec<Directive>,
}

/// A NodeLocal DNSCache placeholder and its value, or what is missing to know it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pillar {
    pub token: &'static str,
    pub value: Result<String, String>,
}

/// What substitutions read: the environment (for `{$VAR}`) and the placeholders.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vars {
    pub env: HashMap<String, String>,
    pub pillars: Vec<Pillar>,
}

/// Every file read while parsing, in order, with its contents: what a reload compares.
pub type Sources = Vec<(PathBuf, Vec<u8>)>;

/// Most imports (of files and snippets) one parse expands: beyond, something runs away.
const MAX_EXPANSIONS: usize = 10_000;

/// Reads and parses the Corefile at `path` with everything it imports. The files read are
/// returned also when parsing fails, so a watcher still sees edits that fix the error.
pub fn load(path: &Path, vars: &Vars) -> (Result<Vec<ServerBlock>, Error>, Sources) {
    let mut parser = Parser::new(vars);
    let result = parser
        .start_file(path)
        .and_then(|()| parser.server_blocks());
    (result, parser.sources)
}

/// Parses Corefile text; `path` names it in errors and anchors relative imports.
pub fn parse_text(text: &str, path: &Path, vars: &Vars) -> Result<Vec<ServerBlock>, Error> {
    let mut parser = Parser::new(vars);
    let file: Arc<Path> = Arc::from(path);
    let instance = parser.instance(Origin::File(canonical(path)), None);
    parser.tokens = parser.tokens_of(text, &file, instance)?;
    parser.server_blocks()
}

#[derive(Debug, Clone)]
struct Token {
    text: String,
    line: usize,
    end_line: usize,
    quoted: bool,
    file: Arc<Path>,
    /// Which expansion (the main file, one import of a file, one use of a snippet) it came
    /// from: a token of another expansion is always on a new line.
    instance: usize,
}

impl Token {
    fn loc(&self) -> Loc {
        Loc {
            file: self.file.clone(),
            line: self.line,
        }
    }

    fn is(&self, word: &str) -> bool {
        !self.quoted && self.text == word
    }
}

/// An opening brace: where, and in which expansion (its `}` must be in the same).
struct Open {
    loc: Loc,
    instance: usize,
}

impl Open {
    fn at(token: &Token) -> Open {
        Open {
            loc: token.loc(),
            instance: token.instance,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Origin {
    File(PathBuf),
    Snippet(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Snippet(name) => write!(f, "({name})"),
        }
    }
}

struct Instance {
    origin: Origin,
    parent: Option<usize>,
}

struct Parser<'v> {
    vars: &'v Vars,
    tokens: Vec<Token>,
    pos: usize,
    instances: Vec<Instance>,
    snippets: HashMap<String, Vec<Token>>,
    expansions: usize,
    sources: Sources,
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

impl<'v> Parser<'v> {
    fn new(vars: &'v Vars) -> Parser<'v> {
        Parser {
            vars,
            tokens: Vec::new(),
            pos: 0,
            instances: Vec::new(),
            snippets: HashMap::new(),
            expansions: 0,
            sources: Vec::new(),
        }
    }

    fn instance(&mut self, origin: Origin, parent: Option<usize>) -> usize {
        self.instances.push(Instance { origin, parent });
        self.instances.len() - 1
    }

    fn start_file(&mut self, path: &Path) -> Result<(), Error> {
        let file: Arc<Path> = Arc::from(path);
        let text = self.read(path).map_err(|e| {
            error(
                &Loc {
                    file: file.clone(),
                    line: 0,
                },
                format!("cannot read: {e}"),
            )
        })?;
        let instance = self.instance(Origin::File(canonical(path)), None);
        self.tokens = self.tokens_of(&text, &file, instance)?;
        Ok(())
    }

    /// Reads a file through its path (following a ConfigMap volume's symlinks) and records it.
    fn read(&mut self, path: &Path) -> std::io::Result<String> {
        let bytes = std::fs::read(path)?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        self.sources.push((path.to_owned(), bytes));
        Ok(text)
    }

    /// Lexes one file's text, with the placeholders substituted.
    fn tokens_of(
        &self,
        text: &str,
        file: &Arc<Path>,
        instance: usize,
    ) -> Result<Vec<Token>, Error> {
        let lexemes = lexer::lex(text).map_err(|lexer::Unterminated(line)| {
            error(
                &Loc {
                    file: file.clone(),
                    line,
                },
                "a quote (\") is never closed",
            )
        })?;
        let mut out = Vec::with_capacity(lexemes.len());
        for lexeme in lexemes {
            let token = |text: String, l: &Lexeme| Token {
                text,
                line: l.line,
                end_line: l.end_line,
                quoted: l.quoted,
                file: file.clone(),
                instance,
            };
            if !lexeme.text.contains("__PILLAR__") {
                out.push(token(lexeme.text.clone(), &lexeme));
                continue;
            }
            let text = self.pillars(&lexeme, file)?;
            if lexeme.quoted {
                out.push(token(text, &lexeme));
            } else {
                // As node-cache's text replacement: a value of several words is several words.
                out.extend(
                    text.split_whitespace()
                        .map(|w| token(w.to_owned(), &lexeme)),
                );
            }
        }
        Ok(out)
    }

    fn pillars(&self, lexeme: &Lexeme, file: &Arc<Path>) -> Result<String, Error> {
        let mut text = lexeme.text.clone();
        for pillar in &self.vars.pillars {
            if !text.contains(pillar.token) {
                continue;
            }
            match &pillar.value {
                Ok(value) => text = text.replace(pillar.token, value),
                Err(hint) => {
                    let loc = Loc {
                        file: file.clone(),
                        line: lexeme.line,
                    };
                    return Err(error(&loc, format!("{} needs {hint}", pillar.token)));
                }
            }
        }
        Ok(text)
    }

    /// Is the token at `i` the first on its line?
    fn new_line(&self, i: usize) -> bool {
        match (
            i.checked_sub(1).map(|p| &self.tokens[p]),
            self.tokens.get(i),
        ) {
            (Some(prev), Some(cur)) => prev.instance != cur.instance || prev.end_line < cur.line,
            _ => true,
        }
    }

    fn env(&self, text: &str) -> String {
        let text = replace_env(text, "{%", "%}", &self.vars.env);
        replace_env(&text, "{$", "}", &self.vars.env)
    }

    fn server_blocks(&mut self) -> Result<Vec<ServerBlock>, Error> {
        let mut blocks = Vec::new();
        while let Some(token) = self.tokens.get(self.pos) {
            if token.is("import") && self.new_line(self.pos) {
                self.import()?;
                continue;
            }
            let loc = token.loc();
            let keys = self.keys()?;
            if keys.is_empty() {
                return Err(error(&loc, "a server block needs at least one key"));
            }
            let directives = match self.tokens.get(self.pos) {
                Some(t) if t.is("{") => {
                    let open = Open::at(t);
                    self.pos += 1;
                    if let [only] = keys.as_slice()
                        && let Some(name) = snippet_name(&only.text)
                    {
                        self.define_snippet(name, &open.loc)?;
                        continue;
                    }
                    self.directives(Some(&open))?
                }
                // Caddy: a Corefile of one server block needs no braces.
                _ if blocks.is_empty() => self.directives(None)?,
                Some(t) => {
                    return Err(error(
                        &t.loc(),
                        format!(
                            "expected `{{` after the server block keys, found {:?}",
                            t.text
                        ),
                    ));
                }
                None => return Err(error(&loc, "expected `{` after the server block keys")),
            };
            blocks.push(ServerBlock {
                loc,
                keys,
                directives,
            });
        }
        Ok(blocks)
    }

    /// The keys of a server block: the words up to `{` or the end of the line (a trailing
    /// comma continues on the next line).
    fn keys(&mut self) -> Result<Vec<Key>, Error> {
        let first = self.pos;
        let mut keys = Vec::new();
        let mut another = false;
        while let Some(token) = self.tokens.get(self.pos) {
            let loc = token.loc();
            if self.pos != first && self.new_line(self.pos) {
                if !another {
                    break;
                }
                if token.is("import") {
                    self.import()?;
                    continue;
                }
            }
            if token.is("{") || token.is("}") {
                if another || token.is("}") {
                    return Err(error(&loc, format!("unexpected `{}`", token.text)));
                }
                break;
            }
            let text = self.env(&token.text);
            another = text.ends_with(',');
            keys.extend(text.split(',').filter(|k| !k.is_empty()).map(|k| Key {
                loc: loc.clone(),
                text: k.to_owned(),
            }));
            self.pos += 1;
        }
        if another {
            let last = &self.tokens[self.pos - 1];
            return Err(error(&last.loc(), "a key list ends with `,`"));
        }
        Ok(keys)
    }

    fn define_snippet(&mut self, name: String, open: &Loc) -> Result<(), Error> {
        if self.snippets.contains_key(&name) {
            return Err(error(open, format!("snippet ({name}) is defined twice")));
        }
        let start = self.pos;
        let mut depth = 1;
        loop {
            let Some(token) = self.tokens.get(self.pos) else {
                return Err(error(open, "`{` is never closed"));
            };
            if token.is("{") {
                depth += 1;
            } else if token.is("}") {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            self.pos += 1;
        }
        let body = self.tokens[start..self.pos].to_vec();
        self.pos += 1;
        self.snippets.insert(name, body);
        Ok(())
    }

    /// Directives up to the `}` that closes `open`, or to the end of the input. A block
    /// closes in the file (or snippet) that opens it, so an error names the file at fault.
    fn directives(&mut self, open: Option<&Open>) -> Result<Vec<Directive>, Error> {
        let mut out = Vec::new();
        loop {
            let Some(token) = self.tokens.get(self.pos) else {
                return match open {
                    Some(open) => Err(error(&open.loc, "`{` is never closed")),
                    None => Ok(out),
                };
            };
            if token.is("}") {
                match open {
                    None => return Err(error(&token.loc(), "unexpected `}`")),
                    Some(open) if open.instance != token.instance => {
                        return Err(error(&open.loc, "`{` is never closed"));
                    }
                    Some(_) => {}
                }
                self.pos += 1;
                return Ok(out);
            }
            if token.is("{") {
                return Err(error(
                    &token.loc(),
                    "unexpected `{`: a block opens on the line of its directive",
                ));
            }
            if token.is("import") {
                self.import()?;
                continue;
            }
            out.push(self.directive()?);
        }
    }

    /// A directive: its name, the rest of its line, and the block that line opens.
    fn directive(&mut self) -> Result<Directive, Error> {
        let loc = self.tokens[self.pos].loc();
        let name = self.env(&self.tokens[self.pos].text);
        self.pos += 1;
        let mut args = Vec::new();
        let mut block = Vec::new();
        while let Some(token) = self.tokens.get(self.pos) {
            if self.new_line(self.pos) || token.is("}") {
                break;
            }
            if token.is("{") {
                let open = Open::at(token);
                self.pos += 1;
                block = self.directives(Some(&open))?;
                break;
            }
            args.push(self.env(&token.text));
            self.pos += 1;
        }
        Ok(Directive {
            loc,
            name,
            args,
            block,
        })
    }

    /// Replaces `import ARG` (at `self.pos`) by the tokens of the snippet or files it names.
    fn import(&mut self) -> Result<(), Error> {
        let at = self.pos;
        let loc = self.tokens[at].loc();
        let arg = match self.tokens.get(at + 1) {
            Some(t) if !self.new_line(at + 1) => self.env(&t.text),
            _ => return Err(error(&loc, "import needs a file, a glob or a snippet name")),
        };
        if self.tokens.get(at + 2).is_some() && !self.new_line(at + 2) {
            return Err(error(&loc, "import takes one argument"));
        }
        if arg.is_empty() {
            return Err(error(&loc, "import of an empty name"));
        }
        self.expansions += 1;
        if self.expansions > MAX_EXPANSIONS {
            return Err(error(
                &loc,
                format!("more than {MAX_EXPANSIONS} imports expanded"),
            ));
        }
        let parent = self.tokens[at].instance;
        let imported = match self.snippets.get(&arg) {
            Some(body) => {
                let body = body.clone();
                let instance = self.enter(Origin::Snippet(arg), parent, &loc)?;
                body.into_iter().map(|t| Token { instance, ..t }).collect()
            }
            None => self.import_files(&arg, parent, &loc)?,
        };
        self.tokens.splice(at..at + 2, imported);
        Ok(())
    }

    /// A new expansion under `parent`, unless `origin` is already being expanded there.
    fn enter(&mut self, origin: Origin, parent: usize, loc: &Loc) -> Result<usize, Error> {
        let mut chain = vec![origin.to_string()];
        let mut cursor = Some(parent);
        let mut cycle = false;
        while let Some(i) = cursor {
            chain.push(self.instances[i].origin.to_string());
            cycle |= self.instances[i].origin == origin;
            cursor = self.instances[i].parent;
        }
        if cycle {
            let end = chain.iter().rposition(|o| *o == chain[0]).unwrap_or(0);
            chain.truncate(end + 1);
            chain.reverse();
            return Err(error(
                loc,
                format!("import cycle: {}", chain.join(" imports ")),
            ));
        }
        Ok(self.instance(origin, Some(parent)))
    }

    fn import_files(
        &mut self,
        pattern: &str,
        parent: usize,
        loc: &Loc,
    ) -> Result<Vec<Token>, Error> {
        let base = loc.file.parent().unwrap_or(Path::new("."));
        let full = base.join(pattern);
        let wild = pattern.contains(['*', '?', '[', ']']);
        let files = if !wild {
            if !full.exists() {
                return Err(error(
                    loc,
                    format!("import {pattern}: no such file or snippet"),
                ));
            }
            vec![full]
        } else if pattern.matches('*').count() > 1
            || pattern.matches('?').count() > 1
            || (pattern.contains('[') && pattern.contains(']'))
        {
            return Err(error(
                loc,
                format!("import {pattern}: a glob may hold one `*` and one `?`, and no `[…]`"),
            ));
        } else {
            glob(&full)
        };
        let mut out = Vec::new();
        for path in files {
            if path.is_dir() {
                return Err(error(
                    loc,
                    format!("import {}: is a directory", path.display()),
                ));
            }
            let instance = self.enter(Origin::File(canonical(&path)), parent, loc)?;
            let text = self
                .read(&path)
                .map_err(|e| error(loc, format!("import {}: {e}", path.display())))?;
            out.extend(self.tokens_of(&text, &Arc::from(path.as_path()), instance)?);
        }
        Ok(out)
    }
}

fn snippet_name(key: &str) -> Option<String> {
    key.strip_prefix('(')
        .and_then(|k| k.strip_suffix(')'))
        .map(str::to_owned)
}

/// Caddy's `replaceEnvReferences`: every `START NAME END` becomes `$NAME` (empty when unset).
fn replace_env(text: &str, start: &str, end: &str, env: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(start) {
        let after = &rest[i + start.len()..];
        let Some(j) = after.find(end).filter(|j| *j > 0) else {
            break;
        };
        out.push_str(&rest[..i]);
        out.push_str(env.get(&after[..j]).map_or("", String::as_str));
        rest = &after[j + end.len()..];
    }
    out.push_str(rest);
    out
}

/// Go's `filepath.Glob` for patterns with `*` and `?`: matches in lexical order.
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::new()];
    for component in pattern.components() {
        let part = component.as_os_str().to_string_lossy();
        let wild = matches!(component, Component::Normal(_)) && part.contains(['*', '?']);
        if !wild {
            found.iter_mut().for_each(|p| p.push(component));
            continue;
        }
        let mut next = Vec::new();
        for dir in &found {
            let listing = std::fs::read_dir(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            });
            let mut names: Vec<String> = listing
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| wildcard(&part, name))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| dir.join(n)));
        }
        found = next;
    }
    found.retain(|p| p.exists());
    found
}

/// `*` matches any run of characters, `?` any one character.
fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        match p.get(i) {
            Some('*') => {
                star = Some((i, j));
                i += 1;
            }
            Some(c) if *c == '?' || *c == n[j] => {
                i += 1;
                j += 1;
            }
            _ => match star {
                Some((si, sj)) => {
                    i = si + 1;
                    j = sj + 1;
                    star = Some((si, sj + 1));
                }
                None => return false,
            },
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests;
