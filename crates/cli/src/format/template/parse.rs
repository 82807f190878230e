//! Parser for Go's `text/template` grammar into a small tree.

use std::collections::HashMap;

use super::lex::{Keyword, Tok, Token};
use super::value::Value;
use super::TemplateError;

/// A node of the template tree.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    With(Branch),
    Range(Branch),
    Break,
    Continue,
    Template {
        name: String,
        pipe: Option<Pipe>,
        line: usize,
    },
}

/// `if`/`with`/`range` with their bodies.
#[derive(Debug, Clone)]
pub(crate) struct Branch {
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

/// A pipeline: optional variable declarations, then commands joined by `|`.
#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub decl: Vec<String>,
    pub is_assign: bool,
    pub cmds: Vec<Cmd>,
    pub line: usize,
}

/// One command: operands separated by spaces.
#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    pub args: Vec<Term>,
    pub line: usize,
}

/// An operand.
#[derive(Debug, Clone)]
pub(crate) enum Term {
    /// `.A.B`, with where it starts (line, byte column) for error messages.
    Field(Vec<String>, (usize, usize)),
    Var(String, Vec<String>),
    Dot,
    Nil,
    Bool(bool),
    Str(String),
    Const(Value),
    Ident(String),
    Pipe(Box<Pipe>),
    Chain(Box<Term>, Vec<String>),
}

/// How a list ended.
enum Stop {
    End,
    Else(usize),
    Eof,
}

pub(crate) struct Parser<'a> {
    toks: Vec<Token>,
    pos: usize,
    funcs: &'a dyn Fn(&str) -> bool,
    pub defines: HashMap<String, Vec<Node>>,
    range_depth: usize,
    vars: Vec<String>,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(toks: Vec<Token>, funcs: &'a dyn Fn(&str) -> bool) -> Self {
        Parser {
            toks,
            pos: 0,
            funcs,
            defines: HashMap::new(),
            range_depth: 0,
            vars: vec!["$".to_string()],
        }
    }

    fn peek(&self) -> &Tok {
        self.toks.get(self.pos).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn line(&self) -> usize {
        self.toks
            .get(self.pos)
            .or_else(|| self.toks.last())
            .map_or(1, |t| t.line)
    }

    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn skip_space(&mut self) {
        while *self.peek() == Tok::Space {
            self.pos += 1;
        }
    }

    fn err(&self, msg: impl Into<String>) -> TemplateError {
        TemplateError::parse(self.line(), msg)
    }

    fn expect_close(&mut self, ctx: &str) -> Result<(), TemplateError> {
        self.skip_space();
        match self.next() {
            Tok::Close => Ok(()),
            t => Err(self.err(format!("unexpected {} in {ctx}", describe(&t)))),
        }
    }

    /// Parses the whole template.
    pub(crate) fn parse_root(&mut self) -> Result<Vec<Node>, TemplateError> {
        let (list, stop) = self.parse_list()?;
        match stop {
            Stop::Eof => Ok(list),
            Stop::End => Err(self.err("unexpected {{end}}")),
            Stop::Else(_) => Err(self.err("unexpected {{else}}")),
        }
    }

    fn parse_list(&mut self) -> Result<(Vec<Node>, Stop), TemplateError> {
        let mut nodes = Vec::new();
        loop {
            match self.next() {
                Tok::Eof => return Ok((nodes, Stop::Eof)),
                Tok::Text(t) => nodes.push(Node::Text(t)),
                Tok::Open => {
                    self.skip_space();
                    let line = self.line();
                    match self.peek().clone() {
                        Tok::Kw(Keyword::End) => {
                            self.pos += 1;
                            self.expect_close("end")?;
                            return Ok((nodes, Stop::End));
                        }
                        Tok::Kw(Keyword::Else) => {
                            self.pos += 1;
                            return Ok((nodes, Stop::Else(line)));
                        }
                        Tok::Kw(Keyword::If) => {
                            self.pos += 1;
                            nodes.push(Node::If(self.parse_control("if")?));
                        }
                        Tok::Kw(Keyword::With) => {
                            self.pos += 1;
                            nodes.push(Node::With(self.parse_control("with")?));
                        }
                        Tok::Kw(Keyword::Range) => {
                            self.pos += 1;
                            self.range_depth += 1;
                            let b = self.parse_control("range");
                            self.range_depth -= 1;
                            nodes.push(Node::Range(b?));
                        }
                        Tok::Kw(Keyword::Break) | Tok::Kw(Keyword::Continue) => {
                            let is_break = *self.peek() == Tok::Kw(Keyword::Break);
                            self.pos += 1;
                            if self.range_depth == 0 {
                                let w = if is_break { "break" } else { "continue" };
                                return Err(self.err(format!("{{{{{w}}}}} outside {{{{range}}}}")));
                            }
                            self.expect_close(if is_break { "break" } else { "continue" })?;
                            nodes.push(if is_break {
                                Node::Break
                            } else {
                                Node::Continue
                            });
                        }
                        Tok::Kw(Keyword::Define) => {
                            self.pos += 1;
                            self.parse_define()?;
                        }
                        Tok::Kw(Keyword::Template) | Tok::Kw(Keyword::Block) => {
                            let block = *self.peek() == Tok::Kw(Keyword::Block);
                            self.pos += 1;
                            nodes.push(self.parse_template(block, line)?);
                        }
                        _ => {
                            let pipe = self.parse_pipe("command", Tok::Close)?;
                            nodes.push(Node::Action(pipe));
                        }
                    }
                }
                t => return Err(self.err(format!("unexpected {}", describe(&t)))),
            }
        }
    }

    fn template_name(&mut self, ctx: &str) -> Result<String, TemplateError> {
        self.skip_space();
        match self.next() {
            Tok::Str(s) => Ok(s),
            t => Err(self.err(format!("unexpected {} in {ctx} clause", describe(&t)))),
        }
    }

    fn parse_define(&mut self) -> Result<(), TemplateError> {
        let name = self.template_name("define")?;
        self.expect_close("define clause")?;
        let (list, stop) = self.parse_list()?;
        if !matches!(stop, Stop::End) {
            return Err(self.err("unexpected EOF"));
        }
        self.defines.insert(name, list);
        Ok(())
    }

    fn parse_template(&mut self, block: bool, line: usize) -> Result<Node, TemplateError> {
        let ctx = if block { "block" } else { "template" };
        let name = self.template_name(ctx)?;
        self.skip_space();
        let pipe = if *self.peek() == Tok::Close {
            self.pos += 1;
            None
        } else {
            Some(self.parse_pipe(ctx, Tok::Close)?)
        };
        if block {
            let (list, stop) = self.parse_list()?;
            if !matches!(stop, Stop::End) {
                return Err(self.err("unexpected EOF"));
            }
            self.defines.insert(name.clone(), list);
        }
        Ok(Node::Template { name, pipe, line })
    }

    fn parse_control(&mut self, ctx: &str) -> Result<Branch, TemplateError> {
        let mark = self.vars.len();
        let pipe = self.parse_pipe(ctx, Tok::Close)?;
        let (list, stop) = self.parse_list()?;
        let else_list = match stop {
            Stop::End => None,
            Stop::Eof => return Err(self.err("unexpected EOF")),
            Stop::Else(line) => {
                self.skip_space();
                match self.peek().clone() {
                    Tok::Kw(Keyword::If) if ctx == "if" => {
                        self.pos += 1;
                        Some(vec![Node::If(self.parse_control("if")?)])
                    }
                    Tok::Kw(Keyword::With) if ctx == "with" => {
                        self.pos += 1;
                        Some(vec![Node::With(self.parse_control("with")?)])
                    }
                    _ => {
                        self.expect_close("else")?;
                        let (elist, stop) = self.parse_list()?;
                        match stop {
                            Stop::End => Some(elist),
                            Stop::Else(_) => {
                                return Err(TemplateError::parse(
                                    line,
                                    "expected end; found {{else}}",
                                ))
                            }
                            Stop::Eof => return Err(self.err("unexpected EOF")),
                        }
                    }
                }
            }
        };
        self.vars.truncate(mark);
        Ok(Branch {
            pipe,
            list,
            else_list,
        })
    }

    fn parse_pipe(&mut self, ctx: &str, end: Tok) -> Result<Pipe, TemplateError> {
        self.skip_space();
        let line = self.line();
        let mut decl = Vec::new();
        let mut is_assign = false;
        if let Tok::Var(v) = self.peek().clone() {
            let save = self.pos;
            self.pos += 1;
            self.skip_space();
            match self.peek().clone() {
                Tok::Declare | Tok::Assign => {
                    is_assign = *self.peek() == Tok::Assign;
                    self.pos += 1;
                    decl.push(v);
                }
                Tok::Comma if ctx == "range" => {
                    self.pos += 1;
                    self.skip_space();
                    let Tok::Var(v2) = self.next() else {
                        return Err(self.err("range can only initialize variables"));
                    };
                    self.skip_space();
                    match self.next() {
                        Tok::Declare => {}
                        Tok::Assign => is_assign = true,
                        t => {
                            return Err(self
                                .err(format!("unexpected {} in range declaration", describe(&t))))
                        }
                    }
                    decl.push(v);
                    decl.push(v2);
                }
                _ => self.pos = save,
            }
        }
        let mut cmds = Vec::new();
        loop {
            self.skip_space();
            let t = self.peek().clone();
            if t == end {
                self.pos += 1;
                break;
            }
            match t {
                Tok::Eof => return Err(self.err(format!("unclosed action in {ctx}"))),
                Tok::Close | Tok::RParen => {
                    return Err(self.err(format!("unexpected {} in {ctx}", describe(&t))))
                }
                _ => {}
            }
            let cmd = self.parse_cmd(&end)?;
            cmds.push(cmd);
            self.skip_space();
            if *self.peek() == Tok::Pipe {
                self.pos += 1;
                self.skip_space();
                if *self.peek() == end {
                    return Err(self.err("missing command after |"));
                }
            }
        }
        if cmds.is_empty() {
            return Err(self.err(format!("missing value for {ctx}")));
        }
        if !is_assign {
            for d in &decl {
                self.vars.push(d.clone());
            }
        }
        Ok(Pipe {
            decl,
            is_assign,
            cmds,
            line,
        })
    }

    fn parse_cmd(&mut self, end: &Tok) -> Result<Cmd, TemplateError> {
        let line = self.line();
        let mut args = Vec::new();
        loop {
            self.skip_space();
            let t = self.peek().clone();
            if t == *end || t == Tok::Pipe {
                break;
            }
            match self.parse_operand()? {
                Some(term) => args.push(term),
                None => {
                    return Err(self.err(format!("unexpected {} in operand", describe(&t))));
                }
            }
            match self.peek() {
                Tok::Space => {}
                t if t == end || *t == Tok::Pipe => break,
                t => return Err(self.err(format!("unexpected {} in operand", describe(t)))),
            }
        }
        if args.is_empty() {
            return Err(self.err("empty command"));
        }
        Ok(Cmd { args, line })
    }

    fn parse_operand(&mut self) -> Result<Option<Term>, TemplateError> {
        let Some(term) = self.parse_term()? else {
            return Ok(None);
        };
        let mut fields = Vec::new();
        while let Tok::Field(f) = self.peek().clone() {
            self.pos += 1;
            fields.push(f);
        }
        if fields.is_empty() {
            return Ok(Some(term));
        }
        Ok(Some(match term {
            Term::Field(mut f, at) => {
                f.extend(fields);
                Term::Field(f, at)
            }
            Term::Var(v, mut f) => {
                f.extend(fields);
                Term::Var(v, f)
            }
            Term::Bool(_) | Term::Str(_) | Term::Const(_) | Term::Nil | Term::Dot => {
                return Err(self.err("unexpected . after term"));
            }
            other => Term::Chain(Box::new(other), fields),
        }))
    }

    fn parse_term(&mut self) -> Result<Option<Term>, TemplateError> {
        let t = self.peek().clone();
        let term = match t {
            Tok::Ident(name) => {
                if !(self.funcs)(&name) {
                    return Err(self.err(format!("function {name:?} not defined")));
                }
                Term::Ident(name)
            }
            Tok::Dot => Term::Dot,
            Tok::Nil => Term::Nil,
            Tok::Var(v) => {
                if !self.vars.contains(&v) {
                    return Err(self.err(format!("undefined variable {v:?}")));
                }
                Term::Var(v, Vec::new())
            }
            Tok::Field(f) => {
                let at = self.toks.get(self.pos).map_or((1, 0), |t| (t.line, t.col));
                Term::Field(vec![f], at)
            }
            Tok::Bool(b) => Term::Bool(b),
            Tok::Str(s) => Term::Str(s),
            Tok::Char(c) => Term::Const(Value::Int(c as i64)),
            Tok::Num(n) => Term::Const(
                parse_number(&n).ok_or_else(|| self.err(format!("bad number syntax: {n:?}")))?,
            ),
            Tok::LParen => {
                self.pos += 1;
                let p = self.parse_pipe("parenthesized pipeline", Tok::RParen)?;
                return Ok(Some(Term::Pipe(Box::new(p))));
            }
            _ => return Ok(None),
        };
        self.pos += 1;
        Ok(Some(term))
    }
}

fn parse_number(s: &str) -> Option<Value> {
    let clean = s.replace('_', "");
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let lower = body.to_ascii_lowercase();
    let radix = if lower.starts_with("0x") {
        Some((16, &body[2..]))
    } else if lower.starts_with("0o") {
        Some((8, &body[2..]))
    } else if lower.starts_with("0b") {
        Some((2, &body[2..]))
    } else {
        None
    };
    if let Some((r, digits)) = radix {
        let n = i64::from_str_radix(digits, r).ok()?;
        return Some(Value::Int(if neg { -n } else { n }));
    }
    if let Ok(n) = body.parse::<i64>() {
        return Some(Value::Int(if neg { -n } else { n }));
    }
    if let Ok(n) = body.parse::<u64>() {
        return if neg { None } else { Some(Value::Uint(n)) };
    }
    let f = body.parse::<f64>().ok()?;
    Some(Value::Float(if neg { -f } else { f }))
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Text(_) => "text".into(),
        Tok::Open => "\"{{\"".into(),
        Tok::Close => "\"}}\"".into(),
        Tok::Space => "space".into(),
        Tok::Field(f) => format!("<.{f}>"),
        Tok::Var(v) => format!("<{v}>"),
        Tok::Dot => "<.>".into(),
        Tok::Str(s) => format!("{s:?}"),
        Tok::Num(n) => format!("<{n}>"),
        Tok::Char(c) => format!("{c:?}"),
        Tok::Bool(b) => format!("<{b}>"),
        Tok::Nil => "<nil>".into(),
        Tok::Ident(i) => format!("<{i}>"),
        Tok::Kw(k) => format!("<{}>", format!("{k:?}").to_lowercase()),
        Tok::Pipe => "\"|\"".into(),
        Tok::LParen => "\"(\"".into(),
        Tok::RParen => "\")\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "\",\"".into(),
        Tok::Eof => "EOF".into(),
    }
}
