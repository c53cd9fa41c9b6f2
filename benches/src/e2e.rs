//! One whole proxied request, driven in process: a blocking HTTP/1.1
//! client on the calling thread -> the real proxy (`proxy::app::start`,
//! one worker) on loopback -> a blocking backend thread -> back.
//!
//! Why loopback sockets and not in-memory streams: the proxy's public API
//! starts real listeners and its connection handling is private to the
//! library; driving it over in-memory streams would need a new public
//! entry point in `proxy/src`. The sockets cost the same every run, and the
//! instruction benches subtract a short run from a long one so the start
//! and stop of the proxy cancel out.
//!
//! The client and backend reuse their buffers: after the first request
//! they allocate nothing, so an allocation counter sees only the proxy.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proxy::app::Running;
use proxy::config::{Format, parse_static};

/// The request the client sends, keep-alive.
pub const REQUEST: &[u8] =
    b"GET /api/items?id=7 HTTP/1.1\r\nHost: bench.example.com\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\n\r\n";

/// The same request with the credentials [`Route::Chain`]'s `basicAuth`
/// accepts (`bench:secret`).
pub const REQUEST_AUTH: &[u8] =
    b"GET /api/items?id=7 HTTP/1.1\r\nHost: bench.example.com\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\nAuthorization: Basic YmVuY2g6c2VjcmV0\r\n\r\n";

/// What the router in front of the backend does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// No middleware.
    Plain,
    /// Three common middlewares: `headers` (a request and a response
    /// header), `stripPrefix` (`/api`) and `basicAuth` with a `{SHA}`
    /// hash (a bcrypt one would swamp the count).
    Chain,
}

/// The middlewares of [`Route::Chain`].
const CHAIN: &str = "      middlewares: [hdr, strip, auth]\n  middlewares:\n    hdr:\n      headers:\n        customRequestHeaders:\n          X-Bench: \"1\"\n        customResponseHeaders:\n          X-Served-By: proxy\n    strip:\n      stripPrefix:\n        prefixes: [/api]\n    auth:\n      basicAuth:\n        users: [\"bench:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\"]\n";

/// The backend's answer: a 12-byte body.
const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nhello world\n";

/// A proxy between a blocking client and a blocking backend.
#[derive(Debug)]
pub struct E2e {
    proxy: Option<Running>,
    client: Option<TcpStream>,
    buf: Vec<u8>,
    dir: PathBuf,
    request: &'static [u8],
}

impl E2e {
    /// Starts the backend and the proxy (one worker, one router without
    /// middleware) and connects the client.
    pub fn start() -> E2e {
        E2e::start_with(Route::Plain)
    }

    /// Like [`E2e::start`], the router doing what `route` says.
    pub fn start_with(route: Route) -> E2e {
        let backend = spawn_backend();
        // One directory per fixture: tests start several at once.
        static STARTED: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "proxy-bench-e2e-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create bench temp dir");
        let (middlewares, request) = match route {
            Route::Plain => ("", REQUEST),
            Route::Chain => (CHAIN, REQUEST_AUTH),
        };
        let dynamic = format!(
            "http:\n  services:\n    app:\n      loadBalancer:\n        servers:\n          - url: \"http://{backend}\"\n  routers:\n    app:\n      rule: \"Host(`bench.example.com`) && PathPrefix(`/api`)\"\n      service: app\n{middlewares}"
        );
        std::fs::write(dir.join("dynamic.yml"), dynamic).expect("write dynamic config");
        let static_text = format!(
            "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\nproviders:\n  file:\n    filename: \"{}\"\n    watch: false\n",
            dir.join("dynamic.yml").display()
        );
        let static_path = dir.join("traefik.yml");
        let (static_cfg, _warnings) =
            parse_static(&static_text, Format::Yaml, Path::new(&static_path))
                .expect("bench static config is valid");
        let running = proxy::app::start(static_cfg, None, 1).expect("proxy starts");
        let addr = running.addr("web").expect("entrypoint web is bound");
        let client = connect(addr);
        E2e {
            proxy: Some(running),
            client: Some(client),
            buf: vec![0; 16 * 1024],
            dir,
            request,
        }
    }

    /// Sends one request and reads the whole response; panics unless it is
    /// a 200 with the backend's body.
    pub fn request(&mut self) {
        let client = self.client.as_mut().expect("client connected");
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
                    assert!(self.buf[..filled].ends_with(b"hello world\n"));
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

/// The full length of the response in `buf` (head + Content-Length body)
/// once the head is complete.
fn response_len(buf: &[u8]) -> Option<usize> {
    let head_end = find(buf, b"\r\n\r\n")? + 4;
    let head = &buf[..head_end];
    let mut body = 0;
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
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

/// A backend on 127.0.0.1:0 answering every request with [`RESPONSE`]; one
/// thread per connection, blocking I/O, buffers reused.
fn spawn_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
    let addr = listener.local_addr().expect("backend address");
    std::thread::Builder::new()
        .name("bench-backend".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let _ = std::thread::Builder::new()
                    .name("bench-backend-conn".into())
                    .spawn(move || serve(conn));
            }
        })
        .expect("spawn backend");
    addr
}

fn serve(mut conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    let mut buf = vec![0u8; 16 * 1024];
    let mut filled = 0;
    loop {
        // Requests are GETs without a body: a request ends at its blank line.
        while let Some(end) = find(&buf[..filled], b"\r\n\r\n") {
            if conn.write_all(RESPONSE).is_err() {
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
    fn response_length_counts_head_and_body() {
        assert_eq!(response_len(RESPONSE), Some(RESPONSE.len()));
        assert_eq!(response_len(b"HTTP/1.1 200 OK\r\n"), None);
    }
}
