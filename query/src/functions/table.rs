//! The one table of PromQL functions Argus evaluates: name → argument types → implementation.
//!
//! The parser check ([`crate::parse::parse`] refuses calls of functions not in it), the
//! evaluator ([`super::call`] and the streamed range calls) and the docs ([`crate::functions`]
//! and `query/FUNCTIONS.md`, generated from it and checked by a test) all read this table. The
//! argument types and variadic counts are Prometheus's (`promql/parser/functions.go`); a test
//! checks them against `promql-parser`'s, which checks every call's arguments before Argus sees
//! it. For range-vector functions, the argument types also give the layout: the one
//! `Matrix` argument is the windowed input, the `Scalar` arguments are its parameters in order.

use super::{CallFn, RangeFn, date, histogram, info, label, math, native, scalars, sort, time};
use promql_parser::parser::value::ValueType;

use RangeFn as R;
use ValueType::{Matrix as M, Scalar as S, String as Str, Vector as V};

/// How a function is evaluated.
#[derive(Clone, Copy)]
pub(crate) enum Impl {
    /// A function of the samples in each window of its `Matrix` argument (the moving-window
    /// driver in `functions/mod.rs`, which also streams them series by series).
    Range(RangeFn),
    /// A float function applied to every float sample of its instant-vector argument (the
    /// metric name dropped, histogram samples ignored).
    Point(fn(f64) -> f64),
    /// Anything else: given the argument expressions.
    Call(CallFn),
}

/// One function: its signature and implementation.
pub(crate) struct Def {
    pub name: &'static str,
    /// Argument types, in order.
    pub args: &'static [ValueType],
    /// Prometheus's variadic count: 0 for exactly `args`; `n > 0` for up to `n` optional
    /// trailing arguments (the last of `args` is then optional and repeats); `-1` for any
    /// number of trailing arguments of the last type.
    pub variadic: i32,
    pub returns: ValueType,
    /// Behind `--enable-feature=promql-experimental-functions` in Prometheus.
    pub experimental: bool,
    pub imp: Impl,
}

const fn def(
    name: &'static str,
    args: &'static [ValueType],
    variadic: i32,
    returns: ValueType,
    imp: Impl,
) -> Def {
    Def {
        name,
        args,
        variadic,
        returns,
        experimental: false,
        imp,
    }
}

/// A range-vector function over one matrix and no parameters.
const fn range(name: &'static str, f: RangeFn) -> Def {
    def(name, &[M], 0, V, Impl::Range(f))
}

/// A point-wise float function of one instant vector.
const fn point(name: &'static str, f: fn(f64) -> f64) -> Def {
    def(name, &[V], 0, V, Impl::Point(f))
}

/// A calendar function: one optional instant vector (default `vector(time())`).
const fn date(name: &'static str) -> Def {
    def(name, &[V], 1, V, Impl::Call(date::date_fn))
}

const fn experimental(d: Def) -> Def {
    Def {
        experimental: true,
        ..d
    }
}

/// Every function, sorted by name (a test checks the order, lookups bisect).
static FUNCTIONS: &[Def] = &[
    point("abs", f64::abs),
    def("absent", &[V], 0, V, Impl::Call(super::absent::absent)),
    def(
        "absent_over_time",
        &[M],
        0,
        V,
        Impl::Call(super::absent::absent_over_time),
    ),
    point("acos", f64::acos),
    point("acosh", f64::acosh),
    point("asin", f64::asin),
    point("asinh", f64::asinh),
    point("atan", f64::atan),
    point("atanh", f64::atanh),
    range("avg_over_time", R::Avg),
    point("ceil", f64::ceil),
    range("changes", R::Changes),
    def("clamp", &[V, S, S], 0, V, Impl::Call(math::clamp)),
    def("clamp_max", &[V, S], 0, V, Impl::Call(math::clamp)),
    def("clamp_min", &[V, S], 0, V, Impl::Call(math::clamp)),
    point("cos", f64::cos),
    point("cosh", f64::cosh),
    range("count_over_time", R::Count),
    date("day_of_month"),
    date("day_of_week"),
    date("day_of_year"),
    date("days_in_month"),
    point("deg", math::deg),
    range("delta", R::Delta),
    range("deriv", R::Deriv),
    experimental(def(
        "double_exponential_smoothing",
        &[M, S, S],
        0,
        V,
        Impl::Range(R::Smoothing),
    )),
    experimental(def("end", &[], 0, S, Impl::Call(time::end))),
    point("exp", f64::exp),
    range("first_over_time", R::First),
    point("floor", f64::floor),
    def("histogram_avg", &[V], 0, V, Impl::Call(native::stat_fn)),
    def("histogram_count", &[V], 0, V, Impl::Call(native::stat_fn)),
    def(
        "histogram_fraction",
        &[S, S, V],
        0,
        V,
        Impl::Call(|ev, _, a, c| histogram::histogram_fraction(ev, a, c)),
    ),
    def(
        "histogram_quantile",
        &[S, V],
        0,
        V,
        Impl::Call(|ev, _, a, c| histogram::histogram_quantile(ev, a, c)),
    ),
    experimental(def(
        "histogram_quantiles",
        &[V, Str, S, S],
        9,
        V,
        Impl::Call(|ev, _, a, c| histogram::histogram_quantiles(ev, a, c)),
    )),
    def("histogram_stddev", &[V], 0, V, Impl::Call(native::stat_fn)),
    def("histogram_stdvar", &[V], 0, V, Impl::Call(native::stat_fn)),
    def("histogram_sum", &[V], 0, V, Impl::Call(native::stat_fn)),
    date("hour"),
    range("idelta", R::Idelta),
    range("increase", R::Increase),
    experimental(def(
        "info",
        &[V, V],
        1,
        V,
        Impl::Call(|ev, _, a, c| info::info(ev, a, c)),
    )),
    range("irate", R::Irate),
    def(
        "label_join",
        &[V, Str, Str, Str],
        -1,
        V,
        Impl::Call(|ev, _, a, c| label::label_join(ev, a, c)),
    ),
    def(
        "label_replace",
        &[V, Str, Str, Str, Str],
        0,
        V,
        Impl::Call(|ev, _, a, c| label::label_replace(ev, a, c)),
    ),
    range("last_over_time", R::Last),
    point("ln", f64::ln),
    point("log10", f64::log10),
    point("log2", f64::log2),
    experimental(range("mad_over_time", R::Mad)),
    experimental(def(
        "max_of",
        &[S, S],
        0,
        S,
        Impl::Call(scalars::min_max_of),
    )),
    range("max_over_time", R::Max),
    experimental(def(
        "min_of",
        &[S, S],
        0,
        S,
        Impl::Call(scalars::min_max_of),
    )),
    range("min_over_time", R::Min),
    date("minute"),
    date("month"),
    def("pi", &[], 0, S, Impl::Call(scalars::pi)),
    def(
        "predict_linear",
        &[M, S],
        0,
        V,
        Impl::Range(R::PredictLinear),
    ),
    range("present_over_time", R::Present),
    def(
        "quantile_over_time",
        &[S, M],
        0,
        V,
        Impl::Range(R::Quantile),
    ),
    point("rad", math::rad),
    experimental(def("range", &[], 0, S, Impl::Call(time::range))),
    range("rate", R::Rate),
    range("resets", R::Resets),
    def("round", &[V, S], 1, V, Impl::Call(math::round)),
    def("scalar", &[V], 0, S, Impl::Call(scalars::scalar)),
    point("sgn", math::sgn),
    point("sin", f64::sin),
    point("sinh", f64::sinh),
    def("sort", &[V], 0, V, Impl::Call(sort::sort)),
    experimental(def(
        "sort_by_label",
        &[V, Str],
        -1,
        V,
        Impl::Call(sort::sort),
    )),
    experimental(def(
        "sort_by_label_desc",
        &[V, Str],
        -1,
        V,
        Impl::Call(sort::sort),
    )),
    def("sort_desc", &[V], 0, V, Impl::Call(sort::sort)),
    point("sqrt", f64::sqrt),
    experimental(def("start", &[], 0, S, Impl::Call(time::start))),
    range("stddev_over_time", R::Stddev),
    range("stdvar_over_time", R::Stdvar),
    experimental(def("step", &[], 0, S, Impl::Call(time::step))),
    range("sum_over_time", R::Sum),
    point("tan", f64::tan),
    point("tanh", f64::tanh),
    def("time", &[], 0, S, Impl::Call(time::time)),
    def("timestamp", &[V], 0, V, Impl::Call(time::timestamp)),
    experimental(range("ts_of_first_over_time", R::TsFirst)),
    experimental(range("ts_of_last_over_time", R::TsLast)),
    experimental(range("ts_of_max_over_time", R::TsMax)),
    experimental(range("ts_of_min_over_time", R::TsMin)),
    def("vector", &[S], 0, V, Impl::Call(scalars::vector)),
    date("year"),
];

/// Functions `promql-parser` knows that Argus does not evaluate, with the reason.
pub(crate) const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "integral",
        "experimental upstream and not in Prometheus's function table",
    ),
    (
        "start_timestamp",
        "needs per-sample start timestamps, which storage does not keep",
    ),
];

/// The function called `name`, if Argus evaluates it.
pub(crate) fn lookup(name: &str) -> Option<&'static Def> {
    FUNCTIONS
        .binary_search_by(|d| d.name.cmp(name))
        .ok()
        .and_then(|i| FUNCTIONS.get(i))
}

/// Every function, by name.
pub(crate) fn all() -> &'static [Def] {
    FUNCTIONS
}

impl Def {
    /// Position of the range-vector argument (range-vector functions have exactly one).
    pub(crate) fn matrix_arg(&self) -> Option<usize> {
        self.args.iter().position(|t| *t == M)
    }

    /// The signature as Prometheus's docs write it: `round(v instant-vector, to_nearest=1
    /// scalar)` becomes `round(instant-vector, [scalar]) instant-vector`.
    pub(crate) fn signature(&self) -> String {
        let ty = |t: &ValueType| match t {
            V => "instant-vector",
            M => "range-vector",
            S => "scalar",
            Str => "string",
        };
        let mut parts: Vec<String> = self.args.iter().map(|t| ty(t).to_string()).collect();
        if let (Some(last), Some(lt)) = (parts.last_mut(), self.args.last()) {
            match self.variadic {
                0 => {}
                1 => *last = format!("[{last}]"),
                n if n > 1 => *last = format!("[{last}, … up to {n}]"),
                _ => *last = format!("{last}, [{}…]", ty(lt)),
            }
        }
        format!("{}({}) {}", self.name, parts.join(", "), ty(&self.returns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promql_parser::parser::{Expr, parse};

    #[test]
    fn table_is_sorted_and_lookups_find_every_entry() {
        for w in FUNCTIONS.windows(2) {
            assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
        }
        for d in FUNCTIONS {
            assert!(lookup(d.name).is_some_and(|x| x.name == d.name));
        }
        assert!(lookup("holt_winters").is_none());
        assert!(lookup("").is_none());
    }

    /// Each signature is the one `promql-parser` checks calls against (Prometheus's).
    #[test]
    fn signatures_agree_with_the_parser() {
        let arg = |t: &ValueType| match t {
            V => "x",
            M => "x[1m]",
            S => "1",
            Str => "\"a\"",
        };
        for d in FUNCTIONS {
            let q = format!(
                "{}({})",
                d.name,
                d.args.iter().map(arg).collect::<Vec<_>>().join(", ")
            );
            let e = parse(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
            let Expr::Call(c) = e else {
                panic!("{q} is not a call")
            };
            assert_eq!(c.func.arg_types, d.args, "{}: argument types", d.name);
            assert_eq!(c.func.variadic, d.variadic, "{}: variadic", d.name);
            assert_eq!(c.func.return_type, d.returns, "{}: return type", d.name);
            assert_eq!(
                c.func.experimental, d.experimental,
                "{}: experimental",
                d.name
            );
            let ranges = d.args.iter().filter(|t| **t == M).count();
            if matches!(d.imp, Impl::Range(_)) {
                assert_eq!(
                    ranges, 1,
                    "{}: a range function has one range argument",
                    d.name
                );
                assert!(d.args.iter().all(|t| matches!(t, M | S)), "{}", d.name);
            }
        }
        for (name, _) in UNSUPPORTED {
            assert!(lookup(name).is_none());
            let known = parse(&format!("{name}(x)"))
                .err()
                .is_none_or(|e| !e.contains("unknown function"));
            assert!(known, "{name} is no longer known to the parser");
        }
    }

    #[test]
    fn signatures_read_as_prometheus_docs() {
        let sig = |n: &str| lookup(n).map(Def::signature);
        assert_eq!(
            sig("quantile_over_time").as_deref(),
            Some("quantile_over_time(scalar, range-vector) instant-vector")
        );
        assert_eq!(
            sig("round").as_deref(),
            Some("round(instant-vector, [scalar]) instant-vector")
        );
        assert_eq!(
            sig("label_join").as_deref(),
            Some("label_join(instant-vector, string, string, string, [string…]) instant-vector")
        );
        assert_eq!(sig("time").as_deref(), Some("time() scalar"));
    }
}
