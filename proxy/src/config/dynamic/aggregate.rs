//! Several providers at once, as Traefik's `mergeConfiguration` joins
//! them: every element a provider other than `file` defines is named
//! `<name>@<provider>` (`api@redis`), a reference written without a
//! provider names the referring element's own provider, and one written
//! with one (`auth@file`, `api@redis`) names that provider's element. The
//! file provider's elements keep their bare names here (the API and
//! metrics add `@file`, [`qualified`]). TLS options other than `default`
//! are qualified like elements; certificates are joined.
//!
//! The providers' drafts are merged and cross-checked together (one
//! `merge::finish`), so a reference from one provider to another is
//! resolved, and an error disables only its element, as in one file.
//!
//! A provider other than the file one gives its configuration whole or
//! not at all: [`check_source`] refuses an update that does not decode
//! (a value of the wrong type, an unknown key: Traefik's decoder fails
//! the same way), and the provider keeps its last good one.
//!
//! Control plane only: runs per reload, never per request.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::super::error::{ConfigError, ConfigWarning};
use super::super::node::Format;
use super::super::read_file;
use super::super::static_config::FileProviderConfig;
use super::{FileDraft, Loaded, Ref, RuleSyntax, decode_file, dynamic_paths, finish, kv};

/// The providers (other than `file`) a reference may name.
pub const EXTERNAL_PROVIDERS: [&str; 3] = ["http", "redis", "etcd"];

/// `name` as the API, metrics and logs show it: with its provider, `@file`
/// when it has none.
pub fn qualified(name: &str) -> Cow<'_, str> {
    if name.contains('@') {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(format!("{name}@file"))
    }
}

/// What one provider other than `file` last gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderSource {
    /// A document (the HTTP provider's answer), decoded as YAML (JSON is
    /// YAML); `origin` (its endpoint) names it in messages.
    Text {
        /// Where it came from, for messages.
        origin: String,
        /// The document.
        text: String,
    },
    /// Key-value pairs in Traefik's layout (Redis, etcd).
    Kv {
        /// The store, for messages (`redis`).
        origin: String,
        /// The provider's `rootKey`.
        root_key: String,
        /// Every key under the root key, with its value.
        pairs: Vec<(String, String)>,
    },
}

/// One provider's contribution: its name (`redis`) and configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// The provider's name, the suffix of its elements.
    pub provider: String,
    /// What it gave.
    pub source: ProviderSource,
}

/// The file provider's files as read: each path with its text, or the
/// errors of reading them.
pub type FileTexts = Result<Vec<(PathBuf, String, Format)>, Vec<ConfigError>>;

/// Reads the file provider's files (`None`: no file provider).
pub fn read_file_provider(file: Option<&FileProviderConfig>) -> Option<FileTexts> {
    let file = file?;
    let paths = match dynamic_paths(file) {
        Ok(paths) => paths,
        Err(e) => return Some(Err(vec![e])),
    };
    let mut texts = Vec::with_capacity(paths.len());
    let mut errors = Vec::new();
    for path in paths {
        match read_file(&path) {
            Ok((text, format)) => texts.push((path, text, format)),
            Err(e) => errors.extend(e.0),
        }
    }
    Some(if errors.is_empty() {
        Ok(texts)
    } else {
        Err(errors)
    })
}

/// Whether `source` decodes: its errors otherwise (each naming its key),
/// for the provider to keep its last good configuration. References are
/// not checked here (they may name another provider's elements).
pub fn check_source(source: &ProviderSource, default_rule_syntax: RuleSyntax) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut names = None;
    decode_source(
        source,
        default_rule_syntax,
        &mut errors,
        &mut warnings,
        &mut names,
    );
    if let Some(names) = names {
        names.name(&mut errors, &mut warnings);
    }
    errors
}

/// Decodes `source` into its draft; the KV key names to give its errors
/// once merged.
fn decode_source(
    source: &ProviderSource,
    default_rule_syntax: RuleSyntax,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigWarning>,
    names: &mut Option<kv::KeyNames>,
) -> FileDraft {
    match source {
        ProviderSource::Text { origin, text } => decode_file(
            text,
            Format::Yaml,
            Path::new(origin),
            default_rule_syntax,
            errors,
            warnings,
        ),
        ProviderSource::Kv {
            origin,
            root_key,
            pairs,
        } => {
            let (draft, key_names) = kv::draft(
                origin,
                root_key,
                pairs,
                default_rule_syntax,
                errors,
                warnings,
            );
            *names = Some(key_names);
            draft
        }
    }
}

/// The configuration of every provider, merged and cross-checked as
/// Traefik does: the file provider's files (`None`: no file provider) and
/// the others' last good configurations.
pub fn load_providers(
    files: Option<&FileTexts>,
    others: &[ProviderConfig],
    entry_points: &[String],
    default_rule_syntax: RuleSyntax,
) -> Loaded {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut drafts = Vec::new();
    match files {
        None => {}
        Some(Err(e)) => errors.extend(e.iter().cloned()),
        Some(Ok(texts)) => {
            for (path, text, format) in texts {
                drafts.push(decode_file(
                    text,
                    *format,
                    path,
                    default_rule_syntax,
                    &mut errors,
                    &mut warnings,
                ));
            }
        }
    }
    let mut key_names = Vec::new();
    for p in others {
        let mut names = None;
        let mut draft = decode_source(
            &p.source,
            default_rule_syntax,
            &mut errors,
            &mut warnings,
            &mut names,
        );
        draft.qualify(&p.provider);
        drafts.push(draft);
        key_names.extend(names);
    }
    let mut loaded = finish(drafts, entry_points, errors, warnings);
    for names in &key_names {
        names.name(&mut loaded.errors, &mut loaded.warnings);
    }
    if files.is_none() && others.is_empty() {
        loaded.usable = true;
    }
    loaded
}

// === qualifying one provider's draft ===

/// `name@provider`.
fn own(name: &str, provider: &str) -> String {
    format!("{name}@{provider}")
}

impl Ref {
    /// A reference without a provider names one of `provider`'s.
    fn qualify(&mut self, provider: &str) {
        if !self.name.contains('@') {
            self.name = own(&self.name, provider);
        }
    }
}

impl FileDraft {
    /// Names every element `<name>@<provider>` and qualifies the
    /// references written without a provider, as Traefik's aggregator and
    /// `provider.GetQualifiedName` do. Entrypoints are not qualified, nor
    /// the `default` TLS options.
    fn qualify(&mut self, provider: &str) {
        for (name, r) in &mut self.routers {
            *name = own(name, provider);
            r.config.name.clone_from(name);
            r.qualify(provider);
        }
        for (name, s) in &mut self.services {
            *name = own(name, provider);
            s.qualify(provider);
        }
        for (name, _) in &mut self.transports {
            *name = own(name, provider);
        }
        for (name, _) in &mut self.middlewares {
            *name = own(name, provider);
        }
        for (name, m) in &mut self.middleware_drafts {
            *name = own(name, provider);
            m.for_each_ref(|r| r.qualify(provider));
        }
        for name in self
            .service_names
            .iter_mut()
            .chain(&mut self.transport_names)
        {
            *name = own(name, provider);
        }
        let tls = &mut self.tls;
        let options = tls.options.iter_mut().map(|(n, _)| n);
        for name in options.chain(tls.option_names.iter_mut().map(|(n, _)| n)) {
            if *name != super::tls::DEFAULT {
                *name = own(name, provider);
            }
        }
        for e in &mut self.elements {
            if e.kind != super::ElementKind::TlsOptions || e.name != super::tls::DEFAULT {
                e.name = own(&e.name, provider);
            }
        }
    }
}

impl super::routers::RouterDraft {
    fn qualify(&mut self, provider: &str) {
        for r in self
            .service
            .iter_mut()
            .chain(&mut self.middlewares)
            .chain(&mut self.parent_refs)
        {
            r.qualify(provider);
        }
        if let Some(r) = &mut self.tls_options
            && r.name != super::tls::DEFAULT
        {
            r.qualify(provider);
        }
    }
}

impl super::services::ServiceDraft {
    fn qualify(&mut self, provider: &str) {
        for r in self
            .transport
            .iter_mut()
            .chain(&mut self.children)
            .chain(&mut self.middlewares)
        {
            r.qualify(provider);
        }
    }
}
