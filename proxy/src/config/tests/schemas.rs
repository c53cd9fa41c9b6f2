//! The decoder on schemas still to come: a middleware enum with `headers`,
//! `addPrefix` and `stripPrefix`, a `weighted` service with sticky cookies
//! and a health check, and TLS options, each written as the workstream
//! that builds it would write it (a derived struct and, where needed, a key
//! table). None of these is a feature yet; the tests show that such a
//! schema needs no decoder code, and pin the decoder's rules.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::super::decode::{
    At, Ctx, Named, Register, Schema, Spec, Support, Switch, decode, schema,
};
use super::super::node::{Format, Pos, parse};

// === the schemas ===

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Root {
    http: Http,
    tls: Tls,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Http {
    middlewares: Named<Middleware>,
    services: Named<Service>,
}

/// One of the middleware types; `basicAuth` is known but not built.
#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Middleware {
    Headers(Headers),
    AddPrefix(AddPrefix),
    StripPrefix(StripPrefix),
}

impl Schema for Middleware {
    const KEYS: Spec = &[("basicAuth", Support::Error(""))];
    const NOUN: &'static str = "middleware";
}

/// Part of Traefik's `headers` middleware.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Headers {
    custom_request_headers: BTreeMap<String, String>,
    access_control_allow_methods: Vec<String>,
    access_control_max_age: i64,
    sts_seconds: i64,
    #[serde(rename = "forceSTSHeader")]
    force_sts_header: bool,
    frame_deny: bool,
    #[serde(rename = "customBrowserXSSValue")]
    custom_browser_xss_value: String,
}

impl Schema for Headers {
    const KEYS: Spec = &[
        (
            "featurePolicy",
            Support::Warn("deprecated; use permissionsPolicy"),
        ),
        (
            "sslRedirect",
            Support::Error("use a redirectScheme middleware"),
        ),
    ];
}

/// A required field: an `addPrefix` without `prefix` cannot be built.
#[derive(Debug, PartialEq, Deserialize)]
struct AddPrefix {
    prefix: String,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct StripPrefix {
    prefixes: Vec<String>,
    force_slash: Option<bool>,
}

/// One field per service type, as `ServiceFile` has.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Service {
    weighted: Option<Weighted>,
    load_balancer: Option<LoadBalancer>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Weighted {
    services: Vec<WeightedService>,
    sticky: Option<Sticky>,
    health_check: Option<Switch<Empty>>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
struct WeightedService {
    name: String,
    weight: Option<u32>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
struct Sticky {
    cookie: Option<Cookie>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Cookie {
    name: Option<String>,
    secure: bool,
    http_only: bool,
    same_site: Option<SameSite>,
    max_age: i64,
}

/// A value named by a string, any case.
#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SameSite {
    None,
    Lax,
    Strict,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
struct Empty {}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct LoadBalancer {
    health_check: Option<HealthCheck>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct HealthCheck {
    path: String,
    interval: Option<Duration>,
    timeout: Option<Duration>,
    status: Option<u16>,
    follow_redirects: Option<bool>,
    headers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Tls {
    options: Named<TlsOptions>,
    certificates: Vec<At<Certificate>>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct TlsOptions {
    min_version: Option<String>,
    cipher_suites: Vec<String>,
    client_auth: ClientAuth,
    sni_strict: bool,
    alpn_protocols: Vec<String>,
}

impl Schema for TlsOptions {
    const KEYS: Spec = &[(
        "preferServerCipherSuites",
        Support::Warn("deprecated; the server's order always wins"),
    )];
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ClientAuth {
    ca_files: Vec<String>,
    client_auth_type: Option<String>,
}

/// Go inlines the certificate into `CertAndStores`; here it is one struct.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Certificate {
    cert_file: String,
    key_file: String,
    stores: Vec<String>,
}

const SCHEMAS: &[Register] = &[
    schema::<Middleware>,
    schema::<Headers>,
    schema::<TlsOptions>,
];

// === helpers ===

/// Decodes `text` into `T`: the value, then errors and warnings rendered.
fn run<T: DeserializeOwned>(text: &str, format: Format) -> (Option<T>, Vec<String>, Vec<String>) {
    let file = Path::new(match format {
        Format::Yaml => "t.yml",
        Format::Toml => "t.toml",
    });
    let root = parse(text, format, file).unwrap();
    let mut ctx = Ctx::new(file, &[SCHEMAS]);
    let value = decode::<T>(&mut ctx, &root);
    let render = |v: &[String]| v.to_vec();
    let errors: Vec<String> = ctx.errors.iter().map(ToString::to_string).collect();
    let warnings: Vec<String> = ctx.warnings.iter().map(ToString::to_string).collect();
    (value, render(&errors), render(&warnings))
}

fn middleware<'a>(root: &'a Root, name: &str) -> Option<&'a Middleware> {
    let item = root.http.middlewares.0.iter().find(|i| i.name == name)?;
    item.value.as_ref()
}

// === middlewares ===

const MIDDLEWARES_YAML: &str = r#"
http:
  middlewares:
    secure:
      Headers:
        customRequestHeaders:
          X-Script-Name: test
          x-empty: ""
        accessControlAllowMethods: GET,OPTIONS, PUT
        accessControlMaxAge: "100"
        stsSeconds: 31536000
        forceStsHeader: 1
        FRAMEDENY: "true"
        customBrowserXSSValue: 1; mode=block
    add:
      addPrefix:
        prefix: /api
    strip:
      stripPrefix:
        prefixes: [/a, /b]
"#;

const MIDDLEWARES_TOML: &str = r#"
[http.middlewares.secure.Headers]
accessControlAllowMethods = "GET,OPTIONS, PUT"
accessControlMaxAge = "100"
stsSeconds = 31536000
forceStsHeader = 1
FRAMEDENY = "true"
customBrowserXSSValue = "1; mode=block"
[http.middlewares.secure.Headers.customRequestHeaders]
X-Script-Name = "test"
x-empty = ""

[http.middlewares.add.addPrefix]
prefix = "/api"

[http.middlewares.strip.stripPrefix]
prefixes = ["/a", "/b"]
"#;

#[test]
fn a_middleware_schema_is_a_derived_struct() {
    for (text, format) in [
        (MIDDLEWARES_YAML, Format::Yaml),
        (MIDDLEWARES_TOML, Format::Toml),
    ] {
        let (root, errors, warnings) = run::<Root>(text, format);
        assert!(
            errors.is_empty() && warnings.is_empty(),
            "{errors:?} {warnings:?}"
        );
        let root = root.unwrap();
        let Some(Middleware::Headers(h)) = middleware(&root, "secure") else {
            panic!("{format:?}: {:?}", root.http.middlewares);
        };
        // Header names are user data: kept as written.
        assert_eq!(
            h.custom_request_headers,
            BTreeMap::from([
                ("X-Script-Name".to_owned(), "test".to_owned()),
                ("x-empty".to_owned(), String::new()),
            ])
        );
        // paerser's scalars: a comma list, quoted numbers, 1 and "true".
        assert_eq!(h.access_control_allow_methods, ["GET", "OPTIONS", "PUT"]);
        assert_eq!((h.access_control_max_age, h.sts_seconds), (100, 31536000));
        assert!(h.force_sts_header && h.frame_deny);
        assert_eq!(h.custom_browser_xss_value, "1; mode=block");
        assert_eq!(
            middleware(&root, "add"),
            Some(&Middleware::AddPrefix(AddPrefix {
                prefix: "/api".to_owned()
            }))
        );
        assert_eq!(
            middleware(&root, "strip"),
            Some(&Middleware::StripPrefix(StripPrefix {
                prefixes: vec!["/a".to_owned(), "/b".to_owned()],
                force_slash: None,
            }))
        );
    }
}

#[test]
fn every_error_of_a_middleware_schema_is_reported_with_its_place() {
    let text = r#"
http:
  middlewares:
    h:
      headers:
        frameDenny: true
        stsSeconds: soon
        accessControlAllowMethods: {GET: 1}
        featurePolicy: x
        sslRedirect: true
        customRequestHeaders: [a]
    noprefix:
      addPrefix: {}
    typo:
      addPrefx: {prefix: /x}
    refused:
      basicAuth: {users: [a]}
    none: {}
    two:
      addPrefix: {prefix: /a}
      stripPrefix: {prefixes: [/b]}
    good:
      stripPrefix: {prefixes: /c, forceSlash: maybe}
"#;
    let (root, errors, warnings) = run::<Root>(text, Format::Yaml);
    assert_eq!(
        errors,
        [
            "t.yml:6:9: http.middlewares.h.headers.frameDenny: unknown key \"frameDenny\" (did you mean \"frameDeny\"?)",
            "t.yml:10:9: http.middlewares.h.headers.sslRedirect: not supported yet: use a redirectScheme middleware",
            "t.yml:7:21: http.middlewares.h.headers.stsSeconds: expected an integer, found \"soon\"",
            "t.yml:8:36: http.middlewares.h.headers.accessControlAllowMethods: expected a list, found a map",
            "t.yml:11:31: http.middlewares.h.headers.customRequestHeaders: expected a map, found a list",
            "t.yml:13:18: http.middlewares.noprefix.addPrefix: missing key \"prefix\"",
            "t.yml:15:7: http.middlewares.typo.addPrefx: unknown middleware type \"addPrefx\" (did you mean \"addPrefix\"?)",
            "t.yml:17:7: http.middlewares.refused.basicAuth: middleware type \"basicAuth\" is not supported yet",
            "t.yml:18:5: http.middlewares.none: middleware has no type",
            "t.yml:19:5: http.middlewares.two: a middleware must have exactly one type",
            "t.yml:23:47: http.middlewares.good.stripPrefix.forceSlash: expected a boolean (true or false), found \"maybe\"",
        ]
    );
    assert_eq!(
        warnings,
        [
            "t.yml:9:9: http.middlewares.h.headers.featurePolicy: not supported yet; ignored (deprecated; use permissionsPolicy)"
        ]
    );
    // Every item is still defined; only those that could be built have a
    // value (a wrong scalar is replaced, so `h` and `good` are built).
    let root = root.unwrap();
    let names: Vec<(&str, bool)> = root
        .http
        .middlewares
        .0
        .iter()
        .map(|i| (i.name.as_str(), i.value.is_some()))
        .collect();
    assert_eq!(
        names,
        [
            ("h", true),
            ("noprefix", false),
            ("typo", false),
            ("refused", false),
            ("none", false),
            ("two", false),
            ("good", true),
        ]
    );
}

// === services ===

#[test]
fn a_service_schema_with_lists_enums_and_durations() {
    let text = r#"
http:
  services:
    wrr:
      weighted:
        services:
          - name: a
            weight: "3"
          - name: b
        sticky:
          cookie:
            name: lb
            httpOnly: true
            sameSite: Lax
            maxAge: -1
        healthCheck: {}
    app:
      loadBalancer:
        healthCheck:
          path: /health
          interval: 10s
          timeout: 3
          status: 200
          followRedirects: "false"
          headers:
            Host: example.com
"#;
    let (root, errors, _) = run::<Root>(text, Format::Yaml);
    assert!(errors.is_empty(), "{errors:?}");
    let services = root.unwrap().http.services.0;
    let wrr = services[0]
        .value
        .as_ref()
        .unwrap()
        .weighted
        .as_ref()
        .unwrap();
    assert_eq!(
        wrr.services,
        [
            WeightedService {
                name: "a".to_owned(),
                weight: Some(3)
            },
            WeightedService {
                name: "b".to_owned(),
                weight: None
            },
        ]
    );
    let cookie = wrr.sticky.as_ref().unwrap().cookie.as_ref().unwrap();
    assert_eq!(cookie.name.as_deref(), Some("lb"));
    assert!(cookie.http_only && !cookie.secure);
    assert_eq!(
        (cookie.same_site.as_ref(), cookie.max_age),
        (Some(&SameSite::Lax), -1)
    );
    assert_eq!(wrr.health_check, Some(Switch::On(Empty {})));
    let lb = services[1].value.as_ref().unwrap().load_balancer.as_ref();
    let hc = lb.unwrap().health_check.as_ref().unwrap();
    assert_eq!(hc.path, "/health");
    assert_eq!(hc.interval, Some(Duration::from_secs(10)));
    assert_eq!(hc.timeout, Some(Duration::from_secs(3)));
    assert_eq!((hc.status, hc.follow_redirects), (Some(200), Some(false)));
    assert_eq!(hc.headers["Host"], "example.com");
}

#[test]
fn service_schema_errors() {
    let text = r#"
http:
  services:
    wrr:
      weighted:
        services:
          - name: a
            weight: -3
          - nme: b
        sticky:
          cookie:
            sameSite: sideways
    app:
      loadBalancer:
        healthCheck:
          interval: 1.5
          timeout: 10 seconds
          status: 70000
"#;
    let (_, errors, _) = run::<Root>(text, Format::Yaml);
    assert_eq!(
        errors,
        [
            "t.yml:8:21: http.services.wrr.weighted.services[0].weight: must not be negative, found -3",
            "t.yml:9:13: http.services.wrr.weighted.services[1].nme: unknown key \"nme\" (did you mean \"name\"?)",
            "t.yml:12:23: http.services.wrr.weighted.sticky.cookie.sameSite: unknown value \"sideways\" (expected \"none\", \"lax\" or \"strict\")",
            "t.yml:16:21: http.services.app.loadBalancer.healthCheck.interval: invalid duration 1.5: a number is a count of whole seconds; write e.g. \"1500ms\"",
            "t.yml:17:20: http.services.app.loadBalancer.healthCheck.timeout: invalid duration \"10 seconds\": unknown unit (expected ns, us, ms, s, m or h)",
            "t.yml:18:19: http.services.app.loadBalancer.healthCheck.status: 70000 is too large (maximum 65535)",
        ]
    );
}

// === TLS ===

#[test]
fn tls_options_and_certificates() {
    let text = r#"
[tls.options.default]
minVersion = "VersionTLS12"
cipherSuites = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"]
sniStrict = true
preferServerCipherSuites = true
[tls.options.default.clientAuth]
caFiles = ["ca.pem"]
clientAuthType = "RequireAndVerifyClientCert"

[tls.options.h2only]
alpnProtocols = "h2"

[[tls.certificates]]
certFile = "a.crt"
keyFile = "a.key"
stores = ["default"]
[[tls.certificates]]
certFile = "b.crt"
keyFile = "b.key"
"#;
    let (root, errors, warnings) = run::<Root>(text, Format::Toml);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        warnings,
        [
            "t.toml:6:1: tls.options.default.preferServerCipherSuites: not supported yet; ignored (deprecated; the server's order always wins)"
        ]
    );
    let tls = root.unwrap().tls;
    let default = tls.options.0[0].value.as_ref().unwrap();
    assert_eq!(default.min_version.as_deref(), Some("VersionTLS12"));
    assert_eq!(default.cipher_suites.len(), 2);
    assert!(default.sni_strict);
    assert_eq!(default.client_auth.ca_files, ["ca.pem"]);
    assert_eq!(tls.options.0[1].name, "h2only");
    assert_eq!(
        tls.options.0[1].value.as_ref().unwrap().alpn_protocols,
        ["h2"]
    );
    // Each certificate keeps where it is written (its `[[...]]` line).
    let certs: Vec<(&str, u32, &str)> = tls
        .certificates
        .iter()
        .map(|c| (c.value.cert_file.as_str(), c.pos.line, c.path.as_str()))
        .collect();
    assert_eq!(
        certs,
        [
            ("a.crt", 14, "tls.certificates[0]"),
            ("b.crt", 18, "tls.certificates[1]")
        ]
    );
}

// === decoder rules ===

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Probe {
    name: Option<At<String>>,
    count: Option<At<u32>>,
    section: Option<Switch<Empty>>,
    nested: Nested,
    list: Vec<At<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Nested {
    a: Option<String>,
    b: Option<String>,
}

#[test]
fn positions_and_failed_values() {
    let (probe, errors, _) = run::<Probe>(
        "name: 'quoted'\ncount: lots\nlist: [x, {y: 1}]\n",
        Format::Yaml,
    );
    let probe = probe.unwrap();
    let name = probe.name.unwrap();
    assert_eq!(name.ok(), Some(&"quoted".to_owned()));
    // Inside the quotes; the key at the line start.
    assert_eq!(name.pos, Pos { line: 1, column: 8 });
    assert_eq!(name.key_pos, Pos { line: 1, column: 1 });
    assert_eq!(name.path, "name");
    // A value with an error of its own is not ok, and says so once.
    let count = probe.count.unwrap();
    assert!(!count.ok && count.ok().is_none());
    assert_eq!(
        errors,
        [
            "t.yml:2:8: count: expected an integer, found \"lots\"",
            "t.yml:3:11: list[1]: expected a string, found a map"
        ]
    );
    assert!(probe.list[0].ok && !probe.list[1].ok);
}

#[test]
fn switches() {
    for (text, want) in [
        ("section: true\n", Some(Switch::On(Empty {}))),
        ("section: \"false\"\n", Some(Switch::Off)),
        ("section:\n", Some(Switch::On(Empty {}))),
        ("section: {}\n", Some(Switch::On(Empty {}))),
        ("{}\n", None),
    ] {
        let (probe, errors, _) = run::<Probe>(text, Format::Yaml);
        assert!(errors.is_empty(), "{text}: {errors:?}");
        assert_eq!(probe.unwrap().section, want, "{text}");
    }
    let (_, errors, _) = run::<Probe>("section: [1]\n", Format::Yaml);
    assert_eq!(
        errors,
        ["t.yml:1:10: section: expected a map, found a list"]
    );
}

#[test]
fn two_spellings_of_a_key() {
    // Two maps merge, as paerser fills one field from both.
    let (probe, errors, _) = run::<Probe>("nested: {a: x}\nNESTED: {b: y}\n", Format::Yaml);
    assert!(errors.is_empty(), "{errors:?}");
    let nested = probe.unwrap().nested;
    assert_eq!(
        (nested.a.as_deref(), nested.b.as_deref()),
        (Some("x"), Some("y"))
    );
    // Two scalars: which one wins would be a guess.
    let (_, errors, _) = run::<Probe>("name: a\nName: b\n", Format::Yaml);
    assert_eq!(
        errors,
        [
            "t.yml:2:1: Name: duplicate key \"Name\" (keys are case-insensitive; first set as \"name\" on line 1)"
        ]
    );
}

/// A type whose own `Deserialize` refuses a value: its error is reported
/// at the value, and decoding goes on around it.
#[derive(Debug, Default, PartialEq)]
struct Even(u32);

impl<'de> Deserialize<'de> for Even {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u32::deserialize(d)?;
        if n % 2 == 0 {
            Ok(Even(n))
        } else {
            Err(serde::de::Error::custom(format!("{n} is odd")))
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Evens {
    first: At<Even>,
    second: At<Even>,
    named: Named<Even>,
}

#[test]
fn a_custom_type_refusing_a_value() {
    let (evens, errors, _) =
        run::<Evens>("first: 3\nsecond: 4\nnamed: {a: 5, b: 6}\n", Format::Yaml);
    assert_eq!(
        errors,
        [
            "t.yml:1:8: first: 3 is odd",
            "t.yml:3:12: named.a: 5 is odd"
        ]
    );
    let evens = evens.unwrap();
    assert!(!evens.first.ok);
    assert_eq!(evens.second.ok(), Some(&Even(4)));
    let named: Vec<(&str, Option<&Even>)> = evens
        .named
        .0
        .iter()
        .map(|i| (i.name.as_str(), i.value.as_ref()))
        .collect();
    assert_eq!(named, [("a", None), ("b", Some(&Even(6)))]);
}
