//! A small HTTP/1.1 client for the providers (the HTTP provider's polls,
//! etcd's JSON gateway): one fresh connection per request (plain or TLS),
//! a response read whole under a size limit, or its body as a stream.
//!
//! Control plane only: providers call it from their own runtime, never a
//! request. It must not log headers (they may carry credentials).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::{Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::UpstreamTlsConfig;

/// A client for `http://` and `https://` URLs.
#[derive(Clone)]
pub(super) struct HttpClient {
    /// For `https` URLs, and the settings its server names come from.
    tls: TlsConnector,
    settings: UpstreamTlsConfig,
}

/// A response read whole.
#[derive(Debug)]
pub(super) struct Response {
    pub(super) status: StatusCode,
    pub(super) body: Bytes,
}

impl HttpClient {
    /// A client; `tls` configures `https` (the system's roots when `None`).
    pub(super) fn new(tls: Option<&UpstreamTlsConfig>) -> Result<Self, String> {
        let settings = tls.cloned().unwrap_or_default();
        let config = crate::tls::client::client_config(&settings, true)
            .map_err(|e| format!("tls: {}", e.message))?;
        Ok(HttpClient {
            tls: TlsConnector::from(Arc::new(config)),
            settings,
        })
    }

    /// Sends `method` `url` with `headers` (`Host` sets the host) and
    /// `body`; the status and the body as a stream.
    pub(super) async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<(StatusCode, Incoming), String> {
        let uri: Uri = url.parse().map_err(|e| format!("URL {url:?}: {e}"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(format!("URL {url:?}: not http:// or https://")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("URL {url:?}: no host"))?
            .clone();
        let host = authority.host();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let addr = format!("{host}:{port}");
        let stream = TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let host_header = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("host"))
            .map_or(authority.as_str(), |(_, v)| v.as_str());
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, host_header);
        for (k, v) in headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
        {
            req = req.header(k.as_str(), v.as_str());
        }
        if !body.is_empty() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| format!("request: {e}"))?;
        let resp = if https {
            let name: ServerName<'static> = crate::tls::client::server_name(&self.settings, host)?;
            let stream = self
                .tls
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
            send_on(TokioIo::new(stream), req).await?
        } else {
            send_on(TokioIo::new(stream), req).await?
        };
        Ok((resp.status(), resp.into_body()))
    }

    /// [`HttpClient::send`], the body read whole: more than `limit` bytes
    /// (when `limit` is not negative) is an error.
    pub(super) async fn fetch(
        &self,
        method: Method,
        url: &str,
        headers: &[(String, String)],
        body: Bytes,
        limit: i64,
    ) -> Result<Response, String> {
        let (status, mut incoming) = self.send(method, url, headers, body).await?;
        let mut buf = BytesMut::new();
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(|e| format!("reading the response body: {e}"))?;
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
                if limit >= 0 && buf.len() as u64 > limit as u64 {
                    return Err("response body too large".to_owned());
                }
            }
        }
        Ok(Response {
            status,
            body: buf.freeze(),
        })
    }
}

/// One request on a fresh HTTP/1.1 connection over `io`.
async fn send_on<IO>(io: IO, req: Request<Full<Bytes>>) -> Result<http::Response<Incoming>, String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut tx, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    tx.send_request(req)
        .await
        .map_err(|e| format!("request: {e}"))
}
