//! `tls`: certificates, TLS options and stores of the dynamic
//! configuration, and a router's `tls` section. The file schema, Traefik's
//! defaults, and the checks that need more than a type (names Go knows,
//! what rustls can do with them).
//!
//! Names are read through [`crate::tls::names`]: a name Go refuses is an
//! error (Traefik fails the options); a name Go accepts that rustls cannot
//! use (TLS 1.0/1.1, CBC or RSA key-exchange suites, P-521) is a warning,
//! and what remains is used; an error only when nothing usable remains.
//! Certificate files are not read here: `crate::tls` reads them when the
//! configuration is built, naming this file and line if they are bad.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rustls::{CipherSuite, NamedGroup};
use serde::Deserialize;

use crate::tls::names::{self, ClientAuthType, SuiteName, TlsVersion};

use super::super::decode::{
    At, Ctx, Ignored, Named, Register, Schema, Spec, Support, Switch, schema, suggest,
};
use super::super::error::{ConfigError, ConfigWarning, Origin};
use super::super::node::Pos;
use super::isolate::{Element, ElementKind};
use super::{Ref, dup_warning, err_at, keep_first, strip_provider};

/// The name of Traefik's default options and store.
pub(super) const DEFAULT: &str = "default";

/// The `tls` section, merged over every file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsConfig {
    /// `tls.certificates` of the default store, in file order.
    pub certificates: Vec<CertificateConfig>,
    /// `tls.options` by name; `default` replaces Traefik's defaults.
    pub options: BTreeMap<String, TlsOptionsConfig>,
    /// `tls.stores.default.defaultCertificate`; without one a self-signed
    /// certificate is generated at start, as Traefik does.
    pub default_certificate: Option<CertificateConfig>,
}

impl TlsConfig {
    /// Every certificate file the section names (certificates, the default
    /// certificate, client CAs), to watch for renewals.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for c in self.certificates.iter().chain(&self.default_certificate) {
            out.extend(c.cert.path().map(Path::to_path_buf));
            out.extend(c.key.path().map(Path::to_path_buf));
        }
        for o in self.options.values() {
            out.extend(
                o.ca_files
                    .iter()
                    .filter_map(|f| f.path().map(Path::to_path_buf)),
            );
        }
        out.sort();
        out.dedup();
        out
    }
}

/// A PEM value: a file path, or the PEM text itself (Traefik's
/// `FileOrContent`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PemSource {
    /// A file to read.
    File(PathBuf),
    /// PEM written inline.
    Inline(String),
}

impl PemSource {
    pub(super) fn new(value: &str) -> PemSource {
        if value.contains("-----BEGIN") {
            PemSource::Inline(value.to_owned())
        } else {
            PemSource::File(PathBuf::from(value.trim()))
        }
    }

    /// The file, when the value names one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            PemSource::File(p) => Some(p),
            PemSource::Inline(_) => None,
        }
    }

    /// The PEM bytes.
    pub fn read(&self) -> Result<Vec<u8>, String> {
        match self {
            PemSource::File(p) => {
                std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
            }
            PemSource::Inline(s) => Ok(s.as_bytes().to_vec()),
        }
    }

    /// How messages name it.
    pub fn describe(&self) -> String {
        match self {
            PemSource::File(p) => p.display().to_string(),
            PemSource::Inline(_) => "inline PEM".to_owned(),
        }
    }
}

/// A certificate and its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertificateConfig {
    /// `certFile`: the certificate, then its chain.
    pub cert: PemSource,
    /// `keyFile`: RSA, ECDSA or Ed25519, PKCS#1, SEC1 or PKCS#8.
    pub key: PemSource,
    /// Its key path (`tls.certificates[0]`), for messages.
    pub path: String,
    /// Where it is written.
    pub origin: Origin,
}

/// One `tls.options.<name>`, Traefik's defaults filled in and its names
/// resolved to what rustls uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptionsConfig {
    /// Lowest version offered (1.2 or 1.3).
    pub min_version: TlsVersion,
    /// Highest version offered (1.2 or 1.3).
    pub max_version: TlsVersion,
    /// The TLS 1.2 suites allowed; `None` = every suite rustls has. TLS 1.3
    /// suites are always on, as in Go.
    pub cipher_suites: Option<Vec<CipherSuite>>,
    /// Key-exchange groups in preference order; `None` = rustls's.
    pub curve_preferences: Option<Vec<NamedGroup>>,
    /// ALPN protocols offered (default `h2`, `http/1.1`).
    pub alpn_protocols: Vec<String>,
    /// Client certificates.
    pub client_auth: ClientAuthType,
    /// CAs client certificates are verified against.
    pub ca_files: Vec<PemSource>,
    /// Fail a handshake whose SNI matches no certificate.
    pub sni_strict: bool,
    /// No session tickets (and so no resumption).
    pub disable_session_tickets: bool,
    /// Its key path, for messages.
    pub path: String,
    /// Where it is defined (line 0 for the built-in default).
    pub origin: Origin,
}

impl Default for TlsOptionsConfig {
    /// Traefik's default options.
    fn default() -> Self {
        TlsOptionsConfig {
            min_version: TlsVersion::Tls12,
            max_version: TlsVersion::Tls13,
            cipher_suites: None,
            curve_preferences: None,
            alpn_protocols: vec!["h2".to_owned(), "http/1.1".to_owned()],
            client_auth: ClientAuthType::NoClientCert,
            ca_files: Vec::new(),
            sni_strict: false,
            disable_session_tickets: false,
            path: "tls.options.default".to_owned(),
            origin: Origin::default(),
        }
    }
}

/// A router's `tls` section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouterTls {
    /// `tls.options` (`@file` removed); `None` = `default`.
    pub options: Option<String>,
}

// === file schema ===

/// `tls` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct TlsFile {
    certificates: Option<At<Vec<At<CertificateFile>>>>,
    options: Named<OptionsFile>,
    stores: Named<StoreFile>,
}

impl Schema for TlsFile {
    const KEYS: Spec = &[];
}

/// `tls.certificates[i]` (and `defaultCertificate`) as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct CertificateFile {
    cert_file: Option<At<String>>,
    key_file: Option<At<String>>,
    stores: Option<At<Vec<At<String>>>>,
}

impl Schema for CertificateFile {
    const KEYS: Spec = &[];
}

/// `tls.options.<name>` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct OptionsFile {
    min_version: Option<At<String>>,
    max_version: Option<At<String>>,
    cipher_suites: Option<At<Vec<At<String>>>>,
    curve_preferences: Option<At<Vec<At<String>>>>,
    client_auth: ClientAuthFile,
    sni_strict: Option<bool>,
    #[serde(rename = "alpnProtocols")]
    alpn_protocols: Option<At<Vec<At<String>>>>,
    disable_session_tickets: Option<bool>,
    prefer_server_cipher_suites: Option<At<bool>>,
}

impl Schema for OptionsFile {
    const KEYS: Spec = &[];
}

/// `clientAuth` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ClientAuthFile {
    ca_files: Option<At<Vec<At<String>>>>,
    client_auth_type: Option<At<String>>,
}

/// `tls.stores.<name>` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct StoreFile {
    default_certificate: Option<At<CertificateFile>>,
    default_generated_cert: Option<Ignored>,
}

impl Schema for StoreFile {
    const KEYS: Spec = &[(
        "defaultGeneratedCert",
        Support::Error("it needs an ACME certificate resolver"),
    )];
}

/// A router's `tls` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RouterTlsFile {
    options: Option<At<String>>,
}

impl Schema for RouterTlsFile {
    const KEYS: Spec = &[
        (
            "certResolver",
            Support::Error(
                "no ACME certificate resolver: serve a certificate from tls.certificates",
            ),
        ),
        (
            "domains",
            Support::Warn("only a certResolver uses it; certificates come from tls.certificates"),
        ),
    ];
}

/// A router's `tls`: a map, or `true`.
pub(super) type RouterTlsSection = Option<Switch<RouterTlsFile>>;

pub(super) const SCHEMAS: &[Register] = &[
    schema::<TlsFile>,
    schema::<CertificateFile>,
    schema::<OptionsFile>,
    schema::<StoreFile>,
    schema::<RouterTlsFile>,
];

// === checks ===

/// One file's `tls` section, checked.
#[derive(Default)]
pub(super) struct TlsDraft {
    pub(super) certificates: Vec<CertificateConfig>,
    pub(super) options: Vec<(String, TlsOptionsConfig)>,
    pub(super) default_certificate: Option<CertificateConfig>,
    /// Every options name defined with its key path, including those
    /// dropped for errors (their routers are disabled, `isolate`).
    pub(super) option_names: Vec<(String, String)>,
}

impl TlsDraft {
    /// Its options as elements for error isolation, `default` left out: an
    /// error there belongs to no element (every TLS connection without
    /// other options uses them), so the load is refused rather than served
    /// with Traefik's defaults.
    pub(super) fn elements(&self, file: &Path) -> Vec<Element> {
        self.option_names
            .iter()
            .filter(|(name, _)| name != DEFAULT)
            .map(|(name, path)| Element {
                kind: ElementKind::TlsOptions,
                name: name.clone(),
                file: file.to_path_buf(),
                path: path.clone(),
            })
            .collect()
    }
}

/// Every file's `tls` section merged: the first definition of an options
/// name (and of the default certificate) wins, as for the other elements.
pub(super) struct TlsMerge {
    pub(super) config: TlsConfig,
    /// Every options name defined (with errors too), and `default`.
    names: BTreeSet<String>,
}

impl Default for TlsMerge {
    fn default() -> Self {
        TlsMerge {
            config: TlsConfig::default(),
            names: BTreeSet::from([DEFAULT.to_owned()]),
        }
    }
}

impl TlsMerge {
    /// Adds one file's section.
    pub(super) fn add(&mut self, draft: TlsDraft, warnings: &mut Vec<ConfigWarning>) {
        self.names
            .extend(draft.option_names.into_iter().map(|(name, _)| name));
        self.config.certificates.extend(draft.certificates);
        if let Some(c) = draft.default_certificate {
            match &self.config.default_certificate {
                Some(kept) => warnings.push(dup_warning(
                    "default certificate",
                    "tls.stores.default.defaultCertificate",
                    &kept.origin,
                    &c.origin,
                )),
                None => self.config.default_certificate = Some(c),
            }
        }
        keep_first(
            &mut self.config.options,
            draft.options,
            "TLS options",
            |o| &o.origin,
            warnings,
        );
    }

    /// Resolves a router's `tls.options` reference `r` (in `file`) into `t`:
    /// an unknown name is an error of the router.
    pub(super) fn resolve(
        &self,
        r: &Ref,
        t: &mut RouterTls,
        file: &Path,
        errors: &mut Vec<ConfigError>,
    ) {
        match strip_provider(r, file, "TLS options", errors) {
            Some(o) if self.names.contains(&o) => t.options = Some(o),
            Some(o) => {
                let hint = suggest(&o, self.names.iter().map(String::as_str));
                errors.push(err_at(
                    file,
                    &r.path,
                    r.pos,
                    format!("unknown TLS options {o:?}{hint}"),
                ));
            }
            None => {}
        }
    }
}

/// Checks one file's `tls` section.
pub(super) fn check(ctx: &mut Ctx, file: TlsFile) -> TlsDraft {
    let mut draft = TlsDraft::default();
    if let Some(list) = file.certificates {
        for (i, item) in list.value.into_iter().enumerate() {
            if !item.ok {
                continue;
            }
            let path = format!("{}[{i}]", list.path);
            let stores = item.value.stores.clone();
            let Some(cert) = certificate(ctx, &path, item.pos, item.value) else {
                continue;
            };
            match stores.map(|s| (s.path.clone(), s.pos, s.strings())) {
                Some((spath, spos, names))
                    if !names.is_empty() && !names.iter().any(|(n, _)| n == DEFAULT) =>
                {
                    ctx.warn(
                        &spath,
                        spos,
                        "only the default store serves certificates (as in Traefik, routers use the default store); this certificate is not served",
                    );
                }
                _ => draft.certificates.push(cert),
            }
        }
    }
    for item in file.options.0 {
        draft
            .option_names
            .push((item.name.clone(), item.path.clone()));
        if let Some(o) = item.value
            && let Some(opts) = options(ctx, &item.path, item.key_pos, o)
        {
            draft.options.push((item.name, opts));
        }
    }
    for item in file.stores.0 {
        let Some(store) = item.value else { continue };
        if item.name != DEFAULT {
            ctx.warn(
                &item.path,
                item.key_pos,
                "only the default store is used (as in Traefik); this store is ignored",
            );
            continue;
        }
        let _ = store.default_generated_cert;
        if let Some(c) = store.default_certificate.filter(|c| c.ok) {
            let path = c.path.clone();
            draft.default_certificate = certificate(ctx, &path, c.key_pos, c.value);
        }
    }
    draft
}

fn certificate(
    ctx: &mut Ctx,
    path: &str,
    pos: Pos,
    file: CertificateFile,
) -> Option<CertificateConfig> {
    let mut pem = |f: Option<At<String>>, key: &str| match f {
        Some(f) if !f.ok => None,
        Some(f) if f.value.trim().is_empty() => {
            ctx.error(&f.path, f.pos, format!("{key} is empty"));
            None
        }
        Some(f) => Some(PemSource::new(&f.value)),
        None => {
            ctx.error(path, pos, format!("certificate has no {key}"));
            None
        }
    };
    let cert = pem(file.cert_file, "certFile");
    let key = pem(file.key_file, "keyFile");
    Some(CertificateConfig {
        cert: cert?,
        key: key?,
        path: path.to_owned(),
        origin: ctx.origin(pos),
    })
}

/// A version name: `None` (with a warning) for a name Go does not know,
/// which Traefik ignores.
fn version(ctx: &mut Ctx, f: &At<String>) -> Option<TlsVersion> {
    if !f.ok {
        return None;
    }
    let v = TlsVersion::from_go(f.value.trim());
    if v.is_none() {
        let hint = suggest(&f.value, names::VERSIONS.iter().copied());
        ctx.warn(
            &f.path,
            f.pos,
            format!(
                "unknown TLS version {:?}{hint}: ignored, as Traefik ignores it",
                f.value
            ),
        );
    }
    v
}

fn options(ctx: &mut Ctx, path: &str, pos: Pos, file: OptionsFile) -> Option<TlsOptionsConfig> {
    let mut o = TlsOptionsConfig {
        path: path.to_owned(),
        origin: ctx.origin(pos),
        ..TlsOptionsConfig::default()
    };
    let mut ok = true;
    if let Some(f) = &file.min_version
        && let Some(v) = version(ctx, f)
    {
        if !v.in_rustls() {
            ctx.warn(
                &f.path,
                f.pos,
                "TLS 1.0 and 1.1 are not available (rustls speaks TLS 1.2 and 1.3): the minimum is TLS 1.2",
            );
        }
        o.min_version = v.max(TlsVersion::Tls12);
    }
    if let Some(f) = &file.max_version
        && let Some(v) = version(ctx, f)
    {
        if !v.in_rustls() {
            ctx.error(
                &f.path,
                f.pos,
                "TLS 1.0 and 1.1 are not available (rustls speaks TLS 1.2 and 1.3): no version remains",
            );
            ok = false;
        }
        o.max_version = v;
    }
    if ok && o.min_version > o.max_version {
        ctx.error(path, pos, "minVersion is above maxVersion");
        ok = false;
    }
    if let Some(list) = file.cipher_suites {
        let lpath = list.path.clone();
        let lpos = list.pos;
        let (suites, valid) = cipher_suites(ctx, list);
        ok &= valid;
        if ok && suites.is_empty() && o.min_version == TlsVersion::Tls12 {
            if o.max_version == TlsVersion::Tls13 {
                ctx.warn(
                    &lpath,
                    lpos,
                    "no usable TLS 1.2 cipher suite remains: only TLS 1.3 is offered (Go ignores cipherSuites for TLS 1.3)",
                );
                o.min_version = TlsVersion::Tls13;
            } else {
                ctx.error(&lpath, lpos, "no usable TLS 1.2 cipher suite remains");
                ok = false;
            }
        }
        o.cipher_suites = Some(suites);
    }
    if let Some(list) = file.curve_preferences {
        let lpath = list.path.clone();
        let lpos = list.pos;
        let mut groups = Vec::new();
        for (name, npos) in list.strings() {
            match names::curve(&name) {
                Some(Some(g)) => groups.push(g),
                Some(None) => ctx.warn(
                    &lpath,
                    npos,
                    format!("curve {name} is not available in rustls: left out"),
                ),
                None => {
                    ctx.error(&lpath, npos, format!("invalid curve {name:?}"));
                    ok = false;
                }
            }
        }
        if ok && groups.is_empty() {
            ctx.error(&lpath, lpos, "no usable curve remains");
            ok = false;
        }
        o.curve_preferences = Some(groups);
    }
    if let Some(list) = file.alpn_protocols {
        o.alpn_protocols = list
            .strings()
            .into_iter()
            .map(|(p, _)| p)
            // Traefik's own default lists ACME's TLS-ALPN challenge; no ACME here.
            .filter(|p| p != "acme-tls/1")
            .collect();
    }
    let ca = file.client_auth;
    if let Some(list) = ca.ca_files {
        o.ca_files = list
            .strings()
            .into_iter()
            .map(|(v, _)| PemSource::new(&v))
            .collect();
        if !o.ca_files.is_empty() {
            o.client_auth = ClientAuthType::RequireAndVerifyClientCert;
        }
    }
    if let Some(f) = ca.client_auth_type.filter(|f| f.ok && !f.value.is_empty()) {
        match ClientAuthType::from_go(&f.value) {
            Some(t) if t.verifies() && o.ca_files.is_empty() => {
                ctx.error(
                    &f.path,
                    f.pos,
                    format!("clientAuthType {} needs clientAuth.caFiles", f.value),
                );
                ok = false;
            }
            Some(t) => o.client_auth = t,
            None => {
                let hint = suggest(&f.value, names::CLIENT_AUTH_TYPES.iter().copied());
                ctx.error(
                    &f.path,
                    f.pos,
                    format!("unknown client auth type {:?}{hint}", f.value),
                );
                ok = false;
            }
        }
    }
    o.sni_strict = file.sni_strict.unwrap_or(false);
    o.disable_session_tickets = file.disable_session_tickets.unwrap_or(false);
    if let Some(f) = file.prefer_server_cipher_suites {
        ctx.warn(
            &f.path,
            f.key_pos,
            "preferServerCipherSuites is deprecated and has no effect (as in Traefik): remove it",
        );
    }
    ok.then_some(o)
}

/// A router's `tls` options reference, if any.
pub(super) fn router_options(section: RouterTlsFile) -> Option<At<String>> {
    section.options.filter(|f| f.ok && !f.value.is_empty())
}

/// The TLS 1.2 suites a `cipherSuites` list names (Go's names; TLS 1.3
/// suites are always on, as in Go), warning about those rustls lacks;
/// false when a name is not a Go cipher suite (an error, reported).
pub(super) fn cipher_suites(ctx: &mut Ctx, list: At<Vec<At<String>>>) -> (Vec<CipherSuite>, bool) {
    let path = list.path.clone();
    let mut suites = Vec::new();
    let mut valid = true;
    for (name, npos) in list.strings() {
        match names::cipher_suite(&name) {
            Some(SuiteName::Tls12(s)) => suites.push(s),
            Some(SuiteName::Tls13) => {}
            Some(SuiteName::Unsupported) => ctx.warn(
                &path,
                npos,
                format!("cipher suite {name} is not available in rustls (no CBC, RC4, 3DES or RSA key exchange): left out"),
            ),
            None => {
                ctx.error(&path, npos, format!("invalid cipher suite {name:?}"));
                valid = false;
            }
        }
    }
    (suites, valid)
}
