//! The accept loop shared by both listeners: a connection limit taken before `accept` (as Go's
//! `netutil.LimitListener`, so excess clients wait in the kernel backlog), an optional TLS
//! handshake bounded by the read timeout, HTTP/1.1 with hyper's header read timeout (HTTP/2
//! when TLS ALPN negotiated it; plain listeners speak HTTP/1.1 only, as Go's), a deadline
//! on reading each request body, and graceful shutdown of open connections.

use super::Web;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use http_body::{Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::Sleep;

/// Serves `router` on `listener` until `shutdown` completes, then waits for open connections
/// to finish their requests (the caller bounds that wait).
pub(crate) async fn serve(
    web: Arc<Web>,
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let read_timeout = web.read_timeout;
    let mut app = router;
    if !web.guard.is_noop() {
        app = app.layer(axum::middleware::from_fn_with_state(
            web.guard.clone(),
            super::auth::guard,
        ));
    }
    if let Some(t) = read_timeout {
        app = app.layer(axum::middleware::map_request(
            move |req: Request| async move { req.map(|b| Body::new(DeadlineBody::new(b, t))) },
        ));
    }
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = match &web.connections {
            Some(sem) => tokio::select! {
                p = sem.clone().acquire_owned() => match p {
                    Ok(p) => Some(p),
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            },
            None => None,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = TowerToHyperService::new(app.clone());
        let tls = web.tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new()).keep_alive(true);
            if let Some(t) = read_timeout {
                http.header_read_timeout(t);
            }
            let done = match tls {
                None => watcher
                    .watch(http.serve_connection(TokioIo::new(stream), svc))
                    .await
                    .map_err(|e| e.to_string()),
                Some(acceptor) => {
                    let handshake = acceptor.accept(stream);
                    let tls_stream = match read_timeout {
                        Some(t) => tokio::time::timeout(t, handshake)
                            .await
                            .unwrap_or_else(|_| Err(std::io::Error::other("handshake timed out"))),
                        None => handshake.await,
                    };
                    match tls_stream {
                        // ALPN chose HTTP/2 (offered only when the web config allows it).
                        Ok(s) if s.get_ref().1.alpn_protocol() == Some(super::tls::ALPN_H2) => {
                            let mut h2 = hyper::server::conn::http2::Builder::new(
                                hyper_util::rt::TokioExecutor::new(),
                            );
                            h2.timer(TokioTimer::new());
                            watcher
                                .watch(h2.serve_connection(TokioIo::new(s), svc))
                                .await
                                .map_err(|e| e.to_string())
                        }
                        Ok(s) => watcher
                            .watch(http.serve_connection(TokioIo::new(s), svc))
                            .await
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(format!("TLS handshake failed: {e}")),
                    }
                }
            };
            if let Err(e) = done {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// A request body that fails once `deadline` has passed since the request arrived, so a client
/// sending its body slowly is dropped (the handler's read fails, hyper closes the connection).
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Body, timeout: Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(f) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(f);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new(
                "request body not received within --web.read-timeout",
            ))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
