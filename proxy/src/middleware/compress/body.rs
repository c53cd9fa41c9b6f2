//! The compressed response body: the upstream's (or the proxy's) body
//! fed through a streaming gzip, br or zstd encoder as its frames arrive.
//! Output is sent as soon as the encoder gives some; when the inner body
//! has nothing more for now, the encoder is flushed so a slow stream
//! (server-sent events, a long poll) reaches the client as it is written,
//! not when it ends. Trailers follow the last compressed bytes.
//!
//! Runs per frame of a compressed response only: a write into the
//! encoder, one `Bytes` per output chunk; no lock. A response not
//! compressed never reaches this type.

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use hyper::body::{Body, Frame, SizeHint};

use crate::config::Encoding;

/// gzip's level. Traefik's gzip handler (klauspost's `gzhttp`) writes at
/// its default level, faster than zlib's 6 and a little larger. zlib-rs
/// at 5 still writes smaller answers than Traefik's: on the harness's
/// 16 KiB JSON, 3,390 bytes against Traefik's 3,525, in 76 µs instead of
/// level 6's 100 µs for 3,355 bytes (one core, this machine).
const GZIP_LEVEL: u32 = 5;
/// br's quality and window: Traefik's brotli writer defaults (quality 6).
const BROTLI_QUALITY: u32 = 6;
const BROTLI_WINDOW: u32 = 22;
/// The brotli writer's staging buffer.
const BROTLI_BUFFER: usize = 4096;
/// zstd's level: Traefik's `SpeedDefault`, zstd's 3, with the frame
/// checksum Traefik's writer adds.
const ZSTD_LEVEL: i32 = 3;

/// One streaming encoder writing into memory.
pub(super) enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Encoder::Gzip(_) => "Encoder::Gzip",
            Encoder::Brotli(_) => "Encoder::Brotli",
            Encoder::Zstd(_) => "Encoder::Zstd",
        })
    }
}

impl Encoder {
    pub(super) fn new(encoding: Encoding) -> std::io::Result<Self> {
        Ok(match encoding {
            Encoding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(GZIP_LEVEL),
            )),
            Encoding::Brotli => Encoder::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                BROTLI_BUFFER,
                BROTLI_QUALITY,
                BROTLI_WINDOW,
            ))),
            Encoding::Zstd => {
                let mut z = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL)?;
                z.include_checksum(true)?;
                Encoder::Zstd(z)
            }
        })
    }

    pub(super) fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.write_all(data),
            Encoder::Brotli(e) => e.write_all(data),
            Encoder::Zstd(e) => e.write_all(data),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Brotli(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }

    /// The compressed bytes written so far and not taken yet.
    fn take(&mut self) -> Option<Bytes> {
        let out = match self {
            Encoder::Gzip(e) => e.get_mut(),
            Encoder::Brotli(e) => e.get_mut(),
            Encoder::Zstd(e) => e.get_mut(),
        };
        if out.is_empty() {
            return None;
        }
        // Copied out so the vector keeps its capacity for the next chunk.
        let b = Bytes::copy_from_slice(out);
        out.clear();
        Some(b)
    }

    /// Ends the stream: the last compressed bytes (those not taken yet).
    pub(super) fn finish(self) -> std::io::Result<Vec<u8>> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Brotli(e) => Ok(e.into_inner()),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

/// A body compressed as it streams.
#[derive(Debug)]
pub struct Compressed<B> {
    inner: B,
    /// `None` once the stream is finished.
    encoder: Option<Encoder>,
    /// Bytes were written since the last flush.
    unflushed: bool,
    /// The inner body's trailers, sent after the last compressed bytes.
    trailers: Option<HeaderMap>,
    done: bool,
}

impl<B> Compressed<B> {
    pub(super) fn new(inner: B, encoder: Encoder) -> Self {
        Self {
            inner,
            encoder: Some(encoder),
            unflushed: false,
            trailers: None,
            done: false,
        }
    }

    /// The body being compressed (something it carries to its end, an
    /// `inFlightReq` count, is handed to it).
    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }

    /// Ends the stream: its last bytes, if any.
    fn finish(&mut self) -> Option<Bytes> {
        let encoder = self.encoder.take()?;
        match encoder.finish() {
            Ok(rest) => (!rest.is_empty()).then(|| Bytes::from(rest)),
            Err(e) => {
                // Writing into memory does not fail; an encoder that does
                // ends the body short (the client sees a broken stream).
                tracing::error!(error = %e, "compress: finishing the stream");
                None
            }
        }
    }

    /// What follows the last bytes: the trailers, or the end.
    fn after(&mut self) -> Poll<Option<Result<Frame<Bytes>, <Self as Body>::Error>>>
    where
        B: Body<Data = Bytes> + Unpin,
    {
        self.done = true;
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }
}

impl<B> Body for Compressed<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let Some(encoder) = &mut this.encoder else {
                return this.after();
            };
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        if data.is_empty() {
                            continue;
                        }
                        if let Err(e) = encoder.write(&data) {
                            tracing::error!(error = %e, "compress: encoding the body");
                            this.encoder = None;
                            this.done = true;
                            return Poll::Ready(None);
                        }
                        this.unflushed = true;
                        if let Some(out) = encoder.take() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    Err(frame) => {
                        this.trailers = frame.into_trailers().ok();
                        if let Some(last) = this.finish() {
                            return Poll::Ready(Some(Ok(Frame::data(last))));
                        }
                    }
                },
                Poll::Ready(Some(Err(e))) => {
                    this.encoder = None;
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    if let Some(last) = this.finish() {
                        return Poll::Ready(Some(Ok(Frame::data(last))));
                    }
                }
                Poll::Pending => {
                    // Nothing more for now: send what the encoder holds.
                    if this.unflushed {
                        this.unflushed = false;
                        if encoder.flush().is_ok()
                            && let Some(out) = encoder.take()
                        {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
