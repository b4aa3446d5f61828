//! Splits one file into tokens as Caddy's caddyfile lexer does: words are separated by white
//! space; a word that starts with `"` runs to the closing `"` (which `\"` escapes; new lines
//! included); `#` outside quotes comments out the rest of the line, also in the middle of a
//! word; a leading byte order mark and `\r` are ignored. `{` and `}` are braces only as words of
//! their own, so `{$VAR}` or a regex such as `a{2}` stays one word.

/// A word and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Lexeme {
    pub text: String,
    /// The line it starts on (1-based).
    pub line: usize,
    /// The line it ends on: later than `line` only for a quoted word with new lines inside.
    pub end_line: usize,
    /// It was quoted: never a brace, `import` or a comment.
    pub quoted: bool,
}

/// A quote that is never closed: the line it opens on.
#[derive(Debug, PartialEq)]
pub struct Unterminated(pub usize);

pub fn lex(text: &str) -> Result<Vec<Lexeme>, Unterminated> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    let mut word: Option<Lexeme> = None;
    let mut comment = false;
    while let Some(c) = chars.next() {
        match c {
            '\r' => {}
            '\n' => {
                out.extend(word.take());
                line += 1;
                comment = false;
            }
            _ if comment => {}
            c if c.is_whitespace() => out.extend(word.take()),
            '#' => {
                out.extend(word.take());
                comment = true;
            }
            '"' if word.is_none() => {
                let start = line;
                let mut text = String::new();
                loop {
                    match chars.next() {
                        None => return Err(Unterminated(start)),
                        Some('"') => break,
                        Some('\\') if chars.peek() == Some(&'"') => {
                            chars.next();
                            text.push('"');
                        }
                        Some('\n') => {
                            line += 1;
                            text.push('\n');
                        }
                        Some('\r') => {}
                        Some(c) => text.push(c),
                    }
                }
                out.push(Lexeme {
                    text,
                    line: start,
                    end_line: line,
                    quoted: true,
                });
            }
            c => word
                .get_or_insert_with(|| Lexeme {
                    text: String::new(),
                    line,
                    end_line: line,
                    quoted: false,
                })
                .text
                .push(c),
        }
    }
    out.extend(word);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<(usize, String, bool)> {
        lex(text)
            .unwrap()
            .into_iter()
            .map(|l| (l.line, l.text, l.quoted))
            .collect()
    }

    #[test]
    fn words_lines_quotes_and_comments() {
        let text = "\u{feff}.:53 {  # comment\r\n  forward . \"a b\"#x\n  template x{2} \"q\\\"{\"\n}#end\n";
        assert_eq!(
            words(text),
            [
                (1, ".:53".into(), false),
                (1, "{".into(), false),
                (2, "forward".into(), false),
                (2, ".".into(), false),
                (2, "a b".into(), true),
                (3, "template".into(), false),
                (3, "x{2}".into(), false),
                (3, "q\"{".into(), true),
                (4, "}".into(), false),
            ]
        );
    }

    #[test]
    fn a_hash_inside_a_word_starts_a_comment_and_a_quote_inside_a_word_is_literal() {
        assert_eq!(
            words("ab#cd ef\nx\"y\" z"),
            [
                (1, "ab".into(), false),
                (2, "x\"y\"".into(), false),
                (2, "z".into(), false)
            ]
        );
    }

    #[test]
    fn a_quoted_word_may_span_lines_and_an_open_quote_is_an_error() {
        let l = lex("a \"b\nc\" d").unwrap();
        assert_eq!((l[1].line, l[1].end_line, l[2].line), (1, 2, 2));
        assert_eq!(lex("a\n\"open\n").unwrap_err(), Unterminated(2));
    }
}
