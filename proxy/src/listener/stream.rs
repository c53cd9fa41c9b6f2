//! The byte streams a client connection is served over: [`ClientStream`]
//! (plain TCP, or TLS), the [`Handshake`] an entrypoint turns an accepted
//! socket into one with, and [`ActivityStream`], which lets the watchdog
//! see bytes arrive (and hands the first read to `request_line.rs`) and
//! keeps the stream open when hyper is stopped to park the connection.
//!
//! Runs per read and write: enums matched, no `dyn`, no allocation, no
//! lock. The TLS handshake itself is in `tls.rs`.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::request_line::FirstLine;
use super::tls;
use crate::snapshot::SharedSnapshot;

/// How an entrypoint turns an accepted TCP connection into the stream it
/// serves.
#[derive(Clone, Debug)]
pub enum Handshake {
    /// Plain HTTP or TLS, told apart by the client's first byte, as every
    /// Traefik entrypoint serves both: TLS connections reach the TLS
    /// routers, plain ones the others.
    Detect,
}

/// A client's certificate chain as it sent it in the TLS handshake, leaf
/// first.
pub type ClientCerts = Box<[CertificateDer<'static>]>;

/// An accepted connection, ready to serve.
#[derive(Debug)]
pub struct Accepted {
    /// Its stream.
    pub stream: ClientStream,
    /// For TLS, the name of the TLS options its handshake used.
    pub tls_options: Option<Arc<str>>,
    /// For mutual TLS, the certificates the client sent.
    pub client_certs: Option<ClientCerts>,
}

impl Handshake {
    /// Whether connections of this entrypoint are (or may be) TLS.
    pub fn serves_tls(&self) -> bool {
        match self {
            Handshake::Detect => true,
        }
    }

    /// The stream to serve `tcp` over, once any handshake is done, for
    /// entrypoint `ep` of `snapshot`. Runs on the connection's own task, so
    /// a slow handshake never holds up the accept loop.
    pub async fn complete(
        &self,
        tcp: TcpStream,
        snapshot: &SharedSnapshot,
        ep: usize,
    ) -> io::Result<Accepted> {
        match self {
            Handshake::Detect => {
                if !tls::starts_tls(&tcp).await? {
                    return Ok(Accepted {
                        stream: ClientStream::Plain(tcp),
                        tls_options: None,
                        client_certs: None,
                    });
                }
                // Boxed: the handshake's states (2.8 KiB) would otherwise
                // be part of every connection's task, plain ones too.
                let done = Box::pin(tls::accept(tcp, snapshot, ep)).await?;
                Ok(Accepted {
                    stream: ClientStream::Tls(Box::new(done.stream)),
                    tls_options: Some(done.options),
                    client_certs: done.client_certs,
                })
            }
        }
    }
}

/// A client connection's stream.
#[derive(Debug)]
pub enum ClientStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: the TLS state is large and the plain variant
    /// should not pay for it).
    Tls(Box<TlsStream<TcpStream>>),
}

impl ClientStream {
    /// Whether the connection is TLS (`X-Forwarded-Proto: https`, the
    /// access log's `RequestScheme`).
    #[inline]
    pub fn is_tls(&self) -> bool {
        match self {
            ClientStream::Plain(_) => false,
            ClientStream::Tls(_) => true,
        }
    }

    /// The TCP connection under it: a parked connection waits for it to
    /// become readable.
    #[inline]
    pub fn tcp(&self) -> &TcpStream {
        match self {
            ClientStream::Plain(s) => s,
            ClientStream::Tls(s) => s.get_ref().0,
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
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
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
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
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
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    #[inline]
    fn is_write_vectored(&self) -> bool {
        match self {
            ClientStream::Plain(s) => s.is_write_vectored(),
            ClientStream::Tls(s) => s.is_write_vectored(),
        }
    }

    #[inline]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    #[inline]
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// What a connection's stream shares with its task: the reads that
/// brought bytes (the watchdog's activity), whether the last write or
/// flush waited for the socket, and whether a shutdown of the stream
/// should leave it open. Plain loads and stores: the stream is only
/// touched by its worker, the atomics only make it `Send`.
#[derive(Debug, Default)]
pub struct Activity {
    reads: AtomicU64,
    write_blocked: AtomicBool,
    keep_open: AtomicBool,
}

impl Activity {
    /// Reads that brought bytes so far.
    #[inline]
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Whether the last write or flush waited for the socket: hyper still
    /// holds bytes to send (with a `close` response, its end follows).
    #[inline]
    pub fn write_blocked(&self) -> bool {
        self.write_blocked.load(Ordering::Relaxed)
    }

    #[inline]
    fn note_write(&self, pending: bool) {
        self.write_blocked.store(pending, Ordering::Relaxed);
    }

    /// While set, shutting the stream down only flushes it: hyper is being
    /// stopped to park the connection, not to close it (`conn.rs`).
    #[inline]
    pub fn keep_open(&self, on: bool) {
        self.keep_open.store(on, Ordering::Relaxed);
    }
}

/// A stream that notes whether bytes arrived since the watchdog last
/// looked, so timeouts need no timer per request (hyper's header timer
/// costs a boxed sleep per request).
#[derive(Debug)]
pub struct ActivityStream<S> {
    inner: S,
    activity: Arc<Activity>,
    /// Until decided, the first request line, checked for an absolute-form
    /// target without a host (`request_line.rs`).
    first: FirstLine,
}

impl<S> ActivityStream<S> {
    /// `inner`, counting its reads into `activity`.
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self {
            inner,
            activity,
            first: FirstLine::Unseen,
        }
    }

    /// The wrapped stream.
    #[inline]
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

/// Counts one read that brought bytes: a plain load and store, since only
/// the connection's worker writes it (the watchdog only reads).
#[inline]
pub(super) fn note_read(reads: &AtomicU64) {
    let n = reads.load(Ordering::Relaxed);
    reads.store(n.wrapping_add(1), Ordering::Relaxed);
}

impl<S: AsyncRead + Unpin> AsyncRead for ActivityStream<S> {
    #[inline]
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.first.is_done() {
            let this = &mut *self;
            return this
                .first
                .poll_read(Pin::new(&mut this.inner), &this.activity.reads, cx, buf);
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() != before {
            note_read(&self.activity.reads);
        }
        r
    }
}

/// The `AsyncWrite` methods of a stream wrapper that only reads
/// differently: each passes to the wrapped stream in field `$inner`.
macro_rules! write_through {
    ($inner:ident) => {
        #[inline]
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::pin::Pin::new(&mut self.$inner).poll_write(cx, buf)
        }

        #[inline]
        fn poll_write_vectored(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            bufs: &[std::io::IoSlice<'_>],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::pin::Pin::new(&mut self.$inner).poll_write_vectored(cx, bufs)
        }

        #[inline]
        fn is_write_vectored(&self) -> bool {
            self.$inner.is_write_vectored()
        }

        #[inline]
        fn poll_flush(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.$inner).poll_flush(cx)
        }

        #[inline]
        fn poll_shutdown(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.$inner).poll_shutdown(cx)
        }
    };
}
pub(super) use write_through;

impl<S: AsyncWrite + Unpin> AsyncWrite for ActivityStream<S> {
    #[inline]
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.activity.note_write(r.is_pending());
        r
    }

    #[inline]
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.activity.note_write(r.is_pending());
        r
    }

    #[inline]
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    #[inline]
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.activity.note_write(r.is_pending());
        r
    }

    #[inline]
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.activity.keep_open.load(Ordering::Relaxed) {
            // Parking: what hyper wrote is flushed, the stream stays open
            // (no FIN, no TLS close_notify).
            return Pin::new(&mut self.inner).poll_flush(cx);
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
