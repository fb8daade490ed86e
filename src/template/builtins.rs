//! Go's `text/template` built-in functions (`and`/`or` short-circuit in `exec.rs`).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::funcs::Func;
use super::gostr::{html_escape, js_escape, query_escape};
use super::printf::{sprint, sprintf, sprintln};
use super::value::Value;
use std::rc::Rc;

const BAD_COMPARISON_TYPE: &str = "invalid type for comparison";
const BAD_COMPARISON: &str = "incompatible types for comparison";

/// Calls a built-in other than `and`/`or`. `first_arg` is the source text of the first
/// argument (for `call`'s message). Err is the function's error text.
pub(super) fn call_builtin(f: Func, args: &[Value], first_arg: &str) -> Result<Value, String> {
    let arg = |i: usize| args.get(i).unwrap_or(&Value::Invalid);
    Ok(match f {
        Func::Not => Value::Bool(!arg(0).truth().unwrap_or(false)),
        Func::Len => Value::Int(length(arg(0))?),
        Func::Index => index(arg(0), args.get(1..).unwrap_or(&[]))?,
        Func::Slice => slice(arg(0), args.get(1..).unwrap_or(&[]))?,
        Func::Print => Value::str(&sprint(args)),
        Func::Println => Value::str(&sprintln(args)),
        Func::Printf => match arg(0) {
            Value::Str(fmt) => Value::str(&sprintf(fmt, args.get(1..).unwrap_or(&[]))),
            _ => return Err("BUG: printf format is not a string".into()),
        },
        Func::Html => Value::str(&html_escape(&eval_args(args))),
        Func::Js => Value::str(&js_escape(&eval_args(args))),
        Func::Urlquery => Value::str(&query_escape(&eval_args(args))),
        Func::Call => {
            return Err(match arg(0) {
                Value::Invalid | Value::Nil => "call of nil".to_string(),
                v => format!("non-function {first_arg} of type {}", v.type_name()),
            });
        }
        Func::Eq => Value::Bool(eq(arg(0), args.get(1..).unwrap_or(&[]))?),
        Func::Ne => Value::Bool(!eq(arg(0), args.get(1..2).unwrap_or(&[]))?),
        Func::Lt => Value::Bool(lt(arg(0), arg(1))?),
        Func::Le => Value::Bool(lt(arg(0), arg(1))? || eq(arg(0), args.get(1..2).unwrap_or(&[]))?),
        Func::Gt => {
            Value::Bool(!(lt(arg(0), arg(1))? || eq(arg(0), args.get(1..2).unwrap_or(&[]))?))
        }
        Func::Ge => Value::Bool(!lt(arg(0), arg(1))?),
        _ => return Err(format!("BUG: {} is not a built-in", f.name())),
    })
}

/// The single string argument, or `fmt.Sprint` of all (printing pointers' targets).
fn eval_args(args: &[Value]) -> String {
    if let [Value::Str(s)] = args {
        return s.to_string();
    }
    let printable: Vec<Value> = args
        .iter()
        .map(|a| match a {
            Value::Nil | Value::Invalid => Value::str("<no value>"),
            Value::Sample(Some(s)) => {
                let mut out = String::new();
                Value::Sample(Some(s.clone())).write_v(&mut out, true);
                Value::str(&out)
            }
            other => other.clone(),
        })
        .collect();
    sprint(&printable)
}

fn length(v: &Value) -> Result<i64, String> {
    let n = match v {
        Value::Str(s) | Value::Html(s) => s.len(),
        Value::StrMap(m) => m.len(),
        Value::AnyMap(m) => m.len(),
        Value::Samples(s) => s.len(),
        Value::Sample(None) => return Err("len of nil pointer".into()),
        Value::Sample(Some(_)) => return Err("len of type template.sample".into()),
        Value::Time(_) => return Err("len of type time.Time".into()),
        Value::Duration(_) => return Err("len of type time.Duration".into()),
        Value::Invalid | Value::Nil => return Err("len of untyped nil".into()),
        other => return Err(format!("len of type {}", other.type_name())),
    };
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}

fn index_arg(v: &Value, cap: usize) -> Result<usize, String> {
    let x = match v {
        Value::Int(i) => *i,
        Value::Byte(b) => i64::from(*b),
        Value::Invalid | Value::Nil => return Err("cannot index slice/array with nil".into()),
        other => {
            return Err(format!(
                "cannot index slice/array with type {}",
                other.type_name()
            ));
        }
    };
    match usize::try_from(x) {
        Ok(u) if u <= cap => Ok(u),
        _ => Err(format!("index out of range: {x}")),
    }
}

fn index(item: &Value, indexes: &[Value]) -> Result<Value, String> {
    if matches!(item, Value::Invalid | Value::Nil) {
        return Err("index of untyped nil".into());
    }
    let mut item = item.clone();
    for ix in indexes {
        item = match &item {
            Value::Str(s) | Value::Html(s) => {
                let i = index_arg(ix, s.len())?;
                Value::Byte(
                    *s.as_bytes()
                        .get(i)
                        .ok_or("reflect: string index out of range")?,
                )
            }
            Value::Samples(v) => {
                let i = index_arg(ix, v.len())?;
                Value::Sample(Some(
                    v.get(i).ok_or("reflect: slice index out of range")?.clone(),
                ))
            }
            Value::StrMap(m) => match ix {
                Value::Str(k) => Value::str(m.get(k.as_ref()).map_or("", String::as_str)),
                other => {
                    return Err(format!(
                        "value has type {}; should be string",
                        other.type_name()
                    ));
                }
            },
            Value::AnyMap(m) => match ix {
                Value::Str(k) => m.get(k.as_ref()).cloned().unwrap_or(Value::Nil),
                other => {
                    return Err(format!(
                        "value has type {}; should be string",
                        other.type_name()
                    ));
                }
            },
            Value::Sample(None) => return Err("index of nil pointer".into()),
            Value::Sample(Some(_)) => return Err("can't index item of type template.sample".into()),
            Value::Nil | Value::Invalid => return Err("index of untyped nil".into()),
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

fn slice(item: &Value, indexes: &[Value]) -> Result<Value, String> {
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let (len, is_str) = match item {
        Value::Invalid | Value::Nil => return Err("slice of untyped nil".into()),
        Value::Str(s) | Value::Html(s) => (s.len(), true),
        Value::Samples(v) => (v.len(), false),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    if is_str && indexes.len() == 3 {
        return Err("cannot 3-index slice a string".into());
    }
    let mut idx = [0, len, len];
    for (slot, ix) in idx.iter_mut().zip(indexes) {
        *slot = index_arg(ix, len)?;
    }
    let [i, j, k] = idx;
    if i > j {
        return Err(format!("invalid slice index: {i} > {j}"));
    }
    if indexes.len() == 3 && j > k {
        return Err(format!("invalid slice index: {j} > {k}"));
    }
    Ok(match item {
        Value::Str(s) => Value::str(&String::from_utf8_lossy(
            s.as_bytes().get(i..j).unwrap_or(&[]),
        )),
        Value::Html(s) => Value::Html(Rc::from(String::from_utf8_lossy(
            s.as_bytes().get(i..j).unwrap_or(&[]),
        ))),
        Value::Samples(v) => Value::Samples(Rc::new(v.get(i..j).unwrap_or(&[]).to_vec())),
        _ => return Err("BUG: slice of an unsliceable value".into()),
    })
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Bool,
    Int,
    Uint,
    Float,
    Str,
}

fn basic_kind(v: &Value) -> Option<Kind> {
    Some(match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Byte(_) => Kind::Uint,
        Value::Float(_) => Kind::Float,
        Value::Str(_) | Value::Html(_) => Kind::Str,
        _ => return None,
    })
}

fn as_i128(v: &Value) -> i128 {
    match v {
        Value::Int(i) => i128::from(*i),
        Value::Byte(b) => i128::from(*b),
        _ => 0,
    }
}

fn eq(a: &Value, others: &[Value]) -> Result<bool, String> {
    if others.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let a_valid = !matches!(a, Value::Invalid | Value::Nil);
    for b in others {
        let b_valid = !matches!(b, Value::Invalid | Value::Nil);
        let (ka, kb) = (basic_kind(a), basic_kind(b));
        let truth = match (a, b) {
            _ if !a_valid || !b_valid => !a_valid && !b_valid,
            (Value::Bool(x), Value::Bool(y)) => x == y,
            (Value::Float(x), Value::Float(y)) => x == y,
            (Value::Str(x) | Value::Html(x), Value::Str(y) | Value::Html(y)) => x == y,
            _ if matches!(ka, Some(Kind::Int | Kind::Uint))
                && matches!(kb, Some(Kind::Int | Kind::Uint)) =>
            {
                as_i128(a) == as_i128(b)
            }
            _ if ka.is_some() || kb.is_some() => return Err(BAD_COMPARISON.into()),
            (Value::Sample(x), Value::Sample(y)) => match (x, y) {
                (Some(x), Some(y)) => Rc::ptr_eq(x, y),
                (None, None) => true,
                _ => false,
            },
            (Value::Time(x), Value::Time(y)) => x == y,
            (Value::Duration(x), Value::Duration(y)) => x == y,
            (Value::StrMap(_) | Value::AnyMap(_) | Value::Samples(_), _) => {
                return Err(format!(
                    "non-comparable type {}: {}",
                    a.to_v_string(),
                    a.type_name()
                ));
            }
            _ if std::mem::discriminant(a) != std::mem::discriminant(b) => {
                return Err(BAD_COMPARISON.into());
            }
            _ => return Err(BAD_COMPARISON_TYPE.into()),
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn lt(a: &Value, b: &Value) -> Result<bool, String> {
    let ka = basic_kind(a).ok_or(BAD_COMPARISON_TYPE)?;
    let kb = basic_kind(b).ok_or(BAD_COMPARISON_TYPE)?;
    Ok(match (a, b) {
        _ if matches!(ka, Kind::Int | Kind::Uint) && matches!(kb, Kind::Int | Kind::Uint) => {
            as_i128(a) < as_i128(b)
        }
        _ if ka != kb => return Err(BAD_COMPARISON.into()),
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::Str(x) | Value::Html(x), Value::Str(y) | Value::Html(y)) => x < y,
        _ => return Err(BAD_COMPARISON_TYPE.into()),
    })
}
