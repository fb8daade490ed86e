//! A fake Kubernetes API server on loopback speaking the real list+watch protocol:
//! `{"kind":"PodList",…,"metadata":{"resourceVersion":…},"items":[…]}` lists, chunked watch
//! streams of newline-delimited `{"type":…,"object":…}` events (with a BOOKMARK first),
//! `ERROR` events carrying a `Status` with code 410 for expired resource versions, dropped
//! connections and 503 bursts on demand.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Response, StatusCode, Uri};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, watch};

/// `(resource, namespace, name)`; nodes have an empty namespace.
type Key = (String, String, String);

#[derive(Clone, Debug)]
enum Live {
    /// `(resource, rv, object, event line)`.
    Event(String, u64, Value, String),
    /// Send `ERROR 410` on every open watch and close it.
    Expire,
}

struct Inner {
    rv: u64,
    /// Watches from a resourceVersion below this get `ERROR 410`.
    compacted: u64,
    objects: BTreeMap<Key, Value>,
    /// `(rv, resource, namespace, object, event line)` for watch replay.
    log: Vec<(u64, String, String, Value, String)>,
    /// Requests answer 503 until then.
    unavailable_until: Option<Instant>,
    /// One line per request: `LIST pods ns=default label=a=b field= auth=Bearer x`.
    requests: Vec<String>,
}

struct State {
    inner: Mutex<Inner>,
    live: broadcast::Sender<Live>,
    /// Bumped to cut every open watch connection.
    cut: watch::Sender<u64>,
}

/// The running fake server; stops when dropped.
pub struct FakeApi {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn resource_of(kind: &str) -> (&'static str, &'static str, &'static str) {
    // (resource, list kind, apiVersion)
    match kind {
        "Pod" => ("pods", "PodList", "v1"),
        "Service" => ("services", "ServiceList", "v1"),
        "Endpoints" => ("endpoints", "EndpointsList", "v1"),
        "Node" => ("nodes", "NodeList", "v1"),
        "Namespace" => ("namespaces", "NamespaceList", "v1"),
        "ReplicaSet" => ("replicasets", "ReplicaSetList", "apps/v1"),
        "Job" => ("jobs", "JobList", "batch/v1"),
        "EndpointSlice" => ("endpointslices", "EndpointSliceList", "discovery.k8s.io/v1"),
        other => panic!("fake api: unknown kind {other}"),
    }
}

fn list_kind(resource: &str) -> (&'static str, &'static str, &'static str) {
    match resource {
        "pods" => ("PodList", "v1", "Pod"),
        "services" => ("ServiceList", "v1", "Service"),
        "endpoints" => ("EndpointsList", "v1", "Endpoints"),
        "nodes" => ("NodeList", "v1", "Node"),
        "namespaces" => ("NamespaceList", "v1", "Namespace"),
        "replicasets" => ("ReplicaSetList", "apps/v1", "ReplicaSet"),
        "jobs" => ("JobList", "batch/v1", "Job"),
        "endpointslices" => ("EndpointSliceList", "discovery.k8s.io/v1", "EndpointSlice"),
        _ => ("", "", ""),
    }
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or_default()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Equality-based selector matching (`k=v`, `k==v`, `k!=v`, `k`, `!k`), enough for tests.
fn matches_selector(sel: &str, get: impl Fn(&str) -> Option<String>) -> bool {
    sel.split(',').filter(|r| !r.is_empty()).all(|req| {
        if let Some((k, v)) = req.split_once("!=") {
            get(k.trim()).as_deref() != Some(v.trim())
        } else if let Some((k, v)) = req.split_once('=') {
            let v = v.trim_start_matches('=');
            get(k.trim()).as_deref() == Some(v.trim())
        } else if let Some(k) = req.strip_prefix('!') {
            get(k.trim()).is_none()
        } else {
            get(req.trim()).is_some()
        }
    })
}

struct Query {
    watch: bool,
    rv: u64,
    label: String,
    field: String,
}

fn parse_query(q: Option<&str>) -> Query {
    let mut out = Query {
        watch: false,
        rv: 0,
        label: String::new(),
        field: String::new(),
    };
    for pair in q.unwrap_or_default().split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "watch" => out.watch = v == "true" || v == "1",
            "resourceVersion" => out.rv = v.parse().unwrap_or(0),
            "labelSelector" => out.label = v,
            "fieldSelector" => out.field = v,
            _ => {}
        }
    }
    out
}

/// `(namespace or "", resource)` from an API path.
fn parse_path(path: &str) -> Option<(String, String)> {
    let rest = match path.strip_prefix("/api/v1/") {
        Some(rest) => rest,
        // `/apis/<group>/<version>/…`
        None => path.strip_prefix("/apis/")?.splitn(3, '/').nth(2)?,
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [res] => Some((String::new(), (*res).to_string())),
        ["namespaces", ns, res] => Some(((*ns).to_string(), (*res).to_string())),
        _ => None,
    }
}

fn object_matches(obj: &Value, ns: &str, q: &Query) -> bool {
    if !ns.is_empty() && meta_str(obj, "namespace") != ns {
        return false;
    }
    let labels = |k: &str| obj["metadata"]["labels"][k].as_str().map(str::to_string);
    let fields = |k: &str| {
        let v = match k {
            "metadata.name" => &obj["metadata"]["name"],
            "metadata.namespace" => &obj["metadata"]["namespace"],
            "spec.nodeName" => &obj["spec"]["nodeName"],
            "status.phase" => &obj["status"]["phase"],
            _ => &Value::Null,
        };
        v.as_str().map(str::to_string)
    };
    matches_selector(&q.label, labels) && matches_selector(&q.field, fields)
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn json_response(code: StatusCode, v: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(v.to_string()))
        .expect("response")
}

impl FakeApi {
    /// Starts the server with the given objects (already shaped like API objects).
    pub async fn start(objects: &[Value]) -> FakeApi {
        let (live, _) = broadcast::channel(1024);
        let (cut, _) = watch::channel(0);
        let state = Arc::new(State {
            inner: Mutex::new(Inner {
                rv: 1000,
                compacted: 0,
                objects: BTreeMap::new(),
                log: Vec::new(),
                unavailable_until: None,
                requests: Vec::new(),
            }),
            live,
            cut,
        });
        let api = |s: &Arc<State>| {
            let s = s.clone();
            move |uri: Uri, headers: HeaderMap| {
                let s = s.clone();
                async move { handle(s, uri, headers).await }
            }
        };
        let app = axum::Router::new().fallback(api(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let fake = FakeApi { addr, state, task };
        for o in objects {
            fake.apply_silently(o.clone());
        }
        fake
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn store(&self, obj: Value, broadcast: bool) {
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let (resource, _, _) = resource_of(&kind);
        let mut inner = self.state.inner.lock().expect("lock");
        inner.rv += 1;
        let rv = inner.rv;
        let mut obj = obj;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let key = (
            resource.to_string(),
            meta_str(&obj, "namespace").to_string(),
            meta_str(&obj, "name").to_string(),
        );
        let ty = if inner.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        let line = json!({"type": ty, "object": obj}).to_string();
        inner.objects.insert(key.clone(), obj.clone());
        if broadcast {
            inner
                .log
                .push((rv, key.0.clone(), key.1.clone(), obj.clone(), line.clone()));
            let _ = self.state.live.send(Live::Event(key.0, rv, obj, line));
        }
    }

    /// Creates or updates an object and tells open watches.
    pub fn apply(&self, obj: Value) {
        self.store(obj, true);
    }

    /// Creates or updates an object without any watch event (as if it happened while the
    /// watch history was lost).
    pub fn apply_silently(&self, obj: Value) {
        self.store(obj, false);
    }

    fn remove(&self, kind: &str, ns: &str, name: &str, broadcast: bool) {
        let (resource, _, _) = resource_of(kind);
        let mut inner = self.state.inner.lock().expect("lock");
        let key = (resource.to_string(), ns.to_string(), name.to_string());
        let Some(mut obj) = inner.objects.remove(&key) else {
            panic!("fake api: delete of missing {key:?}");
        };
        inner.rv += 1;
        let rv = inner.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        if broadcast {
            let line = json!({"type": "DELETED", "object": obj}).to_string();
            inner
                .log
                .push((rv, key.0.clone(), key.1.clone(), obj.clone(), line.clone()));
            let _ = self.state.live.send(Live::Event(key.0, rv, obj, line));
        }
    }

    /// Deletes an object and tells open watches.
    pub fn delete(&self, kind: &str, ns: &str, name: &str) {
        self.remove(kind, ns, name, true);
    }

    /// Deletes an object without any watch event.
    pub fn delete_silently(&self, kind: &str, ns: &str, name: &str) {
        self.remove(kind, ns, name, false);
    }

    /// Forgets the watch history: open watches get `ERROR 410` and end, and any watch from
    /// an older resourceVersion gets `ERROR 410`, forcing clients to re-list.
    pub fn expire_history(&self) {
        let mut inner = self.state.inner.lock().expect("lock");
        inner.compacted = inner.rv;
        inner.log.clear();
        let _ = self.state.live.send(Live::Expire);
    }

    /// Cuts every open watch connection (no error event: the stream just ends).
    pub fn cut_watches(&self) {
        self.state.cut.send_modify(|g| *g += 1);
    }

    /// Simulates an API server restart: cuts watches and answers 503 for `d`.
    pub fn restart(&self, d: Duration) {
        self.state.inner.lock().expect("lock").unavailable_until = Some(Instant::now() + d);
        self.cut_watches();
    }

    /// The request log so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.inner.lock().expect("lock").requests.clone()
    }

    /// Number of requests answered 503 so far.
    pub fn unavailable_answers(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.ends_with(" => 503"))
            .count()
    }

    /// Number of LIST requests for `resource` so far.
    pub fn list_count(&self, resource: &str) -> usize {
        let prefix = format!("LIST {resource} ");
        self.requests()
            .iter()
            .filter(|r| r.starts_with(&prefix))
            .count()
    }
}

async fn handle(state: Arc<State>, uri: Uri, headers: HeaderMap) -> Response<Body> {
    let q = parse_query(uri.query());
    let Some((ns, resource)) = parse_path(uri.path()) else {
        return json_response(
            StatusCode::NOT_FOUND,
            &status(404, "NotFound", "no such path"),
        );
    };
    let (list_name, api_version, kind) = list_kind(&resource);
    if list_name.is_empty() {
        return json_response(
            StatusCode::NOT_FOUND,
            &status(404, "NotFound", "no such resource"),
        );
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut inner = state.inner.lock().expect("lock");
    inner.requests.push(format!(
        "{} {resource} ns={ns} rv={} label={} field={} auth={auth}",
        if q.watch { "WATCH" } else { "LIST" },
        q.rv,
        q.label,
        q.field
    ));
    if inner.unavailable_until.is_some_and(|t| Instant::now() < t) {
        if let Some(last) = inner.requests.last_mut() {
            last.push_str(" => 503");
        }
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &status(503, "ServiceUnavailable", "apiserver is restarting"),
        );
    }
    if !q.watch {
        let items: Vec<Value> = inner
            .objects
            .iter()
            .filter(|((res, _, _), obj)| *res == resource && object_matches(obj, &ns, &q))
            .map(|(_, o)| o.clone())
            .collect();
        let body = json!({"kind": list_name, "apiVersion": api_version,
            "metadata": {"resourceVersion": inner.rv.to_string()}, "items": items});
        return json_response(StatusCode::OK, &body);
    }

    // Watch: replay history after q.rv, then live events, until cut or expired.
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let line = |s: String| Bytes::from(s + "\n");
    if q.rv < inner.compacted {
        let msg = format!("too old resource version: {} ({})", q.rv, inner.compacted);
        let ev = json!({"type": "ERROR", "object": status(410, "Expired", &msg)});
        let _ = tx.try_send(line(ev.to_string()));
        drop(tx);
    } else {
        let mut live = state.live.subscribe();
        let mut cut = state.cut.subscribe();
        let bookmark = json!({"type": "BOOKMARK", "object": {"kind": kind,
            "apiVersion": api_version, "metadata": {"resourceVersion": inner.rv.to_string()}}});
        let mut backlog = vec![line(bookmark.to_string())];
        let mut last = q.rv;
        for (rv, res, _, obj, l) in &inner.log {
            if *rv > q.rv && *res == resource && object_matches(obj, &ns, &q) {
                backlog.push(line(l.clone()));
                last = *rv;
            }
        }
        let (res_c, ns_c) = (resource.clone(), ns.clone());
        let sel = Query {
            watch: true,
            rv: 0,
            label: q.label.clone(),
            field: q.field.clone(),
        };
        tokio::spawn(async move {
            for b in backlog {
                if tx.send(b).await.is_err() {
                    return;
                }
            }
            cut.mark_unchanged();
            loop {
                tokio::select! {
                    _ = cut.changed() => return,
                    ev = live.recv() => match ev {
                        Ok(Live::Event(res, rv, obj, l)) => {
                            if rv > last && res == res_c && object_matches(&obj, &ns_c, &sel)
                                && tx.send(line(l)).await.is_err() {
                                return;
                            }
                        }
                        Ok(Live::Expire) => {
                            let ev = json!({"type": "ERROR", "object":
                                status(410, "Expired", "too old resource version")});
                            let _ = tx.send(line(ev.to_string())).await;
                            return;
                        }
                        Err(_) => return,
                    },
                }
            }
        });
    }
    drop(inner);
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .expect("response")
}

/// Loads a fixture from `testdata/k8s/`.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/testdata/k8s/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Percent-decoding sanity (the selector round trip depends on it).
#[test]
fn percent_decoding() {
    assert_eq!(
        percent_decode("app%3Dweb%2Ctier%21%3Ddb"),
        "app=web,tier!=db"
    );
    assert_eq!(percent_decode("a+b%"), "a b%");
}
