//! Execution of a parsed template, following Go's `text/template` semantics.

use std::collections::HashMap;

use super::funcs::{Func, FuncMap};
use super::parse::{Branch, Cmd, Node, Pipe, Term};
use super::value::{OnMissing, Value};
use super::TemplateError;

const MAX_DEPTH: usize = 1000;

pub(crate) enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) struct State<'a> {
    pub defines: &'a HashMap<String, Vec<Node>>,
    pub funcs: &'a FuncMap,
    pub out: &'a mut String,
    pub vars: Vec<(String, Value)>,
    pub depth: usize,
    pub line: usize,
}

type R<T> = Result<T, TemplateError>;

impl State<'_> {
    fn err(&self, msg: impl Into<String>) -> TemplateError {
        TemplateError::exec(self.line, msg)
    }

    pub(crate) fn walk_list(&mut self, list: &[Node], dot: &Value) -> R<Flow> {
        for n in list {
            match self.walk(n, dot)? {
                Flow::Normal => {}
                f => return Ok(f),
            }
        }
        Ok(Flow::Normal)
    }

    pub(crate) fn run(&mut self, list: &[Node], dot: &Value) -> R<()> {
        self.walk_list(list, dot).map(|_| ())
    }

    fn walk(&mut self, node: &Node, dot: &Value) -> R<Flow> {
        match node {
            Node::Text(t) => {
                self.out.push_str(t);
                Ok(Flow::Normal)
            }
            Node::Action(pipe) => {
                let v = self.eval_pipe(pipe, dot)?;
                if pipe.decl.is_empty() {
                    self.print(&v)?;
                }
                Ok(Flow::Normal)
            }
            Node::If(b) => self.walk_if_with(b, dot, false),
            Node::With(b) => self.walk_if_with(b, dot, true),
            Node::Range(b) => self.walk_range(b, dot),
            Node::Break => Ok(Flow::Break),
            Node::Continue => Ok(Flow::Continue),
            Node::Template { name, pipe, line } => {
                self.line = *line;
                let Some(list) = self.defines.get(name) else {
                    return Err(self.err(format!("no such template {name:?}")));
                };
                if self.depth >= MAX_DEPTH {
                    return Err(self.err("exceeded maximum template depth"));
                }
                let data = match pipe {
                    Some(p) => self.eval_pipe(p, dot)?,
                    None => Value::Nil,
                };
                let saved = std::mem::replace(&mut self.vars, vec![("$".into(), data.clone())]);
                self.depth += 1;
                let r = self.walk_list(list, &data);
                self.depth -= 1;
                self.vars = saved;
                r.map(|_| Flow::Normal)
            }
        }
    }

    fn print(&mut self, v: &Value) -> R<()> {
        if let Value::Func(_) = v {
            return Err(self.err("can't print value of type func"));
        }
        self.out.push_str(&v.to_go_string());
        Ok(())
    }

    fn walk_if_with(&mut self, b: &Branch, dot: &Value, with: bool) -> R<Flow> {
        let mark = self.vars.len();
        let v = self.eval_pipe(&b.pipe, dot)?;
        let flow = if v.is_true() {
            if with {
                self.walk_list(&b.list, &v)?
            } else {
                self.walk_list(&b.list, dot)?
            }
        } else if let Some(e) = &b.else_list {
            self.walk_list(e, dot)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn walk_range(&mut self, b: &Branch, dot: &Value) -> R<Flow> {
        let mark = self.vars.len();
        // Evaluate without declaring: range assigns its variables per iteration.
        let decl_pipe = Pipe {
            decl: Vec::new(),
            is_assign: false,
            cmds: b.pipe.cmds.clone(),
            line: b.pipe.line,
        };
        let v = self.eval_pipe(&decl_pipe, dot)?;
        let items: Vec<(Value, Value)> = match &v {
            Value::List(l) => l
                .items
                .iter()
                .enumerate()
                .map(|(i, x)| (Value::Int(i as i64), x.clone()))
                .collect(),
            Value::Map(m) => m
                .sorted()
                .into_iter()
                .map(|(k, x)| (Value::Str(k.clone()), x.clone()))
                .collect(),
            Value::Int(n) => (0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
            Value::NoValue | Value::Nil => Vec::new(),
            other => {
                return Err(self.err(format!("range can't iterate over {}", other.to_go_string())))
            }
        };
        if items.is_empty() {
            let flow = match &b.else_list {
                Some(e) => self.walk_list(e, dot)?,
                None => Flow::Normal,
            };
            self.vars.truncate(mark);
            return Ok(flow);
        }
        for (k, elem) in items {
            let inner = self.vars.len();
            match b.pipe.decl.len() {
                0 => {}
                1 => self.set_or_declare(&b.pipe.decl[0], elem.clone(), b.pipe.is_assign)?,
                _ => {
                    self.set_or_declare(&b.pipe.decl[0], k, b.pipe.is_assign)?;
                    self.set_or_declare(&b.pipe.decl[1], elem.clone(), b.pipe.is_assign)?;
                }
            }
            let flow = self.walk_list(&b.list, &elem)?;
            if !b.pipe.is_assign {
                self.vars.truncate(inner);
            }
            if let Flow::Break = flow {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    fn set_or_declare(&mut self, name: &str, v: Value, assign: bool) -> R<()> {
        if assign {
            self.set_var(name, v)
        } else {
            self.vars.push((name.to_string(), v));
            Ok(())
        }
    }

    fn set_var(&mut self, name: &str, v: Value) -> R<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => {
                slot.1 = v;
                Ok(())
            }
            None => Err(self.err(format!("undefined variable: {name}"))),
        }
    }

    fn var(&self, name: &str) -> R<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| self.err(format!("undefined variable: {name}")))
    }

    fn eval_pipe(&mut self, pipe: &Pipe, dot: &Value) -> R<Value> {
        self.line = pipe.line;
        let mut val: Option<Value> = None;
        for cmd in &pipe.cmds {
            val = Some(self.eval_cmd(cmd, dot, val)?);
        }
        let v = val.unwrap_or(Value::NoValue);
        for d in &pipe.decl {
            if pipe.is_assign {
                self.set_var(d, v.clone())?;
            } else {
                self.vars.push((d.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn eval_cmd(&mut self, cmd: &Cmd, dot: &Value, fin: Option<Value>) -> R<Value> {
        self.line = cmd.line;
        let Some(first) = cmd.args.first() else {
            return Err(self.err("empty command"));
        };
        let rest = &cmd.args[1..];
        match first {
            Term::Field(idents, at) => self
                .eval_field_chain(dot.clone(), idents, rest, dot, fin)
                .map_err(|e| e.at_node(*at, idents)),
            Term::Chain(inner, idents) => {
                let recv = self.eval_arg(inner, dot)?;
                self.eval_field_chain(recv, idents, rest, dot, fin)
            }
            Term::Var(name, idents) => {
                let v = self.var(name)?;
                if idents.is_empty() {
                    self.not_a_function(rest, &fin, name)?;
                    Ok(v)
                } else {
                    self.eval_field_chain(v, idents, rest, dot, fin)
                }
            }
            Term::Ident(name) => self.call_named(name, rest, dot, fin),
            Term::Pipe(p) => {
                self.not_a_function(rest, &fin, "pipeline")?;
                self.eval_pipe(p, dot)
            }
            other => {
                let v = self.eval_arg(other, dot)?;
                self.not_a_function(rest, &fin, &v.to_go_string())?;
                Ok(v)
            }
        }
    }

    fn not_a_function(&self, rest: &[Term], fin: &Option<Value>, what: &str) -> R<()> {
        if !rest.is_empty() || fin.is_some() {
            return Err(self.err(format!("can't give argument to non-function {what}")));
        }
        Ok(())
    }

    fn call_named(
        &mut self,
        name: &str,
        rest: &[Term],
        dot: &Value,
        fin: Option<Value>,
    ) -> R<Value> {
        let Some(f) = self.funcs.get(name).copied() else {
            return Err(self.err(format!("function {name:?} not defined")));
        };
        // and/or short-circuit like Go 1.18+.
        if name == "and" || name == "or" {
            if rest.is_empty() && fin.is_none() {
                return Err(self.err(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                )));
            }
            let mut last = Value::NoValue;
            for t in rest {
                last = self.eval_arg(t, dot)?;
                if last.is_true() != (name == "and") {
                    return Ok(last);
                }
            }
            if let Some(v) = fin {
                last = v;
            }
            return Ok(last);
        }
        let mut args = Vec::with_capacity(rest.len() + 1);
        for t in rest {
            args.push(self.eval_arg(t, dot)?);
        }
        if let Some(v) = fin {
            args.push(v);
        }
        self.call(name, f, &args)
    }

    fn call(&self, name: &str, f: Func, args: &[Value]) -> R<Value> {
        f(args).map_err(|e| self.err(format!("error calling {name}: {e}")))
    }

    fn eval_arg(&mut self, t: &Term, dot: &Value) -> R<Value> {
        match t {
            Term::Dot => Ok(dot.clone()),
            Term::Nil => Ok(Value::Nil),
            Term::Bool(b) => Ok(Value::Bool(*b)),
            Term::Str(s) => Ok(Value::Str(s.clone())),
            Term::Const(v) => Ok(v.clone()),
            Term::Field(idents, at) => self
                .eval_field_chain(dot.clone(), idents, &[], dot, None)
                .map_err(|e| e.at_node(*at, idents)),
            Term::Var(name, idents) => {
                let v = self.var(name)?;
                if idents.is_empty() {
                    Ok(v)
                } else {
                    self.eval_field_chain(v, idents, &[], dot, None)
                }
            }
            Term::Ident(name) => self.call_named(name, &[], dot, None),
            Term::Pipe(p) => self.eval_pipe(p, dot),
            Term::Chain(inner, idents) => {
                let recv = self.eval_arg(inner, dot)?;
                self.eval_field_chain(recv, idents, &[], dot, None)
            }
        }
    }

    fn eval_field_chain(
        &mut self,
        mut recv: Value,
        idents: &[String],
        args: &[Term],
        dot: &Value,
        fin: Option<Value>,
    ) -> R<Value> {
        let n = idents.len();
        for id in &idents[..n.saturating_sub(1)] {
            recv = self.eval_field(&recv, id, &[], dot, None)?;
        }
        match idents.last() {
            Some(last) => self.eval_field(&recv, last, args, dot, fin),
            None => Ok(recv),
        }
    }

    fn eval_field(
        &mut self,
        recv: &Value,
        name: &str,
        args: &[Term],
        dot: &Value,
        fin: Option<Value>,
    ) -> R<Value> {
        let has_args = !args.is_empty() || fin.is_some();
        match recv {
            Value::Map(m) => match m.get(name) {
                Some(Value::Func(f)) => {
                    let f = f.clone();
                    let mut vals = Vec::new();
                    for t in args {
                        vals.push(self.eval_arg(t, dot)?);
                    }
                    if let Some(v) = fin {
                        vals.push(v);
                    }
                    f(&vals).map_err(|e| self.err(format!("error calling {name}: {e}")))
                }
                Some(v) => {
                    if has_args {
                        return Err(self.err(format!(
                            "{name} has arguments but cannot be invoked as function"
                        )));
                    }
                    Ok(v.clone())
                }
                None => {
                    match &m.on_missing {
                        OnMissing::NoField(t) => {
                            return Err(
                                self.err(format!("can't evaluate field {name} in type {t}"))
                            );
                        }
                        OnMissing::NoEntry(absent) if !absent.iter().any(|a| a == name) => {
                            return Err(self.err(format!("map has no entry for key {name:?}")));
                        }
                        _ => {}
                    }
                    if has_args {
                        return Err(self.err(format!("{name} is not a method but has arguments")));
                    }
                    Ok(Value::NoValue)
                }
            },
            Value::NoValue | Value::Nil => Ok(Value::NoValue),
            other => Err(self.err(format!(
                "can't evaluate field {name} in type {}",
                other.type_name()
            ))),
        }
    }
}
