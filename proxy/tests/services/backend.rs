//! A backend whose behaviour a test changes while it runs: a delay before
//! every answer, the status of `/health` and of every other path, and a
//! stop and restart on the same port. Real sockets on 127.0.0.1.

#![allow(dead_code, unreachable_pub, missing_docs)]
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// What the backend does now.
pub struct Knobs {
    pub delay_ms: AtomicU64,
    pub status: AtomicU16,
    pub health_status: AtomicU16,
    pub requests: AtomicU64,
    pub health_checks: AtomicU64,
    /// Request body bytes received (every path but `/health`).
    pub body_bytes: AtomicU64,
}

pub struct KnobBackend {
    pub addr: SocketAddr,
    pub name: String,
    pub knobs: Arc<Knobs>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl KnobBackend {
    pub fn start(name: &str) -> Self {
        let knobs = Arc::new(Knobs {
            delay_ms: AtomicU64::new(0),
            status: AtomicU16::new(200),
            health_status: AtomicU16::new(200),
            requests: AtomicU64::new(0),
            health_checks: AtomicU64::new(0),
            body_bytes: AtomicU64::new(0),
        });
        Self::serve(name, "127.0.0.1:0".parse().unwrap(), knobs)
    }

    fn serve(name: &str, addr: SocketAddr, knobs: Arc<Knobs>) -> Self {
        let std_listener = std::net::TcpListener::bind(addr).unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let k = Arc::clone(&knobs);
        let n: Arc<str> = name.into();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).unwrap();
                let serve = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let (k, n) = (Arc::clone(&k), Arc::clone(&n));
                        tokio::spawn(async move {
                            let svc = hyper::service::service_fn(move |req| {
                                let (k, n) = (Arc::clone(&k), Arc::clone(&n));
                                async move { Ok::<_, Infallible>(answer(&n, &k, req).await) }
                            });
                            let _ =
                                hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                                    .serve_connection(TokioIo::new(stream), svc)
                                    .await;
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stop_rx => {}
                }
            });
            // Dropping the runtime closes the listener and every
            // connection: the server is gone.
            rt.shutdown_background();
        });
        Self {
            addr,
            name: name.to_owned(),
            knobs,
            stop: Some(stop_tx),
        }
    }

    /// Stops listening and closes every connection.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        // Until the port is free again.
        for _ in 0..100 {
            if std::net::TcpStream::connect(self.addr).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Serves again on the same port, with the same knobs.
    pub fn restart(&mut self) {
        let again = Self::serve(&self.name, self.addr, Arc::clone(&self.knobs));
        self.stop = again.stop_handle();
    }

    fn stop_handle(mut self) -> Option<tokio::sync::oneshot::Sender<()>> {
        self.stop.take()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> u64 {
        self.knobs.requests.load(Ordering::Relaxed)
    }
}

impl Drop for KnobBackend {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn answer(name: &str, k: &Knobs, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let status = if req.uri().path() == "/health" {
        k.health_checks.fetch_add(1, Ordering::Relaxed);
        k.health_status.load(Ordering::Relaxed)
    } else {
        k.requests.fetch_add(1, Ordering::Relaxed);
        if let Ok(body) = http_body_util::BodyExt::collect(req.into_body()).await {
            k.body_bytes
                .fetch_add(body.to_bytes().len() as u64, Ordering::Relaxed);
        }
        let ms = k.delay_ms.load(Ordering::Relaxed);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        k.status.load(Ordering::Relaxed)
    };
    let mut r = Response::new(Full::new(Bytes::from(name.to_owned())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r.headers_mut().insert("x-backend", name.parse().unwrap());
    r
}
