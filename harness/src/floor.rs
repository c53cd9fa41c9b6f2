//! The `floor` target: the cheapest proxy hyper allows (no routing, no
//! middleware), run as its own process (`harness floor`) so it can be pinned
//! like the proxy. One current-thread runtime per worker, each with its own
//! SO_REUSEPORT listener and its own hyper client: the report's floor shows
//! what the proxy's features cost on top of hyper.
//!
//! Per request: rewrite the URI, forward, stream the answer back. Nothing else.

use std::net::SocketAddr;

use http::uri::{Authority, Scheme};
use http::{Request, Uri, Version};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use socket2::{Domain, Socket, Type};

/// Options of `harness floor`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct FloorArgs {
    /// Port to listen on (127.0.0.1).
    #[arg(long)]
    pub(crate) port: u16,
    /// Upstream `HOST:PORT`.
    #[arg(long)]
    pub(crate) upstream: String,
    /// Worker threads, one current-thread runtime each.
    #[arg(long, default_value_t = 1)]
    pub(crate) workers: usize,
    /// Accept h2c prior knowledge too (auto-detected per connection).
    #[arg(long)]
    pub(crate) h2c: bool,
}

fn listener(port: u16) -> std::io::Result<std::net::TcpListener> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    s.listen(1024)?;
    Ok(s.into())
}

/// Runs the forwarder until killed.
pub(crate) fn run(args: FloorArgs) -> Result<(), String> {
    let authority: Authority = args
        .upstream
        .parse()
        .map_err(|e| format!("bad --upstream: {e}"))?;
    let mut threads = Vec::new();
    for i in 0..args.workers.max(1) {
        let std_listener = listener(args.port).map_err(|e| format!("floor bind: {e}"))?;
        let authority = authority.clone();
        let h2c = args.h2c;
        threads.push(
            std::thread::Builder::new()
                .name(format!("floor-{i}"))
                .spawn(move || worker(std_listener, authority, h2c))
                .map_err(|e| e.to_string())?,
        );
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

fn worker(std_listener: std::net::TcpListener, authority: Authority, h2c: bool) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: Client<_, Incoming> = Client::builder(TokioExecutor::new()).build(connector);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (client, authority) = (client.clone(), authority.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |mut req: Request<Incoming>| {
                    let client = client.clone();
                    let mut parts = req.uri().clone().into_parts();
                    parts.scheme = Some(Scheme::HTTP);
                    parts.authority = Some(authority.clone());
                    if parts.path_and_query.is_none() {
                        parts.path_and_query = Some("/".parse().expect("static path"));
                    }
                    *req.uri_mut() = Uri::from_parts(parts).expect("valid uri parts");
                    *req.version_mut() = Version::HTTP_11;
                    async move { client.request(req).await }
                });
                let mut b = auto::Builder::new(TokioExecutor::new());
                if !h2c {
                    b = b.http1_only();
                }
                let _ = b.serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
}
