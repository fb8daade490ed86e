//! Metric and label names as Prometheus 3 validates and escapes them (prometheus/common
//! `model`): the one validator of the workspace. Under [`ValidationScheme::Utf8`] (Prometheus 3's
//! default) any non-empty UTF-8 name is valid; under [`ValidationScheme::Legacy`] metric names
//! match `[a-zA-Z_:][a-zA-Z0-9_:]*` and label names `[a-zA-Z_][a-zA-Z0-9_]*`. [`escape_name`]
//! implements the `escaping=` schemes of the exposition formats (`allow-utf-8`, `underscores`,
//! `dots`, `values`).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::borrow::Cow;
use std::fmt::Write as _;

/// Which names are valid (`metric_name_validation_scheme`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ValidationScheme {
    /// `legacy`: the ASCII character sets of Prometheus 2.
    Legacy,
    /// `utf8`: any non-empty UTF-8 string.
    #[default]
    Utf8,
}

/// Whether `c` at byte offset `i` of a name belongs to the legacy character set (Go's
/// `isValidLegacyRune`: letters, `_`, `:`, and digits after the first character).
pub fn is_legacy_rune(c: char, i: usize) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (c.is_ascii_digit() && i > 0)
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_legacy_metric_name(name: &str) -> bool {
    !name.is_empty() && name.char_indices().all(|(i, c)| is_legacy_rune(c, i))
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_legacy_label_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .char_indices()
            .all(|(i, c)| c != ':' && is_legacy_rune(c, i))
}

/// Whether `name` is a valid metric name under `scheme`.
pub fn is_valid_metric_name(name: &str, scheme: ValidationScheme) -> bool {
    match scheme {
        ValidationScheme::Legacy => is_legacy_metric_name(name),
        ValidationScheme::Utf8 => !name.is_empty(),
    }
}

/// Whether `name` is a valid label name under `scheme`.
pub fn is_valid_label_name(name: &str, scheme: ValidationScheme) -> bool {
    match scheme {
        ValidationScheme::Legacy => is_legacy_label_name(name),
        ValidationScheme::Utf8 => !name.is_empty(),
    }
}

/// How names outside the legacy character set are written for a consumer that negotiated
/// `escaping=<scheme>` (prometheus/common `EscapingScheme`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EscapingScheme {
    /// `allow-utf-8`: names unchanged.
    AllowUtf8,
    /// `underscores`: every character outside the legacy set becomes `_`.
    Underscores,
    /// `dots`: `_` becomes `__`, `.` becomes `_dot_`, any other character outside the legacy set
    /// `__`.
    Dots,
    /// `values`: legacy names unchanged; others get the prefix `U__`, `_` becomes `__` and any
    /// other character outside the legacy set `_<hex code point>_`.
    Values,
}

impl EscapingScheme {
    /// The scheme named by an `escaping=` parameter.
    pub fn from_param(s: &str) -> Option<Self> {
        match s {
            "allow-utf-8" => Some(Self::AllowUtf8),
            "underscores" => Some(Self::Underscores),
            "dots" => Some(Self::Dots),
            "values" => Some(Self::Values),
            _ => None,
        }
    }
}

/// `name` escaped with `scheme` (Go's `model.EscapeName`; borrowed when unchanged). The result
/// is not validated: an empty name stays empty.
pub fn escape_name(name: &str, scheme: EscapingScheme) -> Cow<'_, str> {
    if name.is_empty() {
        return Cow::Borrowed(name);
    }
    match scheme {
        EscapingScheme::AllowUtf8 => Cow::Borrowed(name),
        EscapingScheme::Underscores => {
            if is_legacy_metric_name(name) {
                return Cow::Borrowed(name);
            }
            let escaped = name
                .char_indices()
                .map(|(i, c)| if is_legacy_rune(c, i) { c } else { '_' })
                .collect();
            Cow::Owned(escaped)
        }
        EscapingScheme::Dots => {
            // No early return for legacy names: their underscores are doubled too.
            let mut out = String::with_capacity(name.len() + 8);
            for (i, c) in name.char_indices() {
                match c {
                    '_' => out.push_str("__"),
                    '.' => out.push_str("_dot_"),
                    c if is_legacy_rune(c, i) => out.push(c),
                    _ => out.push_str("__"),
                }
            }
            Cow::Owned(out)
        }
        EscapingScheme::Values => {
            if is_legacy_metric_name(name) {
                return Cow::Borrowed(name);
            }
            let mut out = String::with_capacity(name.len() + 16);
            out.push_str("U__");
            for (i, c) in name.char_indices() {
                match c {
                    '_' => out.push_str("__"),
                    c if is_legacy_rune(c, i) => out.push(c),
                    c => {
                        let _ = write!(out, "_{:x}_", u32::from(c));
                    }
                }
            }
            Cow::Owned(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_as_prometheus() {
        let check = |name: &str, legacy_metric: bool, legacy_label: bool| {
            assert_eq!(
                is_legacy_metric_name(name),
                legacy_metric,
                "metric {name:?}"
            );
            assert_eq!(is_legacy_label_name(name), legacy_label, "label {name:?}");
            let l = ValidationScheme::Legacy;
            assert_eq!(is_valid_metric_name(name, l), legacy_metric);
            assert_eq!(is_valid_label_name(name, l), legacy_label);
            let u = ValidationScheme::Utf8;
            assert_eq!(is_valid_metric_name(name, u), !name.is_empty());
            assert_eq!(is_valid_label_name(name, u), !name.is_empty());
        };
        check("up", true, true);
        check("_x9", true, true);
        check("a:b", true, false);
        check(":a", true, false);
        check("9a", false, false);
        check("a.b", false, false);
        check("é", false, false);
        check("", false, false);
    }

    #[test]
    fn escapes_as_prometheus() {
        let check = |name: &str, scheme: &str, want: &str| {
            let s = EscapingScheme::from_param(scheme).expect("scheme");
            assert_eq!(escape_name(name, s), want, "{name:?} with {scheme}");
        };
        check("my.metric", "allow-utf-8", "my.metric");
        check(
            "metric.name/with/slashes",
            "underscores",
            "metric_name_with_slashes",
        );
        check("1ab", "underscores", "_ab");
        check("ok_name", "underscores", "ok_name");
        check(
            "metric.name.with.dots",
            "dots",
            "metric_dot_name_dot_with_dot_dots",
        );
        check("a_b", "dots", "a__b");
        check("a/b", "dots", "a__b");
        check("ok_name", "values", "ok_name");
        check("my.metric", "values", "U__my_2e_metric");
        check("a_b.c", "values", "U__a__b_2e_c");
        check("é", "values", "U___e9_");
        check("😀", "values", "U___1f600_");
        check("", "values", "");
        assert_eq!(EscapingScheme::from_param("other"), None);
    }
}
