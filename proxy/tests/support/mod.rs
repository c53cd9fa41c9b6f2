//! Shared fixtures for the integration tests: a real upstream server on
//! 127.0.0.1:0 (HTTP/1.1 and h2c), a proxy started from generated config
//! files in a temporary directory, and small HTTP clients.
//!
//! Every test talks to real sockets; nothing here mocks the network.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub mod providers;
pub mod redis;
pub mod tls;
pub mod traefik;

pub type TestBody = BoxBody<Bytes, hyper::Error>;

/// The environment variable `name` parsed, or `default` (test knobs).
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// === temporary directories ===

static DIR_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "proxy-test-{tag}-{}-{}",
            std::process::id(),
            DIR_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    /// Writes atomically: a temp file renamed over the target.
    pub fn write_atomic(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        let tmp = self.0.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// === the upstream test server ===

/// What the backend saw of the last requests.
#[derive(Default)]
pub struct BackendStats {
    pub requests: AtomicU64,
    pub cancelled: AtomicU64,
    pub connections: AtomicU64,
    /// The path and headers of the last request (for a request whose
    /// answer the test never sees, a mirror's copy).
    pub last: arc_swap::ArcSwapOption<(String, HeaderMap)>,
}

impl BackendStats {
    /// The path and headers of the last request, if any came.
    pub fn last(&self) -> Option<Arc<(String, HeaderMap)>> {
        self.last.load_full()
    }
}

/// A real HTTP server on 127.0.0.1 answering with its name. Paths:
/// - `/echo...` or anything: 200, body = JSON {name, method, path, query,
///   version, headers}; header `x-backend: NAME`.
/// - `/slow/<ms>`: waits, then answers as above.
/// - `/status/<code>`: answers `code` with body `NAME answered CODE`.
/// - `/bytes/<n>`: streams n bytes (64 KiB chunks).
/// - `/upload`: reads the whole request body, answers its length and a
///   checksum.
/// - `/upgrade`: 101 + raw echo of every byte (WebSocket-style tunnel).
/// - `/trailers`: a body followed by trailers `grpc-status: 0`.
/// - `/hang-body`: sends headers, one chunk, then waits forever.
/// - `/drain/<path>`: reads the whole request body, then answers as
///   `/<path>` does.
/// - `/drip/<chunks>/<ms>`: streams `chunks` chunks of 1 KiB, one every
///   `ms` (a slow download); `?sse` as `text/event-stream`, `?grpc` as
///   `application/grpc` ending with trailers `grpc-status: 0`.
/// - `/test.Echo/<method>`: a gRPC server (best spoken over h2c), see
///   [`grpc_answer`].
pub struct Backend {
    pub addr: SocketAddr,
    pub name: String,
    pub stats: Arc<BackendStats>,
    _stop: Option<tokio::sync::oneshot::Sender<()>>,
}

pub fn backend(name: &str) -> Backend {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let stats = Arc::new(BackendStats::default());
    let name_s = name.to_owned();
    let st = Arc::clone(&stats);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // Its own thread and runtime, so a test's runtime never owns (or drops)
    // the backend's.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
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
                    st.connections.fetch_add(1, Ordering::Relaxed);
                    let name = name_s.clone();
                    let st = Arc::clone(&st);
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req| {
                            let name = name.clone();
                            let st = Arc::clone(&st);
                            async move { Ok::<_, Infallible>(backend_answer(&name, &st, req).await) }
                        });
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            };
            tokio::select! {
                _ = serve => {}
                _ = stop_rx => {}
            }
        });
        rt.shutdown_background();
    });
    Backend {
        addr,
        name: name.to_owned(),
        stats,
        _stop: Some(stop_tx),
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(tx) = self._stop.take() {
            let _ = tx.send(());
        }
    }
}

fn full(b: impl Into<Bytes>) -> TestBody {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

struct CancelGuard(Arc<BackendStats>, bool);
impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.1 {
            self.0.cancelled.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn backend_answer(
    name: &str,
    st: &Arc<BackendStats>,
    mut req: Request<Incoming>,
) -> Response<TestBody> {
    st.last.store(Some(Arc::new((
        req.uri().path().to_owned(),
        req.headers().clone(),
    ))));
    st.requests.fetch_add(1, Ordering::Relaxed);
    let mut path = req.uri().path().to_owned();
    if let Some(rest) = path.strip_prefix("/drain/") {
        // The request body read to its end first, then answered as the
        // rest of the path says (a backend that reads what it is sent).
        let rest = format!("/{rest}");
        while let Some(Ok(_)) = req.body_mut().frame().await {}
        path = rest;
    }
    if let Some(ms) = path.strip_prefix("/slow/") {
        let ms: u64 = ms.parse().unwrap_or(100);
        let mut guard = CancelGuard(Arc::clone(st), false);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        guard.1 = true;
    }
    if let Some(code) = path.strip_prefix("/status/") {
        let code: u16 = code.parse().unwrap_or(500);
        let mut r = Response::new(full(format!("{name} answered {code}")));
        *r.status_mut() = StatusCode::from_u16(code).unwrap();
        r.headers_mut().insert("x-backend", name.parse().unwrap());
        return r;
    }
    if let Some(n) = path.strip_prefix("/bytes/") {
        let n: u64 = n.parse().unwrap();
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        let stream = futures_stream(n, chunk);
        let mut r = Response::new(StreamBody::new(stream).boxed());
        r.headers_mut().insert("x-backend", name.parse().unwrap());
        return r;
    }
    if path == "/upload" {
        let mut total = 0u64;
        let mut sum = 0u64;
        let mut body = req.into_body();
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            if let Some(d) = frame.data_ref() {
                total += d.len() as u64;
                sum = d
                    .iter()
                    .fold(sum, |a, b| a.wrapping_mul(31).wrapping_add(*b as u64));
            }
        }
        return Response::new(full(format!("{total} {sum}")));
    }
    if path == "/upgrade" {
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(up) = on.await {
                let mut io = TokioIo::new(up);
                let mut buf = [0u8; 4096];
                loop {
                    match io.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if io.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        });
        let mut r = Response::new(full(Bytes::new()));
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        r.headers_mut()
            .insert("connection", "Upgrade".parse().unwrap());
        r.headers_mut()
            .insert("upgrade", "websocket".parse().unwrap());
        return r;
    }
    if path == "/trailers" {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        trailers.insert("grpc-message", "ok".parse().unwrap());
        let frames: Vec<Result<Frame<Bytes>, hyper::Error>> = vec![
            Ok(Frame::data(Bytes::from_static(b"payload"))),
            Ok(Frame::trailers(trailers)),
        ];
        let body = StreamBody::new(tokio_stream_iter(frames)).boxed();
        let mut r = Response::new(body);
        r.headers_mut()
            .insert("content-type", "application/grpc".parse().unwrap());
        return r;
    }
    if let Some(spec) = path.strip_prefix("/drip/") {
        let (n, ms) = spec.split_once('/').unwrap_or((spec, "200"));
        let (n, ms): (u64, u64) = (n.parse().unwrap(), ms.parse().unwrap());
        let kind = req.uri().query().unwrap_or("").to_owned();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, hyper::Error>>(1);
        let grpc = kind == "grpc";
        tokio::spawn(async move {
            let chunk = Bytes::from(vec![b'd'; 1024]);
            for _ in 0..n {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                if tx.send(Ok(Frame::data(chunk.clone()))).await.is_err() {
                    return;
                }
            }
            if grpc {
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", "0".parse().unwrap());
                let _ = tx.send(Ok(Frame::trailers(trailers))).await;
            }
        });
        let mut r = Response::new(StreamBody::new(ReceiverStream(rx)).boxed());
        let ct = match kind.as_str() {
            "sse" => "text/event-stream",
            "grpc" => "application/grpc",
            _ => "application/octet-stream",
        };
        r.headers_mut().insert("content-type", ct.parse().unwrap());
        r.headers_mut().insert("x-backend", name.parse().unwrap());
        return r;
    }
    if let Some(n) = path.strip_prefix("/content/") {
        return content(n.parse().unwrap_or(0), req.uri().query().unwrap_or(""));
    }
    if let Some(method) = path.strip_prefix("/test.Echo/") {
        let method = method.to_owned();
        return grpc_answer(&method, req).await;
    }
    if path == "/hang-body" {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, hyper::Error>>(1);
        let _ = tx.send(Ok(Frame::data(Bytes::from_static(b"first")))).await;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(tx);
        });
        return Response::new(StreamBody::new(ReceiverStream(rx)).boxed());
    }
    let headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let info = serde_json::json!({
        "name": name,
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "query": req.uri().query(),
        "version": format!("{:?}", req.version()),
        "headers": headers,
    });
    let mut r = Response::new(full(info.to_string()));
    r.headers_mut().insert("x-backend", name.parse().unwrap());
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r.headers_mut()
        .insert("connection", "keep-alive, x-hop".parse().unwrap());
    r.headers_mut()
        .insert("x-hop", "must-not-pass".parse().unwrap());
    r
}

/// One gRPC message: flag 0, its length (4 bytes, big-endian), `payload`.
pub fn grpc_message(payload: &[u8]) -> Vec<u8> {
    let mut m = vec![0];
    m.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    m.extend_from_slice(payload);
    m
}

/// The test gRPC service `test.Echo`, its answers `application/grpc`
/// (`+proto` when the request's type says so):
/// - `Unary`: reads the whole request, answers one message, a JSON of what
///   it saw (`version`, `headers`, `body` in hex), then trailers
///   `grpc-status: 0`, `grpc-message: done`, `x-trailer-b: 2`,
///   `x-trailer-a: 1`.
/// - `Stream`: the messages `one`, `two`, `three`, each in its own data
///   frame 300 ms apart, then trailers `grpc-status: 0`.
/// - `Fail`: trailers only (`grpc-status: 5`, `grpc-message: not found`
///   in the head, no body).
async fn grpc_answer(method: &str, req: Request<Incoming>) -> Response<TestBody> {
    let ct = match req.headers().get("content-type") {
        Some(v) if v.as_bytes().ends_with(b"+proto") => "application/grpc+proto",
        _ => "application/grpc",
    };
    let headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let version = format!("{:?}", req.version());
    let mut received = Vec::new();
    let mut body = req.into_body();
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(d) = frame.data_ref() {
            received.extend_from_slice(d);
        }
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, hyper::Error>>(4);
    let mut r = Response::new(StreamBody::new(ReceiverStream(rx)).boxed());
    r.headers_mut().insert("content-type", ct.parse().unwrap());
    match method {
        "Unary" => {
            let hex: String = received.iter().map(|b| format!("{b:02x}")).collect();
            let seen = serde_json::json!({"version": version, "headers": headers, "body": hex});
            let mut t = HeaderMap::new();
            t.insert("grpc-status", "0".parse().unwrap());
            t.insert("grpc-message", "done".parse().unwrap());
            t.insert("x-trailer-b", "2".parse().unwrap());
            t.insert("x-trailer-a", "1".parse().unwrap());
            let msg = Bytes::from(grpc_message(seen.to_string().as_bytes()));
            let _ = tx.send(Ok(Frame::data(msg))).await;
            let _ = tx.send(Ok(Frame::trailers(t))).await;
        }
        "Stream" => {
            tokio::spawn(async move {
                for (i, m) in ["one", "two", "three"].into_iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    let msg = Bytes::from(grpc_message(m.as_bytes()));
                    if tx.send(Ok(Frame::data(msg))).await.is_err() {
                        return;
                    }
                }
                let mut t = HeaderMap::new();
                t.insert("grpc-status", "0".parse().unwrap());
                let _ = tx.send(Ok(Frame::trailers(t))).await;
            });
        }
        _ => {
            r.headers_mut().insert("grpc-status", "5".parse().unwrap());
            r.headers_mut()
                .insert("grpc-message", "not found".parse().unwrap());
            drop(tx);
            *r.body_mut() = full(Bytes::new());
        }
    }
    r
}

/// `n` bytes of text ([`text_body`]) shaped by `query`: `type=<a/b>`
/// (Content-Type, `+` for a space), `chunked` (no Content-Length, in 1 KiB
/// chunks), `status=<code>`, `ce=<coding>` (Content-Encoding), `range`
/// (206 with Content-Range), `vary=<v>`.
fn content(n: usize, query: &str) -> Response<TestBody> {
    let text = text_body(n);
    let mut chunked = false;
    let mut headers = Vec::new();
    let mut status = StatusCode::OK;
    for (k, v) in query
        .split('&')
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
    {
        match k {
            "type" => headers.push(("content-type", v.replace('+', " "))),
            "chunked" => chunked = true,
            "status" => status = StatusCode::from_u16(v.parse().unwrap()).unwrap(),
            "ce" => headers.push(("content-encoding", v.to_owned())),
            "vary" => headers.push(("vary", v.to_owned())),
            "range" => {
                status = StatusCode::PARTIAL_CONTENT;
                headers.push((
                    "content-range",
                    format!("bytes 0-{}/{}", n.max(1) - 1, n * 2),
                ));
            }
            _ => {}
        }
    }
    let body = if chunked {
        let frames: Vec<Result<Frame<Bytes>, hyper::Error>> = text
            .chunks(1024)
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        StreamBody::new(tokio_stream_iter(frames)).boxed()
    } else {
        full(text)
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    for (k, v) in headers {
        r.headers_mut().append(k, v.parse().unwrap());
    }
    r.headers_mut()
        .insert("accept-ranges", "bytes".parse().unwrap());
    r
}

/// `n` bytes of compressible text: numbered lines.
pub fn text_body(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 64);
    let mut i = 0;
    while out.len() < n {
        out.extend_from_slice(
            format!("line {i}: the quick brown fox jumps over the lazy dog\n").as_bytes(),
        );
        i += 1;
    }
    out.truncate(n);
    out
}

/// The `compress` middlewares of the compression tests (this proxy's and
/// the comparison with Traefik): `all` (defaults, `text/event-stream`
/// excluded), `zstd-first` (its own order, default and minimum) and
/// `only-html` (included types).
pub const COMPRESS_MIDDLEWARES: &str = r#"  middlewares:
    all:
      compress:
        excludedContentTypes: ["text/event-stream"]
    zstd-first:
      compress:
        encodings: [zstd, br, gzip]
        defaultEncoding: br
        minResponseBodyBytes: 200
    only-html:
      compress:
        includedContentTypes: ["text/html", "application/json; charset=utf-8"]
"#;

/// `body` decoded as the `Content-Encoding` `coding` says (gzip, br,
/// zstd; none: as it is); `None` when it does not decode.
pub fn decoded(coding: &str, body: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    match coding {
        "gzip" => flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .ok()?,
        "br" => brotli::Decompressor::new(body, 4096)
            .read_to_end(&mut out)
            .ok()?,
        "zstd" => return zstd::decode_all(body).ok(),
        "" => return Some(body.to_vec()),
        _ => return None,
    };
    Some(out)
}

/// A minimal `Stream` over an iterator (no futures crate needed).
pub struct IterStream<I>(pub I);
impl<I: Iterator + Unpin> futures_core_stream::Stream for IterStream<I> {
    type Item = I::Item;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<I::Item>> {
        std::task::Poll::Ready(self.0.next())
    }
}

fn tokio_stream_iter<T: Unpin>(v: Vec<T>) -> IterStream<std::vec::IntoIter<T>> {
    IterStream(v.into_iter())
}

fn futures_stream(
    n: u64,
    chunk: Bytes,
) -> IterStream<impl Iterator<Item = Result<Frame<Bytes>, hyper::Error>> + Unpin> {
    let mut left = n;
    IterStream(std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let take = left.min(chunk.len() as u64) as usize;
        left -= take as u64;
        Some(Ok(Frame::data(chunk.slice(..take))))
    }))
}

struct ReceiverStream<T>(tokio::sync::mpsc::Receiver<T>);
impl<T> futures_core_stream::Stream for ReceiverStream<T> {
    type Item = T;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

/// `futures_core::Stream` (a dev-dependency).
mod futures_core_stream {
    pub use futures_core::Stream;
}

// === the proxy under test ===

pub struct TestProxy {
    pub running: Option<proxy::app::Running>,
    pub dir: TempDir,
    pub web: SocketAddr,
}

impl TestProxy {
    pub fn addr(&self, ep: &str) -> SocketAddr {
        self.running.as_ref().unwrap().addr(ep).unwrap()
    }
    pub fn running(&self) -> &proxy::app::Running {
        self.running.as_ref().unwrap()
    }
    pub fn dynamic_path(&self) -> PathBuf {
        self.dir.path().join("dynamic.yml")
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown(Some(Duration::from_millis(200)));
        }
    }
}

/// The static config used by most tests: entrypoint `web` on a free port,
/// the dynamic file `dynamic.yml` next to it, plus `extra` static YAML.
pub fn static_yaml(extra: &str) -> String {
    format!(
        "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\nproviders:\n  file:\n    filename: \"{{DIR}}/dynamic.yml\"\n{extra}"
    )
}

/// The static configuration with entrypoint `web` and its `transport`
/// block (`transport` holds its lines, indented six spaces).
pub fn static_with_transport(transport: &str) -> String {
    format!(
        "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\n    transport:\n{transport}providers:\n  file:\n    filename: \"{{DIR}}/dynamic.yml\"\n"
    )
}

/// Opens a raw connection to `addr` and upgrades it at `/upgrade` (the
/// test backend's echo tunnel), returning the stream after the `101`.
pub async fn upgraded(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    upgrade(&mut s).await;
    s
}

/// Upgrades the open connection `s` at `/upgrade`, reading up to the end
/// of the `101`'s head.
pub async fn upgrade(s: &mut TcpStream) {
    s.write_all(
        b"GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
}

/// Starts an in-process proxy with `dynamic` (YAML) and the default static
/// configuration plus `static_extra`.
pub fn start_proxy(dynamic: &str) -> TestProxy {
    start_proxy_with(dynamic, "", 1)
}

pub fn start_proxy_with(dynamic: &str, static_extra: &str, workers: usize) -> TestProxy {
    start_proxy_static(dynamic, &static_yaml(static_extra), workers)
}

/// Starts a proxy with a whole static configuration (`{DIR}` stands for the
/// temporary directory holding `dynamic.yml`); entrypoint `web` required.
pub fn start_proxy_static(dynamic: &str, static_cfg: &str, workers: usize) -> TestProxy {
    let dir = TempDir::new("proxy");
    dir.write("dynamic.yml", dynamic);
    let stat = static_cfg.replace("{DIR}", &dir.path().display().to_string());
    let file = dir.write("static.yml", &stat);
    let running = start_file(&file, workers);
    let web = running.addr("web").unwrap();
    TestProxy {
        running: Some(running),
        dir,
        web,
    }
}

/// Loads the static configuration `file` (and the dynamic one it names) and
/// starts a proxy on it, as the binary does.
pub fn start_file(file: &Path, workers: usize) -> proxy::app::Running {
    let (static_cfg, _warnings) = proxy::config::load_static(file)
        .unwrap_or_else(|e| panic!("invalid static configuration {}: {e}", file.display()));
    proxy::app::start(static_cfg, Some(file.to_path_buf()), workers)
        .unwrap_or_else(|e| panic!("proxy failed to start: {e}"))
}

/// A dynamic config with one router per (name, rule, backend).
pub fn routes_yaml(routes: &[(&str, &str, &Backend)]) -> String {
    let mut s = String::from("http:\n  routers:\n");
    for (name, rule, _) in routes {
        s += &format!(
            "    {name}:\n      rule: {}\n      service: svc-{name}\n",
            yaml_str(rule)
        );
    }
    s += "  services:\n";
    for (name, _, b) in routes {
        s += &format!(
            "    svc-{name}:\n      loadBalancer:\n        servers:\n          - url: \"http://{}\"\n",
            b.addr
        );
    }
    s
}

pub fn yaml_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

// === clients ===

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn backend(&self) -> Option<&str> {
        self.headers.get("x-backend").and_then(|v| v.to_str().ok())
    }
}

/// An HTTP/1.1 keep-alive connection.
pub struct H1 {
    tx: hyper::client::conn::http1::SendRequest<TestBody>,
}

impl H1 {
    pub async fn connect(addr: SocketAddr) -> H1 {
        H1::from_stream(TcpStream::connect(addr).await.unwrap()).await
    }

    /// A connection made by the caller (e.g. from a chosen source address).
    pub async fn from_stream(s: TcpStream) -> H1 {
        let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        H1 { tx }
    }

    pub async fn send(&mut self, req: Request<TestBody>) -> Result<Reply, hyper::Error> {
        self.tx.ready().await?;
        let resp = self.tx.send_request(req).await?;
        collect(resp).await
    }

    pub async fn get(&mut self, host: &str, path: &str) -> Reply {
        let req = Request::get(path)
            .header("host", host)
            .body(empty())
            .unwrap();
        self.send(req).await.unwrap()
    }

    pub fn sender(&mut self) -> &mut hyper::client::conn::http1::SendRequest<TestBody> {
        &mut self.tx
    }
}

/// An HTTP/2 prior-knowledge (h2c) connection.
#[derive(Clone)]
pub struct H2 {
    tx: hyper::client::conn::http2::SendRequest<TestBody>,
}

impl H2 {
    pub async fn connect(addr: SocketAddr) -> H2 {
        let s = TcpStream::connect(addr).await.unwrap();
        let (tx, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(s))
                .await
                .unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        H2 { tx }
    }

    pub async fn send(&mut self, req: Request<TestBody>) -> Result<Reply, hyper::Error> {
        self.tx.ready().await?;
        let resp = self.tx.send_request(req).await?;
        collect(resp).await
    }

    /// Whether the connection was closed (e.g. by the proxy's GOAWAY).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    pub async fn get(&mut self, host: &str, path: &str) -> Reply {
        let req = Request::get(format!("http://{host}{path}"))
            .body(empty())
            .unwrap();
        self.send(req).await.unwrap()
    }
}

pub fn empty() -> TestBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub fn body(b: impl Into<Bytes>) -> TestBody {
    full(b)
}

pub async fn collect(resp: Response<Incoming>) -> Result<Reply, hyper::Error> {
    let (parts, body) = resp.into_parts();
    let collected = body.collect().await?;
    let trailers = collected.trailers().cloned();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    })
}

/// One request on a fresh HTTP/1.1 connection.
pub async fn get(addr: SocketAddr, host: &str, path: &str) -> Reply {
    H1::connect(addr).await.get(host, path).await
}

/// The status of a raw HTTP/1.1 answer (0 when there is none).
pub fn raw_status(text: &str) -> u16 {
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Header `name` of a raw HTTP/1.1 answer.
pub fn raw_header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let head = text.split("\r\n\r\n").next()?;
    head.split("\r\n").find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads the raw bytes of a response to a request written by hand (for
/// what a client library would refuse to send).
pub async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

// === many named backends on one runtime ===

/// One listener per name, all served by a single thread and runtime (so a
/// test can give hundreds of services their own upstream cheaply). Every
/// request gets 200, header `x-backend: NAME` and body `NAME`. Stops on
/// drop.
pub struct NamedBackends {
    pub addrs: Vec<SocketAddr>,
    _stop: Option<tokio::sync::oneshot::Sender<()>>,
}

pub fn named_backends(names: &[String]) -> NamedBackends {
    let mut listeners = Vec::with_capacity(names.len());
    let mut addrs = Vec::with_capacity(names.len());
    for _ in names {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        addrs.push(l.local_addr().unwrap());
        listeners.push(l);
    }
    let names = names.to_vec();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            for (l, name) in listeners.into_iter().zip(names) {
                let listener = TcpListener::from_std(l).unwrap();
                let name: Arc<str> = name.into();
                tokio::spawn(async move {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let name = Arc::clone(&name);
                        tokio::spawn(async move {
                            let svc = hyper::service::service_fn(move |_req: Request<Incoming>| {
                                let mut r = Response::new(full(name.to_string()));
                                r.headers_mut().insert("x-backend", name.parse().unwrap());
                                async move { Ok::<_, Infallible>(r) }
                            });
                            let _ =
                                hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                                    .serve_connection(TokioIo::new(stream), svc)
                                    .await;
                        });
                    }
                });
            }
            let _ = stop_rx.await;
        });
        rt.shutdown_background();
    });
    NamedBackends {
        addrs,
        _stop: Some(stop_tx),
    }
}

impl Drop for NamedBackends {
    fn drop(&mut self) {
        if let Some(tx) = self._stop.take() {
            let _ = tx.send(());
        }
    }
}

// === what the proxy under test supports ===

/// Starts an in-process proxy with `dynamic` (YAML) and the default static
/// configuration, returning the configuration error text if `proxy check`
/// refuses it.
pub fn try_start_proxy(dynamic: &str) -> Result<proxy::app::Running, String> {
    let dir = TempDir::new("try-proxy");
    dir.write("dynamic.yml", dynamic);
    let stat = static_yaml("").replace("{DIR}", &dir.path().display().to_string());
    let file = dir.write("static.yml", &stat);
    let (static_cfg, _warnings) = proxy::config::load_static(&file).map_err(|e| e.to_string())?;
    // What `proxy check` refuses (the proxy itself would start, disabling
    // the elements with errors).
    if let (Err(errors), _) = proxy::control::check(&static_cfg) {
        return Err(errors.to_string());
    }
    proxy::app::start(static_cfg, Some(file), 1).map_err(|e| e.to_string())
}

/// The errors `proxy check` reports for the dynamic YAML `text` (entrypoint
/// `web`, v3 rules), one per line; panics when there are none.
/// Polls until `cond` holds (checked every 50 ms, at most `secs`).
pub async fn eventually(secs: u64, mut cond: impl AsyncFnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

pub fn dynamic_errors(text: &str) -> String {
    proxy::config::parse_dynamic(
        text,
        proxy::config::Format::Yaml,
        Path::new("d.yml"),
        &["web".to_owned()],
        proxy::routing::RuleSyntax::V3,
    )
    .expect_err("the configuration has errors")
    .to_string()
}
