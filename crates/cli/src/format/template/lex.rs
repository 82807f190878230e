//! Tokenizer for Go's `text/template` syntax (default `{{` `}}` delimiters,
//! trim markers `{{- ` / ` -}}`, comments `{{/* */}}`).

use super::TemplateError;

/// Keywords that start or end control structures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    If,
    Else,
    End,
    Range,
    With,
    Define,
    Template,
    Block,
    Break,
    Continue,
}

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Text(String),
    Open,
    Close,
    Space,
    Field(String),
    Var(String),
    Dot,
    Str(String),
    Num(String),
    Char(char),
    Bool(bool),
    Nil,
    Ident(String),
    Kw(Keyword),
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    Eof,
}

/// A token with the line it starts on (1-based) and its byte offset in that line
/// (0-based, as Go's `ErrorContext` counts).
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: usize,
    pub col: usize,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

struct Lexer<'a> {
    src: &'a [char],
    pos: usize,
    line: usize,
    out: Vec<Token>,
    /// Where the token being lexed starts.
    tok_start: usize,
}

impl Lexer<'_> {
    fn starts_with(&self, at: usize, pat: &str) -> bool {
        pat.chars()
            .enumerate()
            .all(|(k, c)| self.src.get(at + k) == Some(&c))
    }

    fn find(&self, from: usize, pat: &str) -> Option<usize> {
        (from..self.src.len()).find(|&i| self.starts_with(i, pat))
    }

    fn emit(&mut self, tok: Tok, line: usize) {
        let start = self.tok_start.min(self.src.len());
        let col = self.src[..start]
            .iter()
            .rev()
            .take_while(|&&c| c != '\n')
            .map(|c| c.len_utf8())
            .sum();
        self.out.push(Token { tok, line, col });
    }

    fn count_lines(&mut self, from: usize, to: usize) {
        self.line += self.src[from..to].iter().filter(|&&c| c == '\n').count();
    }

    fn err(&self, msg: impl Into<String>) -> TemplateError {
        TemplateError::parse(self.line, msg)
    }

    fn run(mut self) -> Result<Vec<Token>, TemplateError> {
        let mut trim_next_text = false;
        loop {
            let start = self.pos;
            let open = self.find(start, "{{");
            let end = open.unwrap_or(self.src.len());
            let mut text: String = self.src[start..end].iter().collect();
            if trim_next_text {
                text = text.trim_start_matches(is_space).to_string();
            }
            let mut action = end + 2;
            if open.is_some()
                && self.src.get(end + 2) == Some(&'-')
                && self.src.get(end + 3).is_some_and(|c| is_space(*c))
            {
                text = text.trim_end_matches(is_space).to_string();
                action = end + 4;
            }
            let text_line = self.line;
            self.count_lines(start, end);
            if !text.is_empty() {
                self.tok_start = start;
                self.emit(Tok::Text(text), text_line);
            }
            if open.is_none() {
                break;
            }
            self.pos = action;
            trim_next_text = if self.starts_with(self.pos, "/*") {
                self.comment()?
            } else {
                self.tok_start = end;
                self.emit(Tok::Open, self.line);
                self.action()?
            };
        }
        self.tok_start = self.pos;
        self.emit(Tok::Eof, self.line);
        Ok(self.out)
    }

    /// Skips a comment; returns whether it ended with a right trim marker.
    fn comment(&mut self) -> Result<bool, TemplateError> {
        let Some(close) = self.find(self.pos + 2, "*/") else {
            return Err(self.err("unclosed comment"));
        };
        self.count_lines(self.pos, close);
        self.pos = close + 2;
        if self.src.get(self.pos).is_some_and(|c| is_space(*c))
            && self.starts_with(self.pos + 1, "-}}")
        {
            self.pos += 4;
            return Ok(true);
        }
        if self.starts_with(self.pos, "}}") {
            self.pos += 2;
            return Ok(false);
        }
        Err(self.err("comment ends before closing delimiter"))
    }

    /// Lexes the inside of an action; returns whether it ended with ` -}}`.
    fn action(&mut self) -> Result<bool, TemplateError> {
        let mut parens = 0usize;
        loop {
            let Some(&c) = self.src.get(self.pos) else {
                return Err(self.err("unclosed action"));
            };
            let line = self.line;
            self.tok_start = self.pos;
            if self.starts_with(self.pos, "}}") {
                if parens > 0 {
                    return Err(self.err("unclosed left paren"));
                }
                self.pos += 2;
                self.emit(Tok::Close, line);
                return Ok(false);
            }
            if is_space(c) {
                let start = self.pos;
                while self.src.get(self.pos).is_some_and(|c| is_space(*c)) {
                    self.pos += 1;
                }
                self.count_lines(start, self.pos);
                if self.starts_with(self.pos, "-}}") {
                    if parens > 0 {
                        return Err(self.err("unclosed left paren"));
                    }
                    self.pos += 3;
                    self.emit(Tok::Close, line);
                    return Ok(true);
                }
                self.emit(Tok::Space, line);
                continue;
            }
            match c {
                '|' => {
                    self.pos += 1;
                    self.emit(Tok::Pipe, line);
                }
                '(' => {
                    self.pos += 1;
                    parens += 1;
                    self.emit(Tok::LParen, line);
                }
                ')' => {
                    if parens == 0 {
                        return Err(self.err("unexpected right paren"));
                    }
                    parens -= 1;
                    self.pos += 1;
                    self.emit(Tok::RParen, line);
                }
                ',' => {
                    self.pos += 1;
                    self.emit(Tok::Comma, line);
                }
                ':' => {
                    if self.src.get(self.pos + 1) != Some(&'=') {
                        return Err(self.err("expected :="));
                    }
                    self.pos += 2;
                    self.emit(Tok::Declare, line);
                }
                '=' => {
                    self.pos += 1;
                    self.emit(Tok::Assign, line);
                }
                '"' => {
                    let s = self.quoted()?;
                    self.emit(Tok::Str(s), line);
                }
                '`' => {
                    let Some(close) = self.find(self.pos + 1, "`") else {
                        return Err(self.err("unterminated raw quoted string"));
                    };
                    let s: String = self.src[self.pos + 1..close].iter().collect();
                    self.count_lines(self.pos, close);
                    self.pos = close + 1;
                    self.emit(Tok::Str(s), line);
                }
                '\'' => {
                    let ch = self.char_constant()?;
                    self.emit(Tok::Char(ch), line);
                }
                '$' => {
                    let start = self.pos;
                    self.pos += 1;
                    while self.src.get(self.pos).is_some_and(|c| is_alnum(*c)) {
                        self.pos += 1;
                    }
                    let name: String = self.src[start..self.pos].iter().collect();
                    self.emit(Tok::Var(name), line);
                }
                '.' => {
                    let next = self.src.get(self.pos + 1).copied();
                    if next.is_some_and(|c| c.is_ascii_digit()) {
                        let n = self.number();
                        self.emit(Tok::Num(n), line);
                    } else if next.is_some_and(is_alnum) {
                        self.pos += 1;
                        let start = self.pos;
                        while self.src.get(self.pos).is_some_and(|c| is_alnum(*c)) {
                            self.pos += 1;
                        }
                        let name: String = self.src[start..self.pos].iter().collect();
                        self.emit(Tok::Field(name), line);
                    } else {
                        self.pos += 1;
                        self.emit(Tok::Dot, line);
                    }
                }
                '+' | '-' | '0'..='9' => {
                    if !c.is_ascii_digit()
                        && !self
                            .src
                            .get(self.pos + 1)
                            .is_some_and(|d| d.is_ascii_digit() || *d == '.')
                    {
                        return Err(self.err(format!("unexpected \"{c}\" in command")));
                    }
                    let n = self.number();
                    self.emit(Tok::Num(n), line);
                }
                c if is_alnum(c) => {
                    let start = self.pos;
                    while self.src.get(self.pos).is_some_and(|c| is_alnum(*c)) {
                        self.pos += 1;
                    }
                    let word: String = self.src[start..self.pos].iter().collect();
                    let tok = match word.as_str() {
                        "if" => Tok::Kw(Keyword::If),
                        "else" => Tok::Kw(Keyword::Else),
                        "end" => Tok::Kw(Keyword::End),
                        "range" => Tok::Kw(Keyword::Range),
                        "with" => Tok::Kw(Keyword::With),
                        "define" => Tok::Kw(Keyword::Define),
                        "template" => Tok::Kw(Keyword::Template),
                        "block" => Tok::Kw(Keyword::Block),
                        "break" => Tok::Kw(Keyword::Break),
                        "continue" => Tok::Kw(Keyword::Continue),
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        _ => Tok::Ident(word),
                    };
                    self.emit(tok, line);
                }
                other => {
                    return Err(self.err(format!("unexpected {other:?} in command")));
                }
            }
        }
    }

    fn number(&mut self) -> String {
        let start = self.pos;
        if matches!(self.src.get(self.pos), Some('+') | Some('-')) {
            self.pos += 1;
        }
        while let Some(&c) = self.src.get(self.pos) {
            let prev = if self.pos > start {
                self.src[self.pos - 1]
            } else {
                ' '
            };
            let ok = c.is_ascii_alphanumeric()
                || c == '_'
                || c == '.'
                || ((c == '+' || c == '-') && matches!(prev, 'e' | 'E' | 'p' | 'P'));
            if !ok {
                break;
            }
            self.pos += 1;
        }
        self.src[start..self.pos].iter().collect()
    }

    fn quoted(&mut self) -> Result<String, TemplateError> {
        let mut out = String::new();
        self.pos += 1;
        loop {
            let Some(&c) = self.src.get(self.pos) else {
                return Err(self.err("unterminated quoted string"));
            };
            self.pos += 1;
            match c {
                '"' => return Ok(out),
                '\n' => return Err(self.err("unterminated quoted string")),
                '\\' => {
                    let ch = self.escape('"')?;
                    out.push(ch);
                }
                c => out.push(c),
            }
        }
    }

    fn char_constant(&mut self) -> Result<char, TemplateError> {
        self.pos += 1;
        let Some(&c) = self.src.get(self.pos) else {
            return Err(self.err("unterminated character constant"));
        };
        self.pos += 1;
        let ch = if c == '\\' { self.escape('\'')? } else { c };
        if self.src.get(self.pos) != Some(&'\'') {
            return Err(self.err("unterminated character constant"));
        }
        self.pos += 1;
        Ok(ch)
    }

    fn hex(&mut self, n: usize) -> Result<u32, TemplateError> {
        let digits: String = self
            .src
            .get(self.pos..self.pos + n)
            .ok_or_else(|| self.err("invalid syntax"))?
            .iter()
            .collect();
        self.pos += n;
        u32::from_str_radix(&digits, 16).map_err(|_| self.err("invalid syntax"))
    }

    fn escape(&mut self, quote: char) -> Result<char, TemplateError> {
        let Some(&c) = self.src.get(self.pos) else {
            return Err(self.err("unterminated quoted string"));
        };
        self.pos += 1;
        let ch = match c {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'v' => '\u{b}',
            '\\' => '\\',
            'x' => char::from_u32(self.hex(2)?).ok_or_else(|| self.err("invalid syntax"))?,
            'u' => char::from_u32(self.hex(4)?).ok_or_else(|| self.err("invalid syntax"))?,
            'U' => char::from_u32(self.hex(8)?).ok_or_else(|| self.err("invalid syntax"))?,
            '0'..='7' => {
                let digits: String = self
                    .src
                    .get(self.pos - 1..self.pos + 2)
                    .ok_or_else(|| self.err("invalid syntax"))?
                    .iter()
                    .collect();
                self.pos += 2;
                let n = u32::from_str_radix(&digits, 8).map_err(|_| self.err("invalid syntax"))?;
                char::from_u32(n).ok_or_else(|| self.err("invalid syntax"))?
            }
            c if c == quote => c,
            _ => return Err(self.err("invalid syntax")),
        };
        Ok(ch)
    }
}

/// Splits a template into tokens.
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, TemplateError> {
    let chars: Vec<char> = src.chars().collect();
    Lexer {
        src: &chars,
        pos: 0,
        line: 1,
        out: Vec::new(),
        tok_start: 0,
    }
    .run()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn lexes_fields_vars_and_trim() {
        assert_eq!(
            toks("a {{- .A.B $x -}} b"),
            vec![
                Tok::Text("a".into()),
                Tok::Open,
                Tok::Field("A".into()),
                Tok::Field("B".into()),
                Tok::Space,
                Tok::Var("$x".into()),
                Tok::Close,
                Tok::Text("b".into()),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks(r#"{{index . "a\tb"}}{{/* c */}}x"#),
            vec![
                Tok::Open,
                Tok::Ident("index".into()),
                Tok::Space,
                Tok::Dot,
                Tok::Space,
                Tok::Str("a\tb".into()),
                Tok::Close,
                Tok::Text("x".into()),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("{{-3}}"),
            vec![Tok::Open, Tok::Num("-3".into()), Tok::Close, Tok::Eof]
        );
    }

    #[test]
    fn lex_errors() {
        assert!(lex("{{.A").is_err());
        assert!(lex("{{\"abc}}").is_err());
        assert!(lex("{{/* x").is_err());
    }
}
