//! `passTLSClientCert`'s options: `pem`, and `info` (`notAfter`,
//! `notBefore`, `sans`, `serialNumber`, and the `subject` / `issuer`
//! distinguished-name fields), as Traefik 3.7's
//! `pkg/config/dynamic/middlewares.go` has them. Every option is a
//! switch; the issuer's `organizationalUnit`, which Traefik's issuer does
//! not have, is refused. The request-time part is `crate::middleware::tls_cert`.
//! Control plane only.

use serde::{Deserialize, Serialize};

use super::super::super::decode::Ctx;
use super::super::super::node::Pos;
use super::MiddlewareConfig;

/// A validated `passTLSClientCert`; serialized as the API shows it
/// (switches left off omitted, as Traefik's `omitempty`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PassTlsClientCert {
    /// `pem`: the certificates in `X-Forwarded-Tls-Client-Cert`.
    #[serde(skip_serializing_if = "off")]
    pub pem: bool,
    /// `info`: the fields sent in `X-Forwarded-Tls-Client-Cert-Info`
    /// (present, even with every switch off, sets the header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<CertInfo>,
}

/// `passTLSClientCert.info`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CertInfo {
    /// `notAfter`: `NA="<unix seconds>"`.
    #[serde(skip_serializing_if = "off")]
    pub not_after: bool,
    /// `notBefore`: `NB="<unix seconds>"`.
    #[serde(skip_serializing_if = "off")]
    pub not_before: bool,
    /// `sans`: `SAN="<dns>,<email>,<ip>,<uri>"`.
    #[serde(skip_serializing_if = "off")]
    pub sans: bool,
    /// `serialNumber`: `SerialNumber="<decimal>"`.
    #[serde(skip_serializing_if = "off")]
    pub serial_number: bool,
    /// `subject`: `Subject="…"` with these parts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<DnFields>,
    /// `issuer`: `Issuer="…"` with these parts (never `OU`: Traefik's
    /// issuer has no `organizationalUnit`, refused when checked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<DnFields>,
}

/// `info.subject` and `info.issuer`: which parts of the name are sent.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DnFields {
    /// `country`: `C=`.
    #[serde(skip_serializing_if = "off")]
    pub country: bool,
    /// `province`: `ST=`.
    #[serde(skip_serializing_if = "off")]
    pub province: bool,
    /// `locality`: `L=`.
    #[serde(skip_serializing_if = "off")]
    pub locality: bool,
    /// `organization`: `O=`.
    #[serde(skip_serializing_if = "off")]
    pub organization: bool,
    /// `organizationalUnit`: `OU=` (the subject's only).
    #[serde(skip_serializing_if = "off")]
    pub organizational_unit: bool,
    /// `commonName`: `CN=`.
    #[serde(skip_serializing_if = "off")]
    pub common_name: bool,
    /// `serialNumber`: `SN=`.
    #[serde(skip_serializing_if = "off")]
    pub serial_number: bool,
    /// `domainComponent`: `DC=`, one per component.
    #[serde(skip_serializing_if = "off")]
    pub domain_component: bool,
}

fn off(b: &bool) -> bool {
    !*b
}

/// `passTLSClientCert` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct PassTlsClientCertFile {
    pem: bool,
    info: Option<CertInfo>,
}

impl PassTlsClientCertFile {
    pub(super) fn check(self, ctx: &mut Ctx, path: &str, pos: Pos) -> Option<MiddlewareConfig> {
        if self
            .info
            .as_ref()
            .and_then(|i| i.issuer.as_ref())
            .is_some_and(|i| i.organizational_unit)
        {
            ctx.error(
                path,
                pos,
                "passTLSClientCert: info.issuer has no organizationalUnit option (Traefik 3.7's issuer has none)",
            );
            return None;
        }
        Some(MiddlewareConfig::PassTlsClientCert(PassTlsClientCert {
            pem: self.pem,
            info: self.info,
        }))
    }
}
