//! The web UI: one HTML shell served at each of Prometheus's page paths (the browser routes
//! between pages itself) and the static assets under `/assets/`, all embedded in the binary
//! from `web/`.
//!
//! Caching: every response carries a strong `ETag` (a hash of its bytes) and
//! `Cache-Control: no-cache`, so browsers keep the files and revalidate with `If-None-Match`,
//! answered `304 Not Modified` while the binary is the same. The shell also names the script
//! with `?v=<hash>` so a new binary's script is fetched at once. Gzip comes from the
//! `CompressionLayer` every route shares (`api::finish`).
//!
//! Route prefix: the shell carries `<base href="{prefix}/">` and every link and API call in the
//! scripts is relative, so the UI works under `--web.route-prefix` (see [`route_prefix`]).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use md5::{Digest, Md5};
use std::collections::BTreeMap;
use std::sync::Arc;

/// An embedded file: name under `/assets/`, content type, bytes.
type Asset = (&'static str, &'static str, &'static [u8]);

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the UI loads. `index.html` is the shell template, not an asset.
const ASSETS: &[Asset] = &[
    ("app.js", JS, include_bytes!("../../web/app.js")),
    ("util.js", JS, include_bytes!("../../web/util.js")),
    ("query.js", JS, include_bytes!("../../web/query.js")),
    ("graph.js", JS, include_bytes!("../../web/graph.js")),
    ("editor.js", JS, include_bytes!("../../web/editor.js")),
    ("pages.js", JS, include_bytes!("../../web/pages.js")),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/style.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../web/favicon.svg"),
    ),
];

const SHELL: &str = include_str!("../../web/index.html");

/// The pages, at Prometheus's paths (`/push` lists push groups; the rest are Prometheus's).
pub const PAGES: &[&str] = &[
    "/query",
    "/graph",
    "/targets",
    "/service-discovery",
    "/rules",
    "/alerts",
    "/push",
    "/status",
    "/flags",
    "/config",
    "/tsdb-status",
];

/// The normalised route prefix (`""` for the root, else `/a/b` without a trailing slash), as
/// Prometheus computes it: `--web.route-prefix` if set, else the path of `--web.external-url`.
pub fn route_prefix(external_url: &str, route_prefix: &str) -> Result<String, String> {
    let raw = if route_prefix.is_empty() {
        external_url_path(external_url)?
    } else {
        route_prefix.to_string()
    };
    let trimmed = raw.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if trimmed
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '{' | '}' | '*'))
    {
        return Err(format!("invalid route prefix {raw:?}"));
    }
    Ok(format!("/{trimmed}"))
}

/// The path of an `http(s)://host[:port]/path` URL (empty for an empty URL).
fn external_url_path(url: &str) -> Result<String, String> {
    if url.is_empty() {
        return Ok(String::new());
    }
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("invalid external URL {url:?}: want http:// or https://"))?;
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let path = match rest.find('/') {
        Some(i) => &rest[i..],
        None => "",
    };
    if rest.len() == path.len() {
        return Err(format!("invalid external URL {url:?}: no host"));
    }
    Ok(path.to_string())
}

/// The route prefix from the flag values in `AppState::flags` (validated at startup; an
/// unparsable value falls back to the root).
pub fn route_prefix_from_flags(flags: &BTreeMap<String, String>) -> String {
    let get = |k: &str| flags.get(k).map(String::as_str).unwrap_or("");
    route_prefix(get("web.external-url"), get("web.route-prefix")).unwrap_or_default()
}

fn etag_of(bytes: &[u8]) -> String {
    let d = Md5::digest(bytes);
    let hex: String = d.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// A file ready to serve.
struct Served {
    content_type: &'static str,
    body: Vec<u8>,
    etag: String,
}

impl Served {
    fn new(content_type: &'static str, body: Vec<u8>) -> Self {
        let etag = etag_of(&body);
        Self {
            content_type,
            body,
            etag,
        }
    }

    fn respond(&self, headers: &HeaderMap) -> Response {
        let fresh = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|t| t.trim() == self.etag || t.trim() == "*")
            });
        let etag = HeaderValue::from_str(&self.etag).unwrap_or(HeaderValue::from_static("\"\""));
        let cache = (header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if fresh {
            return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag), cache]).into_response();
        }
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(self.content_type),
                ),
                (header::ETAG, etag),
                cache,
            ],
            self.body.clone(),
        )
            .into_response()
    }
}

/// What the UI handlers share: the rendered shell and the assets.
struct Ui {
    prefix: String,
    shell: Served,
    assets: BTreeMap<&'static str, Served>,
}

type UiState = State<Arc<Ui>>;

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Ui {
    fn new(prefix: &str) -> Self {
        let assets: BTreeMap<_, _> = ASSETS
            .iter()
            .map(|(name, ct, bytes)| (*name, Served::new(ct, bytes.to_vec())))
            .collect();
        // The script's and stylesheet's hashes in their URLs: a new binary's files are fetched
        // at once. Modules imported by app.js are revalidated by ETag.
        let version = etag_of(
            &ASSETS
                .iter()
                .flat_map(|a| a.2.iter().copied())
                .collect::<Vec<u8>>(),
        )
        .trim_matches('"')
        .to_string();
        let shell = SHELL
            .replace("{{BASE}}", &html_escape(&format!("{prefix}/")))
            .replace("{{VERSION}}", &version);
        Self {
            prefix: prefix.to_string(),
            shell: Served::new("text/html; charset=utf-8", shell.into_bytes()),
            assets,
        }
    }
}

async fn shell(State(ui): UiState, headers: HeaderMap) -> Response {
    ui.shell.respond(&headers)
}

async fn asset(State(ui): UiState, Path(name): Path<String>, headers: HeaderMap) -> Response {
    match ui.assets.get(name.as_str()) {
        Some(a) => a.respond(&headers),
        None => (StatusCode::NOT_FOUND, "404 page not found\n").into_response(),
    }
}

/// `/` → `302 Found` to the query page, as Prometheus answers.
async fn to_query(State(ui): UiState) -> Response {
    found(&format!("{}/query", ui.prefix))
}

/// A `302 Found` redirect to `location`.
pub fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The UI routes, relative to the route prefix (`prefix` is only used to render links).
pub fn router(prefix: &str) -> Router {
    let ui = Arc::new(Ui::new(prefix));
    let mut r = Router::new()
        .route("/", get(to_query))
        .route("/assets/{name}", get(asset));
    for p in PAGES {
        r = r.route(p, get(shell));
    }
    r.with_state(ui)
}

/// The total size of the embedded UI (shell and assets), uncompressed, for tests and docs.
pub fn embedded_bytes() -> usize {
    SHELL.len() + ASSETS.iter().map(|a| a.2.len()).sum::<usize>()
}

/// Names and content types of the assets, for tests.
pub fn asset_list() -> Vec<(&'static str, &'static str)> {
    ASSETS.iter().map(|a| (a.0, a.1)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_prefixes() {
        let check = |ext: &str, pre: &str, want: Result<&str, ()>| {
            let got = route_prefix(ext, pre).map_err(|_| ());
            assert_eq!(got.as_deref(), want.as_deref(), "{ext:?} {pre:?}");
        };
        check("", "", Ok(""));
        check("", "/", Ok(""));
        check("", "/argus", Ok("/argus"));
        check("", "argus/", Ok("/argus"));
        check("", "/a/b/", Ok("/a/b"));
        check("http://example.com:9090", "", Ok(""));
        check("http://example.com:9090/", "", Ok(""));
        check("https://example.com/prom/", "", Ok("/prom"));
        check("http://example.com/prom?x=1", "", Ok("/prom"));
        check("http://example.com/prom", "/other", Ok("/other"));
        check("example.com/prom", "", Err(()));
        check("http:///prom", "", Err(()));
        check("", "/a b", Err(()));
    }

    #[test]
    fn etag_revalidation() {
        let s = Served::new("text/plain", b"hello".to_vec());
        let mut h = HeaderMap::new();
        assert_eq!(s.respond(&h).status(), StatusCode::OK);
        h.insert(header::IF_NONE_MATCH, s.etag.parse().unwrap());
        assert_eq!(s.respond(&h).status(), StatusCode::NOT_MODIFIED);
        h.insert(header::IF_NONE_MATCH, "\"other\"".parse().unwrap());
        assert_eq!(s.respond(&h).status(), StatusCode::OK);
    }

    #[test]
    fn shell_has_base_and_version() {
        let ui = Ui::new("/argus");
        let html = String::from_utf8(ui.shell.body.clone()).unwrap();
        assert!(html.contains("<base href=\"/argus/\">"), "{html}");
        assert!(!html.contains("{{"), "{html}");
    }
}
