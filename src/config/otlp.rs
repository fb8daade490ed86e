//! The `otlp:` section (Prometheus 3's `config.OTLPConfig`): how the OTLP receiver
//! (`crate::ingest::otlp`) turns resource attributes into labels and OTel names into Prometheus
//! names.

use serde::{Deserialize, Serialize};

/// How OTel metric and attribute names become Prometheus names (`translation_strategy`).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum TranslationStrategy {
    /// Invalid characters become `_`; unit and type suffixes (`_seconds`, `_total`, `_ratio`)
    /// are added. Prometheus's default.
    #[default]
    UnderscoreEscapingWithSuffixes,
    /// Invalid characters become `_`; no suffixes.
    UnderscoreEscapingWithoutSuffixes,
    /// UTF-8 names are kept; suffixes are added.
    #[serde(rename = "NoUTF8EscapingWithSuffixes")]
    NoUtf8EscapingWithSuffixes,
    /// Names are kept exactly; no suffixes.
    NoTranslation,
}

impl TranslationStrategy {
    /// True when names are escaped to the legacy `[a-zA-Z_:][a-zA-Z0-9_:]*` charset.
    pub fn escapes(self) -> bool {
        matches!(
            self,
            Self::UnderscoreEscapingWithSuffixes | Self::UnderscoreEscapingWithoutSuffixes
        )
    }

    /// True when unit and type suffixes are appended.
    pub fn adds_suffixes(self) -> bool {
        matches!(
            self,
            Self::UnderscoreEscapingWithSuffixes | Self::NoUtf8EscapingWithSuffixes
        )
    }
}

/// `otlp:`
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// Resource attributes copied onto every series of the resource (a data point's own
    /// attribute of the same name wins).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub promote_resource_attributes: Vec<String>,
    /// Promote every resource attribute except `ignore_resource_attributes`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub promote_all_resource_attributes: bool,
    /// With `promote_all_resource_attributes`: attributes not promoted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignore_resource_attributes: Vec<String>,
    /// Name translation.
    pub translation_strategy: TranslationStrategy,
    /// Keep `service.name`, `service.namespace` and `service.instance.id` on `target_info`
    /// (they are always mapped to `job` and `instance`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub keep_identifying_resource_attributes: bool,
    /// Add `otel_scope_name`, `otel_scope_version`, `otel_scope_schema_url` and
    /// `otel_scope_<attr>` labels.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub promote_scope_metadata: bool,
}

impl OtlpConfig {
    /// Prometheus's checks: no empty or duplicate promoted attribute, `promote_all` exclusive
    /// with a list, `ignore_resource_attributes` only with `promote_all`.
    pub fn validate(&self) -> Result<(), String> {
        if self.promote_all_resource_attributes && !self.promote_resource_attributes.is_empty() {
            return Err(
                "'promote_all_resource_attributes' and 'promote_resource_attributes' \
                        cannot be configured simultaneously"
                    .into(),
            );
        }
        if !self.promote_all_resource_attributes && !self.ignore_resource_attributes.is_empty() {
            return Err("'ignore_resource_attributes' cannot be configured unless \
                        'promote_all_resource_attributes' is true"
                .into());
        }
        for (what, list) in [
            ("promoted", &self.promote_resource_attributes),
            ("ignored", &self.ignore_resource_attributes),
        ] {
            let mut seen = std::collections::BTreeSet::new();
            for a in list {
                let a = a.trim();
                if a.is_empty() {
                    return Err(format!("empty {what} OTel resource attribute"));
                }
                if !seen.insert(a) {
                    return Err(format!("duplicated {what} OTel resource attribute {a:?}"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let check = |yaml: &str, want: Result<(), &str>| {
            let cfg: OtlpConfig = serde_yaml_ng::from_str(yaml).unwrap();
            match (cfg.validate(), want) {
                (Ok(()), Ok(())) => {}
                (Err(got), Err(w)) => assert!(got.contains(w), "got {got:?}, want {w:?}"),
                (got, want) => panic!("{yaml}: got {got:?}, want {want:?}"),
            }
        };
        check("translation_strategy: NoUTF8EscapingWithSuffixes", Ok(()));
        check("promote_resource_attributes: [a, b]", Ok(()));
        check("promote_resource_attributes: [a, a]", Err("duplicated"));
        check("promote_resource_attributes: [' ']", Err("empty"));
        check(
            "promote_all_resource_attributes: true\npromote_resource_attributes: [a]",
            Err("simultaneously"),
        );
        check("ignore_resource_attributes: [a]", Err("unless"));
        check(
            "promote_all_resource_attributes: true\nignore_resource_attributes: [a]",
            Ok(()),
        );
        assert!(serde_yaml_ng::from_str::<OtlpConfig>("translation_strategy: Nope").is_err());
        assert!(serde_yaml_ng::from_str::<OtlpConfig>("bogus: 1").is_err());
    }
}
