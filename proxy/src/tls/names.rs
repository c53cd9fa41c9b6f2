//! Traefik's (Go's) names for TLS versions, cipher suites, curves and
//! client-authentication modes, and what each means with rustls: the
//! configuration reads names through these tables, so what Go accepts and
//! what rustls can do are decided in one place.
//!
//! Control plane only: the tables are read while a configuration loads.

use rustls::{CipherSuite, NamedGroup};

/// A TLS protocol version as Traefik names it (`VersionTLS12`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// TLS 1.0 (Go only).
    Tls10,
    /// TLS 1.1 (Go only).
    Tls11,
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl TlsVersion {
    /// The version Traefik calls `name`.
    pub fn from_go(name: &str) -> Option<TlsVersion> {
        Some(match name {
            "VersionTLS10" => TlsVersion::Tls10,
            "VersionTLS11" => TlsVersion::Tls11,
            "VersionTLS12" => TlsVersion::Tls12,
            "VersionTLS13" => TlsVersion::Tls13,
            _ => return None,
        })
    }

    /// Whether rustls speaks it (1.2 and 1.3 only).
    pub fn in_rustls(self) -> bool {
        matches!(self, TlsVersion::Tls12 | TlsVersion::Tls13)
    }
}

/// What a Go cipher-suite name means here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuiteName {
    /// A TLS 1.2 suite rustls implements.
    Tls12(CipherSuite),
    /// A TLS 1.3 suite: Go ignores `cipherSuites` for TLS 1.3, so naming
    /// one changes nothing.
    Tls13,
    /// A suite Go knows and rustls does not (CBC, RSA key exchange, RC4,
    /// 3DES, the SCSV): warned about and left out.
    Unsupported,
}

/// The meaning of Go cipher-suite `name`; `None` for a name Go refuses.
pub fn cipher_suite(name: &str) -> Option<SuiteName> {
    use CipherSuite as C;
    Some(match name {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => {
            SuiteName::Tls12(C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
        }
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => {
            SuiteName::Tls12(C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)
        }
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => {
            SuiteName::Tls12(C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)
        }
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => {
            SuiteName::Tls12(C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384)
        }
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            SuiteName::Tls12(C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256)
        }
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"
        | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            SuiteName::Tls12(C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)
        }
        "TLS_AES_128_GCM_SHA256" | "TLS_AES_256_GCM_SHA384" | "TLS_CHACHA20_POLY1305_SHA256" => {
            SuiteName::Tls13
        }
        "TLS_RSA_WITH_RC4_128_SHA"
        | "TLS_RSA_WITH_3DES_EDE_CBC_SHA"
        | "TLS_RSA_WITH_AES_128_CBC_SHA"
        | "TLS_RSA_WITH_AES_256_CBC_SHA"
        | "TLS_RSA_WITH_AES_128_CBC_SHA256"
        | "TLS_RSA_WITH_AES_128_GCM_SHA256"
        | "TLS_RSA_WITH_AES_256_GCM_SHA384"
        | "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA"
        | "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"
        | "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"
        | "TLS_ECDHE_RSA_WITH_RC4_128_SHA"
        | "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"
        | "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
        | "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"
        | "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"
        | "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"
        | "TLS_FALLBACK_SCSV" => SuiteName::Unsupported,
        _ => return None,
    })
}

/// What a Go curve name means here: `Some(Some(group))` for a group
/// rustls implements, `Some(None)` for one Go knows and rustls does not
/// (P-521, P-384 + ML-KEM-1024), `None` for a name Go refuses.
pub fn curve(name: &str) -> Option<Option<NamedGroup>> {
    Some(match name {
        "secp256r1" | "CurveP256" => Some(NamedGroup::secp256r1),
        "secp384r1" | "CurveP384" => Some(NamedGroup::secp384r1),
        "x25519" | "X25519" => Some(NamedGroup::X25519),
        "x25519mlkem768" | "X25519MLKEM768" => Some(NamedGroup::X25519MLKEM768),
        "secp256r1mlkem768" | "SecP256r1MLKEM768" => Some(NamedGroup::secp256r1MLKEM768),
        "secp521r1" | "CurveP521" | "secp384r1mlkem1024" | "SecP384r1MLKEM1024" => None,
        _ => return None,
    })
}

/// Traefik's `clientAuth.clientAuthType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClientAuthType {
    /// No certificate asked for.
    #[default]
    NoClientCert,
    /// Asked for, not required, not verified.
    RequestClientCert,
    /// Required, not verified (its signature still proves the key).
    RequireAnyClientCert,
    /// Verified against `caFiles` when given.
    VerifyClientCertIfGiven,
    /// Required and verified against `caFiles`.
    RequireAndVerifyClientCert,
}

impl ClientAuthType {
    /// The mode Traefik calls `name`.
    pub fn from_go(name: &str) -> Option<ClientAuthType> {
        Some(match name {
            "NoClientCert" => ClientAuthType::NoClientCert,
            "RequestClientCert" => ClientAuthType::RequestClientCert,
            "RequireAnyClientCert" => ClientAuthType::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuthType::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuthType::RequireAndVerifyClientCert,
            _ => return None,
        })
    }

    /// Whether the mode verifies certificates (and so needs `caFiles`).
    pub fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuthType::VerifyClientCertIfGiven | ClientAuthType::RequireAndVerifyClientCert
        )
    }
}

/// The five mode names, for did-you-mean.
pub const CLIENT_AUTH_TYPES: &[&str] = &[
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
];

/// The four version names, for did-you-mean.
pub const VERSIONS: &[&str] = &[
    "VersionTLS10",
    "VersionTLS11",
    "VersionTLS12",
    "VersionTLS13",
];
