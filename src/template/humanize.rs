//! Prometheus's humanize family and the string helpers of its template functions
//! (`title`, `stripPort`, `stripDomain`).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::float::fmt_g;

/// Go's `fmt.Sprintf("%.4g", v)`.
fn g4(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let body = fmt_g(v.abs(), Some(4), false);
    if v.is_sign_negative() {
        format!("-{body}")
    } else {
        body
    }
}

/// `humanize`: SI prefixes, 4 significant digits (`1.235M`, `120m`).
pub(super) fn humanize(mut v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", g4(v))
}

/// `humanize1024`: binary prefixes (`1Mi`); |v| ≤ 1 is printed as is.
pub(super) fn humanize_1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g4(v))
}

/// `humanizeDuration`: `1d 1h 0m 0s`, `1.234s`, `100ms`.
pub(super) fn humanize_duration(mut v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        // Go's float64 → int64 conversion; saturating here.
        let d = super::funcs::go_f64_to_i64(v);
        let (days, hours, minutes, seconds) = (d / 86_400, d / 3600 % 24, d / 60 % 60, d % 60);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", g4(v));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", g4(v))
}

/// `humanizePercentage`: ratio → `12.35%`.
pub(super) fn humanize_percentage(v: f64) -> String {
    format!("{}%", g4(v * 100.0))
}

/// `title`: the first letter of each word upper-cased, the rest unchanged.
pub(super) fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_');
    }
    out
}

/// Go's `net.SplitHostPort`.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    let i = s.rfind(':')?;
    let (host, j, k) = if s.starts_with('[') {
        let end = s.find(']')?;
        if end + 1 != i {
            return None;
        }
        (s.get(1..end)?, 1, end + 1)
    } else {
        let host = s.get(..i)?;
        if host.contains(':') {
            return None;
        }
        (host, 0, 0)
    };
    if s.get(j..)?.contains('[') || s.get(k..)?.contains(']') {
        return None;
    }
    Some((host, s.get(i + 1..)?))
}

/// `stripPort`: `host:port` → `host`; unsplittable input unchanged.
pub(super) fn strip_port(s: &str) -> &str {
    split_host_port(s).map_or(s, |(h, _)| h)
}

/// `stripDomain`: `foo.example.com:12345` → `foo:12345`; IP addresses unchanged.
pub(super) fn strip_domain(s: &str) -> String {
    let (host, port) = split_host_port(s).unwrap_or((s, ""));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return s.to_string();
    }
    let host = host.split('.').next().unwrap_or("");
    if port.is_empty() {
        return host.to_string();
    }
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Go's `strings.ToUpper`/`ToLower`: one rune at a time (`ß` stays `ß`).
pub(super) fn map_case(s: &str, upper: bool) -> String {
    s.chars()
        .map(|c| {
            if upper {
                let mut u = c.to_uppercase();
                match (u.next(), u.next()) {
                    (Some(x), None) => x,
                    _ => c,
                }
            } else {
                c.to_lowercase().next().unwrap_or(c)
            }
        })
        .collect()
}
