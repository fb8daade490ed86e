//! The function table: Go's built-ins plus Prometheus's alert template functions, with the
//! parameter types Go checks at call time. Prometheus functions are implemented here; the Go
//! built-ins live in `builtins.rs`.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::gotime::GoTime;
use super::humanize;
use super::value::Value;
use super::{QuerySample, TemplateQuery};
use std::collections::BTreeMap;
use std::rc::Rc;

/// A parameter type, as far as Go's argument conversion distinguishes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Param {
    /// `interface{}`.
    Any,
    /// `string`.
    Str,
    /// `*sample`.
    Sample,
    /// `queryResult`.
    Samples,
    /// `reflect.Value` (built-ins that see the raw value).
    RValue,
}

impl Param {
    pub(super) fn go_name(self) -> &'static str {
        match self {
            Param::Any => "interface {}",
            Param::Str => "string",
            Param::Sample => "*template.sample",
            Param::Samples => "template.queryResult",
            Param::RValue => "reflect.Value",
        }
    }
}

macro_rules! funcs {
    ($($variant:ident $name:literal [$($p:ident),*] $(... $v:ident)?;)*) => {
        /// A callable template function.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(super) enum Func { $($variant),* }

        impl Func {
            /// Looks a function up by its template name.
            pub(super) fn lookup(name: &str) -> Option<Func> {
                match name { $($name => Some(Func::$variant),)* _ => None }
            }
            pub(super) fn name(self) -> &'static str {
                match self { $(Func::$variant => $name),* }
            }
            /// Fixed parameters and the variadic element type, if any.
            pub(super) fn signature(self) -> (&'static [Param], Option<Param>) {
                match self { $(Func::$variant => (&[$(Param::$p),*], funcs!(@v $($v)?))),* }
            }
        }
    };
    (@v) => { None };
    (@v $v:ident) => { Some(Param::$v) };
}

funcs! {
    And "and" [RValue] ...RValue;
    Or "or" [RValue] ...RValue;
    Not "not" [RValue];
    Len "len" [RValue];
    Index "index" [RValue] ...RValue;
    Slice "slice" [RValue] ...RValue;
    Print "print" [] ...Any;
    Printf "printf" [Str] ...Any;
    Println "println" [] ...Any;
    Html "html" [] ...Any;
    Js "js" [] ...Any;
    Urlquery "urlquery" [] ...Any;
    Call "call" [RValue] ...RValue;
    Eq "eq" [RValue] ...RValue;
    Ne "ne" [RValue, RValue];
    Lt "lt" [RValue, RValue];
    Le "le" [RValue, RValue];
    Gt "gt" [RValue, RValue];
    Ge "ge" [RValue, RValue];
    Query "query" [Str];
    First "first" [Samples];
    Label "label" [Str, Sample];
    SampleValue "value" [Sample];
    StrValue "strvalue" [Sample];
    Args "args" [] ...Any;
    ReReplaceAll "reReplaceAll" [Str, Str, Str];
    SafeHtml "safeHtml" [Str];
    Match "match" [Str, Str];
    Title "title" [Str];
    ToUpper "toUpper" [Str];
    ToLower "toLower" [Str];
    GraphLink "graphLink" [Str];
    TableLink "tableLink" [Str];
    SortByLabel "sortByLabel" [Str, Samples];
    Humanize "humanize" [Any];
    Humanize1024 "humanize1024" [Any];
    HumanizeDuration "humanizeDuration" [Any];
    HumanizePercentage "humanizePercentage" [Any];
    HumanizeTimestamp "humanizeTimestamp" [Any];
    ToTime "toTime" [Any];
    ToDuration "toDuration" [Any];
    PathPrefix "pathPrefix" [];
    ExternalUrl "externalURL" [];
    ParseDuration "parseDuration" [Str];
    StripPort "stripPort" [Str];
    StripDomain "stripDomain" [Str];
    Now "now" [];
    UrlQueryEscape "urlQueryEscape" [Str];
}

/// What Prometheus functions may consult.
pub(super) struct FuncCtx<'a> {
    pub query: &'a dyn TemplateQuery,
    pub eval_time_secs: f64,
    pub external_url: &'a str,
}

/// Go's message for a nil-pointer panic inside a function (what `safeCall` reports).
pub(super) const NIL_DEREF: &str =
    "runtime error: invalid memory address or nil pointer dereference";

fn s(v: &Value) -> &str {
    match v {
        Value::Str(s) => s,
        _ => "",
    }
}

fn sample(v: &Value) -> Result<&QuerySample, String> {
    match v {
        Value::Sample(Some(s)) => Ok(s),
        _ => Err(NIL_DEREF.to_string()),
    }
}

fn samples(v: &Value) -> &[Rc<QuerySample>] {
    match v {
        Value::Samples(s) => s,
        _ => &[],
    }
}

/// Compiles a Go (RE2) regular expression; Err is Go's message for the common mistakes.
fn regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            let msg = e.to_string();
            let last = msg
                .lines()
                .last()
                .unwrap_or("")
                .trim_start_matches("error: ");
            let go = match last {
                "unclosed group" => format!("missing closing ): `{pattern}`"),
                "unopened group" => format!("unexpected ): `{pattern}`"),
                "unclosed character class" => format!("missing closing ]: `{pattern}`"),
                "repetition operator missing expression" => {
                    "missing argument to repetition operator: `*`".to_string()
                }
                other => other.to_string(),
            };
            format!("error parsing regexp: {go}")
        })
}

/// `Regexp.ReplaceAllString` with `$1`/`${name}` expansion, refusing results over
/// [`MAX_STRING`](super::printf::MAX_STRING) bytes.
fn replace_all_bounded(re: &regex::Regex, text: &str, repl: &str) -> Result<String, String> {
    let limit = super::printf::MAX_STRING;
    let mut out = String::new();
    let mut last = 0;
    for caps in re.captures_iter(text) {
        let Some(m) = caps.get(0) else { continue };
        out.push_str(text.get(last..m.start()).unwrap_or(""));
        caps.expand(repl, &mut out);
        last = m.end();
        if out.len() > limit {
            return Err(format!("result exceeds {limit} bytes"));
        }
    }
    out.push_str(text.get(last..).unwrap_or(""));
    Ok(out)
}

/// How Go's `regexp.MustCompile` quotes the expression: backquotes when possible.
fn go_regexp_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c != '`' && (c == '\t' || !c.is_control()))
    {
        format!("`{s}`")
    } else {
        super::gostr::go_quote(s)
    }
}

/// Calls a Prometheus function with converted arguments. Err is the function's error text.
pub(super) fn call_prometheus(f: Func, args: &[Value], ctx: &FuncCtx<'_>) -> Result<Value, String> {
    let arg = |i: usize| args.get(i).unwrap_or(&Value::Nil);
    Ok(match f {
        Func::Query => {
            let res = ctx.query.query(s(arg(0)))?;
            Value::Samples(Rc::new(res.into_iter().map(Rc::new).collect()))
        }
        Func::First => match samples(arg(0)).first() {
            Some(x) => Value::Sample(Some(x.clone())),
            None => return Err("first() called on vector with no elements".into()),
        },
        Func::Label => {
            let smp = sample(arg(1))?;
            Value::str(smp.labels.get(s(arg(0))).map_or("", String::as_str))
        }
        Func::SampleValue => Value::Float(sample(arg(0))?.value),
        Func::StrValue => Value::str(
            sample(arg(0))?
                .labels
                .get("__value__")
                .map_or("", String::as_str),
        ),
        Func::Args => {
            let m: BTreeMap<String, Value> = args
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("arg{i}"), v.clone()))
                .collect();
            Value::AnyMap(Rc::new(m))
        }
        Func::ReReplaceAll => {
            let re = regex(s(arg(0)))
                .map_err(|e| format!("regexp: Compile({}): {e}", go_regexp_quote(s(arg(0)))))?;
            Value::str(&replace_all_bounded(&re, s(arg(2)), s(arg(1)))?)
        }
        Func::SafeHtml => Value::Html(Rc::from(s(arg(0)))),
        Func::Match => Value::Bool(regex(s(arg(0)))?.is_match(s(arg(1)))),
        Func::Title => Value::str(&humanize::title(s(arg(0)))),
        Func::ToUpper => Value::str(&humanize::map_case(s(arg(0)), true)),
        Func::ToLower => Value::str(&humanize::map_case(s(arg(0)), false)),
        Func::GraphLink => Value::str(&format!(
            "/graph?g0.expr={}&g0.tab=0",
            super::gostr::query_escape(s(arg(0)))
        )),
        Func::TableLink => Value::str(&format!(
            "/graph?g0.expr={}&g0.tab=1",
            super::gostr::query_escape(s(arg(0)))
        )),
        Func::SortByLabel => {
            let name = s(arg(0));
            let mut v: Vec<Rc<QuerySample>> = samples(arg(1)).to_vec();
            v.sort_by(|a, b| {
                let key =
                    |x: &QuerySample| x.labels.get(name).map_or("", String::as_str).to_string();
                key(a).cmp(&key(b))
            });
            Value::Samples(Rc::new(v))
        }
        Func::Humanize => Value::str(&humanize::humanize(to_float(arg(0))?)),
        Func::Humanize1024 => Value::str(&humanize::humanize_1024(to_float(arg(0))?)),
        Func::HumanizeDuration => Value::str(&humanize::humanize_duration(to_float(arg(0))?)),
        Func::HumanizePercentage => Value::str(&humanize::humanize_percentage(to_float(arg(0))?)),
        Func::HumanizeTimestamp => {
            let v = to_float(arg(0))?;
            match float_to_time(v) {
                Ok(t) => Value::str(&t.to_string()),
                Err(None) => Value::str(&super::printf::sprintf("%.4g", &[Value::Float(v)])),
                Err(Some(e)) => return Err(e),
            }
        }
        Func::ToTime => match float_to_time(to_float(arg(0))?) {
            Ok(t) => Value::Time(t),
            Err(e) => return Err(e.unwrap_or_else(|| "value is NaN or Inf".into())),
        },
        Func::ToDuration => Value::Duration(go_f64_to_i64(to_float(arg(0))? * 1e9)),
        Func::PathPrefix | Func::ExternalUrl => {
            if ctx.external_url.is_empty() {
                return Err(NIL_DEREF.into());
            }
            if f == Func::ExternalUrl {
                Value::str(ctx.external_url)
            } else {
                Value::str(url_path(ctx.external_url))
            }
        }
        Func::ParseDuration => Value::Float(parse_duration(s(arg(0)))?),
        Func::StripPort => Value::str(humanize::strip_port(s(arg(0)))),
        Func::StripDomain => Value::str(&humanize::strip_domain(s(arg(0)))),
        Func::Now => Value::Float(ctx.eval_time_secs),
        Func::UrlQueryEscape => Value::str(&super::gostr::query_escape(s(arg(0)))),
        _ => return Err(format!("BUG: {} is not a Prometheus function", f.name())),
    })
}

/// Prometheus's `convertToFloat`: numbers and numeric strings.
pub(super) fn to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => parse_go_float(s),
        other => Err(format!("can't convert {} to float", other.type_name())),
    }
}

/// Go's `strconv.ParseFloat(s, 64)` through the workspace's one Go float parser, with Go's
/// error texts: a finite literal out of `f64` range is "value out of range", the rest "invalid
/// syntax".
fn parse_go_float(s: &str) -> Result<f64, String> {
    if let Some(v) = argus_query::gofloat::parse(s) {
        return Ok(v);
    }
    let decimal = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b".eE+-".contains(&b));
    let what = if decimal && s.parse::<f64>().is_ok_and(f64::is_infinite) {
        "value out of range"
    } else {
        "invalid syntax"
    };
    Err(format!(
        "strconv.ParseFloat: parsing {}: {what}",
        super::gostr::go_quote(s)
    ))
}

/// Prometheus's `floatToTime` (millisecond precision). `Err(None)` = NaN or Inf.
fn float_to_time(v: f64) -> Result<GoTime, Option<String>> {
    if v.is_nan() || v.is_infinite() {
        return Err(None);
    }
    let ts = v * 1e9;
    if ts > i64::MAX as f64 || ts < i64::MIN as f64 {
        return Err(Some(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            crate::template::format_go_float(v)
        )));
    }
    let ms = go_f64_to_i64(ts) / 1_000_000;
    let nanos = u32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0);
    Ok(GoTime {
        secs: ms.div_euclid(1000),
        nanos,
    })
}

/// Go's `int64(f)` on amd64: NaN and out-of-range values become `math.MinInt64`.
pub(super) fn go_f64_to_i64(f: f64) -> i64 {
    if f.is_nan() || !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

/// The path of an absolute URL (`http://h:9090/path/prefix` → `/path/prefix`).
fn url_path(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    let path = after_scheme
        .find('/')
        .map_or("", |i| after_scheme.get(i..).unwrap_or(""));
    path.split(['?', '#']).next().unwrap_or("")
}

/// `model.ParseDurationAllowNegative` in seconds.
fn parse_duration(s: &str) -> Result<f64, String> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let d = crate::config::duration::parse_duration(body).map_err(|e| {
        if neg {
            format!("not a valid duration string: {}", super::gostr::go_quote(s))
        } else {
            e
        }
    })?;
    let secs = d.as_secs_f64();
    Ok(if neg { -secs } else { secs })
}
