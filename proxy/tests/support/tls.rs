//! TLS fixtures for the integration tests: certificates generated at test
//! time (rcgen: a CA, server leaves with ECDSA P-256, RSA 2048 or Ed25519
//! keys, client certificates) and real rustls clients (tokio-rustls) with
//! pinned versions, suites and ALPN, that report what was negotiated.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SignatureAlgorithm,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{Reply, collect};

/// A key algorithm for a generated certificate.
#[derive(Clone, Copy, Debug)]
pub enum Alg {
    EcdsaP256,
    Rsa2048,
    Ed25519,
}

impl Alg {
    fn rcgen(self) -> &'static SignatureAlgorithm {
        match self {
            Alg::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Alg::Rsa2048 => &rcgen::PKCS_RSA_SHA256,
            Alg::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }
}

/// A certificate with its key, as PEM, and its DER for comparisons.
#[derive(Clone, Debug)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
    /// The certificates a client sends after this one (none unless set).
    pub chain: Vec<CertificateDer<'static>>,
}

impl Leaf {
    /// A client certificate chain and key for rustls.
    pub fn client_auth(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (
            std::iter::once(self.der.clone())
                .chain(self.chain.iter().cloned())
                .collect(),
            PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).unwrap(),
        )
    }
}

/// A test certificate authority.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        Ca::with(name, |_| {})
    }

    /// A CA whose certificate `edit` changes first (its subject, say).
    pub fn with(name: &str, edit: impl FnOnce(&mut CertificateParams)) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        edit(&mut params);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pem = issuer.pem();
        Ca { issuer, pem }
    }

    /// A server certificate for `names` (DNS names or IPs).
    pub fn server(&self, names: &[&str], alg: Alg) -> Leaf {
        self.server_with(names, alg, |_| {})
    }

    /// [`Ca::server`] with its parameters changed by `edit` first
    /// (validity, subject...).
    pub fn server_with(
        &self,
        names: &[&str],
        alg: Alg,
        edit: impl FnOnce(&mut CertificateParams),
    ) -> Leaf {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(DnType::CommonName, first.as_str());
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        edit(&mut params);
        self.sign(params, alg)
    }

    /// A client certificate with common name `cn`.
    pub fn client(&self, cn: &str) -> Leaf {
        self.client_with(|p| p.distinguished_name.push(DnType::CommonName, cn))
    }

    /// A client certificate whose parameters `edit` sets (its subject,
    /// names, serial, validity).
    pub fn client_with(&self, edit: impl FnOnce(&mut CertificateParams)) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        edit(&mut params);
        self.sign(params, Alg::EcdsaP256)
    }

    /// The CA's own certificate.
    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    fn sign(&self, params: CertificateParams, alg: Alg) -> Leaf {
        let key = KeyPair::generate_for(alg.rcgen()).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
            chain: Vec::new(),
        }
    }

    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        roots
    }
}

/// Accepts any server certificate: the tests compare what was served.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// How a test client is set up.
#[derive(Clone, Default)]
pub struct ClientOpts {
    /// Only this version (default: both).
    pub version: Option<&'static rustls::SupportedProtocolVersion>,
    /// Only these suites (default: rustls's).
    pub suites: Option<Vec<rustls::CipherSuite>>,
    /// ALPN offered (default none).
    pub alpn: Vec<&'static str>,
    /// A client certificate.
    pub client_cert: Option<Leaf>,
    /// Verify against these roots instead of accepting anything.
    pub roots: Option<RootCertStore>,
    /// Keep sessions for resumption (default: off, every handshake full).
    pub resumption: bool,
}

pub fn client_config(o: &ClientOpts) -> Arc<ClientConfig> {
    let mut p = rustls::crypto::aws_lc_rs::default_provider();
    if let Some(s) = &o.suites {
        p.cipher_suites.retain(|c| s.contains(&c.suite()));
    }
    let p = Arc::new(p);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = match o.version {
        Some(v) => vec![v],
        None => vec![&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let builder = ClientConfig::builder_with_provider(Arc::clone(&p))
        .with_protocol_versions(&versions)
        .unwrap();
    let builder = match &o.roots {
        Some(r) => builder.with_root_certificates(r.clone()),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(p))),
    };
    let mut c = match &o.client_cert {
        Some(leaf) => {
            let (chain, key) = leaf.client_auth();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    c.alpn_protocols = o.alpn.iter().map(|a| a.as_bytes().to_vec()).collect();
    if !o.resumption {
        c.resumption = rustls::client::Resumption::disabled();
    }
    Arc::new(c)
}

/// Connects and handshakes; `sni` `None` connects by IP (no SNI sent).
pub async fn connect(
    addr: SocketAddr,
    sni: Option<&str>,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = match sni {
        Some(n) => ServerName::try_from(n.to_owned()).unwrap(),
        None => ServerName::IpAddress(addr.ip().into()),
    };
    TlsConnector::from(config).connect(name, tcp).await
}

/// [`connect`], then waits briefly for the server's verdict: a client
/// certificate refused under TLS 1.3 only shows after the client's side of
/// the handshake is done (an alert instead of session tickets).
pub async fn connect_checked(
    addr: SocketAddr,
    sni: Option<&str>,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut s = connect(addr, sni, config).await?;
    use tokio::io::AsyncReadExt;
    let mut probe = [0u8; 1];
    match tokio::time::timeout(std::time::Duration::from_millis(150), s.read(&mut probe)).await {
        Err(_) => Ok(s),
        Ok(Ok(0)) => Err(std::io::ErrorKind::ConnectionAborted.into()),
        Ok(Ok(_)) => Ok(s),
        Ok(Err(e)) => Err(e),
    }
}

/// The DER of the certificate the server presented.
pub fn served(s: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    s.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

/// A GET over an established TLS connection, HTTP/1.1 or h2 by ALPN.
pub async fn get(s: TlsStream<TcpStream>, host: &str, path: &str) -> Reply {
    let h2 = s.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(s);
    if h2 {
        let (mut tx, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = Request::get(format!("https://{host}{path}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        collect(tx.send_request(req).await.unwrap()).await.unwrap()
    } else {
        let (mut tx, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        let req = Request::get(path)
            .header(http::header::HOST, host)
            .body(Empty::<Bytes>::new())
            .unwrap();
        collect(tx.send_request(req).await.unwrap()).await.unwrap()
    }
}
