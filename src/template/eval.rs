//! Evaluation of pipelines, commands, arguments and calls (Go's `evalPipeline`, `evalCommand`,
//! `evalArg`, `evalCall`, `evalField`), including Go's argument type checks and messages.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::ast::{Arg, Command, Located, Number, Pipe};
use super::builtins::call_builtin;
use super::exec::{EResult, Exec};
use super::funcs::{Func, Param, call_prometheus};
use super::gostr::go_quote;
use super::gotime::Method;
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

impl Exec<'_> {
    pub(super) fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> EResult<Value> {
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
                self.set_var(pipe, name, value.clone())?;
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, node: &dyn Located, args: &[Arg], fin: &Option<Value>) -> EResult<()> {
        if args.len() > 1 || fin.is_some() {
            let first = args.first().map(ToString::to_string).unwrap_or_default();
            return Err(self.errorf(node, format!("can't give argument to non-function {first}")));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &Command, fin: Option<Value>) -> EResult<Value> {
        let Some(first) = cmd.args.first() else {
            return Err(self.errorf(cmd, "empty command"));
        };
        match first {
            Arg::Field { idents, .. } => {
                self.eval_field_chain(dot, dot.clone(), first, idents, &cmd.args, fin)
            }
            Arg::Chain { node, fields, .. } => {
                self.eval_chain(dot, first, node, fields, &cmd.args, fin)
            }
            Arg::Identifier { name, .. } => {
                self.eval_function(dot, first, name, cmd, &cmd.args, fin)
            }
            Arg::Pipe(p) => {
                self.not_a_function(first, &cmd.args, &fin)?;
                self.eval_pipeline(dot, p)
            }
            Arg::Variable { idents, .. } => self.eval_variable(dot, first, idents, &cmd.args, fin),
            Arg::Bool { val, .. } => {
                self.not_a_function(first, &cmd.args, &fin)?;
                Ok(Value::Bool(*val))
            }
            Arg::Dot { .. } => {
                self.not_a_function(first, &cmd.args, &fin)?;
                Ok(dot.clone())
            }
            Arg::Nil { .. } => {
                self.not_a_function(first, &cmd.args, &fin)?;
                Err(self.errorf(first, "nil is not a command"))
            }
            Arg::Number { num, .. } => {
                self.not_a_function(first, &cmd.args, &fin)?;
                self.ideal_constant(first, num)
            }
            Arg::String { text, .. } => {
                self.not_a_function(first, &cmd.args, &fin)?;
                Ok(Value::str(text))
            }
        }
    }

    /// An untyped number constant: float when written like one, else int.
    fn ideal_constant(&self, node: &dyn Located, num: &Number) -> EResult<Value> {
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
            None => Err(self.errorf(node, format!("{} overflows int", num.text))),
        }
    }

    fn var_value(&self, node: &dyn Located, name: &str) -> EResult<Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => Err(self.errorf(node, format!("undefined variable: {name}"))),
        }
    }

    fn eval_variable(
        &mut self,
        dot: &Value,
        node: &Arg,
        idents: &[String],
        args: &[Arg],
        fin: Option<Value>,
    ) -> EResult<Value> {
        let name = idents.first().map_or("$", String::as_str);
        let value = self.var_value(node, name)?;
        match idents.get(1..) {
            Some(rest) if !rest.is_empty() => {
                self.eval_field_chain(dot, value, node, rest, args, fin)
            }
            _ => {
                self.not_a_function(node, args, &fin)?;
                Ok(value)
            }
        }
    }

    fn eval_chain(
        &mut self,
        dot: &Value,
        chain: &Arg,
        inner: &Arg,
        fields: &[String],
        args: &[Arg],
        fin: Option<Value>,
    ) -> EResult<Value> {
        if let Arg::Nil { .. } = inner {
            return Err(self.errorf(
                chain,
                format!("indirection through explicit nil in {chain}"),
            ));
        }
        let receiver = self.eval_arg(dot, None, inner)?;
        self.eval_field_chain(dot, receiver, chain, fields, args, fin)
    }

    fn eval_field_chain(
        &mut self,
        dot: &Value,
        mut receiver: Value,
        node: &Arg,
        idents: &[String],
        args: &[Arg],
        fin: Option<Value>,
    ) -> EResult<Value> {
        let Some((last, init)) = idents.split_last() else {
            return Err(self.errorf(node, "internal error: no fields in evalFieldChain"));
        };
        for ident in init {
            receiver = self.eval_field(dot, ident, node, &[], None, receiver)?;
        }
        self.eval_field(dot, last, node, args, fin, receiver)
    }

    fn eval_field(
        &mut self,
        dot: &Value,
        name: &str,
        node: &Arg,
        args: &[Arg],
        fin: Option<Value>,
        receiver: Value,
    ) -> EResult<Value> {
        let has_args = args.len() > 1 || fin.is_some();
        match field(&receiver, name, has_args) {
            Field::Value(v) => Ok(v),
            Field::Method(m) => {
                self.eval_call(dot, Callee::Method(m, receiver), node, name, args, fin)
            }
            Field::Err(e) => Err(self.errorf(node, e)),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        ident: &Arg,
        name: &str,
        call_node: &dyn Located,
        args: &[Arg],
        fin: Option<Value>,
    ) -> EResult<Value> {
        let Some(f) = Func::lookup(name) else {
            return Err(self.errorf(
                ident,
                format!("{} is not a defined function", go_quote(name)),
            ));
        };
        self.eval_call_at(dot, Callee::Func(f), ident, call_node, name, args, fin)
    }

    fn eval_call(
        &mut self,
        dot: &Value,
        callee: Callee,
        node: &Arg,
        name: &str,
        args: &[Arg],
        fin: Option<Value>,
    ) -> EResult<Value> {
        self.eval_call_at(dot, callee, node, node, name, args, fin)
    }

    /// `at` is where argument-count errors point, `call_node` where the function's own error
    /// points (Go reports those at the whole command).
    #[allow(clippy::too_many_arguments)]
    fn eval_call_at(
        &mut self,
        dot: &Value,
        callee: Callee,
        at: &dyn Located,
        call_node: &dyn Located,
        name: &str,
        args: &[Arg],
        fin: Option<Value>,
    ) -> EResult<Value> {
        let args = args.get(1..).unwrap_or(&[]);
        let (fixed, variadic) = callee.signature();
        let num_in = args.len() + usize::from(fin.is_some());
        if variadic.is_some() {
            if num_in < fixed.len() {
                return Err(self.errorf(
                    at,
                    format!(
                        "wrong number of args for {name}: want at least {} got {}",
                        fixed.len(),
                        args.len()
                    ),
                ));
            }
        } else if num_in != fixed.len() {
            return Err(self.errorf(
                at,
                format!(
                    "wrong number of args for {name}: want {} got {num_in}",
                    fixed.len()
                ),
            ));
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
                v = self.validate(at, fv, Some(Param::RValue))?;
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
            argv.push(self.validate(at, fv, p)?);
        }
        let result = match &callee {
            Callee::Method(m, receiver) => m.call(receiver, &argv),
            Callee::Func(f) if is_builtin(*f) => {
                let first = args.first().map(ToString::to_string).unwrap_or_default();
                call_builtin(*f, &argv, &first)
            }
            Callee::Func(f) => call_prometheus(*f, &argv, &self.ctx),
        };
        result.map_err(|e| self.errorf(call_node, format!("error calling {name}: {e}")))
    }

    /// Go's `validateType`: the value as parameter type `p` (`None` = untyped).
    fn validate(&self, node: &dyn Located, v: Value, p: Option<Param>) -> EResult<Value> {
        let Some(p) = p else { return Ok(v) };
        if let Value::Invalid = v {
            return match p {
                Param::Any => Ok(Value::Nil),
                Param::Sample => Ok(Value::Sample(None)),
                Param::Samples => Ok(Value::Samples(Rc::new(Vec::new()))),
                Param::Str | Param::RValue => {
                    Err(self.errorf(node, format!("invalid value; expected {}", p.go_name())))
                }
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
            return Err(self.errorf(
                node,
                format!("wrong type for value; expected {}; got {got}", p.go_name()),
            ));
        }
        Ok(v)
    }

    /// Go's `evalArg`.
    fn eval_arg(&mut self, dot: &Value, p: Option<Param>, n: &Arg) -> EResult<Value> {
        let v = match n {
            Arg::Dot { .. } => dot.clone(),
            Arg::Nil { .. } => {
                return match p {
                    Some(Param::Any) | None => Ok(Value::Nil),
                    Some(Param::Sample) => Ok(Value::Sample(None)),
                    Some(Param::Samples) => Ok(Value::Samples(Rc::new(Vec::new()))),
                    Some(p) => Err(self.errorf(n, format!("cannot assign nil to {}", p.go_name()))),
                };
            }
            Arg::Field { idents, .. } => {
                self.eval_field_chain(dot, dot.clone(), n, idents, std::slice::from_ref(n), None)?
            }
            Arg::Variable { idents, .. } => self.eval_variable(dot, n, idents, &[], None)?,
            Arg::Pipe(pipe) => self.eval_pipeline(dot, pipe)?,
            Arg::Identifier { name, .. } => self.eval_function(dot, n, name, n, &[], None)?,
            Arg::Chain { node, fields, .. } => self.eval_chain(dot, n, node, fields, &[], None)?,
            Arg::Bool { val, .. } => {
                return match p {
                    Some(Param::Any | Param::RValue) | None => Ok(Value::Bool(*val)),
                    Some(Param::Str) => Err(self.errorf(n, format!("expected string; found {n}"))),
                    Some(p) => Err(self.errorf(
                        n,
                        format!("can't handle {n} for arg of type {}", p.go_name()),
                    )),
                };
            }
            Arg::Number { num, .. } => {
                return match p {
                    Some(Param::Any | Param::RValue) | None => self.ideal_constant(n, num),
                    Some(Param::Str) => Err(self.errorf(n, format!("expected string; found {n}"))),
                    Some(p) => Err(self.errorf(
                        n,
                        format!("can't handle {n} for arg of type {}", p.go_name()),
                    )),
                };
            }
            Arg::String { text, .. } => {
                return match p {
                    Some(Param::Any | Param::RValue | Param::Str) | None => Ok(Value::str(text)),
                    Some(p) => Err(self.errorf(
                        n,
                        format!("can't handle {n} for arg of type {}", p.go_name()),
                    )),
                };
            }
        };
        self.validate(n, v, p)
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
