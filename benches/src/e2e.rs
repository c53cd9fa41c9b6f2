//! One whole proxied request, driven in process: a blocking HTTP/1.1
//! client on the calling thread -> the real proxy (`proxy::app::start`,
//! one worker) on loopback -> a blocking backend thread -> back. The TLS
//! variant ([`E2e::start_tls`]) speaks the same requests over one TLS 1.3
//! keep-alive connection (rustls client, AES-128-GCM, X25519, an ECDSA
//! P-256 certificate made by rcgen at start), terminated by the proxy; the
//! backend stays plain.
//!
//! Why loopback sockets and not in-memory streams: the proxy's public API
//! starts real listeners and its connection handling is private to the
//! library; driving it over in-memory streams would need a new public
//! entry point in `proxy/src`. The sockets cost the same every run, and the
//! instruction benches subtract a short run from a long one so the start
//! and stop of the proxy cancel out.
//!
//! The client and backend reuse their buffers: after the first request
//! they allocate nothing, so an allocation counter sees only the proxy. The
//! TLS client does allocate (rustls buffers each record it writes), on the
//! calling thread only: an allocation counter excludes that thread.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proxy::app::Running;
use proxy::config::{Format, parse_static};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// The request the client sends, keep-alive.
pub const REQUEST: &[u8] =
    b"GET /api/items?id=7 HTTP/1.1\r\nHost: bench.example.com\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\n\r\n";

/// The same request with the credentials [`Route::Chain`]'s `basicAuth`
/// accepts (`bench:secret`).
pub const REQUEST_AUTH: &[u8] =
    b"GET /api/items?id=7 HTTP/1.1\r\nHost: bench.example.com\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\nAuthorization: Basic YmVuY2g6c2VjcmV0\r\n\r\n";

/// The plain request accepting gzip ([`Route::CompressSmall`],
/// [`Route::CompressLarge`]).
pub const REQUEST_GZIP: &[u8] =
    b"GET /api/items?id=7 HTTP/1.1\r\nHost: bench.example.com\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\nAccept-Encoding: gzip, br\r\n\r\n";

/// What a browser sends: `Connection: keep-alive` (the slow path of
/// hop-by-hop removal) and the headers every page load carries
/// ([`Route::Browser`]).
pub const REQUEST_BROWSER: &[u8] = b"GET /api/items?id=7 HTTP/1.1\r\nHost: bench.example.com\r\nConnection: keep-alive\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.9,fr;q=0.8\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nReferer: https://bench.example.com/app/index.html\r\nCookie: session=3f2a9c0d7e1b4a6f8c5d2e9b0a7f6c3d; theme=dark; _ga=GA1.2.1234567890.1700000000\r\nSec-Fetch-Dest: empty\r\nSec-Fetch-Mode: cors\r\nSec-Fetch-Site: same-origin\r\nCache-Control: no-cache\r\n\r\n";

/// Streams the h2c client opens at once on its one connection
/// ([`Route::H2c`]); [`E2e::request`] sends that many requests there.
pub const H2C_STREAMS: usize = 10;

/// How the client reaches the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Plain HTTP, a router without middleware.
    Plain,
    /// The same router serving TLS (`tls: {}`), the client on TLS 1.3.
    Tls,
    /// Plain HTTP through three common middlewares: `headers` (a request
    /// and a response header), `stripPrefix` (`/api`) and `basicAuth` with
    /// a `{SHA}` hash (a bcrypt one would swamp the count).
    Chain,
    /// [`Route::Plain`] with the API and dashboard on (`api.insecure`, on
    /// a `traefik` entrypoint of their own): they must add nothing to a
    /// data-plane request.
    Api,
    /// Plain HTTP through a `rateLimit` whose limit is far above the load
    /// (every request takes a token from the client's bucket).
    RateLimit,
    /// Plain HTTP, the router's service a `weighted` service of two load
    /// balancers (weights 3 and 1) of one server each: the service walk
    /// and its schedule on top of the load balancer's pick.
    Weighted,
    /// Plain HTTP through `compress` (default options), the client
    /// accepting gzip: the 12-byte answer is below the minimum size and
    /// passes as it is (the negotiation and `Vary` only).
    CompressSmall,
    /// [`Route::CompressSmall`] with a 64 KiB text answer: gzip-compressed
    /// as it streams (chunked to the client).
    CompressLarge,
    /// [`Route::Plain`] with [`REQUEST_BROWSER`]'s headers, and a backend
    /// answering `Connection: keep-alive` as nginx does: both directions
    /// take the hop-by-hop removal's slow path.
    Browser,
    /// [`Route::Plain`] with Prometheus metrics on (defaults: entrypoint
    /// and service labels; the `/metrics` entrypoint of their own).
    Metrics,
    /// [`Route::Plain`] with the access log on, to a file (`common`
    /// format), as users configure it.
    AccessLog,
    /// The client speaks h2c (prior knowledge) over one connection,
    /// [`H2C_STREAMS`] concurrent streams per [`E2e::request`]; the
    /// backend stays HTTP/1.1.
    H2c,
}

/// The middleware of the compress routes.
const COMPRESS: &str =
    "      middlewares: [squeeze]\n  middlewares:\n    squeeze:\n      compress: {}\n";

/// The middleware of [`Route::RateLimit`].
const RATE_LIMIT: &str = "      middlewares: [limit]\n  middlewares:\n    limit:\n      rateLimit:\n        average: 1000000\n        burst: 1000000\n";

/// The middlewares of [`Route::Chain`].
const CHAIN: &str = "      middlewares: [hdr, strip, auth]\n  middlewares:\n    hdr:\n      headers:\n        customRequestHeaders:\n          X-Bench: \"1\"\n        customResponseHeaders:\n          X-Served-By: proxy\n    strip:\n      stripPrefix:\n        prefixes: [/api]\n    auth:\n      basicAuth:\n        users: [\"bench:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\"]\n";

/// [`Route::CompressLarge`]'s answer: 64 KiB of numbered text lines.
fn large_response() -> &'static [u8] {
    static LARGE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    LARGE.get_or_init(|| {
        let mut body = Vec::new();
        let mut i = 0;
        while body.len() < 64 * 1024 {
            body.extend_from_slice(
                format!("line {i}: the quick brown fox jumps over the lazy dog\n").as_bytes(),
            );
            i += 1;
        }
        body.truncate(64 * 1024);
        let mut r = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(&body);
        r
    })
}

/// The backend's answer: a 12-byte body.
const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nhello world\n";

/// [`RESPONSE`] as nginx sends it to a keep-alive upstream request
/// ([`Route::Browser`]).
const RESPONSE_KEEP_ALIVE: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: keep-alive\r\n\r\nhello world\n";

/// The SNI and `Host` of the requests (the router's host).
const HOST: &str = "bench.example.com";

/// The client's connection to the proxy.
#[derive(Debug)]
enum Client {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    H2c(H2cClient),
}

/// An h2c client on a current-thread runtime of the calling thread: its
/// connection task runs only inside [`H2cClient::batch`], on this thread.
#[derive(Debug)]
struct H2cClient {
    rt: tokio::runtime::Runtime,
    send: h2::client::SendRequest<Bytes>,
}

impl H2cClient {
    fn connect(addr: SocketAddr) -> H2cClient {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("h2c client runtime");
        let send = rt.block_on(async {
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .expect("connect to the proxy");
            tcp.set_nodelay(true).expect("TCP_NODELAY");
            let (send, conn) = h2::client::handshake(tcp).await.expect("h2c handshake");
            tokio::spawn(async move {
                let _ = conn.await;
            });
            send
        });
        H2cClient { rt, send }
    }

    /// [`H2C_STREAMS`] GETs sent at once, then every answer read whole;
    /// panics unless each is a 200 with the backend's body.
    fn batch(&mut self) {
        let send = self.send.clone();
        self.rt.block_on(async move {
            let mut send = send.ready().await.expect("h2c connection ready");
            let mut answers = Vec::with_capacity(H2C_STREAMS);
            for _ in 0..H2C_STREAMS {
                let req =
                    http::Request::get(concat!("http://bench.example.com", "/api/items?id=7"))
                        .header("user-agent", "bench/1.0")
                        .header("accept", "*/*")
                        .body(())
                        .expect("h2c request");
                let (answer, _) = send.send_request(req, true).expect("h2c send");
                answers.push(answer);
                send = send.ready().await.expect("h2c stream slot");
            }
            for answer in answers {
                let answer = answer.await.expect("h2c answer");
                assert_eq!(answer.status(), 200, "h2c answer status");
                let mut body = answer.into_body();
                let mut len = 0;
                while let Some(chunk) = body.data().await {
                    let chunk = chunk.expect("h2c body");
                    assert_eq!(&chunk[..], &b"hello world\n"[len..len + chunk.len()]);
                    len += chunk.len();
                    let _ = body.flow_control().release_capacity(chunk.len());
                }
                assert_eq!(len, 12, "h2c body length");
            }
        });
    }
}

impl Client {
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Client::Plain(s) => s.write_all(buf),
            Client::Tls(s) => {
                s.write_all(buf)?;
                s.flush()
            }
            Client::H2c(_) => unreachable!("h2c requests go through H2cClient::batch"),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Client::Plain(s) => s.read(buf),
            Client::Tls(s) => s.read(buf),
            Client::H2c(_) => unreachable!("h2c requests go through H2cClient::batch"),
        }
    }
}

/// A proxy between a blocking client and a blocking backend.
#[derive(Debug)]
pub struct E2e {
    proxy: Option<Running>,
    client: Option<Client>,
    buf: Vec<u8>,
    dir: PathBuf,
    request: &'static [u8],
    /// The answer comes gzip-compressed and chunked.
    gzip: bool,
}

impl E2e {
    /// Starts the backend and the proxy (one worker, one router) and
    /// connects the client.
    pub fn start() -> E2e {
        Self::start_with(Route::Plain)
    }

    /// As [`E2e::start`], the router serving TLS (`tls: {}`) and the
    /// client connected over TLS 1.3 (handshake done before it returns).
    pub fn start_tls() -> E2e {
        Self::start_with(Route::Tls)
    }

    /// Starts the fixture `route` describes.
    pub fn start_with(route: Route) -> E2e {
        let backend = spawn_backend(match route {
            Route::CompressLarge => large_response(),
            Route::Browser => RESPONSE_KEEP_ALIVE,
            _ => RESPONSE,
        });
        let tls = route == Route::Tls;
        let (middlewares, request) = match route {
            Route::Chain => (CHAIN, REQUEST_AUTH),
            Route::RateLimit => (RATE_LIMIT, REQUEST),
            Route::CompressSmall | Route::CompressLarge => (COMPRESS, REQUEST_GZIP),
            Route::Browser => ("", REQUEST_BROWSER),
            Route::Plain
            | Route::Tls
            | Route::Api
            | Route::Weighted
            | Route::Metrics
            | Route::AccessLog
            | Route::H2c => ("", REQUEST),
        };
        let lb = |name: &str| {
            format!(
                "    {name}:\n      loadBalancer:\n        servers:\n          - url: \"http://{backend}\"\n"
            )
        };
        let services = if route == Route::Weighted {
            format!(
                "    app:\n      weighted:\n        services:\n          - name: one\n            weight: 3\n          - name: two\n            weight: 1\n{}{}",
                lb("one"),
                lb("two")
            )
        } else {
            lb("app")
        };
        let kind = format!("{route:?}").to_ascii_lowercase();
        let dir =
            std::env::temp_dir().join(format!("proxy-bench-e2e-{kind}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create bench temp dir");
        let mut dynamic = format!(
            "http:\n  services:\n{services}  routers:\n    app:\n      rule: \"Host(`{HOST}`) && PathPrefix(`/api`)\"\n      service: app\n{}{middlewares}",
            if tls { "      tls: {}\n" } else { "" }
        );
        let mut root = None;
        if tls {
            let ck = rcgen::generate_simple_self_signed(vec![HOST.to_owned()])
                .expect("rcgen: bench certificate");
            let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
            std::fs::write(&cert, ck.cert.pem()).expect("write bench certificate");
            std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write bench key");
            dynamic.push_str(&format!(
                "tls:\n  certificates:\n    - certFile: \"{}\"\n      keyFile: \"{}\"\n",
                cert.display(),
                key.display()
            ));
            root = Some(ck.cert.der().clone());
        }
        std::fs::write(dir.join("dynamic.yml"), dynamic).expect("write dynamic config");
        // Route::Api: the API and dashboard on an entrypoint of their own;
        // Route::Metrics: /metrics there.
        let traefik_entry = "  traefik:\n    address: \"127.0.0.1:0\"\n";
        let (api_entry, api) = match route {
            Route::Api => (
                traefik_entry,
                "api:\n  insecure: true\n  dashboard: true\n".to_owned(),
            ),
            Route::Metrics => (traefik_entry, "metrics:\n  prometheus: {}\n".to_owned()),
            Route::AccessLog => (
                "",
                format!(
                    "accessLog:\n  filePath: \"{}\"\n",
                    dir.join("access.log").display()
                ),
            ),
            _ => ("", String::new()),
        };
        let static_text = format!(
            "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\n{api_entry}providers:\n  file:\n    filename: \"{}\"\n    watch: false\n{api}",
            dir.join("dynamic.yml").display()
        );
        let static_path = dir.join("traefik.yml");
        let (static_cfg, _warnings) =
            parse_static(&static_text, Format::Yaml, Path::new(&static_path))
                .expect("bench static config is valid");
        let running = proxy::app::start(static_cfg, None, 1).expect("proxy starts");
        let addr = running.addr("web").expect("entrypoint web is bound");
        let client = match root {
            None if route == Route::H2c => Client::H2c(H2cClient::connect(addr)),
            None => Client::Plain(connect(addr)),
            Some(root) => Client::Tls(Box::new(connect_tls(addr, root))),
        };
        E2e {
            proxy: Some(running),
            client: Some(client),
            buf: vec![
                0;
                if route == Route::CompressLarge {
                    256
                } else {
                    16
                } * 1024
            ],
            dir,
            request,
            gzip: route == Route::CompressLarge,
        }
    }

    /// Sends one request and reads the whole response; panics unless it is
    /// a 200 with the backend's body. Over h2c ([`Route::H2c`]):
    /// [`H2C_STREAMS`] concurrent requests.
    pub fn request(&mut self) {
        let client = self.client.as_mut().expect("client connected");
        if let Client::H2c(h2c) = client {
            h2c.batch();
            return;
        }
        client.write_all(self.request).expect("send request");
        let mut filled = 0;
        loop {
            let n = client.read(&mut self.buf[filled..]).expect("read response");
            assert!(n > 0, "proxy closed the connection");
            filled += n;
            if let Some(total) = response_len(&self.buf[..filled]) {
                assert!(filled >= total || total > self.buf.len(), "short buffer");
                if filled >= total {
                    assert!(
                        self.buf.starts_with(b"HTTP/1.1 200 "),
                        "unexpected response: {}",
                        String::from_utf8_lossy(&self.buf[..filled.min(200)])
                    );
                    if self.gzip {
                        assert!(find(&self.buf[..filled], b"content-encoding: gzip\r\n").is_some());
                    } else {
                        assert!(self.buf[..filled].ends_with(b"hello world\n"));
                    }
                    return;
                }
            }
        }
    }

    /// Closes the client and stops the proxy.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.client.take());
        if let Some(p) = self.proxy.take() {
            p.shutdown(Some(Duration::from_millis(200)));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for E2e {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect to the proxy");
    s.set_nodelay(true).expect("TCP_NODELAY");
    s
}

/// A TLS 1.3 connection to the proxy trusting only `root`, pinned to
/// AES-128-GCM and X25519 (as the harness's TLS scenarios), handshake done.
fn connect_tls(
    addr: SocketAddr,
    root: CertificateDer<'static>,
) -> StreamOwned<ClientConnection, TcpStream> {
    let base = rustls::crypto::aws_lc_rs::default_provider();
    let provider = rustls::crypto::CryptoProvider {
        cipher_suites: vec![rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256],
        kx_groups: vec![rustls::crypto::aws_lc_rs::kx_group::X25519],
        ..base
    };
    let mut roots = RootCertStore::empty();
    roots.add(root).expect("bench certificate is a valid root");
    let config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3 with AES-128-GCM")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(HOST).expect("valid server name");
    let conn = ClientConnection::new(Arc::new(config), name).expect("TLS client");
    let mut s = StreamOwned::new(conn, connect(addr));
    while s.conn.is_handshaking() {
        s.conn
            .complete_io(&mut s.sock)
            .expect("TLS handshake with the proxy");
    }
    s
}

/// The full length of the response in `buf` (head + Content-Length body)
/// once the head is complete; a chunked one's once its last chunk is in.
fn response_len(buf: &[u8]) -> Option<usize> {
    let head_end = find(buf, b"\r\n\r\n")? + 4;
    let head = &buf[..head_end];
    let mut body = 0;
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.eq_ignore_ascii_case(b"transfer-encoding: chunked") {
            return buf[head_end..]
                .ends_with(b"\r\n0\r\n\r\n")
                .then_some(buf.len());
        }
        if line.len() > 15 && line[..15].eq_ignore_ascii_case(b"content-length:") {
            let v = std::str::from_utf8(&line[15..]).unwrap_or("").trim();
            body = v.parse().expect("numeric content-length");
        }
    }
    Some(head_end + body)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A backend on 127.0.0.1:0 answering every request with `response`; one
/// thread per connection, blocking I/O, buffers reused.
fn spawn_backend(response: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
    let addr = listener.local_addr().expect("backend address");
    std::thread::Builder::new()
        .name("bench-backend".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let _ = std::thread::Builder::new()
                    .name("bench-backend-conn".into())
                    .spawn(move || serve(conn, response));
            }
        })
        .expect("spawn backend");
    addr
}

fn serve(mut conn: TcpStream, response: &'static [u8]) {
    let _ = conn.set_nodelay(true);
    let mut buf = vec![0u8; 16 * 1024];
    let mut filled = 0;
    loop {
        // Requests are GETs without a body: a request ends at its blank line.
        while let Some(end) = find(&buf[..filled], b"\r\n\r\n") {
            if conn.write_all(response).is_err() {
                return;
            }
            buf.copy_within(end + 4..filled, 0);
            filled -= end + 4;
        }
        if filled == buf.len() {
            return; // a head larger than 16 KiB: not ours
        }
        match conn.read(&mut buf[filled..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_go_through_the_proxy() {
        let mut e = E2e::start();
        for _ in 0..20 {
            e.request();
        }
        e.stop();
    }

    #[test]
    fn requests_go_through_the_middleware_chain() {
        let mut e = E2e::start_with(Route::Chain);
        for _ in 0..20 {
            e.request();
        }
        e.stop();
    }

    #[test]
    fn requests_go_through_the_proxy_with_the_api_on_beside_it() {
        let mut e = E2e::start_with(Route::Api);
        for _ in 0..20 {
            e.request();
        }
        let api = e
            .proxy
            .as_ref()
            .unwrap()
            .addr("traefik")
            .expect("the API's entrypoint");
        let mut c = connect(api);
        c.write_all(b"GET /api/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        e.stop();
    }

    #[test]
    fn requests_go_through_the_weighted_service() {
        let mut e = E2e::start_with(Route::Weighted);
        for _ in 0..20 {
            e.request();
        }
        e.stop();
    }

    #[test]
    fn requests_go_through_compress() {
        for route in [Route::CompressSmall, Route::CompressLarge] {
            let mut e = E2e::start_with(route);
            for _ in 0..20 {
                e.request();
            }
            e.stop();
        }
    }

    #[test]
    fn browser_metrics_access_log_and_h2c_requests_go_through_the_proxy() {
        for route in [Route::Browser, Route::Metrics, Route::AccessLog, Route::H2c] {
            let mut e = E2e::start_with(route);
            for _ in 0..20 {
                e.request();
            }
            if route == Route::AccessLog {
                // The background writer flushes as lines come: wait for them.
                let log = e.dir.join("access.log");
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                loop {
                    let lines = std::fs::read_to_string(&log)
                        .map(|s| s.matches("\"GET /api/items?id=7 HTTP/1.1\" 200").count())
                        .unwrap_or(0);
                    if lines == 20 {
                        break;
                    }
                    assert!(
                        std::time::Instant::now() < deadline,
                        "{lines} access log lines of 20"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            if route == Route::Metrics {
                let m = e
                    .proxy
                    .as_ref()
                    .unwrap()
                    .addr("traefik")
                    .expect("metrics entrypoint");
                let mut c = connect(m);
                c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .unwrap();
                let mut answer = String::new();
                c.read_to_string(&mut answer).unwrap();
                assert!(
                    answer.contains("proxy_entrypoint_requests_total{"),
                    "{answer}"
                );
            }
            e.stop();
        }
    }

    #[test]
    fn tls_requests_go_through_the_proxy() {
        let mut e = E2e::start_tls();
        for _ in 0..20 {
            e.request();
        }
        e.stop();
    }

    #[test]
    fn response_length_counts_head_and_body() {
        assert_eq!(response_len(RESPONSE), Some(RESPONSE.len()));
        assert_eq!(response_len(b"HTTP/1.1 200 OK\r\n"), None);
    }
}
