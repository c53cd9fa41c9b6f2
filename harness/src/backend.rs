//! The backend every target forwards to: a fast hyper server (HTTP/1.1
//! keep-alive and h2c; optionally TLS, as the `direct` target of the TLS
//! scenarios) run as its own process (`harness backend`), pinned with the
//! load generator. It answers a fixed body of a configurable size,
//! optionally after a delay, names itself in `x-backend`, and for a request
//! with a body answers the number of bytes it received.
//!
//! Per request: no allocation beyond hyper's own (the body is a shared
//! `Bytes`), no locks.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::scenario::SMALL_BODY;

/// Options of `harness backend`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct BackendArgs {
    /// `NAME=PORT` listeners on 127.0.0.1 (repeatable); NAME goes in `x-backend`.
    #[arg(long = "listen", required = true)]
    pub(crate) listen: Vec<String>,
    /// Response body size in bytes (the first bytes repeat `hello world\n`).
    #[arg(long, default_value_t = SMALL_BODY.len())]
    pub(crate) body_size: usize,
    /// Answer a JSON document of `--body-size` bytes (`Content-Type:
    /// application/json`) instead of `hello world\n` repeated: what a
    /// compressor meets in an API answer.
    #[arg(long)]
    pub(crate) json: bool,
    /// Delay before answering, in microseconds.
    #[arg(long, default_value_t = 0)]
    pub(crate) delay_us: u64,
    /// Address to bind (the harness always uses loopback; Docker needs 0.0.0.0).
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) bind: std::net::IpAddr,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 1)]
    pub(crate) threads: usize,
    /// `NAME=PORT` TLS listeners (repeatable; needs --cert and --key).
    #[arg(long = "tls-listen")]
    pub(crate) tls_listen: Vec<String>,
    /// Certificate chain for the TLS listeners, PEM.
    #[arg(long)]
    pub(crate) cert: Option<std::path::PathBuf>,
    /// Private key for the TLS listeners, PEM.
    #[arg(long)]
    pub(crate) key: Option<std::path::PathBuf>,
}

fn parse_listen(l: &str) -> Result<(HeaderValue, u16), String> {
    let (name, port) = l
        .split_once('=')
        .ok_or_else(|| format!("--listen wants NAME=PORT, got `{l}`"))?;
    let port: u16 = port.parse().map_err(|_| format!("bad port in `{l}`"))?;
    let name = HeaderValue::from_str(name).map_err(|e| e.to_string())?;
    Ok((name, port))
}

/// The response body: `hello world\n` repeated to `size` bytes.
pub(crate) fn body_of_size(size: usize) -> Bytes {
    SMALL_BODY.iter().copied().cycle().take(size).collect()
}

/// A JSON array of `size` bytes exactly: records with pseudo-random ids,
/// names, prices and flags (a fixed seed: the same bytes every run), padded
/// with spaces before the closing bracket. Compresses about as an API
/// answer does, unlike a repeated line.
pub(crate) fn json_of_size(size: usize) -> Bytes {
    let mut out = String::with_capacity(size + 256);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    const WORDS: [&str; 8] = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    ];
    out.push('[');
    let mut first = true;
    loop {
        let (a, b, c) = (next(), next(), next());
        let rec = format!(
            "{}{{\"id\":{},\"name\":\"{}-{}\",\"price\":{}.{:02},\"stock\":{},\"active\":{},\"tags\":[\"{}\",\"{}\"]}}",
            if first { "" } else { "," },
            a % 1_000_000,
            WORDS[(b % 8) as usize],
            b % 10_000,
            c % 1000,
            (c >> 10) % 100,
            (a >> 20) % 500,
            (b >> 5) % 2 == 0,
            WORDS[((c >> 3) % 8) as usize],
            WORDS[((a >> 7) % 8) as usize],
        );
        if out.len() + rec.len() + 1 > size {
            break;
        }
        out.push_str(&rec);
        first = false;
    }
    while out.len() + 1 < size {
        out.push(' ');
    }
    out.push(']');
    out.truncate(size.max(1));
    Bytes::from(out)
}

/// Runs the backend until killed.
pub(crate) fn run(args: BackendArgs) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let body = if args.json {
            json_of_size(args.body_size)
        } else {
            body_of_size(args.body_size)
        };
        let json = args.json;
        let delay = Duration::from_micros(args.delay_us);
        let mut tasks = Vec::new();
        let tls = match (&args.cert, &args.key, args.tls_listen.is_empty()) {
            (_, _, true) => None,
            (Some(c), Some(k), false) => {
                Some(TlsAcceptor::from(crate::certs::server_config(c, k)?))
            }
            _ => return Err("--tls-listen needs --cert and --key".into()),
        };
        let listeners = args
            .listen
            .iter()
            .map(|l| (l, None))
            .chain(args.tls_listen.iter().map(|l| (l, tls.clone())));
        for (l, tls) in listeners {
            let (name, port) = parse_listen(l)?;
            let listener = TcpListener::bind(SocketAddr::new(args.bind, port))
                .await
                .map_err(|e| format!("backend bind {port}: {e}"))?;
            tasks.push(tokio::spawn(serve(
                listener,
                name,
                body.clone(),
                json,
                delay,
                tls,
            )));
        }
        for t in tasks {
            let _ = t.await;
        }
        Ok(())
    })
}

/// Accepts and serves connections on one listener forever (TLS first when
/// `tls` is given).
pub(crate) async fn serve(
    listener: TcpListener,
    name: HeaderValue,
    body: Bytes,
    json: bool,
    delay: Duration,
    tls: Option<TlsAcceptor>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (name, body, tls) = (name.clone(), body.clone(), tls.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let (name, body) = (name.clone(), body.clone());
                async move { Ok::<_, Infallible>(answer(req, name, body, json, delay).await) }
            });
            let server = auto::Builder::new(TokioExecutor::new());
            match tls {
                None => {
                    let _ = server.serve_connection(TokioIo::new(stream), svc).await;
                }
                Some(acceptor) => {
                    if let Ok(s) = acceptor.accept(stream).await {
                        let _ = server.serve_connection(TokioIo::new(s), svc).await;
                    }
                }
            }
        });
    }
}

async fn answer(
    req: Request<Incoming>,
    name: HeaderValue,
    body: Bytes,
    json: bool,
    delay: Duration,
) -> Response<Full<Bytes>> {
    let has_body = req.headers().contains_key(http::header::CONTENT_LENGTH)
        || req.headers().contains_key(http::header::TRANSFER_ENCODING);
    let body = if has_body {
        let mut n = 0usize;
        let mut b = req.into_body();
        while let Some(frame) = b.frame().await {
            match frame {
                Ok(f) => n += f.data_ref().map_or(0, |d| d.len()),
                Err(_) => break,
            }
        }
        Bytes::from(n.to_string())
    } else {
        body
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut resp = Response::new(Full::new(body));
    resp.headers_mut().insert("x-backend", name);
    if json && !has_body {
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_repeats_hello_world() {
        assert_eq!(&body_of_size(12)[..], b"hello world\n");
        let b = body_of_size(30);
        assert_eq!(b.len(), 30);
        assert_eq!(&b[12..24], b"hello world\n");
    }

    #[test]
    fn json_body_is_valid_json_of_the_exact_size_and_compressible() {
        for size in [1024, 16 * 1024, 16 * 1024 + 7] {
            let b = json_of_size(size);
            assert_eq!(b.len(), size);
            let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
            assert!(v.as_array().unwrap().len() > 5, "{size}");
        }
        assert_eq!(json_of_size(4096), json_of_size(4096), "deterministic");
    }
}
