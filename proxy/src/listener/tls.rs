//! The TLS side of an entrypoint: telling a TLS connection from a plain
//! one by its first byte (Traefik's entrypoints serve both), reading the
//! ClientHello, choosing the TLS options its SNI maps to on this
//! entrypoint in the current snapshot, and completing the handshake with
//! them. A ClientHello without SNI gets the certificate of the
//! connection's local IP when one has it, as in Traefik.
//!
//! Runs per connection, on the connection's own task: one atomic snapshot
//! check, a hash lookup or two, no lock. Failures are counted and logged
//! at debug only (a scanner must not flood the log).

use std::io;
use std::sync::Arc;

use rustls::server::Acceptor;
use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

use super::stream::ClientCerts;
use crate::snapshot::{self, SharedSnapshot};
use crate::tls::store::FixedCert;

/// The first byte of a TLS record carrying a handshake message.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Whether the client on `tcp` opens with a TLS handshake (peeks, reads
/// nothing). An error when it closes before sending a byte.
pub(super) async fn starts_tls(tcp: &TcpStream) -> io::Result<bool> {
    let mut first = [0u8; 1];
    let n = tcp.peek(&mut first).await?;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(first[0] == TLS_HANDSHAKE_RECORD)
}

/// A completed handshake and the name of the options it was made with.
pub(super) struct TlsAccepted {
    pub(super) stream: TlsStream<TcpStream>,
    pub(super) options: Arc<str>,
    /// The certificates the client sent (its own first), when the
    /// options ask for one: `passTLSClientCert` reads them.
    pub(super) client_certs: Option<ClientCerts>,
}

/// Handshakes on `tcp` for entrypoint `ep` with the options the SNI maps
/// to in the current snapshot.
pub(super) async fn accept(
    tcp: TcpStream,
    snapshot: &SharedSnapshot,
    ep: usize,
) -> io::Result<TlsAccepted> {
    let local = tcp.local_addr()?;
    let start = LazyConfigAcceptor::new(Acceptor::default(), tcp).await?;
    let (config, options) = {
        let snap = snapshot::current(snapshot);
        let hello = start.client_hello();
        let sni = hello.server_name();
        let index = snap
            .entrypoints
            .get(ep)
            .map_or(0, |routes| routes.sni.options_for(sni));
        // `RouteTarget::REFUSED`: the options of the SNI's router are
        // disabled by an error.
        let Some(opts) = snap.tls.options.get(index as usize) else {
            return Err(io::Error::other(
                "the TLS options of this server name are disabled by a configuration error",
            ));
        };
        let config = match sni {
            Some(_) => Arc::clone(&opts.config),
            // No SNI: the local IP names the certificate (rare: clients
            // addressing the proxy by IP).
            None => {
                let ip = crate::ipnet::canonical_ip(local.ip()).to_string();
                match snap.tls.store.select(&ip, true) {
                    Some(cert) => {
                        let mut c = (*opts.config).clone();
                        c.cert_resolver = Arc::new(FixedCert(cert));
                        Arc::new(c)
                    }
                    None => Arc::clone(&opts.config),
                }
            }
        };
        (config, Arc::clone(&opts.name))
    };
    let stream = start.into_stream(config).await?;
    // Copied once per connection, only when the client sent a chain.
    let client_certs = stream
        .get_ref()
        .1
        .peer_certificates()
        .filter(|c| !c.is_empty())
        .map(|c| c.iter().map(|d| d.clone().into_owned()).collect());
    Ok(TlsAccepted {
        stream,
        options,
        client_certs,
    })
}
