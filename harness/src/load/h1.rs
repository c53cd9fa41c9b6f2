//! HTTP/1.1 on raw sockets, the way wrk speaks it: a request serialised
//! once into bytes and written with one `write`, the answer read into a
//! reused buffer and parsed in place (httparse for the head, then
//! Content-Length, chunked or read-to-close framing). Plain TCP or TLS
//! ([`Conn`] is an enum: static dispatch, no boxing of the I/O).
//!
//! Runs per request: no allocation per request beyond a backend name that
//! is not `main` (an error being reported), no locks.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::Negotiated;
use super::tls::TlsClient;
use crate::scenario::{RequestSpec, Shape};

/// One client connection, plain or TLS.
#[derive(Debug)]
pub(crate) enum Conn {
    /// Cleartext TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: the session state is large).
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    /// Connects (and handshakes, checking the negotiated parameters against
    /// the pin, when `tls` is given).
    pub(crate) async fn connect(addr: SocketAddr, tls: Option<&TlsClient>) -> Result<Self, String> {
        let s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = s.set_nodelay(true);
        match tls {
            None => Ok(Self::Plain(s)),
            Some(t) => Ok(Self::Tls(Box::new(t.handshake(s).await?))),
        }
    }

    /// The TLS parameters negotiated (None for cleartext).
    pub(crate) fn negotiated(&self) -> Option<Negotiated> {
        match self {
            Self::Plain(_) => None,
            Self::Tls(s) => Some(super::tls::negotiated(s.get_ref().1)),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

// === requests ===

/// The headers a current desktop browser sends on a navigation (the
/// `client-shapes` scenario), after `Host`.
const BROWSER_HEADERS: &str = "Connection: keep-alive\r\n\
sec-ch-ua: \"Chromium\";v=\"130\", \"Google Chrome\";v=\"130\", \"Not?A_Brand\";v=\"99\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
Upgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-User: ?1\r\n\
Sec-Fetch-Dest: document\r\n\
Referer: http://bench.test/index.html\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9,de;q=0.8,fr;q=0.7\r\n\
Cache-Control: max-age=0\r\n\
Cookie: _ga=GA1.1.1428503512.1733011200; _ga_X9QL2W3Z7K=GS1.1.1733011200.3.1.1733014800.0.0.0; \
session=eyJ1aWQiOjQyLCJyb2xlcyI6WyJ1c2VyIl0sImV4cCI6MTczMzA5NzYwMH0.Zm9vYmFyYmF6cXV4; \
csrftoken=Q2l0aGVyIGlzIGEgcmFuZG9tIHRva2VuIG9mIDY0IGJ5dGVz; theme=dark; lang=en-US; \
consent=analytics%3Dyes%26ads%3Dno; cart=3f9a2c7e-5b1d-4e8a-9c6f-0d2b7a1e4c58\r\n";

/// The bytes of one request (head and body), written once per request.
pub(crate) fn request_bytes(spec: &RequestSpec, addr: SocketAddr) -> Vec<u8> {
    let host = spec.host.clone().unwrap_or_else(|| addr.to_string());
    let method = if spec.upload.is_some() { "POST" } else { "GET" };
    let mut head = format!("{method} {} HTTP/1.1\r\nHost: {host}\r\n", spec.path);
    match spec.shape {
        Shape::Minimal => {}
        Shape::Browser => head.push_str(BROWSER_HEADERS),
        Shape::Auth => {
            let _ = write!(
                head,
                "Authorization: {}\r\n",
                crate::scenario::CHAIN_AUTHORIZATION
            );
        }
        Shape::Gzip => head.push_str("Accept-Encoding: gzip\r\n"),
    }
    if spec.close {
        head.push_str("Connection: close\r\n");
    }
    if let Some(n) = spec.upload {
        head.push_str(&format!(
            "Content-Type: application/octet-stream\r\nContent-Length: {n}\r\n"
        ));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if let Some(n) = spec.upload {
        out.resize(out.len() + n, b'x');
    }
    out
}

// === answers ===

/// Who answered, from `x-backend`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Backend {
    /// `x-backend: main`.
    Main,
    /// Another name (routing went elsewhere).
    Other(String),
    /// No `x-backend` header (not from our backend at all).
    Missing,
}

impl Backend {
    /// The name as bytes, for [`super::check`].
    pub(crate) fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Main => Some(b"main"),
            Self::Other(s) => Some(s.as_bytes()),
            Self::Missing => None,
        }
    }
}

/// One parsed answer (its body counted and dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// Status code.
    pub(crate) status: u16,
    /// `x-backend`.
    pub(crate) backend: Backend,
    /// Body bytes received.
    pub(crate) body_len: usize,
    /// The server closes the connection after this answer.
    pub(crate) close: bool,
}

impl Answer {
    /// Checks it against what a correct answer to `spec` is.
    pub(crate) fn check(&self, spec: &RequestSpec) -> Result<(), String> {
        super::check(self.status, self.backend.as_bytes(), self.body_len, spec)
    }
}

/// How the body of an answer is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(usize),
    Chunked,
    ToClose,
}

/// The read buffer of one connection, reused for every answer.
#[derive(Debug)]
pub(crate) struct Reader {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Bytes read over the reader's life (did an answer begin?).
    total: u64,
}

/// Read buffer size: larger than any answer head we expect.
const BUF: usize = 64 * 1024;
/// Headers parsed per answer.
const MAX_HEADERS: usize = 64;

impl Reader {
    /// A reader with the default buffer.
    pub(crate) fn new() -> Self {
        Self::with_capacity(BUF)
    }

    /// A reader with a `cap`-byte buffer (a small one for idle connections).
    pub(crate) fn with_capacity(cap: usize) -> Self {
        Self {
            buf: vec![0; cap].into_boxed_slice(),
            start: 0,
            end: 0,
            total: 0,
        }
    }

    /// Drops buffered bytes (a new connection).
    pub(crate) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    fn pending(&self) -> usize {
        self.end - self.start
    }

    /// Reads more bytes after what is buffered; Ok(0) at end of stream.
    async fn fill<S: AsyncRead + Unpin>(&mut self, io: &mut S) -> Result<usize, String> {
        if self.start == self.end {
            self.clear();
        } else if self.end == self.buf.len() {
            if self.start == 0 {
                return Err(format!("answer head larger than {} bytes", self.buf.len()));
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = io
            .read(&mut self.buf[self.end..])
            .await
            .map_err(|e| format!("read: {e}"))?;
        self.end += n;
        self.total += n as u64;
        Ok(n)
    }

    /// Makes at least `k` bytes available, failing with `what` at EOF.
    async fn need<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        k: usize,
        what: &str,
    ) -> Result<(), String> {
        while self.pending() < k {
            if self.fill(io).await? == 0 {
                return Err(format!("connection closed {what}"));
            }
        }
        Ok(())
    }

    /// Parses the next answer head: (status, backend, framing, close).
    async fn head<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
    ) -> Result<(u16, Backend, Framing, bool), String> {
        let mut read_any = self.pending() > 0;
        loop {
            if self.pending() > 0 {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut r = httparse::Response::new(&mut headers);
                match r.parse(&self.buf[self.start..self.end]) {
                    Ok(httparse::Status::Complete(n)) => {
                        let status = r.code.unwrap_or(0);
                        let mut backend = Backend::Missing;
                        let (mut length, mut chunked) = (None, false);
                        let mut close = r.version == Some(0);
                        for h in r.headers.iter() {
                            let name = h.name;
                            if name.eq_ignore_ascii_case("content-length") {
                                length = std::str::from_utf8(h.value)
                                    .ok()
                                    .and_then(|v| v.trim().parse::<usize>().ok());
                                if length.is_none() {
                                    return Err("bad Content-Length".into());
                                }
                            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                                chunked = contains_token(h.value, b"chunked");
                            } else if name.eq_ignore_ascii_case("connection") {
                                if contains_token(h.value, b"close") {
                                    close = true;
                                } else if contains_token(h.value, b"keep-alive") {
                                    close = false;
                                }
                            } else if name.eq_ignore_ascii_case("x-backend") {
                                backend = if h.value == b"main" {
                                    Backend::Main
                                } else {
                                    Backend::Other(String::from_utf8_lossy(h.value).into_owned())
                                };
                            }
                        }
                        let framing =
                            if (100..200).contains(&status) || status == 204 || status == 304 {
                                Framing::Empty
                            } else if chunked {
                                Framing::Chunked
                            } else if let Some(n) = length {
                                Framing::Length(n)
                            } else {
                                Framing::ToClose
                            };
                        self.start += n;
                        return Ok((status, backend, framing, close));
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(e) => return Err(format!("bad answer head: {e}")),
                }
            }
            if self.fill(io).await? == 0 {
                return Err(if read_any {
                    "connection closed in the middle of the answer head".into()
                } else {
                    "connection closed before the answer".into()
                });
            }
            read_any = true;
        }
    }

    /// Consumes exactly `n` body bytes.
    async fn skip<S: AsyncRead + Unpin>(&mut self, io: &mut S, n: usize) -> Result<(), String> {
        let mut left = n;
        loop {
            let take = self.pending().min(left);
            self.start += take;
            left -= take;
            if left == 0 {
                return Ok(());
            }
            if self.fill(io).await? == 0 {
                return Err(format!(
                    "connection closed after {} of {n} body bytes",
                    n - left
                ));
            }
        }
    }

    /// Consumes a chunked body and its trailers; the data length.
    async fn skip_chunked<S: AsyncRead + Unpin>(&mut self, io: &mut S) -> Result<usize, String> {
        let mut total = 0usize;
        loop {
            let size = loop {
                match httparse::parse_chunk_size(&self.buf[self.start..self.end]) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.start += used;
                        break usize::try_from(size).map_err(|_| "chunk too large")?;
                    }
                    Ok(httparse::Status::Partial) => {
                        if self.fill(io).await? == 0 {
                            return Err("connection closed in a chunk header".into());
                        }
                    }
                    Err(_) => return Err("bad chunk size line".into()),
                }
            };
            if size == 0 {
                // Trailer lines until an empty one.
                loop {
                    self.need(io, 2, "in the trailers").await?;
                    let line = &self.buf[self.start..self.end];
                    if let Some(i) = line.windows(2).position(|w| w == b"\r\n") {
                        self.start += i + 2;
                        if i == 0 {
                            return Ok(total);
                        }
                    } else if self.fill(io).await? == 0 {
                        return Err("connection closed in the trailers".into());
                    }
                }
            }
            self.skip(io, size).await?;
            total += size;
            self.need(io, 2, "after a chunk").await?;
            if &self.buf[self.start..self.start + 2] != b"\r\n" {
                return Err("chunk not followed by CRLF".into());
            }
            self.start += 2;
        }
    }

    /// Consumes everything until the server closes; the length.
    async fn skip_to_close<S: AsyncRead + Unpin>(&mut self, io: &mut S) -> Result<usize, String> {
        let mut total = self.pending();
        self.clear();
        loop {
            let n = self.fill(io).await?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
            self.clear();
        }
    }

    /// Reads one whole answer (skipping interim 1xx answers).
    pub(crate) async fn answer<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
    ) -> Result<Answer, String> {
        loop {
            let (status, backend, framing, close) = self.head(io).await?;
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            let body_len = match framing {
                Framing::Empty => 0,
                Framing::Length(n) => {
                    self.skip(io, n).await?;
                    n
                }
                Framing::Chunked => self.skip_chunked(io).await?,
                Framing::ToClose => self.skip_to_close(io).await?,
            };
            return Ok(Answer {
                status,
                backend,
                body_len,
                close: close || framing == Framing::ToClose,
            });
        }
    }
}

/// Whether a comma-separated header value holds `token` (ASCII case-insensitive).
fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// A failed exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// What went wrong.
    pub(crate) msg: String,
    /// Not a byte of the answer arrived: on a reused keep-alive connection
    /// the server may have closed it as the request left, and an HTTP
    /// client retries an idempotent request on a new connection.
    pub(crate) unanswered: bool,
}

impl From<Failure> for String {
    fn from(f: Failure) -> Self {
        f.msg
    }
}

/// Writes `req` and reads the answer.
pub(crate) async fn exchange(
    conn: &mut Conn,
    req: &[u8],
    rd: &mut Reader,
) -> Result<Answer, Failure> {
    let before = rd.total;
    let fail = |msg: String, rd: &Reader| Failure {
        msg,
        unanswered: rd.total == before,
    };
    if let Err(e) = conn.write_all(req).await {
        return Err(fail(format!("write: {e}"), rd));
    }
    if matches!(conn, Conn::Tls(_))
        && let Err(e) = conn.flush().await
    {
        return Err(fail(format!("write: {e}"), rd));
    }
    match rd.answer(conn).await {
        Ok(a) => Ok(a),
        Err(msg) => Err(fail(msg, rd)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` one read at a time.
    struct Script(std::collections::VecDeque<Vec<u8>>);

    impl AsyncRead for Script {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            if let Some(mut c) = self.0.pop_front() {
                let n = c.len().min(buf.remaining());
                buf.put_slice(&c[..n]);
                if n < c.len() {
                    self.0.push_front(c.split_off(n));
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    fn script(parts: &[&[u8]]) -> Script {
        Script(parts.iter().map(|p| p.to_vec()).collect())
    }

    fn read_all(parts: &[&[u8]], answers: usize) -> Vec<Result<Answer, String>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut io = script(parts);
            let mut rd = Reader::with_capacity(256);
            let mut out = Vec::new();
            for _ in 0..answers {
                out.push(rd.answer(&mut io).await);
            }
            out
        })
    }

    #[test]
    fn content_length_answers_split_anywhere_and_back_to_back() {
        let one = b"HTTP/1.1 200 OK\r\nx-backend: main\r\ncontent-length: 12\r\n\r\nhello world\n";
        let two: Vec<u8> = [&one[..], &one[..]].concat();
        for cut in 1..two.len() {
            let got = read_all(&[&two[..cut], &two[cut..]], 2);
            for a in got {
                let a = a.unwrap();
                assert_eq!(
                    (a.status, &a.backend, a.body_len, a.close),
                    (200, &Backend::Main, 12, false)
                );
            }
        }
    }

    #[test]
    fn chunked_with_trailers_interim_and_close() {
        let msg = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Backend: fallback\r\nConnection: close\r\n\r\n5\r\nhello\r\n7;ext=1\r\n world\n\r\n0\r\nx-trailer: 1\r\n\r\n";
        for cut in 1..msg.len() {
            let a = read_all(&[&msg[..cut], &msg[cut..]], 1).remove(0).unwrap();
            assert_eq!(a.body_len, 12, "cut {cut}");
            assert_eq!(a.backend, Backend::Other("fallback".into()));
            assert!(a.close);
        }
    }

    #[test]
    fn close_delimited_and_truncated_answers() {
        let a = read_all(&[b"HTTP/1.0 200 OK\r\n\r\nabc", b"def"], 1)
            .remove(0)
            .unwrap();
        assert_eq!(
            (a.body_len, a.close, a.backend),
            (6, true, Backend::Missing)
        );
        let e = read_all(&[b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"], 1).remove(0);
        assert!(e.unwrap_err().contains("after 3 of 10"));
        let e = read_all(&[], 1).remove(0);
        assert!(e.unwrap_err().contains("before the answer"));
        let e = read_all(&[b"HTTP/1.1 2"], 1).remove(0);
        assert!(e.unwrap_err().contains("middle of the answer head"));
        let e = read_all(&[b"garbage\r\n\r\n"], 1).remove(0);
        assert!(e.unwrap_err().contains("bad answer head"));
    }

    #[test]
    fn requests_are_serialised_once_with_their_shape() {
        let addr: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        let get = String::from_utf8(request_bytes(&RequestSpec::get("/", None, 12), addr)).unwrap();
        assert_eq!(get, "GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n");
        let mut spec = RequestSpec::get("/r1/hit", Some("r1.bench.test".into()), 12);
        spec.shape = Shape::Browser;
        spec.close = true;
        let b = String::from_utf8(request_bytes(&spec, addr)).unwrap();
        assert!(b.starts_with("GET /r1/hit HTTP/1.1\r\nHost: r1.bench.test\r\n"));
        assert!(b.contains("Cookie: _ga=") && b.contains("Accept-Language: "));
        assert!(b.ends_with("Connection: close\r\n\r\n"));
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        assert!(req.parse(b.as_bytes()).unwrap().is_complete());
        assert!(b.len() > 1000, "a browser-sized head: {} bytes", b.len());
        let mut post = RequestSpec::get("/", None, 5);
        post.upload = Some(100);
        let p = request_bytes(&post, addr);
        assert!(p.starts_with(b"POST / HTTP/1.1\r\n"));
        assert!(p.ends_with(&[b'x'; 100]));
    }
}
