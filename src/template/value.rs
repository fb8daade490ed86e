//! Dynamic values seen by templates, standing in for the Go types Prometheus hands to
//! `text/template`: their Go type names, truth, `%v` printing and field access.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::QuerySample;
use super::gotime::GoTime;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::rc::Rc;

/// The fields of Prometheus's alert template data (an anonymous Go struct).
#[derive(Debug)]
pub(super) struct AlertFields {
    pub labels: Rc<BTreeMap<String, String>>,
    pub external_labels: Rc<BTreeMap<String, String>>,
    pub external_url: Rc<str>,
    pub value: f64,
}

/// Go's spelling of the alert data type, as shown in "can't evaluate field" errors.
const ALERT_DATA_TYPE: &str = "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value float64 }";

/// A template value.
#[derive(Clone, Debug)]
pub(super) enum Value {
    /// Go's invalid `reflect.Value` ("no value").
    Invalid,
    /// A nil `interface{}`.
    Nil,
    Bool(bool),
    Int(i64),
    /// A byte (`index` on a string).
    Byte(u8),
    Float(f64),
    Str(Rc<str>),
    /// `html/template.HTML` from `safeHtml`.
    Html(Rc<str>),
    StrMap(Rc<BTreeMap<String, String>>),
    /// `map[string]interface{}` from `args`.
    AnyMap(Rc<BTreeMap<String, Value>>),
    /// Prometheus's `queryResult` (`[]*sample`).
    Samples(Rc<Vec<Rc<QuerySample>>>),
    /// `*sample`; `None` is a nil pointer.
    Sample(Option<Rc<QuerySample>>),
    /// `*time.Time`.
    Time(GoTime),
    /// `*time.Duration` (nanoseconds).
    Duration(i64),
    /// `time.Month` and `time.Weekday` print as names.
    Named(&'static str),
    Data(Rc<AlertFields>),
}

impl Value {
    pub(super) fn str(s: &str) -> Value {
        Value::Str(Rc::from(s))
    }

    /// Go's `%T`.
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Value::Invalid | Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Byte(_) => "uint8",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Html(_) => "template.HTML",
            Value::StrMap(_) => "map[string]string",
            Value::AnyMap(_) => "map[string]interface {}",
            Value::Samples(_) => "template.queryResult",
            Value::Sample(_) => "*template.sample",
            Value::Time(_) => "*time.Time",
            Value::Duration(_) => "*time.Duration",
            Value::Named(_) => "time.Month",
            Value::Data(_) => ALERT_DATA_TYPE,
        }
    }

    /// Go's template truth (`if`, `with`, `and`, `or`, `not`); `None` when the value cannot be
    /// tested (an invalid value).
    pub(super) fn truth(&self) -> Option<bool> {
        Some(match self {
            Value::Invalid => return None,
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Byte(b) => *b != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) | Value::Html(s) => !s.is_empty(),
            Value::StrMap(m) => !m.is_empty(),
            Value::AnyMap(m) => !m.is_empty(),
            Value::Samples(v) => !v.is_empty(),
            Value::Sample(p) => p.is_some(),
            Value::Time(_) | Value::Duration(_) | Value::Data(_) | Value::Named(_) => true,
        })
    }

    /// Appends Go's `fmt.Print` form (`%v`). `top` is true for the value an action prints,
    /// where Go prints what a pointer points to.
    pub(super) fn write_v(&self, out: &mut String, top: bool) {
        match self {
            Value::Invalid => out.push_str(if top {
                "<no value>"
            } else {
                "<invalid reflect.Value>"
            }),
            Value::Nil => out.push_str("<nil>"),
            Value::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Byte(b) => {
                let _ = write!(out, "{b}");
            }
            Value::Float(f) => out.push_str(&crate::template::format_go_float(*f)),
            Value::Str(s) | Value::Html(s) => out.push_str(s),
            Value::StrMap(m) => write_str_map(m, out),
            Value::AnyMap(m) => {
                out.push_str("map[");
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write_v(out, false);
                }
                out.push(']');
            }
            Value::Samples(v) => {
                out.push('[');
                for (i, s) in v.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    write_sample(s, out, true);
                }
                out.push(']');
            }
            Value::Sample(None) => out.push_str("<nil>"),
            Value::Sample(Some(s)) => write_sample(s, out, !top),
            Value::Time(t) => out.push_str(&t.to_string()),
            Value::Duration(d) => out.push_str(&super::gotime::duration_string(*d)),
            Value::Named(n) => out.push_str(n),
            Value::Data(d) => {
                out.push('{');
                write_str_map(&d.labels, out);
                out.push(' ');
                write_str_map(&d.external_labels, out);
                let _ = write!(out, " {} ", d.external_url);
                out.push_str(&crate::template::format_go_float(d.value));
                out.push('}');
            }
        }
    }

    /// `fmt.Sprint` of one value.
    pub(super) fn to_v_string(&self) -> String {
        let mut s = String::new();
        self.write_v(&mut s, false);
        s
    }

    /// Whether Go's `fmt.Sprint` treats the operand as a string (no spaces added next to it).
    pub(super) fn is_string(&self) -> bool {
        matches!(self, Value::Str(_) | Value::Html(_))
    }
}

fn write_str_map(m: &BTreeMap<String, String>, out: &mut String) {
    out.push_str("map[");
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{k}:{v}");
    }
    out.push(']');
}

fn write_sample(s: &QuerySample, out: &mut String, amp: bool) {
    if amp {
        out.push('&');
    }
    out.push('{');
    write_str_map(&s.labels, out);
    out.push(' ');
    out.push_str(&crate::template::format_go_float(s.value));
    out.push('}');
}

/// The result of looking up `.Name` on a value.
pub(super) enum Field {
    Value(Value),
    /// A method to call with the command's arguments.
    Method(super::gotime::Method),
    /// Go's message (without the `template: …` prefix).
    Err(String),
}

/// Field, map-key or method lookup (`evalField`), with `missingkey=zero` for maps.
pub(super) fn field(receiver: &Value, name: &str, has_args: bool) -> Field {
    use super::gotime::Method;
    let not_method = |what: Value| {
        if has_args {
            Field::Err(format!("{name} is not a method but has arguments"))
        } else {
            Field::Value(what)
        }
    };
    let not_func = |what: Value| {
        if has_args {
            Field::Err(format!(
                "{name} has arguments but cannot be invoked as function"
            ))
        } else {
            Field::Value(what)
        }
    };
    match receiver {
        Value::Invalid => Field::Value(Value::Invalid),
        Value::Nil => Field::Err(format!("nil pointer evaluating interface {{}}.{name}")),
        Value::StrMap(m) => not_method(Value::str(m.get(name).map_or("", String::as_str))),
        Value::AnyMap(m) => not_method(m.get(name).cloned().unwrap_or(Value::Nil)),
        Value::Data(d) => match name {
            "Labels" => not_func(Value::StrMap(d.labels.clone())),
            "ExternalLabels" => not_func(Value::StrMap(d.external_labels.clone())),
            "ExternalURL" => not_func(Value::Str(d.external_url.clone())),
            "Value" => not_func(Value::Float(d.value)),
            _ => Field::Err(format!(
                "can't evaluate field {name} in type {}",
                receiver.type_name()
            )),
        },
        Value::Sample(s) => match (name, s) {
            ("Labels" | "Value", None) => {
                Field::Err(format!("nil pointer evaluating *template.sample.{name}"))
            }
            ("Labels", Some(s)) => not_func(Value::StrMap(Rc::new(s.labels.clone()))),
            ("Value", Some(s)) => not_func(Value::Float(s.value)),
            _ => Field::Err(format!(
                "can't evaluate field {name} in type *template.sample"
            )),
        },
        Value::Time(_) | Value::Duration(_) => match Method::lookup(receiver, name) {
            Some(m) => Field::Method(m),
            None => Field::Err(format!(
                "can't evaluate field {name} in type {}",
                receiver.type_name()
            )),
        },
        _ => Field::Err(format!(
            "can't evaluate field {name} in type {}",
            receiver.type_name()
        )),
    }
}
