//! HOCON text to a JSON tree, plus the line on which each key was assigned.
//!
//! `hocon-parser` stops reading an unbraced document at a stray `}` and returns what it
//! read so far (`a = 1 } b = 2` yields only `a`). A half-read config could turn a
//! switch back on, so every successful parse is followed by a bracket-balance check
//! over the same tokens. `include` is refused: included files would escape that check.

use std::collections::HashMap;
use std::path::Path;

use hocon::{HoconValue, ParseOptions, ScalarType, Token, TokenKind};
use serde_json::{Map, Value};

/// A syntax problem at a 1-based line and column of the parsed text.
#[derive(Debug)]
pub(crate) struct SyntaxAt {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl SyntaxAt {
    /// A problem at the character that follows `before`.
    fn after(before: &str, message: &str) -> Self {
        let last_line = before.rsplit('\n').next().unwrap_or_default();
        Self {
            line: before.matches('\n').count() + 1,
            column: last_line.chars().count() + 1,
            message: message.to_owned(),
        }
    }

    /// The error of a file at `path` with this problem.
    pub(crate) fn in_file(self, path: &Path) -> crate::ConfigError {
        crate::ConfigError::Syntax {
            path: path.to_path_buf(),
            line: self.line,
            column: self.column,
            message: self.message,
        }
    }
}

/// The text of a config file, or where it stops being UTF-8.
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, SyntaxAt> {
    std::str::from_utf8(bytes).map_err(|error| {
        let valid = String::from_utf8_lossy(&bytes[..error.valid_up_to()]);
        SyntaxAt::after(&valid, "invalid UTF-8")
    })
}

/// Key path (segments) -> line of the assignment that set it last.
pub(crate) type KeyLines = HashMap<Vec<String>, usize>;

/// A fully parsed HOCON document.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    pub tree: Value,
    pub lines: KeyLines,
}

/// Parses a whole config document. `${VAR}` substitutions resolve against `env` only,
/// never the process environment, so loading stays reproducible in tests.
pub(crate) fn parse_document(
    text: &str,
    path: &Path,
    env: &HashMap<String, String>,
) -> Result<Document, SyntaxAt> {
    // The parser would take a NUL into an unquoted value, silently.
    if let Some(nul) = text.find('\0') {
        return Err(SyntaxAt::after(&text[..nul], "NUL character"));
    }
    let options = ParseOptions::defaults()
        .with_env(env.clone())
        .with_origin_description(path.display().to_string());
    let (config, lines) = parse_checked(text, options)?;
    Ok(Document {
        tree: Value::Object(config_to_json(&config)),
        lines,
    })
}

/// Parses a single HOCON value (used for `[...]` and `{...}` environment values).
/// Positions in the error are relative to `text`.
pub(crate) fn parse_value(text: &str) -> Result<Value, SyntaxAt> {
    const PREFIX: &str = "v = ";
    let wrapped = format!("{PREFIX}{text}");
    let options = ParseOptions::defaults().with_env(HashMap::new());
    let (config, _) = parse_checked(&wrapped, options).map_err(|mut e| {
        if e.line == 1 {
            e.column = e.column.saturating_sub(PREFIX.len()).max(1);
        }
        e
    })?;
    let mut root = config_to_json(&config);
    match (root.remove("v"), root.is_empty()) {
        (Some(value), true) => Ok(value),
        _ => Err(SyntaxAt {
            line: 1,
            column: 1,
            message: "unexpected content after the value".to_string(),
        }),
    }
}

fn parse_checked(text: &str, options: ParseOptions) -> Result<(hocon::Config, KeyLines), SyntaxAt> {
    let tokens = hocon::tokenize(text).map_err(|e| SyntaxAt {
        line: e.line,
        column: e.col,
        message: e.message,
    })?;
    let config = hocon::parse_string_with_options(text, options).map_err(hocon_error)?;
    check_brackets(&tokens)?;
    let walk = walk_keys(&tokens);
    if let Some(include) = walk.include {
        return Err(syntax_at(
            include,
            "include is not supported; put the settings in this file".to_string(),
        ));
    }
    Ok((config, walk.lines))
}

fn hocon_error(error: hocon::HoconError) -> SyntaxAt {
    match error {
        hocon::HoconError::Parse(e) => SyntaxAt {
            line: e.line,
            column: e.col,
            message: e.message,
        },
        hocon::HoconError::Resolve(e) => SyntaxAt {
            line: e.line,
            column: e.col,
            message: e.message,
        },
        hocon::HoconError::Config(_) => SyntaxAt {
            line: 1,
            column: 1,
            message: "the document must be an object, not a list".to_string(),
        },
        other => SyntaxAt {
            line: 1,
            column: 1,
            message: other.to_string(),
        },
    }
}

/// Refuses any closing bracket without its opener, and any opener never closed.
fn check_brackets(tokens: &[Token]) -> Result<(), SyntaxAt> {
    let mut open: Vec<&Token> = Vec::new();
    for token in tokens {
        let opener = match token.kind {
            TokenKind::LBrace | TokenKind::LBracket => {
                open.push(token);
                continue;
            }
            TokenKind::RBrace => TokenKind::LBrace,
            TokenKind::RBracket => TokenKind::LBracket,
            _ => continue,
        };
        if open.pop().map(|t| &t.kind) != Some(&opener) {
            return Err(syntax_at(token, format!("unexpected {}", token.value)));
        }
    }
    match (open.last(), tokens.last()) {
        (Some(opener), Some(end)) => {
            let closer = if opener.kind == TokenKind::LBrace {
                "}"
            } else {
                "]"
            };
            Err(syntax_at(end, format!("expected {closer}")))
        }
        _ => Ok(()),
    }
}

fn syntax_at(token: &Token, message: String) -> SyntaxAt {
    SyntaxAt {
        line: token.line,
        column: token.col,
        message,
    }
}

fn config_to_json(config: &hocon::Config) -> Map<String, Value> {
    config
        .keys()
        .into_iter()
        .filter_map(|key| {
            // Quoting makes a top-level key containing dots a single path segment.
            let quoted = format!("\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""));
            config.get(&quoted).map(|v| (key.to_string(), to_json(v)))
        })
        .collect()
}

fn to_json(value: &HoconValue) -> Value {
    match value {
        HoconValue::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
        HoconValue::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        HoconValue::Scalar(scalar) => match scalar.value_type {
            ScalarType::Boolean => Value::Bool(scalar.raw == "true"),
            ScalarType::Null => Value::Null,
            ScalarType::Number => scalar
                .raw
                .parse::<serde_json::Number>()
                .map_or_else(|_| Value::String(scalar.raw.clone()), Value::Number),
            _ => Value::String(scalar.raw.clone()),
        },
        // A fused (resolving) parse never leaves placeholders behind.
        _ => Value::Null,
    }
}

/// Records the line of every key assignment, and finds the first `include`, by
/// walking the token stream.
///
/// Runs only on token streams the parser has accepted, so the walk can be simple;
/// anything it does not recognise (concatenations) is skipped, which only costs a
/// line number, never a value.
fn walk_keys(tokens: &[Token]) -> LineWalker<'_> {
    let mut walker = LineWalker {
        tokens,
        pos: 0,
        lines: KeyLines::new(),
        include: None,
    };
    walker.object(&[]);
    walker
}

struct LineWalker<'a> {
    tokens: &'a [Token],
    pos: usize,
    lines: KeyLines,
    include: Option<&'a Token>,
}

impl<'a> LineWalker<'a> {
    fn peek(&self) -> Option<&'a Token> {
        self.tokens.get(self.pos)
    }

    fn peek_is(&self, kinds: &[TokenKind]) -> bool {
        self.peek().is_some_and(|t| kinds.contains(&t.kind))
    }

    fn skip(&mut self, kinds: &[TokenKind]) {
        while self.peek_is(kinds) {
            self.pos += 1;
        }
    }

    /// Reads fields until the closing `}` of this object (consumed) or the end.
    /// Recursion depth is bounded by the parser's own nesting limit.
    fn object(&mut self, prefix: &[String]) {
        loop {
            self.skip(&[TokenKind::Newline, TokenKind::Comma]);
            let Some(token) = self.peek() else { return };
            match token.kind {
                TokenKind::Eof => return,
                TokenKind::RBrace => {
                    self.pos += 1;
                    return;
                }
                // The parser reserves unquoted `include` at a key's start for the directive.
                _ if token.kind == TokenKind::Unquoted && token.value == "include" => {
                    self.include.get_or_insert(token);
                    self.skip_value();
                }
                _ => self.field(prefix, token.line),
            }
        }
    }

    fn field(&mut self, prefix: &[String], line: usize) {
        let key = self.key();
        if key.is_empty() {
            self.skip_value();
            return;
        }
        let path: Vec<String> = prefix.iter().cloned().chain(key).collect();
        self.lines.insert(path.clone(), line);
        self.skip(&[TokenKind::Newline]);
        self.skip(&[TokenKind::Equals, TokenKind::Colon, TokenKind::PlusEquals]);
        self.skip(&[TokenKind::Newline]);
        if self.peek_is(&[TokenKind::LBrace]) {
            self.pos += 1;
            self.object(&path);
        } else {
            self.skip_value();
        }
    }

    /// Builds the key's path segments the way HOCON does: dots split unquoted text,
    /// quoted text is literal, whitespace between key tokens belongs to the key.
    fn key(&mut self) -> Vec<String> {
        let mut segments = Vec::new();
        let mut current = String::new();
        let start = self.pos;
        while let Some(token) = self.peek() {
            if !matches!(token.kind, TokenKind::Unquoted | TokenKind::QuotedString) {
                break;
            }
            if self.pos > start {
                current.push_str(&token.preceding_whitespace);
            }
            if token.kind == TokenKind::QuotedString {
                current.push_str(&token.value);
            } else {
                let mut pieces = token.value.split('.');
                current.push_str(pieces.next().unwrap_or_default());
                for piece in pieces {
                    segments.push(std::mem::take(&mut current));
                    current.push_str(piece);
                }
            }
            self.pos += 1;
        }
        if self.pos > start {
            segments.push(current);
        }
        segments
    }

    /// Skips one value, including nested brackets, up to the end of its field.
    fn skip_value(&mut self) {
        let mut depth = 0usize;
        while let Some(token) = self.peek() {
            match token.kind {
                TokenKind::Eof => return,
                TokenKind::LBrace | TokenKind::LBracket => depth += 1,
                TokenKind::RBrace | TokenKind::RBracket if depth == 0 => return,
                TokenKind::RBrace | TokenKind::RBracket => depth -= 1,
                TokenKind::Newline | TokenKind::Comma if depth == 0 => return,
                _ => {}
            }
            self.pos += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(text: &str) -> KeyLines {
        let tokens = hocon::tokenize(text).expect("test input lexes");
        walk_keys(&tokens).lines
    }

    fn key(path: &[&str]) -> Vec<String> {
        path.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lines_follow_blocks_dots_quotes_and_skip_lists() {
        let lines = lines_of(
            "# c\na {\n  b = 1\n  c.d = [1,\n 2]\n}\n\"x.y\".z = 3\ne = { f = 4 }, g: 5\nh += 6\n",
        );
        assert_eq!(lines.get(&key(&["a"])), Some(&2));
        assert_eq!(lines.get(&key(&["a", "b"])), Some(&3));
        assert_eq!(lines.get(&key(&["a", "c", "d"])), Some(&4));
        assert_eq!(lines.get(&key(&["x.y", "z"])), Some(&7));
        assert_eq!(lines.get(&key(&["e", "f"])), Some(&8));
        assert_eq!(lines.get(&key(&["g"])), Some(&8));
        assert_eq!(lines.get(&key(&["h"])), Some(&9));
    }

    #[test]
    fn later_assignment_wins() {
        let lines = lines_of("a = 1\na = 2\n");
        assert_eq!(lines.get(&key(&["a"])), Some(&2));
    }

    #[test]
    fn bracket_check_refuses_stray_closers() {
        let tokens = hocon::tokenize("a = [1]]\n").expect("lexes");
        let err = check_brackets(&tokens).expect_err("stray ]");
        assert_eq!((err.line, err.column), (1, 8));
    }
}
