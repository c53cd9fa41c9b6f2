//! A body `buffering` has read whole: in memory up to its `mem…BodyBytes`,
//! the rest in a temporary file created in `$TMPDIR` (as oxy's multibuf
//! writes `multibuf-*` there) as `proxy-buffer-<pid>-<n>` and unlinked at
//! once, as multibuf does for requests: only the open descriptor keeps
//! it, so it goes when the last copy of the body is dropped, and nothing
//! is left behind if the process dies. [`hold`] reads a body so, refusing one larger
//! than the maximum; [`Spilled`] is what is sent on, read back from the
//! file in 64 KiB chunks on tokio's blocking pool (never a blocking read
//! on a worker), and sent again from its start by a replay.
//!
//! Only requests and responses through a `buffering` come here; a body
//! that fits in memory is a plain held body, no file.

use std::fs::{File, OpenOptions};
use std::future::{Future, poll_fn};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::Body;
use tokio::task::JoinHandle;

use crate::upstream::MessageBody;

/// What goes to the file at once (and is read back at once).
const CHUNK: usize = 64 * 1024;
/// Bytes gathered before a write to the file.
const FLUSH: usize = 256 * 1024;

/// Numbers the files of this process.
static FILES: AtomicU64 = AtomicU64::new(0);

/// The file part of a spilled body (unlinked already: closing it frees
/// it).
#[derive(Debug)]
struct SpillFile {
    file: File,
    /// The name it was created with, for messages.
    path: PathBuf,
    len: u64,
}

/// A body held partly in memory, the rest in a temporary file.
#[derive(Debug)]
pub struct Spilled {
    memory: Bytes,
    file: Arc<SpillFile>,
    /// Whether `memory` has been sent.
    memory_sent: bool,
    /// How much of the file has been sent.
    pos: u64,
    reading: Option<JoinHandle<io::Result<Bytes>>>,
}

impl Spilled {
    /// The next chunk; `None` at the end (or, logged, when the file
    /// cannot be read: the receiver sees a body shorter than announced).
    pub fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if !self.memory_sent {
            self.memory_sent = true;
            if !self.memory.is_empty() {
                return Poll::Ready(Some(self.memory.clone()));
            }
        }
        let len = self.file.len;
        if self.pos >= len {
            return Poll::Ready(None);
        }
        let pos = self.pos;
        let handle = self.reading.get_or_insert_with(|| {
            let file = Arc::clone(&self.file);
            let n = usize::try_from(len - pos).map_or(CHUNK, |n| n.min(CHUNK));
            tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; n];
                file.file.read_exact_at(&mut buf, pos)?;
                Ok(Bytes::from(buf))
            })
        });
        let read = match Pin::new(handle).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(r) => r,
        };
        self.reading = None;
        match read {
            Ok(Ok(b)) => {
                self.pos += b.len() as u64;
                Poll::Ready(Some(b))
            }
            Ok(Err(e)) => self.failed(&e),
            Err(e) => self.failed(&e),
        }
    }

    fn failed(&mut self, e: &dyn std::fmt::Display) -> Poll<Option<Bytes>> {
        tracing::error!(path = %self.file.path.display(), error = %e, "buffering: reading the temporary file");
        self.pos = self.file.len;
        Poll::Ready(None)
    }

    /// What is left of it, read into memory.
    pub async fn read_all(mut self) -> Bytes {
        let mut out = BytesMut::with_capacity(usize::try_from(self.remaining()).unwrap_or(0));
        while let Some(b) = poll_fn(|cx| self.poll_data(cx)).await {
            out.extend_from_slice(&b);
        }
        out.freeze()
    }

    /// Whether everything has been sent.
    pub fn is_end(&self) -> bool {
        (self.memory_sent || self.memory.is_empty()) && self.pos >= self.file.len
    }

    /// What is left to send.
    pub fn remaining(&self) -> u64 {
        let memory = if self.memory_sent {
            0
        } else {
            self.memory.len() as u64
        };
        memory + (self.file.len - self.pos)
    }

    /// The same body from its start (the file shared, not copied).
    pub fn replay(&self) -> Self {
        Self {
            memory: self.memory.clone(),
            file: Arc::clone(&self.file),
            memory_sent: false,
            pos: 0,
            reading: None,
        }
    }

    /// The name the file was created with (unlinked since).
    pub fn path(&self) -> &std::path::Path {
        &self.file.path
    }
}

/// A body read whole.
#[derive(Debug)]
pub(super) enum Held {
    /// It fit in memory.
    Memory(Bytes),
    /// Part of it is on disk.
    Disk(Box<Spilled>),
}

impl Held {
    /// As a body to send on.
    pub(super) fn into_body<S>(self) -> MessageBody<S> {
        match self {
            Held::Memory(b) => MessageBody::full(b),
            Held::Disk(s) => MessageBody::Spilled(s),
        }
    }

    /// Its length.
    pub(super) fn len(&self) -> u64 {
        match self {
            Held::Memory(b) => b.len() as u64,
            Held::Disk(s) => s.remaining(),
        }
    }
}

/// Why a body could not be held.
#[derive(Debug)]
pub(super) enum Overflow<E> {
    /// It is larger than the maximum.
    TooLarge,
    /// Reading it failed.
    Body(E),
    /// The temporary file could not be written.
    Disk(io::Error),
}

/// The file being written, created at the first byte past memory.
struct Writer {
    /// `None` once handed to the body it holds (a body not held after
    /// all, too large or failed, closes it when dropped).
    file: Option<Arc<File>>,
    path: PathBuf,
    written: u64,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(io::Error::other)?
}

impl Writer {
    async fn create() -> io::Result<Self> {
        let n = FILES.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("proxy-buffer-{}-{n}", std::process::id()));
        let p = path.clone();
        let file = blocking(move || {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&p)?;
            std::fs::remove_file(&p)?;
            Ok(file)
        })
        .await?;
        Ok(Self {
            file: Some(Arc::new(file)),
            path,
            written: 0,
        })
    }

    async fn write(&mut self, data: Bytes) -> io::Result<()> {
        let Some(file) = self.file.clone() else {
            return Err(io::Error::other("temporary file already handed over"));
        };
        self.written += data.len() as u64;
        blocking(move || (&*file).write_all(&data)).await
    }

    /// The body: `memory`, then the file (its writes are over, so this
    /// is its one reference).
    fn finish(mut self, memory: Bytes) -> io::Result<Spilled> {
        let Some(file) = self.file.take().and_then(|f| Arc::try_unwrap(f).ok()) else {
            return Err(io::Error::other("temporary file still in use"));
        };
        Ok(Spilled {
            memory,
            file: Arc::new(SpillFile {
                file,
                path: std::mem::take(&mut self.path),
                len: self.written,
            }),
            memory_sent: false,
            pos: 0,
            reading: None,
        })
    }
}

/// Reads `body` whole: `mem` bytes in memory, the rest in a temporary
/// file; more than `max` in all is [`Overflow::TooLarge`] (read no
/// further). Trailers are not kept.
pub(super) async fn hold<B>(
    mut body: B,
    mem: u64,
    max: Option<u64>,
) -> Result<Held, Overflow<B::Error>>
where
    B: Body<Data = Bytes> + Unpin,
{
    let mem = usize::try_from(mem).unwrap_or(usize::MAX);
    let mut memory = BytesMut::new();
    let mut pending = BytesMut::new();
    let mut writer: Option<Writer> = None;
    let mut total = 0u64;
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(mut data) = frame.map_err(Overflow::Body)?.into_data() else {
            continue;
        };
        total += data.len() as u64;
        if max.is_some_and(|m| total > m) {
            return Err(Overflow::TooLarge);
        }
        if writer.is_none() && pending.is_empty() {
            let room = mem - memory.len().min(mem);
            if data.len() <= room {
                memory.extend_from_slice(&data);
                continue;
            }
            memory.extend_from_slice(&data.split_to(room));
        }
        pending.extend_from_slice(&data);
        if pending.len() >= FLUSH {
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(Writer::create().await.map_err(Overflow::Disk)?),
            };
            w.write(pending.split().freeze())
                .await
                .map_err(Overflow::Disk)?;
        }
    }
    if writer.is_none() && pending.is_empty() {
        return Ok(Held::Memory(memory.freeze()));
    }
    let mut w = match writer {
        Some(w) => w,
        None => Writer::create().await.map_err(Overflow::Disk)?,
    };
    if !pending.is_empty() {
        w.write(pending.freeze()).await.map_err(Overflow::Disk)?;
    }
    w.finish(memory.freeze())
        .map(|s| Held::Disk(Box::new(s)))
        .map_err(Overflow::Disk)
}
