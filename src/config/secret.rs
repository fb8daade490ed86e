//! [`Secret`]: a config string (password, credentials, token, client secret) that reads like
//! any string from YAML but is written back as `<secret>`, as Prometheus's `config.Secret`, so
//! `/api/v1/status/config` and logs never show it. [`redact_value`] does the same inside the
//! sections Argus keeps as raw YAML (`remote_write`, `remote_read`, `alerting`).

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

/// Keys whose string values Prometheus's config types hold as `Secret`.
const SECRET_KEYS: &[&str] = &[
    "password",
    "credentials",
    "bearer_token",
    "client_secret",
    "key",
    "secret_key",
    "access_key_secret",
    "sigv4_secret_key",
    "api_key",
    "auth_token",
    "token",
];

/// Replaces, at any depth, the non-empty string values of secret keys by `<secret>`.
pub fn redact_value(v: &mut serde_yaml_ng::Value) {
    use serde_yaml_ng::Value;
    match v {
        Value::Mapping(m) => {
            for (k, val) in m.iter_mut() {
                let secret = k.as_str().is_some_and(|k| SECRET_KEYS.contains(&k));
                match val {
                    Value::String(s) if secret && !s.is_empty() => {
                        *val = Value::String(SECRET_TEXT.into());
                    }
                    other => redact_value(other),
                }
            }
        }
        Value::Sequence(s) => s.iter_mut().for_each(redact_value),
        Value::Tagged(t) => redact_value(&mut t.value),
        _ => {}
    }
}

/// `serialize_with` for the raw-YAML sections: serializes a redacted copy.
pub fn serialize_redacted<S: Serializer>(
    v: &Option<serde_yaml_ng::Value>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut copy = v.clone();
    if let Some(c) = copy.as_mut() {
        redact_value(c);
    }
    copy.serialize(s)
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

    #[test]
    fn raw_sections_are_redacted() {
        let mut v: serde_yaml_ng::Value = serde_yaml_ng::from_str(
            "- url: http://x\n  basic_auth: {username: u, password: p1}\n  \
             authorization: {credentials: c1}\n  oauth2: {client_id: i, client_secret: s1}\n  \
             bearer_token: b1\n  tls_config: {key: k1, key_file: /f}\n",
        )
        .unwrap();
        redact_value(&mut v);
        let out = serde_yaml_ng::to_string(&v).unwrap();
        for s in ["p1", "c1", "s1", "b1", "k1"] {
            assert!(!out.contains(s), "{s} in {out}");
        }
        assert!(
            out.contains("username: u") && out.contains("key_file: /f"),
            "{out}"
        );
    }
}
