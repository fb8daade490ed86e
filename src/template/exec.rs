//! Executor: walks the parse tree against a data value, following Go's `text/template/exec.go`
//! (argument conversion, `missingkey=zero`, error texts with `template: NAME:LINE:COL: executing
//! "NAME" at <NODE>: …`), with bounds on output size, work and template call depth.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::ast::{Branch, Located, Node, Pipe};
use super::funcs::FuncCtx;
use super::gostr::go_quote;
use super::parse::TreeSet;
use super::value::Value;

/// Largest output of one execution, in bytes.
pub(super) const MAX_OUTPUT: usize = 1 << 20;
/// Most nodes walked plus range iterations in one execution.
pub(super) const MAX_STEPS: u64 = 1_000_000;
/// Most bytes of strings that function calls may produce in one execution.
pub(super) const MAX_PRODUCED: usize = 64 << 20;
/// Deepest `{{template}}` call nesting.
pub(super) const MAX_TEMPLATE_DEPTH: usize = 100;

pub(super) type EResult<T> = Result<T, String>;

enum Flow {
    Normal,
    Break,
    Continue,
}

pub(super) struct Exec<'a> {
    pub trees: &'a TreeSet,
    pub source: &'a str,
    pub parse_name: &'a str,
    pub ctx: FuncCtx<'a>,
    pub out: String,
    pub(super) steps: u64,
    /// Bytes of strings produced by function calls so far.
    pub(super) produced: usize,
    pub(super) depth: usize,
    /// Name of the template being executed and its variable stack.
    pub(super) name: String,
    pub(super) vars: Vec<(String, Value)>,
    /// The node errors point at: the last one Go's executor would have passed to `s.at`.
    pub(super) at: Option<&'a dyn Located>,
}

impl<'a> Exec<'a> {
    pub(super) fn new(
        trees: &'a TreeSet,
        source: &'a str,
        parse_name: &'a str,
        ctx: FuncCtx<'a>,
    ) -> Self {
        Exec {
            trees,
            source,
            parse_name,
            ctx,
            out: String::new(),
            steps: 0,
            produced: 0,
            depth: 0,
            name: String::new(),
            vars: Vec::new(),
            at: None,
        }
    }

    /// Executes template `name` with `data` as dot and `$`.
    pub(super) fn run(&mut self, name: &str, data: Value) -> EResult<()> {
        let trees = self.trees;
        let Some(root) = trees.get(name) else {
            return Err(format!(
                "template: {name}: {} is an incomplete or empty template",
                go_quote(name)
            ));
        };
        self.name = name.to_string();
        self.vars = vec![("$".to_string(), data.clone())];
        self.walk_list(&data, root).map(|_| ())
    }

    /// Marks the node later errors point at.
    pub(super) fn at(&mut self, node: &'a dyn Located) {
        self.at = Some(node);
    }

    /// Go's `s.errorf`: `template: NAME:LINE:COL: executing "TMPL" at <NODE>: MSG`.
    pub(super) fn err(&self, msg: impl std::fmt::Display) -> String {
        let Some(node) = self.at else {
            return format!("template: {}: {msg}", self.name);
        };
        let pos = node.position().min(self.source.len());
        let before = self.source.get(..pos).unwrap_or("");
        let line = 1 + before.bytes().filter(|&b| b == b'\n').count();
        let col = before.rfind('\n').map_or(pos, |i| pos - i - 1);
        format!(
            "template: {}:{line}:{col}: executing {} at <{node}>: {msg}",
            self.parse_name,
            go_quote(&self.name)
        )
    }

    fn step(&mut self) -> EResult<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(self.err(format!("template execution exceeded {MAX_STEPS} steps")));
        }
        Ok(())
    }

    fn write(&mut self, s: &str) -> EResult<()> {
        if self.out.len() + s.len() > MAX_OUTPUT {
            return Err(self.err(format!("template output exceeds {MAX_OUTPUT} bytes")));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn walk_list(&mut self, dot: &Value, list: &'a [Node]) -> EResult<Flow> {
        for n in list {
            match self.walk(dot, n)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Value, node: &'a Node) -> EResult<Flow> {
        self.at(node);
        self.step()?;
        match node {
            Node::Text(t) => self.write(t)?,
            Node::Action { pipe, .. } => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.at(node);
                    let mut s = String::new();
                    v.write_v(&mut s, true);
                    self.write(&s)?;
                }
            }
            Node::If(b) | Node::With(b) => {
                let mark = self.vars.len();
                let r = self.walk_if_or_with(dot, b, matches!(node, Node::With(_)));
                self.vars.truncate(mark);
                return r;
            }
            Node::Range(b) => {
                let mark = self.vars.len();
                let r = self.walk_range(dot, b);
                self.vars.truncate(mark);
                return r;
            }
            Node::Template { name, pipe, .. } => self.walk_template(dot, name, pipe.as_ref())?,
            Node::Break { .. } => return Ok(Flow::Break),
            Node::Continue { .. } => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn walk_if_or_with(&mut self, dot: &Value, b: &'a Branch, is_with: bool) -> EResult<Flow> {
        let val = self.eval_pipeline(dot, &b.pipe)?;
        if val.truth().unwrap_or(false) {
            let d = if is_with { &val } else { dot };
            self.walk_list(d, &b.list)
        } else if let Some(e) = &b.else_list {
            self.walk_list(dot, e)
        } else {
            Ok(Flow::Normal)
        }
    }

    fn walk_range(&mut self, dot: &Value, b: &'a Branch) -> EResult<Flow> {
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let items: Vec<(Value, Value)> = match &val {
            Value::Samples(v) => v
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let i = i64::try_from(i).unwrap_or(i64::MAX);
                    (Value::Int(i), Value::Sample(Some(s.clone())))
                })
                .collect(),
            Value::StrMap(m) => m
                .iter()
                .map(|(k, v)| (Value::str(k), Value::str(v)))
                .collect(),
            Value::AnyMap(m) => m.iter().map(|(k, v)| (Value::str(k), v.clone())).collect(),
            Value::Int(n) => {
                if b.pipe.decl.len() > 1 {
                    return Err(self.err(format!(
                        "can't use {n} to iterate over more than one variable"
                    )));
                }
                // Beyond MAX_STEPS the step check fails anyway.
                let n = u64::try_from(*n).unwrap_or(0).min(MAX_STEPS + 1);
                (0..n)
                    .map(|i| Value::Int(i64::try_from(i).unwrap_or(i64::MAX)))
                    .map(|v| (v.clone(), v))
                    .collect()
            }
            Value::Invalid => Vec::new(),
            other => {
                let mut shown = String::new();
                other.write_v(&mut shown, true);
                return Err(self.err(format!("range can't iterate over {shown}")));
            }
        };
        if items.is_empty() {
            if let Some(e) = &b.else_list {
                return self.walk_list(dot, e);
            }
            return Ok(Flow::Normal);
        }
        let mark = self.vars.len();
        let n = b.pipe.decl.len();
        for (index, elem) in items {
            self.step()?;
            if n > 0 {
                if b.pipe.is_assign {
                    let first = b.pipe.decl.first().map_or("", String::as_str);
                    let v = if n > 1 { index.clone() } else { elem.clone() };
                    self.set_var(first, v)?;
                } else {
                    self.set_top_var(1, elem.clone());
                }
            }
            if n > 1 {
                if b.pipe.is_assign {
                    let second = b.pipe.decl.get(1).map_or("", String::as_str);
                    self.set_var(second, elem.clone())?;
                } else {
                    self.set_top_var(2, index);
                }
            }
            let flow = self.walk_list(&elem, &b.list);
            self.vars.truncate(mark);
            if let Flow::Break = flow? {
                break;
            }
        }
        Ok(Flow::Normal)
    }

    fn walk_template(&mut self, dot: &Value, name: &str, pipe: Option<&'a Pipe>) -> EResult<()> {
        let trees = self.trees;
        let Some(root) = trees.get(name) else {
            return Err(self.err(format!("template {} not defined", go_quote(name))));
        };
        if self.depth >= MAX_TEMPLATE_DEPTH {
            return Err(self.err(format!(
                "exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})"
            )));
        }
        let new_dot = match pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Value::Invalid,
        };
        let saved_name = std::mem::replace(&mut self.name, name.to_string());
        let saved_vars =
            std::mem::replace(&mut self.vars, vec![("$".to_string(), new_dot.clone())]);
        self.depth += 1;
        let r = self.walk_list(&new_dot, root);
        self.depth -= 1;
        self.name = saved_name;
        self.vars = saved_vars;
        r.map(|_| ())
    }

    pub(super) fn set_var(&mut self, name: &str, v: Value) -> EResult<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => {
                slot.1 = v;
                Ok(())
            }
            None => Err(self.err(format!("undefined variable: {name}"))),
        }
    }

    fn set_top_var(&mut self, n: usize, v: Value) {
        let len = self.vars.len();
        if let Some(slot) = len.checked_sub(n).and_then(|i| self.vars.get_mut(i)) {
            slot.1 = v;
        }
    }
}
