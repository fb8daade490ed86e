//! OTel metric and attribute names → Prometheus names, per `otlp.translation_strategy`, with the
//! rules of Prometheus 3's translator (`otlptranslator`): UCUM units become suffixes
//! (`s` → `_seconds`, `By/s` → `_bytes_per_second`, `{requests}` dropped), monotonic sums get
//! `_total`, gauges with unit `1` get `_ratio`; escaping splits names at characters outside
//! `[a-zA-Z0-9:]` and joins the pieces with `_`.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::config::otlp::TranslationStrategy;

/// The Prometheus type an OTel metric becomes (decides the suffixes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Gauge (`_ratio` for unit `1`).
    Gauge,
    /// Non-monotonic sum: stored as a gauge, but no `_ratio`.
    UpDownCounter,
    /// Monotonic cumulative sum: a counter (`_total`).
    Counter,
    /// Explicit-bucket or exponential histogram.
    Histogram,
    /// Summary.
    Summary,
}

fn unit_name(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

fn per_unit_name(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

/// The main and `per_…` suffixes of a UCUM unit, unescaped. Annotations (`{…}`) give none.
fn unit_suffixes(unit: &str) -> (String, String) {
    let (main, per) = match unit.split_once('/') {
        Some((m, p)) => (m, Some(p)),
        None => (unit, None),
    };
    let usable = |u: &str| !u.is_empty() && !u.contains(['{', '}']);
    let main = main.trim();
    let main = if usable(main) {
        unit_name(main).to_string()
    } else {
        String::new()
    };
    let per = match per.map(str::trim) {
        Some(p) if usable(p) => format!("per_{}", per_unit_name(p)),
        _ => String::new(),
    };
    (main, per)
}

fn is_metric_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

/// Replaces invalid characters by `_`, collapses runs of `_`, drops a leading `_`.
fn clean_unit(unit: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    for c in unit.chars() {
        let c = if is_metric_char(c) { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    match out.strip_prefix('_') {
        Some(rest) => rest.to_string(),
        None => out,
    }
}

fn starts_with_digit(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_digit)
}

/// The Prometheus metric name of an OTel metric. An error when nothing usable is left.
pub fn metric_name(
    name: &str,
    unit: &str,
    kind: Kind,
    strategy: TranslationStrategy,
) -> Result<String, String> {
    let out = match (strategy.escapes(), strategy.adds_suffixes()) {
        (true, true) => escaped_with_suffixes(name, unit, kind),
        (true, false) => {
            let joined = name
                .split(|c: char| !is_metric_char(c) && c != '_')
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join("_");
            if starts_with_digit(&joined) {
                format!("_{joined}")
            } else {
                joined
            }
        }
        (false, true) => utf8_with_suffixes(name, unit, kind),
        (false, false) => name.to_string(),
    };
    if out.is_empty() {
        return Err(format!(
            "normalization for metric {name:?} resulted in empty name"
        ));
    }
    if out != name && out.chars().all(|c| c == '_') {
        return Err(format!(
            "normalization for metric {name:?} resulted in invalid name {out:?}"
        ));
    }
    Ok(out)
}

fn escaped_with_suffixes(name: &str, unit: &str, kind: Kind) -> String {
    let mut tokens: Vec<String> = name
        .split(|c: char| !is_metric_char(c))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    let (main, per) = unit_suffixes(unit);
    let mut main = clean_unit(&main);
    let mut per = clean_unit(&per);
    if tokens.contains(&main) {
        main.clear();
    }
    if per == "per_" {
        per.clear();
    } else {
        if let Some(p) = per.strip_suffix('_') {
            per = p.to_string();
        }
        if tokens.contains(&per) {
            per.clear();
        }
    }
    if !per.is_empty()
        && let Some(m) = main.strip_suffix('_')
    {
        main = m.to_string();
    }
    for suffix in [main, per] {
        if !suffix.is_empty() {
            tokens.push(suffix);
        }
    }
    let mut move_to_end = |word: &str| {
        tokens.retain(|t| t != word);
        tokens.push(word.to_string());
    };
    if kind == Kind::Counter {
        move_to_end("total");
    }
    if unit == "1" && kind == Kind::Gauge {
        move_to_end("ratio");
    }
    let joined = tokens.join("_");
    if starts_with_digit(&joined) {
        format!("_{joined}")
    } else {
        joined
    }
}

/// Removes `_suffix` (the suffix plus one delimiter) when the name is longer than that.
fn trim_suffix(name: &mut String, suffix: &str) {
    if name.ends_with(suffix) && name.len() > suffix.len() + 1 {
        name.truncate(name.len() - suffix.len() - 1);
    }
}

fn utf8_with_suffixes(name: &str, unit: &str, kind: Kind) -> String {
    let mut out = name.to_string();
    let ratio = unit == "1" && kind == Kind::Gauge;
    if ratio {
        trim_suffix(&mut out, "ratio");
    }
    let total = kind == Kind::Counter;
    if total {
        trim_suffix(&mut out, "total");
    }
    let (main, per) = unit_suffixes(unit);
    if !per.is_empty() {
        trim_suffix(&mut out, &per);
    }
    if !main.is_empty() && !out.ends_with(&main) {
        out.push('_');
        out.push_str(&main);
    }
    if !per.is_empty() {
        out.push('_');
        out.push_str(&per);
    }
    if total {
        out.push_str("_total");
    }
    if ratio {
        out.push_str("_ratio");
    }
    out
}

/// The Prometheus label name of an OTel attribute. Escaping replaces characters outside
/// `[a-zA-Z0-9]` by `_` (runs collapsed; `__x__` keeps its underscores) and prefixes a leading
/// digit with `key_`.
pub fn label_name(name: &str, strategy: TranslationStrategy) -> Result<String, String> {
    if name.is_empty() {
        return Err("label name is empty".into());
    }
    let only_underscores = |s: &str| s.chars().all(|c| c == '_');
    if !strategy.escapes() {
        if only_underscores(name) {
            return Err(format!("label name {name:?} contains only underscores"));
        }
        return Ok(name.to_string());
    }
    let reserved = name.len() >= 4 && name.starts_with("__") && name.ends_with("__");
    let inner = if reserved {
        name.get(2..name.len() - 2).unwrap_or_default()
    } else {
        name
    };
    let mut out = String::with_capacity(name.len() + 4);
    for c in inner.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    if reserved {
        out = format!("__{out}__");
    }
    if starts_with_digit(&out) {
        out.insert_str(0, "key_");
    }
    if only_underscores(&out) {
        return Err(format!(
            "normalization for label name {name:?} resulted in invalid name {out:?}"
        ));
    }
    Ok(out)
}

/// A float as Prometheus's translator writes `le` and `quantile` values (Go's
/// `FormatFloat(f, 'f', -1, 64)`: shortest round-trip digits, no exponent; `+Inf`).
pub fn format_bound(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use TranslationStrategy::*;

    #[test]
    fn metric_names() {
        let check = |name: &str, unit: &str, kind: Kind, s: TranslationStrategy, want: &str| {
            assert_eq!(
                metric_name(name, unit, kind, s).as_deref(),
                Ok(want),
                "{name:?} {unit:?} {kind:?} {s:?}"
            );
        };
        let d = UnderscoreEscapingWithSuffixes;
        check(
            "http.server.duration",
            "s",
            Kind::Histogram,
            d,
            "http_server_duration_seconds",
        );
        check(
            "requests.count",
            "1",
            Kind::Counter,
            d,
            "requests_count_total",
        );
        check(
            "system.cpu.utilization",
            "1",
            Kind::Gauge,
            d,
            "system_cpu_utilization_ratio",
        );
        check("memory.usage", "By", Kind::Gauge, d, "memory_usage_bytes");
        check("net.io", "By/s", Kind::Gauge, d, "net_io_bytes_per_second");
        check(
            "rpc.requests",
            "{request}",
            Kind::Counter,
            d,
            "rpc_requests_total",
        );
        check("total.requests", "", Kind::Counter, d, "requests_total");
        check("latency_seconds", "s", Kind::Gauge, d, "latency_seconds");
        check("a__b..c", "", Kind::Gauge, d, "a_b_c");
        check("2xx", "", Kind::Gauge, d, "_2xx");
        check("temp", "Cel", Kind::Gauge, d, "temp_celsius");
        check("odd", "foo/bar", Kind::Gauge, d, "odd_foo_per_bar");
        check("q", "%", Kind::Gauge, d, "q_percent");
        check("queue.size", "1", Kind::UpDownCounter, d, "queue_size");
        let w = UnderscoreEscapingWithoutSuffixes;
        check(
            "http.server.duration",
            "s",
            Kind::Histogram,
            w,
            "http_server_duration",
        );
        check("a__b", "", Kind::Counter, w, "a__b");
        let u = NoUtf8EscapingWithSuffixes;
        check(
            "http.server.duration",
            "s",
            Kind::Histogram,
            u,
            "http.server.duration_seconds",
        );
        check("req.total", "", Kind::Counter, u, "req_total");
        check("cpu.util", "1", Kind::Gauge, u, "cpu.util_ratio");
        check(
            "http.server.duration",
            "s",
            Kind::Counter,
            NoTranslation,
            "http.server.duration",
        );
        assert!(metric_name("...", "", Kind::Gauge, d).is_err());
        assert!(metric_name("", "", Kind::Gauge, NoTranslation).is_err());
    }

    #[test]
    fn label_names() {
        let d = UnderscoreEscapingWithSuffixes;
        let check = |name: &str, want: &str| {
            assert_eq!(label_name(name, d).as_deref(), Ok(want), "{name:?}");
        };
        check("http.method", "http_method");
        check("123invalid", "key_123invalid");
        check("__reserved__", "__reserved__");
        check("_private", "_private");
        check("a..b", "a_b");
        check("ünï", "_n_");
        assert!(label_name("", d).is_err());
        assert!(label_name("...", d).is_err());
        assert_eq!(
            label_name("http.method", NoTranslation).as_deref(),
            Ok("http.method")
        );
    }

    #[test]
    fn bounds() {
        assert_eq!(format_bound(0.5), "0.5");
        assert_eq!(format_bound(1e-7), "0.0000001");
        assert_eq!(format_bound(100.0), "100");
        assert_eq!(format_bound(f64::INFINITY), "+Inf");
    }
}
