//! Basic authentication against the web config's bcrypt hashes, and the configured response
//! headers. Applied to every route of a listener, 404s included.
//!
//! A bcrypt check costs tens of milliseconds by design, so it runs on a blocking thread and a
//! verified `(user, password)` pair is remembered (as a SHA-256 digest, never in clear) for the
//! life of the process, as the exporter-toolkit does. Unknown users pay for one bcrypt check
//! too, so response times do not tell which user names exist.

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Verified pairs remembered at most; the cache is cleared when full.
const CACHE_LIMIT: usize = 1024;

/// Credentials longer than this are refused without a bcrypt check.
const MAX_CREDENTIALS: usize = 4096;

/// The per-listener request guard.
pub(crate) struct Guard {
    // Immutable after construction.
    users: BTreeMap<String, String>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// A valid hash checked for unknown users.
    dummy_hash: String,
    /// Digests of verified `(user, password, hash)`; guarded by its own lock.
    cache: Mutex<HashSet<[u8; 32]>>,
}

impl Guard {
    pub(crate) fn new(
        users: BTreeMap<String, String>,
        headers: Vec<(HeaderName, HeaderValue)>,
    ) -> Self {
        let dummy_hash = users.values().next().cloned().unwrap_or_default();
        Self {
            users,
            headers,
            dummy_hash,
            cache: Mutex::new(HashSet::new()),
        }
    }

    /// Whether the guard does anything.
    pub(crate) fn is_noop(&self) -> bool {
        self.users.is_empty() && self.headers.is_empty()
    }

    async fn authorized(self: &Arc<Self>, value: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = value.and_then(parse_basic) else {
            return false;
        };
        let hash = self.users.get(&user).cloned();
        let key = digest(&user, &password, hash.as_deref().unwrap_or(""));
        if hash.is_some() && self.cache.lock().contains(&key) {
            return true;
        }
        let check = hash.clone().unwrap_or_else(|| self.dummy_hash.clone());
        let ok = tokio::task::spawn_blocking(move || {
            bcrypt::verify(password.as_bytes(), &check).unwrap_or(false)
        })
        .await
        .unwrap_or(false)
            && hash.is_some();
        if ok {
            let mut c = self.cache.lock();
            if c.len() >= CACHE_LIMIT {
                c.clear();
            }
            c.insert(key);
        }
        ok
    }
}

/// `Authorization: Basic base64(user:password)` → `(user, password)`.
fn parse_basic(v: &HeaderValue) -> Option<(String, String)> {
    use base64::Engine as _;
    let v = v.to_str().ok()?;
    if v.len() > MAX_CREDENTIALS {
        return None;
    }
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?,
    )
    .ok()?;
    let (u, p) = decoded.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn digest(user: &str, password: &str, hash: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user, password, hash] {
        ctx.update(&(part.len() as u64).to_le_bytes());
        ctx.update(part.as_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The middleware: configured headers on every response; 401 with `WWW-Authenticate: Basic`
/// unless the request carries valid credentials (when users are configured).
pub(crate) async fn guard(State(g): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let mut resp =
        if g.users.is_empty() || g.authorized(req.headers().get(header::AUTHORIZATION)).await {
            next.run(req).await
        } else {
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Basic")],
                "Unauthorized\n",
            )
                .into_response()
        };
    for (k, v) in &g.headers {
        resp.headers_mut().insert(k.clone(), v.clone());
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials() {
        let check = |h: &str, want: Option<(&str, &str)>| {
            let got = parse_basic(&HeaderValue::from_str(h).unwrap());
            let want = want.map(|(u, p)| (u.to_string(), p.to_string()));
            assert_eq!(got, want, "{h}");
        };
        check("Basic YWxpY2U6c2VjcmV0", Some(("alice", "secret")));
        check("basic YTpiOmM=", Some(("a", "b:c")));
        check("Basic YTo=", Some(("a", "")));
        check("Bearer YWxpY2U6c2VjcmV0", None);
        check("Basic YWxpY2U", None);
        check("Basic ====", None);
        check("Basic YQ==YQ==", None);
        check("Basic bm9jb2xvbg==", None);
    }

    #[tokio::test]
    async fn verified_pairs_are_cached() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let g = Arc::new(Guard::new([("u".to_string(), hash)].into(), Vec::new()));
        let h = |s: &str| HeaderValue::from_str(s).unwrap();
        assert!(g.authorized(Some(&h("Basic dTpwdw=="))).await);
        assert_eq!(g.cache.lock().len(), 1);
        assert!(g.authorized(Some(&h("Basic dTpwdw=="))).await);
        assert!(
            !g.authorized(Some(&h("Basic dTp4"))).await,
            "wrong password"
        );
        assert!(
            !g.authorized(Some(&h("Basic eDpwdw=="))).await,
            "unknown user"
        );
        assert!(!g.authorized(None).await);
        assert_eq!(g.cache.lock().len(), 1);
    }
}
