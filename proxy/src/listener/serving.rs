//! Serving one connection with hyper: HTTP/1.1, or HTTP/2 when the client
//! opens with the HTTP/2 preface (prior knowledge, in plain or over TLS),
//! as hyper-util's `auto` builder tells them apart, but without its rewind
//! buffer.
//!
//! Why not `auto`: it hands hyper the first 24 bytes it read on their own,
//! so hyper's first read of an HTTP/1 request returns only those and its
//! 8 KiB read buffer doubles to 16 KiB to read the rest, for the life of
//! the connection (`dhat` with 1,000 idle keep-alive connections: 16 KiB
//! each, the largest part of what an idle connection holds). Here the
//! first read returns the prefix and whatever else already arrived.
//!
//! An idle HTTP/1.1 connection is parked ([`Serving::into_parked`]): hyper
//! is stopped without closing the stream and dropped with its buffers (two
//! of 8 KiB, its state), as nginx frees an idle keep-alive connection's
//! buffers; what it had read of a request head still arriving is kept and
//! returned first when it is served again.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::HttpService;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use super::stream::write_through;
use crate::rt::LocalExec;

/// What an HTTP/2 connection sends first (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The HTTP/1 and HTTP/2 server settings of one entrypoint.
#[derive(Debug)]
pub struct Builders {
    /// HTTP/1.1 settings.
    pub h1: http1::Builder,
    /// HTTP/2 settings.
    pub h2: http2::Builder<LocalExec>,
}

/// A stream whose first bytes were read to tell the protocol: they are
/// returned first, together with what the stream has ready after them.
#[derive(Debug)]
pub struct Prefixed<S> {
    /// Bytes hyper had read but not used when the connection was parked:
    /// returned before anything else.
    held: Bytes,
    prefix: [u8; H2_PREFACE.len()],
    at: u8,
    len: u8,
    inner: S,
}

/// Reads until the first bytes are the whole HTTP/2 preface or cannot
/// become it; `Ok(None)` when the client closed before sending a byte.
pub async fn detect<S: AsyncRead + Unpin>(mut inner: S) -> io::Result<Option<(Prefixed<S>, bool)>> {
    let mut prefix = [0u8; H2_PREFACE.len()];
    let mut len = 0;
    let h2 = loop {
        let n = inner.read(&mut prefix[len..]).await?;
        if n == 0 {
            if len == 0 {
                return Ok(None);
            }
            // Closed early: hyper reads the end and answers what it can.
            break false;
        }
        len += n;
        if prefix[..len] != H2_PREFACE[..len] {
            break false;
        }
        if len == H2_PREFACE.len() {
            break true;
        }
    };
    let stream = Prefixed {
        held: Bytes::new(),
        prefix,
        at: 0,
        len: len as u8,
        inner,
    };
    Ok(Some((stream, h2)))
}

impl<S> Prefixed<S> {
    /// The wrapped stream.
    #[inline]
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    #[inline]
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.held.is_empty() {
            let this = &mut *self;
            let n = this.held.len().min(buf.remaining());
            buf.put_slice(&this.held[..n]);
            this.held.advance(n);
            return Poll::Ready(Ok(()));
        }
        if self.at == self.len {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        let this = &mut *self;
        let rest = &this.prefix[usize::from(this.at)..usize::from(this.len)];
        let n = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..n]);
        this.at += n as u8;
        if this.at == this.len && buf.remaining() > 0 {
            // What else arrived goes in the same read; an error or the end
            // shows on the next one, since these bytes are returned now.
            let _ = Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    write_through!(inner);
}

type Io<S> = TokioIo<Prefixed<S>>;

/// A connection being served, in the protocol its first bytes chose, with
/// a service of its own for each (`A` for HTTP/1.1, `B` for HTTP/2).
// HTTP/1.1 inline on purpose: it is the common case, and boxing it would
// cost every connection an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Serving<S, A, B>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A: HttpService<Incoming>,
    B: HttpService<Incoming>,
{
    /// HTTP/1.1, upgrades (WebSocket) allowed.
    H1(http1::UpgradeableConnection<Io<S>, A>),
    /// HTTP/2 (boxed: its state is large, and an idle HTTP/1 connection
    /// should not hold room for it).
    H2(Box<http2::Connection<Io<S>, B, LocalExec>>),
}

impl<S, A, B, Body> Serving<S, A, B>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A: HttpService<Incoming, ResBody = Body>,
    B: HttpService<Incoming, ResBody = Body>,
    B::Future: 'static,
    Body: hyper::body::Body + 'static,
    Body::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// Serves `io` as HTTP/1.1.
    pub fn h1(builders: &Builders, io: Prefixed<S>, service: A) -> Self {
        Serving::H1(
            builders
                .h1
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades(),
        )
    }

    /// Serves `io` as HTTP/2.
    pub fn h2(builders: &Builders, io: Prefixed<S>, service: B) -> Self {
        Serving::H2(Box::new(
            builders.h2.serve_connection(TokioIo::new(io), service),
        ))
    }

    /// Stops taking new requests: the ones in flight finish, then the
    /// connection closes (HTTP/2 with a GOAWAY).
    pub fn graceful_shutdown(self: Pin<&mut Self>) {
        match self.get_mut() {
            Serving::H1(c) => Pin::new(c).graceful_shutdown(),
            Serving::H2(c) => Pin::new(c.as_mut()).graceful_shutdown(),
        }
    }

    /// Whether the connection can be parked (HTTP/1.1).
    pub fn parkable(&self) -> bool {
        matches!(self, Serving::H1(_))
    }

    /// An HTTP/1.1 connection that completed after [`Self::graceful_shutdown`]
    /// while idle, its stream left open (`Activity::keep_open`): the stream,
    /// holding what hyper had read and not used, and the service, to serve
    /// it again with [`Self::h1`]. hyper's buffers and state are freed.
    /// `None` for HTTP/2 and for an upgraded connection.
    pub fn into_parked(self) -> Option<(Prefixed<S>, A)> {
        let Serving::H1(c) = self else {
            return None;
        };
        let parts = c.into_parts()?;
        let mut io = parts.io.into_inner();
        if !parts.read_buf.is_empty() {
            // A copy: the slice would keep hyper's whole read buffer.
            let mut held = Vec::with_capacity(io.held.len() + parts.read_buf.len());
            held.extend_from_slice(&parts.read_buf);
            held.extend_from_slice(&io.held);
            io.held = Bytes::from(held);
        }
        Some((io, parts.service))
    }
}

impl<S, A, B, Body> Future for Serving<S, A, B>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A: HttpService<Incoming, ResBody = Body>,
    B: HttpService<Incoming, ResBody = Body>,
    B::Future: 'static,
    Body: hyper::body::Body + 'static,
    Body::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Output = Result<(), hyper::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Serving::H1(c) => Pin::new(c).poll(cx),
            Serving::H2(c) => Pin::new(c.as_mut()).poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn detected(sent: &[&[u8]]) -> (Vec<u8>, bool, usize) {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        for part in sent {
            client.write_all(part).await.unwrap();
        }
        drop(client);
        let (mut stream, h2) = detect(server).await.unwrap().unwrap();
        let mut first = vec![0u8; 8192];
        let n = stream.read(&mut first).await.unwrap();
        let mut all = first[..n].to_vec();
        stream.read_to_end(&mut all).await.unwrap();
        (all, h2, n)
    }

    #[tokio::test]
    async fn an_http1_request_comes_back_whole_in_the_first_read() {
        let req = b"GET /some/longer/path HTTP/1.1\r\nHost: example.com\r\n\r\n";
        let (all, h2, first) = detected(&[req]).await;
        assert!(!h2);
        assert_eq!(all, req);
        assert_eq!(first, req.len(), "prefix and the rest in one read");
    }

    #[tokio::test]
    async fn the_preface_chooses_http2_even_in_pieces() {
        let (all, h2, _) = detected(&[&H2_PREFACE[..5], &H2_PREFACE[5..], b"\0\0\0\x04"]).await;
        assert!(h2);
        assert_eq!(&all[..24], H2_PREFACE);
        assert_eq!(&all[24..], b"\0\0\0\x04");
    }

    #[tokio::test]
    async fn a_short_first_piece_that_is_not_the_preface_is_http1() {
        let (all, h2, _) = detected(&[b"PRI", b" x"]).await;
        assert!(!h2);
        assert_eq!(all, b"PRI x");
    }

    #[tokio::test]
    async fn a_client_closing_silently_is_no_connection() {
        let (client, server) = tokio::io::duplex(64);
        drop(client);
        assert!(detect(server).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn held_bytes_come_back_first_even_into_small_reads() {
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let (mut stream, _) = detect(server).await.unwrap().unwrap();
        let mut first = vec![0u8; 64];
        let n = stream.read(&mut first).await.unwrap();
        assert_eq!(&first[..n], b"GET / HTTP/1.1\r\n");
        // As `into_parked` leaves it: what hyper had read and not used.
        stream.held = Bytes::from_static(b"GET /next HTTP/1.1\r\nHo");
        client.write_all(b"st: x\r\n\r\n").await.unwrap();
        drop(client);
        let mut small = [0u8; 10];
        let n = stream.read(&mut small).await.unwrap();
        assert_eq!(
            &small[..n],
            b"GET /next ",
            "held bytes first, a buffer's worth"
        );
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"HTTP/1.1\r\nHost: x\r\n\r\n");
    }
}
