//! Evaluation of pipelines, commands, arguments and calls (Go's `evalPipeline`, `evalCommand`,
//! `evalArg`, `evalCall`, `evalField`), including Go's argument type checks and messages.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::ast::{Arg, Command, Located, Number, Pipe};
use super::builtins::call_builtin;
use super::exec::{EResult, Exec, MAX_PRODUCED};
use super::funcs::{Func, Param, call_prometheus};
use super::gostr::go_quote;
use super::gotime::Method;
use super::printf::MAX_STRING;
use super::value::{Field, Value, field};
use std::rc::Rc;

/// What a call invokes: a function of the table or a method bound to its receiver.
enum Callee {
    Func(Func),
    Method(Method, Value),
}

impl Callee {
    fn signature(&self) -> (&'static [Param], Option<Param>) {
        match self {
            Callee::Func(f) => f.signature(),
            Callee::Method(m, _) => (if m.arity() == 1 { &[Param::Str] } else { &[] }, None),
        }
    }
}

impl<'a> Exec<'a> {
    pub(super) fn eval_pipeline(&mut self, dot: &Value, pipe: &'a Pipe) -> EResult<Value> {
        self.at(pipe);
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            let v = self.eval_command(dot, cmd, value.take())?;
            // A nil interface{} result is no value at all.
            value = Some(if matches!(v, Value::Nil) {
                Value::Invalid
            } else {
                v
            });
        }
        let value = value.unwrap_or(Value::Invalid);
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, value.clone())?;
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: &[Arg], fin: &Option<Value>) -> EResult<()> {
        if args.len() > 1 || fin.is_some() {
            let first = args.first().map(ToString::to_string).unwrap_or_default();
            return Err(self.err(format!("can't give argument to non-function {first}")));
        }
        Ok(())
    }

    fn eval_command(
        &mut self,
        dot: &Value,
        cmd: &'a Command,
        fin: Option<Value>,
    ) -> EResult<Value> {
        let Some(first) = cmd.args.first() else {
            return Err(self.err("empty command"));
        };
        match first {
            Arg::Field { idents, .. } => {
                self.at(first);
                self.eval_field_chain(dot, dot.clone(), idents, &cmd.args, fin)
            }
            Arg::Chain { node, fields, .. } => {
                self.eval_chain(dot, first, node, fields, &cmd.args, fin)
            }
            Arg::Identifier { name, .. } => {
                self.eval_function(dot, first, name, cmd, &cmd.args, fin)
            }
            Arg::Pipe(p) => {
                self.not_a_function(&cmd.args, &fin)?;
                self.eval_pipeline(dot, p)
            }
            Arg::Variable { idents, .. } => self.eval_variable(dot, first, idents, &cmd.args, fin),
            _ => {
                self.at(first);
                self.not_a_function(&cmd.args, &fin)?;
                match first {
                    Arg::Bool { val, .. } => Ok(Value::Bool(*val)),
                    Arg::Dot { .. } => Ok(dot.clone()),
                    Arg::Number { num, .. } => self.ideal_constant(first, num),
                    Arg::String { text, .. } => Ok(Value::str(text)),
                    _ => Err(self.err("nil is not a command")),
                }
            }
        }
    }

    /// An untyped number constant: float when written like one, else int.
    fn ideal_constant(&mut self, node: &'a Arg, num: &Number) -> EResult<Value> {
        self.at(node);
        let t = num.text.trim_start_matches(['+', '-']);
        let hex_int = (t.starts_with("0x") || t.starts_with("0X")) && !t.contains(['p', 'P']);
        let rune = t.starts_with('\'');
        if let Some(f) = num.float
            && !hex_int
            && !rune
            && t.contains(['.', 'e', 'E', 'p', 'P'])
        {
            return Ok(Value::Float(f));
        }
        match num.int {
            Some(i) => Ok(Value::Int(i)),
            None => Err(self.err(format!("{} overflows int", num.text))),
        }
    }

    fn var_value(&self, name: &str) -> EResult<Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => Err(self.err(format!("undefined variable: {name}"))),
        }
    }

    fn eval_variable(
        &mut self,
        dot: &Value,
        node: &'a Arg,
        idents: &[String],
        args: &'a [Arg],
        fin: Option<Value>,
    ) -> EResult<Value> {
        self.at(node);
        let name = idents.first().map_or("$", String::as_str);
        let value = self.var_value(name)?;
        match idents.get(1..) {
            Some(rest) if !rest.is_empty() => self.eval_field_chain(dot, value, rest, args, fin),
            _ => {
                self.not_a_function(args, &fin)?;
                Ok(value)
            }
        }
    }

    fn eval_chain(
        &mut self,
        dot: &Value,
        chain: &'a Arg,
        inner: &'a Arg,
        fields: &[String],
        args: &'a [Arg],
        fin: Option<Value>,
    ) -> EResult<Value> {
        self.at(chain);
        if let Arg::Nil { .. } = inner {
            return Err(self.err(format!("indirection through explicit nil in {chain}")));
        }
        let receiver = self.eval_arg(dot, None, inner)?;
        self.eval_field_chain(dot, receiver, fields, args, fin)
    }

    fn eval_field_chain(
        &mut self,
        dot: &Value,
        mut receiver: Value,
        idents: &[String],
        args: &'a [Arg],
        fin: Option<Value>,
    ) -> EResult<Value> {
        let Some((last, init)) = idents.split_last() else {
            return Err(self.err("internal error: no fields in evalFieldChain"));
        };
        for ident in init {
            receiver = self.eval_field(dot, ident, &[], None, receiver)?;
        }
        self.eval_field(dot, last, args, fin, receiver)
    }

    fn eval_field(
        &mut self,
        dot: &Value,
        name: &str,
        args: &'a [Arg],
        fin: Option<Value>,
        receiver: Value,
    ) -> EResult<Value> {
        let has_args = args.len() > 1 || fin.is_some();
        match field(&receiver, name, has_args) {
            Field::Value(v) => Ok(v),
            Field::Method(m) => {
                // Method errors point where the field chain was marked.
                let node = self.at;
                self.eval_call(dot, Callee::Method(m, receiver), node, name, args, fin)
            }
            Field::Err(e) => Err(self.err(e)),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        ident: &'a Arg,
        name: &str,
        call_node: &'a dyn Located,
        args: &'a [Arg],
        fin: Option<Value>,
    ) -> EResult<Value> {
        self.at(ident);
        let Some(f) = Func::lookup(name) else {
            return Err(self.err(format!("{} is not a defined function", go_quote(name))));
        };
        self.eval_call(dot, Callee::Func(f), Some(call_node), name, args, fin)
    }

    /// Go's `evalCall`; `call_node` is where the function's own error points.
    fn eval_call(
        &mut self,
        dot: &Value,
        callee: Callee,
        call_node: Option<&'a dyn Located>,
        name: &str,
        args: &'a [Arg],
        fin: Option<Value>,
    ) -> EResult<Value> {
        let args = args.get(1..).unwrap_or(&[]);
        let (fixed, variadic) = callee.signature();
        let num_in = args.len() + usize::from(fin.is_some());
        if variadic.is_some() {
            if num_in < fixed.len() {
                return Err(self.err(format!(
                    "wrong number of args for {name}: want at least {} got {}",
                    fixed.len(),
                    args.len()
                )));
            }
        } else if num_in != fixed.len() {
            return Err(self.err(format!(
                "wrong number of args for {name}: want {} got {num_in}",
                fixed.len()
            )));
        }
        if let Callee::Func(f @ (Func::And | Func::Or)) = callee {
            let want = f == Func::Or;
            let mut v = Value::Invalid;
            for a in args {
                v = self.eval_arg(dot, Some(Param::RValue), a)?;
                if v.truth().unwrap_or(false) == want {
                    return Ok(v);
                }
            }
            if let Some(fv) = fin {
                v = self.validate(fv, Some(Param::RValue))?;
            }
            return Ok(v);
        }
        let mut argv = Vec::with_capacity(num_in);
        for (i, a) in args.iter().enumerate() {
            let p = fixed.get(i).copied().or(variadic);
            argv.push(self.eval_arg(dot, p, a)?);
        }
        if let Some(fv) = fin {
            let p = if variadic.is_some() && num_in > fixed.len() {
                variadic
            } else {
                fixed.get(num_in - 1).copied()
            };
            argv.push(self.validate(fv, p)?);
        }
        let result = match &callee {
            Callee::Method(m, receiver) => m.call(receiver, &argv),
            Callee::Func(f) if is_builtin(*f) => {
                let first = args.first().map(ToString::to_string).unwrap_or_default();
                call_builtin(*f, &argv, &first)
            }
            Callee::Func(f) => call_prometheus(*f, &argv, &self.ctx),
        };
        let result = result.and_then(|v| match &v {
            Value::Str(s) | Value::Html(s) if s.len() > MAX_STRING => {
                Err(format!("result exceeds {MAX_STRING} bytes"))
            }
            _ => Ok(v),
        });
        let v = result.map_err(|e| {
            if let Some(n) = call_node {
                self.at(n);
            }
            self.err(format!("error calling {name}: {e}"))
        })?;
        if let Value::Str(s) | Value::Html(s) = &v {
            self.produced += s.len();
            if self.produced > MAX_PRODUCED {
                return Err(self.err(format!(
                    "template execution produced more than {MAX_PRODUCED} bytes"
                )));
            }
        }
        Ok(v)
    }

    /// Go's `validateType`: the value as parameter type `p` (`None` = untyped).
    fn validate(&self, v: Value, p: Option<Param>) -> EResult<Value> {
        let Some(p) = p else { return Ok(v) };
        if let Value::Invalid = v {
            return match p {
                Param::Any => Ok(Value::Nil),
                Param::Sample => Ok(Value::Sample(None)),
                Param::Samples => Ok(Value::Samples(Rc::new(Vec::new()))),
                Param::RValue => Ok(Value::Invalid),
                Param::Str => Err(self.err(format!("invalid value; expected {}", p.go_name()))),
            };
        }
        let ok = match p {
            Param::Any | Param::RValue => true,
            Param::Str => matches!(v, Value::Str(_)),
            Param::Sample => matches!(v, Value::Sample(_)),
            Param::Samples => matches!(v, Value::Samples(_)),
        };
        if !ok {
            let got = if matches!(v, Value::Nil) {
                "interface {}"
            } else {
                v.type_name()
            };
            return Err(self.err(format!(
                "wrong type for value; expected {}; got {got}",
                p.go_name()
            )));
        }
        Ok(v)
    }

    /// Go's `evalArg`.
    fn eval_arg(&mut self, dot: &Value, p: Option<Param>, n: &'a Arg) -> EResult<Value> {
        self.at(n);
        let v = match n {
            Arg::Dot { .. } => dot.clone(),
            Arg::Nil { .. } => {
                return match p {
                    Some(Param::Any) | None => Ok(Value::Nil),
                    Some(Param::RValue) => Ok(Value::Invalid),
                    Some(Param::Sample) => Ok(Value::Sample(None)),
                    Some(Param::Samples) => Ok(Value::Samples(Rc::new(Vec::new()))),
                    Some(p) => Err(self.err(format!("cannot assign nil to {}", p.go_name()))),
                };
            }
            Arg::Field { idents, .. } => {
                self.eval_field_chain(dot, dot.clone(), idents, std::slice::from_ref(n), None)?
            }
            Arg::Variable { idents, .. } => self.eval_variable(dot, n, idents, &[], None)?,
            Arg::Pipe(pipe) => self.eval_pipeline(dot, pipe)?,
            Arg::Identifier { name, .. } => self.eval_function(dot, n, name, n, &[], None)?,
            Arg::Chain { node, fields, .. } => self.eval_chain(dot, n, node, fields, &[], None)?,
            Arg::Bool { val, .. } => {
                return match p {
                    Some(Param::Any | Param::RValue) | None => Ok(Value::Bool(*val)),
                    Some(Param::Str) => Err(self.err(format!("expected string; found {n}"))),
                    Some(p) => {
                        Err(self.err(format!("can't handle {n} for arg of type {}", p.go_name())))
                    }
                };
            }
            Arg::Number { num, .. } => {
                return match p {
                    Some(Param::Any | Param::RValue) | None => self.ideal_constant(n, num),
                    Some(Param::Str) => Err(self.err(format!("expected string; found {n}"))),
                    Some(p) => {
                        Err(self.err(format!("can't handle {n} for arg of type {}", p.go_name())))
                    }
                };
            }
            Arg::String { text, .. } => {
                return match p {
                    Some(Param::Any | Param::RValue | Param::Str) | None => Ok(Value::str(text)),
                    Some(p) => {
                        Err(self.err(format!("can't handle {n} for arg of type {}", p.go_name())))
                    }
                };
            }
        };
        self.validate(v, p)
    }
}

/// Go's own functions (as opposed to Prometheus's).
fn is_builtin(f: Func) -> bool {
    use Func as F;
    matches!(
        f,
        F::And
            | F::Or
            | F::Not
            | F::Len
            | F::Index
            | F::Slice
            | F::Print
            | F::Printf
            | F::Println
            | F::Html
            | F::Js
            | F::Urlquery
            | F::Call
            | F::Eq
            | F::Ne
            | F::Lt
            | F::Le
            | F::Gt
            | F::Ge
    )
}
