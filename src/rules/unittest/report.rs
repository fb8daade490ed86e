//! Text forms promtool uses in its reports (FORMAT.md B.8): Prometheus and Go durations, Go's
//! `%E`-style shortest floats, Go label-set strings, and the JUnit XML file.

use crate::rules::validate::go_quote;
use argus_storage::Labels;
use std::collections::BTreeMap;

/// Prometheus's `model.Duration` text: `0s`, `5m`, `1d`, `2m59s999ms` (`y`/`w` only when exact).
pub(crate) fn prom_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut rest = ms;
    let mut out = String::new();
    if rest < 0 {
        out.push('-');
        rest = rest.saturating_neg();
    }
    const UNITS: [(&str, i64, bool); 7] = [
        ("y", 365 * 86_400_000, true),
        ("w", 7 * 86_400_000, true),
        ("d", 86_400_000, false),
        ("h", 3_600_000, false),
        ("m", 60_000, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ];
    for (unit, mult, exact) in UNITS {
        if exact && rest % mult != 0 {
            continue;
        }
        let v = rest / mult;
        if v > 0 {
            out.push_str(&format!("{v}{unit}"));
            rest -= v * mult;
        }
    }
    out
}

/// Go's `time.Duration.String()` for a millisecond duration: `0s`, `1m0s`, `473352h0m0s`, `1.5s`,
/// `500ms`.
pub(crate) fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let neg = ms < 0;
    let abs = ms.unsigned_abs();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if abs < 1000 {
        out.push_str(&format!("{abs}ms"));
        return out;
    }
    let (h, m, s, frac) = (
        abs / 3_600_000,
        abs / 60_000 % 60,
        abs / 1000 % 60,
        abs % 1000,
    );
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&s.to_string());
    if frac > 0 {
        let f = format!("{frac:03}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out.push('s');
    out
}

/// Go's `strconv.FormatFloat(v, 'E', -1, 64)`: `1E+00`, `6.1E+01`, `NaN`, `+Inf`.
pub(crate) fn go_float_upper_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let s = format!("{v:E}");
    let Some((mant, exp)) = s.split_once('E') else {
        return s;
    };
    let e: i32 = exp.parse().unwrap_or(0);
    let sign = if e < 0 { '-' } else { '+' };
    format!("{mant}E{sign}{:02}", e.abs())
}

/// Go's `labels.Labels.String()`: `{a="b", c="d"}`, names quoted when not legacy-valid.
pub(crate) fn labels_string(l: &Labels) -> String {
    let parts: Vec<String> = l
        .iter()
        .map(|p| {
            let name = if argus_query::names::is_legacy_label_name(&p.name) {
                p.name.clone()
            } else {
                go_quote(&p.name)
            };
            format!("{name}={}", go_quote(&p.value))
        })
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// The same for a string map.
pub(crate) fn map_string(m: &BTreeMap<String, String>) -> String {
    labels_string(&Labels::from_pairs(&m.iter().collect::<Vec<_>>()))
}

/// A YAML float as Go's yaml.v3 reads it (`1`, `-2.5e3`, `.inf`, `-.Inf`, `.nan`).
pub(crate) fn parse_yaml_float(s: &str) -> Option<f64> {
    match s {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Some(f64::NAN),
        _ => {
            let t = s.replace('_', "");
            if t.eq_ignore_ascii_case("inf") || t.eq_ignore_ascii_case("nan") {
                return None;
            }
            t.parse::<f64>().ok()
        }
    }
}

/// XML text escaping.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let check = |ms: i64, want: &str| assert_eq!(prom_duration(ms), want);
        check(0, "0s");
        check(5 * 60_000, "5m");
        check(86_400_000, "1d");
        check(179_999, "2m59s999ms");
        check(14 * 86_400_000, "2w");
        check(90 * 86_400_000, "90d");
        let check = |ms: i64, want: &str| assert_eq!(go_duration(ms), want);
        check(0, "0s");
        check(60_000, "1m0s");
        check(1_704_067_200_000, "473352h0m0s");
        check(1500, "1.5s");
        check(500, "500ms");
        let check = |v: f64, want: &str| assert_eq!(go_float_upper_e(v), want);
        check(1.0, "1E+00");
        check(61.0, "6.1E+01");
        check(0.0, "0E+00");
        check(-1.5e-7, "-1.5E-07");
        check(1e100, "1E+100");
        check(f64::NAN, "NaN");
        assert_eq!(
            labels_string(&Labels::from_pairs(&[("a", "x\"y"), ("b-c", "1")])),
            "{a=\"x\\\"y\", \"b-c\"=\"1\"}"
        );
    }
}
