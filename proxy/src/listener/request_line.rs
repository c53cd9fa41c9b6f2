//! The one request-target hyper refuses that Go serves: an absolute-form
//! URI whose authority has no host (`GET http://@/ HTTP/1.1`,
//! `http://user@/x`, `http:///x`). Go (and so Traefik) routes such a
//! request by its `Host` header (RFC 9112 §3.2.2: the authority wins only
//! when it names a host); the `http` crate refuses the URI, so hyper
//! answers 400 before the proxy sees the request. [`FirstLine`] rewrites
//! the target of a connection's first request line to its origin form
//! (`/`, `/x`) in the bytes read, which then parse and route by `Host` as
//! in Go.
//!
//! Only the connection's first request line is looked at: where a later
//! request starts is hyper's to know, and a body may hold any bytes. The
//! common case costs one look at the first read: a target starting with
//! `/` is decided there. Bytes are held back (one allocation, at most
//! [`HOLD_LIMIT`]) only while an absolute-form target's authority has not
//! ended, since hyper-util reads the first 24 bytes on their own to tell
//! HTTP/2's preface apart.

use std::io;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, ReadBuf};

/// Bytes held back at most while a target's authority has not ended; past
/// it they go on unchanged.
const HOLD_LIMIT: usize = 1024;

/// Where the connection's first request line stands.
#[derive(Debug, Default)]
pub(super) enum FirstLine {
    /// Nothing read yet.
    #[default]
    Unseen,
    /// The connection's first bytes, held until the target is decided.
    Held(Vec<u8>),
    /// Decided: these bytes (from the offset) go to the reader first.
    Draining(Vec<u8>, usize),
    /// Decided and delivered: reads go straight through.
    Done,
}

/// What the first bytes of a connection say about its first target.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// Deliver as they are.
    Leave,
    /// Rewritten in place; the new length.
    Rewrite(usize),
    /// The target is (or may be) absolute-form and its authority has not
    /// ended yet.
    NeedMore,
}

impl FirstLine {
    /// Whether reads go straight to the stream.
    #[inline]
    pub(super) fn is_done(&self) -> bool {
        matches!(self, FirstLine::Done)
    }

    /// Reads from `inner` into `buf` until the first target is decided,
    /// then delivers the (possibly rewritten) bytes. Every read that brings
    /// bytes is counted in `reads` (the watchdog's activity).
    pub(super) fn poll_read<S: AsyncRead + Unpin>(
        &mut self,
        mut inner: Pin<&mut S>,
        reads: &AtomicU64,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if let FirstLine::Draining(bytes, at) = self {
                let n = buf.remaining().min(bytes.len() - *at);
                buf.put_slice(&bytes[*at..*at + n]);
                *at += n;
                if *at == bytes.len() {
                    *self = FirstLine::Done;
                }
                return Poll::Ready(Ok(()));
            }
            if self.is_done() {
                return inner.as_mut().poll_read(cx, buf);
            }
            let before = buf.filled().len();
            ready!(inner.as_mut().poll_read(cx, buf))?;
            if buf.filled().len() == before {
                // End of stream: what was held goes as it is.
                *self = match std::mem::take(self) {
                    FirstLine::Held(bytes) => FirstLine::Draining(bytes, 0),
                    _ => FirstLine::Done,
                };
                if self.is_done() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            super::stream::note_read(reads);
            match self {
                FirstLine::Unseen => {
                    let read = &mut buf.filled_mut()[before..];
                    match decide(read) {
                        Decision::Leave => {}
                        Decision::Rewrite(len) => buf.set_filled(before + len),
                        Decision::NeedMore => {
                            *self = FirstLine::Held(read.to_vec());
                            buf.set_filled(before);
                            continue;
                        }
                    }
                    *self = FirstLine::Done;
                    return Poll::Ready(Ok(()));
                }
                FirstLine::Held(held) => {
                    held.extend_from_slice(&buf.filled()[before..]);
                    buf.set_filled(before);
                    match decide(held) {
                        Decision::NeedMore if held.len() < HOLD_LIMIT => continue,
                        Decision::Rewrite(len) => held.truncate(len),
                        _ => {}
                    }
                    *self = FirstLine::Draining(std::mem::take(held), 0);
                }
                FirstLine::Draining(..) | FirstLine::Done => unreachable!("handled above"),
            }
        }
    }
}

/// Looks at the start of a connection: when its first request's target is
/// absolute-form with an empty host, rewrites it in place to the origin
/// form of the same path and query.
fn decide(data: &mut [u8]) -> Decision {
    // METHOD SP target SP version CRLF; a method is a short token.
    let Some(sp) = data.iter().take(32).position(|&b| b == b' ') else {
        return if data.len() < 32 && data.iter().all(u8::is_ascii_alphabetic) {
            Decision::NeedMore
        } else {
            Decision::Leave
        };
    };
    let start = sp + 1;
    let target = &data[start..];
    let scheme_len = match scheme(target) {
        Some(Some(len)) => len,
        Some(None) => return Decision::NeedMore,
        None => return Decision::Leave,
    };
    let rest = &target[scheme_len..];
    let Some(authority_len) = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#' | b' ' | b'\r' | b'\n'))
    else {
        return Decision::NeedMore;
    };
    let authority = &rest[..authority_len];
    // The host is what follows the last `@`; empty means no host at all.
    let host = match authority.iter().rposition(|&b| b == b'@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    if !host.is_empty() {
        return Decision::Leave;
    }
    // `http://@` alone, or `http://@?q`: the path is `/`.
    let path_at = start + scheme_len + authority_len;
    let needs_slash = data[path_at] != b'/';
    let removed = scheme_len + authority_len - usize::from(needs_slash);
    data.copy_within(start + removed.., start);
    if needs_slash {
        data[start] = b'/';
    }
    Decision::Rewrite(data.len() - removed)
}

/// `Some(Some(len))` when `target` starts with `http://` or `https://`
/// (any case), `Some(None)` when it is a shorter prefix of one of them,
/// `None` when it is neither.
fn scheme(target: &[u8]) -> Option<Option<usize>> {
    let mut maybe = false;
    for s in [&b"http://"[..], b"https://"] {
        let n = target.len().min(s.len());
        if target[..n].eq_ignore_ascii_case(&s[..n]) {
            if n == s.len() {
                return Some(Some(n));
            }
            maybe = true;
        }
    }
    maybe.then_some(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    use tokio::io::AsyncReadExt;

    fn rewrite(line: &str) -> (Decision, String) {
        let mut buf = line.as_bytes().to_vec();
        let d = decide(&mut buf);
        let n = match d {
            Decision::Rewrite(n) => n,
            _ => buf.len(),
        };
        (d, String::from_utf8(buf[..n].to_vec()).unwrap())
    }

    #[test]
    fn an_empty_host_becomes_the_origin_form_of_the_same_path() {
        let h = "\r\nHost: a.test\r\n\r\n";
        for (target, origin) in [
            ("http://@/", "/"),
            ("HTTPS://user:pw@/a/b?c=d", "/a/b?c=d"),
            ("http:///x", "/x"),
            ("http://@", "/"),
            ("http://@?q=1", "/?q=1"),
        ] {
            let (d, out) = rewrite(&format!("GET {target} HTTP/1.1{h}"));
            assert!(matches!(d, Decision::Rewrite(_)), "{target}");
            assert_eq!(out, format!("GET {origin} HTTP/1.1{h}"));
        }
    }

    #[test]
    fn every_other_target_is_left_as_it_is() {
        for line in [
            "GET / HTTP/1.1\r\n\r\n",
            "GET http://a.test/ HTTP/1.1\r\n\r\n",
            "GET http://user@a.test/ HTTP/1.1\r\n\r\n",
            "GET http://@a.test/@/ HTTP/1.1\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\n\r\n",
            "CONNECT a.test:443 HTTP/1.1\r\n\r\n",
            "GET ftp://@/ HTTP/1.1\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "\x16\x03\x01",
        ] {
            assert_eq!(rewrite(line), (Decision::Leave, line.to_owned()));
        }
    }

    #[test]
    fn a_target_whose_authority_has_not_ended_needs_more() {
        for start in [
            "",
            "GE",
            "GET ",
            "GET h",
            "GET HTTPS:/",
            "GET http://@",
            "GET http://a.test",
        ] {
            assert_eq!(rewrite(start).0, Decision::NeedMore, "{start:?}");
        }
    }

    /// The first line arriving a few bytes at a time, read through a
    /// 24-byte buffer first as hyper-util's version detection does.
    #[tokio::test]
    async fn a_first_line_split_across_reads_is_rewritten() {
        let line = b"GET http://user:pw@/p?q=1 HTTP/1.1\r\nHost: b.test\r\n\r\nGET http://@/ HTTP/1.1\r\n\r\n";
        let (client, server) = tokio::io::duplex(4096);
        let write = tokio::spawn(async move {
            let mut client = client;
            for chunk in line.chunks(5) {
                tokio::io::AsyncWriteExt::write_all(&mut client, chunk)
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
        });
        let mut stream = Through {
            inner: server,
            first: FirstLine::Unseen,
            reads: AtomicU64::new(0),
        };
        let mut out = vec![0u8; 24];
        let n = stream.read(&mut out).await.unwrap();
        out.truncate(n);
        write.await.unwrap();
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        out.extend_from_slice(&rest);
        // Only the first request line is rewritten.
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /p?q=1 HTTP/1.1\r\nHost: b.test\r\n\r\nGET http://@/ HTTP/1.1\r\n\r\n"
        );
        assert!(stream.first.is_done());
        assert!(stream.reads.load(Ordering::Relaxed) > 1);
    }

    struct Through {
        inner: tokio::io::DuplexStream,
        first: FirstLine,
        reads: AtomicU64,
    }

    impl AsyncRead for Through {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            this.first
                .poll_read(Pin::new(&mut this.inner), &this.reads, cx, buf)
        }
    }
}
