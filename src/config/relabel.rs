//! `relabel_configs` / `metric_relabel_configs` entries and their application, as Prometheus's
//! `model/relabel`.
//!
//! Defaults: separator `;`, regex `(.*)`, replacement `$1`, action `replace`. Regexes are fully
//! anchored (`^(?s:…)$`). Replacements expand `$1`, `${1}`, `$name`, `${name}` (Go's
//! `Regexp.Expand` rules, which Rust's `regex` shares). Target label names are checked with the
//! legacy rule `[a-zA-Z_][a-zA-Z0-9_]*`.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use argus_storage::Labels;
use md5::{Digest, Md5};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A relabel action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Action {
    /// Sets `target_label` to the expanded `replacement` when `regex` matches.
    #[default]
    Replace,
    /// Drops the set when `regex` does not match.
    Keep,
    /// Drops the set when `regex` matches.
    Drop,
    /// Drops the set unless the source value equals `target_label`'s value.
    KeepEqual,
    /// Drops the set when the source value equals `target_label`'s value.
    DropEqual,
    /// Sets `target_label` to `md5(source) % modulus`.
    HashMod,
    /// Copies labels whose name matches `regex` to the expanded `replacement` name.
    LabelMap,
    /// Removes labels whose name matches `regex`.
    LabelDrop,
    /// Removes labels whose name does not match `regex`.
    LabelKeep,
    /// Sets `target_label` to the lower-cased source value.
    Lowercase,
    /// Sets `target_label` to the upper-cased source value.
    Uppercase,
}

impl Action {
    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    fn parse(s: &str) -> Option<Action> {
        Some(match s.to_ascii_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => return None,
        })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fully anchored regex that remembers the pattern it was written as.
#[derive(Clone)]
pub struct Regex {
    source: String,
    re: regex::Regex,
}

impl Regex {
    /// Compiles `^(?s:pattern)$`.
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        Ok(Self {
            source: pattern.to_string(),
            re: regex::Regex::new(&format!("^(?s:{pattern})$"))?,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the whole of `s` matches.
    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }

    fn default_regex() -> Self {
        Self::new(DEFAULT_REGEX).expect("BUG: default relabel regex must compile")
    }
}

impl PartialEq for Regex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl fmt::Debug for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.source)
    }
}

const DEFAULT_REGEX: &str = "(.*)";
const DEFAULT_SEPARATOR: &str = ";";
const DEFAULT_REPLACEMENT: &str = "$1";

/// One validated relabel rule.
#[derive(Clone, Debug, PartialEq)]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator`.
    pub source_labels: Vec<String>,
    /// Joins source values (`;`).
    pub separator: String,
    /// Anchored regex (`(.*)`).
    pub regex: Regex,
    /// For `hashmod`.
    pub modulus: u64,
    /// Label written by replace/hashmod/lowercase/uppercase, compared by keepequal/dropequal.
    pub target_label: String,
    /// Replacement template (`$1`).
    pub replacement: String,
    /// The action (`replace`).
    pub action: Action,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        Self {
            source_labels: Vec::new(),
            separator: DEFAULT_SEPARATOR.into(),
            regex: Regex::default_regex(),
            modulus: 0,
            target_label: String::new(),
            replacement: DEFAULT_REPLACEMENT.into(),
            action: Action::Replace,
        }
    }
}

/// The YAML shape, before defaults and validation.
#[derive(Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawRelabelConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    source_labels: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    separator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    regex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    modulus: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replacement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<String>,
}

impl<'de> Deserialize<'de> for RelabelConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawRelabelConfig::deserialize(d)?;
        let action = match raw.action.as_deref() {
            None => Action::Replace,
            Some(a) => Action::parse(a)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown relabel action {a:?}")))?,
        };
        let regex = Regex::new(raw.regex.as_deref().unwrap_or(DEFAULT_REGEX))
            .map_err(|e| serde::de::Error::custom(format!("invalid relabel regex: {e}")))?;
        let cfg = RelabelConfig {
            source_labels: raw.source_labels.unwrap_or_default(),
            separator: raw.separator.unwrap_or_else(|| DEFAULT_SEPARATOR.into()),
            regex,
            modulus: raw.modulus.unwrap_or(0),
            target_label: raw.target_label.unwrap_or_default(),
            replacement: raw
                .replacement
                .unwrap_or_else(|| DEFAULT_REPLACEMENT.into()),
            action,
        };
        cfg.validate().map_err(serde::de::Error::custom)?;
        Ok(cfg)
    }
}

impl Serialize for RelabelConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = RelabelConfig::default();
        let opt = |v: &str, def: &str| (v != def).then(|| v.to_string());
        RawRelabelConfig {
            source_labels: (!self.source_labels.is_empty()).then(|| self.source_labels.clone()),
            separator: opt(&self.separator, &d.separator),
            regex: opt(self.regex.as_str(), d.regex.as_str()),
            modulus: (self.modulus != 0).then_some(self.modulus),
            target_label: (!self.target_label.is_empty()).then(|| self.target_label.clone()),
            replacement: opt(&self.replacement, &d.replacement),
            action: Some(self.action.as_str().to_string()),
        }
        .serialize(s)
    }
}

/// Prometheus's `relabelTarget`: `^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$`.
fn is_valid_target_template(s: &str) -> bool {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$")
            .expect("BUG: relabel target regex must compile")
    })
    .is_match(s)
}

impl RelabelConfig {
    /// Checks the rule as Prometheus's `Config.Validate`, with its messages.
    pub fn validate(&self) -> Result<(), String> {
        let a = self.action;
        if a == Action::HashMod && self.modulus == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        let needs_target = matches!(
            a,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if needs_target && self.target_label.is_empty() {
            return Err(format!(
                "relabel configuration for {a} action requires 'target_label' value"
            ));
        }
        let invalid_target = || {
            format!(
                "{:?} is invalid 'target_label' for {a} action",
                self.target_label
            )
        };
        if a == Action::Replace {
            let ok = if self.target_label.contains('$') {
                is_valid_target_template(&self.target_label)
            } else {
                argus_query::names::is_legacy_label_name(&self.target_label)
            };
            if !ok {
                return Err(invalid_target());
            }
        }
        let simple = matches!(
            a,
            Action::Lowercase | Action::Uppercase | Action::KeepEqual | Action::DropEqual
        );
        if (simple || a == Action::HashMod)
            && !argus_query::names::is_legacy_label_name(&self.target_label)
        {
            return Err(invalid_target());
        }
        if simple && self.replacement != DEFAULT_REPLACEMENT {
            return Err(format!("'replacement' can not be set for {a} action"));
        }
        if a == Action::LabelMap && !is_valid_target_template(&self.replacement) {
            return Err(format!(
                "{:?} is invalid 'replacement' for {a} action",
                self.replacement
            ));
        }
        if matches!(a, Action::KeepEqual | Action::DropEqual)
            && (self.regex.as_str() != DEFAULT_REGEX
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR)
        {
            return Err(format!(
                "{a} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(a, Action::LabelDrop | Action::LabelKeep)
            && (!self.source_labels.is_empty()
                || !self.target_label.is_empty()
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{a} action requires only 'regex', and no other fields"
            ));
        }
        Ok(())
    }
}

/// Applies `cfgs` in order to `lset`. Returns `false` when the set is dropped (then `lset` is
/// unspecified). Labels with empty values are absent, as in Prometheus.
pub fn process(lset: &mut Labels, cfgs: &[RelabelConfig]) -> bool {
    let mut val = String::new();
    let mut buf = String::new();
    cfgs.iter().all(|c| apply(c, lset, &mut val, &mut buf))
}

fn apply(cfg: &RelabelConfig, lset: &mut Labels, val: &mut String, buf: &mut String) -> bool {
    val.clear();
    for (i, n) in cfg.source_labels.iter().enumerate() {
        if i > 0 {
            val.push_str(&cfg.separator);
        }
        val.push_str(lset.get(n).unwrap_or(""));
    }
    let val = val.as_str();
    match cfg.action {
        Action::Drop => return !cfg.regex.is_match(val),
        Action::Keep => return cfg.regex.is_match(val),
        Action::DropEqual => return lset.get(&cfg.target_label).unwrap_or("") != val,
        Action::KeepEqual => return lset.get(&cfg.target_label).unwrap_or("") == val,
        Action::Replace => {
            // Fast path: add or delete a label pair.
            if val.is_empty()
                && cfg.regex.as_str() == DEFAULT_REGEX
                && !cfg.target_label.contains('$')
                && !cfg.replacement.contains('$')
            {
                lset.set(&cfg.target_label, &cfg.replacement);
                return true;
            }
            let Some(caps) = cfg.regex.re.captures(val) else {
                return true;
            };
            let mut target = String::new();
            caps.expand(&cfg.target_label, &mut target);
            if !argus_query::names::is_legacy_label_name(&target) {
                return true;
            }
            buf.clear();
            caps.expand(&cfg.replacement, buf);
            lset.set(&target, buf);
        }
        Action::Lowercase => lset.set(&cfg.target_label, &val.to_lowercase()),
        Action::Uppercase => lset.set(&cfg.target_label, &val.to_uppercase()),
        Action::HashMod => {
            let sum = Md5::digest(val.as_bytes());
            // The last 8 bytes, big-endian, as Prometheus (built with shifts: the workspace
            // denies endian-specific byte conversions).
            let mut h: u64 = 0;
            for &b in sum.iter().skip(8) {
                h = (h << 8) | u64::from(b);
            }
            lset.set(&cfg.target_label, &(h % cfg.modulus).to_string());
        }
        Action::LabelMap => {
            let snapshot: Vec<(String, String)> = lset
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            for (name, value) in snapshot {
                if let Some(caps) = cfg.regex.re.captures(&name) {
                    buf.clear();
                    caps.expand(&cfg.replacement, buf);
                    lset.set(buf, &value);
                }
            }
        }
        Action::LabelDrop | Action::LabelKeep => {
            let keep_matching = cfg.action == Action::LabelKeep;
            let doomed: Vec<String> = lset
                .iter()
                .filter(|l| cfg.regex.is_match(&l.name) != keep_matching)
                .map(|l| l.name.clone())
                .collect();
            for n in doomed {
                lset.remove(&n);
            }
        }
    }
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests;
