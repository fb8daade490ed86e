//! Label matchers with Prometheus semantics: `=`, `!=`, `=~`, `!~`.
//!
//! Regexes are fully anchored (`^(?s:re)$`). A matcher that matches the empty string also
//! selects series that lack the label. Literal alternations such as `a|b|c` are matched with a
//! set lookup instead of the regex engine.

use crate::error::{Error, Result};
use regex::Regex;

/// The comparison a matcher makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchType {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

#[derive(Clone, Debug)]
enum Pattern {
    Literal,
    /// The regex is a plain alternation of literals; sorted, deduplicated.
    Set(Vec<String>),
    Regex(Regex),
}

/// One label matcher.
#[derive(Clone, Debug)]
pub struct Matcher {
    /// The comparison.
    pub kind: MatchType,
    /// Label name.
    pub name: String,
    /// Literal value or regex source, as written.
    pub value: String,
    pattern: Pattern,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.name == other.name && self.value == other.value
    }
}

impl Matcher {
    /// Builds a matcher; regexes are anchored. Fails on an invalid regex.
    pub fn new(kind: MatchType, name: impl Into<String>, value: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let value = value.into();
        let pattern = match kind {
            MatchType::Equal | MatchType::NotEqual => Pattern::Literal,
            MatchType::Regex | MatchType::NotRegex => match literal_alternation(&value) {
                Some(mut set) => {
                    set.sort();
                    set.dedup();
                    Pattern::Set(set)
                }
                None => Pattern::Regex(
                    Regex::new(&format!("^(?s:{value})$"))
                        .map_err(|e| Error::InvalidMatcher(format!("{name}=~{value:?}: {e}")))?,
                ),
            },
        };
        Ok(Self {
            kind,
            name,
            value,
            pattern,
        })
    }

    /// Shorthand for an `=` matcher.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            kind: MatchType::Equal,
            name: name.into(),
            value: value.into(),
            pattern: Pattern::Literal,
        }
    }

    /// True when the label value `v` (empty when the label is absent) satisfies the matcher.
    pub fn matches(&self, v: &str) -> bool {
        let hit = match &self.pattern {
            Pattern::Literal => v == self.value,
            Pattern::Set(set) => set.binary_search_by(|s| s.as_str().cmp(v)).is_ok(),
            Pattern::Regex(re) => re.is_match(v),
        };
        match self.kind {
            MatchType::Equal | MatchType::Regex => hit,
            MatchType::NotEqual | MatchType::NotRegex => !hit,
        }
    }

    /// True when the matcher also selects series that lack the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// For `=~` with a literal alternation (or `=`), the exact values it accepts.
    pub fn set_matches(&self) -> Option<&[String]> {
        match (&self.kind, &self.pattern) {
            (MatchType::Regex, Pattern::Set(s)) => Some(s),
            (MatchType::Equal, _) => Some(std::slice::from_ref(&self.value)),
            _ => None,
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.kind {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regex => "=~",
            MatchType::NotRegex => "!~",
        };
        write!(f, "{}{}{:?}", self.name, op, self.value)
    }
}

/// If `re` is `lit1|lit2|…` with no regex metacharacters, returns the literals.
fn literal_alternation(re: &str) -> Option<Vec<String>> {
    const META: &[char] = &[
        '\\', '.', '+', '*', '?', '(', ')', '[', ']', '{', '}', '^', '$',
    ];
    if re.contains(META) {
        return None;
    }
    Some(re.split('|').map(str::to_string).collect())
}

/// Checks that a selector does not match every series: at least one matcher must reject the
/// empty string (Prometheus: "vector selector must contain at least one non-empty matcher").
pub fn validate_selector(matchers: &[Matcher]) -> Result<()> {
    if matchers.iter().any(|m| !m.matches_empty()) {
        Ok(())
    } else {
        Err(Error::InvalidMatcher(
            "vector selector must contain at least one non-empty matcher".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_is_anchored_and_sets_fast_path() {
        let check = |kind, re: &str, v: &str, want: bool| {
            let m = Matcher::new(kind, "x", re).unwrap();
            assert_eq!(m.matches(v), want, "{m} on {v:?}");
        };
        check(MatchType::Regex, "a|b", "a", true);
        check(MatchType::Regex, "a|b", "ab", false);
        check(MatchType::Regex, "a.*", "abc", true);
        check(MatchType::Regex, "b.*", "abc", false);
        check(MatchType::Regex, "a|", "", true);
        check(MatchType::NotRegex, "a|b", "c", true);
        check(MatchType::NotEqual, "a", "", true);
        check(MatchType::Regex, ".*", "x\ny", true);
        assert!(
            Matcher::new(MatchType::Regex, "x", "a|b")
                .unwrap()
                .set_matches()
                .is_some()
        );
        assert!(Matcher::new(MatchType::Regex, "x", "(").is_err());
    }

    #[test]
    fn selector_must_not_match_everything() {
        let m = |k, v: &str| Matcher::new(k, "x", v).unwrap();
        assert!(validate_selector(&[m(MatchType::Regex, ".*")]).is_err());
        assert!(validate_selector(&[m(MatchType::Regex, ".+")]).is_ok());
        assert!(validate_selector(&[m(MatchType::NotEqual, "")]).is_ok());
    }
}
