//! The byte streams a client connection is served over: [`ClientStream`]
//! (plain TCP, or TLS once an entrypoint terminates it), the
//! [`Handshake`] an entrypoint turns an accepted socket into one with, and
//! [`ActivityStream`], which lets the watchdog see bytes arrive.
//!
//! Runs per read and write: enums matched, no `dyn`, no allocation, no
//! lock.
//!
//! TLS (the TLS issue) plugs in here: a `Handshake` variant holding the
//! acceptor (or one that sniffs plain-or-TLS per connection), and a
//! `ClientStream` variant for the TLS stream; the rest of the listener
//! and the request path only ask [`ClientStream::is_tls`].

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How an entrypoint turns an accepted TCP connection into the stream it
/// serves.
#[derive(Clone, Debug)]
pub enum Handshake {
    /// Plain HTTP: the TCP stream as is.
    Plain,
}

impl Handshake {
    /// Whether connections of this entrypoint are (or may be) TLS.
    pub fn serves_tls(&self) -> bool {
        match self {
            Handshake::Plain => false,
        }
    }

    /// The stream to serve `tcp` over, once any handshake is done. Runs on
    /// the connection's own task, so a slow handshake never holds up the
    /// accept loop.
    pub async fn complete(&self, tcp: TcpStream) -> io::Result<ClientStream> {
        match self {
            Handshake::Plain => Ok(ClientStream::Plain(tcp)),
        }
    }
}

/// A client connection's stream.
#[derive(Debug)]
pub enum ClientStream {
    /// Plain TCP.
    Plain(TcpStream),
}

impl ClientStream {
    /// Whether the connection is TLS (`X-Forwarded-Proto: https`, the
    /// access log's `RequestScheme`).
    #[inline]
    pub fn is_tls(&self) -> bool {
        match self {
            ClientStream::Plain(_) => false,
        }
    }
}

impl AsyncRead for ClientStream {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    #[inline]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    #[inline]
    fn is_write_vectored(&self) -> bool {
        match self {
            ClientStream::Plain(s) => s.is_write_vectored(),
        }
    }

    #[inline]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
        }
    }

    #[inline]
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A stream that notes whether bytes arrived since the watchdog last
/// looked, so timeouts need no timer per request (hyper's header timer
/// costs a boxed sleep per request). A plain load and store: the stream is
/// only touched by its worker, the atomic only makes it `Send`.
#[derive(Debug)]
pub struct ActivityStream<S> {
    inner: S,
    reads: Arc<AtomicU64>,
}

impl<S> ActivityStream<S> {
    /// `inner`, counting its reads into `reads`.
    pub fn new(inner: S, reads: Arc<AtomicU64>) -> Self {
        Self { inner, reads }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ActivityStream<S> {
    #[inline]
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() != before {
            let n = self.reads.load(Ordering::Relaxed);
            self.reads.store(n.wrapping_add(1), Ordering::Relaxed);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ActivityStream<S> {
    #[inline]
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    #[inline]
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    #[inline]
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    #[inline]
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    #[inline]
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
