//! `passTLSClientCert`'s options: `pem`, and `info` (`notAfter`,
//! `notBefore`, `sans`, `serialNumber`, and the `subject` / `issuer`
//! distinguished-name fields), as Traefik 3.7's
//! `pkg/config/dynamic/middlewares.go` has them (the issuer has no
//! `organizationalUnit`). Nothing to check beyond the keys: every option
//! is a switch. The request-time part is `crate::middleware::tls_cert`.
//! Control plane only.

use serde::{Deserialize, Serialize};

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
    /// `issuer`: `Issuer="…"` with these parts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<IssuerFields>,
}

/// `info.subject`: which parts of the subject's name are sent.
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

/// `info.issuer`: the subject's switches but `organizationalUnit`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct IssuerFields {
    /// `country`.
    #[serde(skip_serializing_if = "off")]
    pub country: bool,
    /// `province`.
    #[serde(skip_serializing_if = "off")]
    pub province: bool,
    /// `locality`.
    #[serde(skip_serializing_if = "off")]
    pub locality: bool,
    /// `organization`.
    #[serde(skip_serializing_if = "off")]
    pub organization: bool,
    /// `commonName`.
    #[serde(skip_serializing_if = "off")]
    pub common_name: bool,
    /// `serialNumber`.
    #[serde(skip_serializing_if = "off")]
    pub serial_number: bool,
    /// `domainComponent`.
    #[serde(skip_serializing_if = "off")]
    pub domain_component: bool,
}

impl From<IssuerFields> for DnFields {
    fn from(i: IssuerFields) -> Self {
        DnFields {
            country: i.country,
            province: i.province,
            locality: i.locality,
            organization: i.organization,
            organizational_unit: false,
            common_name: i.common_name,
            serial_number: i.serial_number,
            domain_component: i.domain_component,
        }
    }
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
    pub(super) fn check(self) -> Option<MiddlewareConfig> {
        Some(MiddlewareConfig::PassTlsClientCert(PassTlsClientCert {
            pem: self.pem,
            info: self.info,
        }))
    }
}
