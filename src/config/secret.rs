//! [`Secret`]: a config string (password, credentials, token, client secret) that reads like
//! any string from YAML but is written back as `<secret>`, as Prometheus's `config.Secret`, so
//! `/api/v1/status/config` and logs never show it.

use serde::{Deserialize, Serialize, Serializer};

/// What a secret is shown as.
pub const SECRET_TEXT: &str = "<secret>";

/// A secret string. `Serialize` and `Debug` print `<secret>` (an empty secret serializes as
/// null, as in Prometheus); [`Secret::expose`] gives the value to the code that uses it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `s`.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret value, for sending it where it belongs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() {
            s.serialize_none()
        } else {
            s.serialize_str(SECRET_TEXT)
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(SECRET_TEXT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_read_in_clear_and_print_redacted() {
        #[derive(Deserialize, Serialize, Debug)]
        struct A {
            password: Option<Secret>,
            empty: Secret,
        }
        let a: A = serde_yaml_ng::from_str("password: hunter2\nempty: ''\n").unwrap();
        assert_eq!(a.password.as_ref().unwrap().expose(), "hunter2");
        let out = serde_yaml_ng::to_string(&a).unwrap();
        assert_eq!(out, "password: <secret>\nempty: null\n");
        assert!(!format!("{a:?}").contains("hunter2"));
    }
}
