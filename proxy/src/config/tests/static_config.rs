//! The static model: entrypoints, providers, observability.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::super::*;
use super::support::*;

#[test]
fn static_defaults() {
    let (c, w) = static_yaml("").unwrap();
    assert!(w.is_empty());
    assert_eq!(c.entry_points.len(), 1);
    let http = &c.entry_points[0];
    assert_eq!(http.name, "http");
    assert_eq!(http.address, ":80");
    assert_eq!(http.addr, "0.0.0.0:80".parse().unwrap());
    let t = &http.transport;
    assert_eq!(t.responding_timeouts.read_timeout, Duration::from_secs(60));
    assert_eq!(t.responding_timeouts.write_timeout, Duration::ZERO);
    assert_eq!(t.responding_timeouts.idle_timeout, Duration::from_secs(180));
    assert_eq!(t.life_cycle.request_accept_grace_timeout, Duration::ZERO);
    assert_eq!(t.life_cycle.grace_time_out, Duration::from_secs(10));
    assert_eq!(t.keep_alive_max_requests, 0);
    assert_eq!(t.keep_alive_max_time, Duration::ZERO);
    assert_eq!(c.providers.file, None);
    assert_eq!(
        c.providers.providers_throttle_duration,
        Duration::from_secs(2)
    );
    assert_eq!(c.log.level, LogLevel::Error);
    assert_eq!(c.log.format, LogFormat::Common);
    assert_eq!(c.access_log, None);
    assert_eq!(c.metrics.prometheus, None);
    assert_eq!(c.ping, None);
}

#[test]
fn static_full() {
    let text = r#"
global:
  checkNewVersion: false
  sendAnonymousUsage: false
entryPoints:
  websecure:
    address: "127.0.0.1:0"
    asDefault: true
    forwardedHeaders:
      trustedIPs: ["10.0.0.0/8", "fd00::/8", 192.168.1.1]
      insecure: false
  web:
    address: ":8000/tcp"
    transport:
      respondingTimeouts:
        readTimeout: 5s
        writeTimeout: 10
        idleTimeout: 1m
      lifeCycle:
        requestAcceptGraceTimeout: 2s
        graceTimeOut: 30s
      keepAliveMaxRequests: 100
      keepAliveMaxTime: 1h
providers:
  providersThrottleDuration: 500ms
  file:
    filename: dynamic.yml
    watch: false
log:
  level: debug
  format: json
  filePath: /var/log/traefik.log
accessLog:
  bufferingSize: 100
metrics:
  prometheus:
    buckets: [0.05, 0.5, 2]
    addRoutersLabels: true
    entryPoint: web
ping: {}
"#;
    let (c, w) = static_yaml(text).unwrap();
    assert!(w.is_empty(), "{w:?}");
    // Sorted by name; ping on `traefik` adds the internal entrypoint.
    let names = c.entry_point_names();
    assert_eq!(names, vec!["traefik", "web", "websecure"]);
    assert_eq!(c.default_entry_points(), vec!["websecure"]);
    let web = c.entry_point("web").unwrap();
    assert_eq!(web.addr, "0.0.0.0:8000".parse().unwrap());
    assert_eq!((web.origin.line, web.origin.column), (12, 3));
    let t = &web.transport;
    assert_eq!(t.responding_timeouts.read_timeout, Duration::from_secs(5));
    assert_eq!(t.responding_timeouts.write_timeout, Duration::from_secs(10));
    assert_eq!(t.responding_timeouts.idle_timeout, Duration::from_secs(60));
    assert_eq!(
        t.life_cycle.request_accept_grace_timeout,
        Duration::from_secs(2)
    );
    assert_eq!(t.life_cycle.grace_time_out, Duration::from_secs(30));
    assert_eq!(t.keep_alive_max_requests, 100);
    assert_eq!(t.keep_alive_max_time, Duration::from_secs(3600));
    let ws = c.entry_point("websecure").unwrap();
    assert_eq!(ws.addr, "127.0.0.1:0".parse().unwrap());
    let ips = &ws.forwarded_headers.trusted_ips;
    assert_eq!(ips.len(), 3);
    assert!(ips[0].contains("10.9.8.7".parse().unwrap()));
    assert!(ips[1].contains("fd00::1".parse().unwrap()));
    assert_eq!(ips[2].prefix_len(), 32);
    let traefik = c.entry_point("traefik").unwrap();
    assert_eq!(traefik.addr, "0.0.0.0:8080".parse().unwrap());
    assert_eq!(traefik.origin.line, 0);

    let file = c.providers.file.as_ref().unwrap();
    assert_eq!(file.filename, Some(PathBuf::from("dynamic.yml")));
    assert!(!file.watch);
    assert_eq!(
        c.providers.providers_throttle_duration,
        Duration::from_millis(500)
    );
    assert_eq!(c.log.level, LogLevel::Debug);
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.log.file_path, Some(PathBuf::from("/var/log/traefik.log")));
    let al = c.access_log.as_ref().unwrap();
    assert_eq!(
        (al.file_path.as_ref(), al.format, al.buffering_size),
        (None, LogFormat::Common, 100)
    );
    let p = c.metrics.prometheus.as_ref().unwrap();
    assert_eq!(p.buckets, vec![0.05, 0.5, 2.0]);
    assert!(p.add_routers_labels && p.add_entry_points_labels && p.add_services_labels);
    assert_eq!(p.entry_point, "web");
    let ping = c.ping.as_ref().unwrap();
    assert_eq!(ping.entry_point, "traefik");
    assert_eq!(ping.terminating_status_code, 503);
}

#[test]
fn implicit_entry_points() {
    // Prometheus with defaults needs `traefik`; user entrypoints suppress `http`.
    let (c, _) =
        static_yaml("entryPoints:\n  web:\n    address: ':80'\nmetrics:\n  prometheus: {}\n")
            .unwrap();
    assert_eq!(c.entry_point_names(), vec!["traefik", "web"]);
    let p = c.metrics.prometheus.as_ref().unwrap();
    assert_eq!(p.buckets, vec![0.1, 0.3, 1.2, 5.0]);
    assert!(!p.add_routers_labels);
    // Nothing needs it: no `traefik`; none defined: the default `http`.
    let (c, _) = static_yaml("ping:\n  entryPoint: http\n").unwrap();
    assert_eq!(c.entry_point_names(), vec!["http"]);
    // Manual routing doesn't need it either.
    let (c, _) = static_yaml("ping:\n  manualRouting: true\n").unwrap();
    assert_eq!(c.entry_point_names(), vec!["http"]);
    // api.insecure creates it too.
    let (c, w) = static_yaml("api:\n  insecure: true\n").unwrap();
    assert_eq!(c.entry_point_names(), vec!["http", "traefik"]);
    assert!(w.is_empty(), "{w:?}");
    // ...but routers never attach to it by default, as in Traefik.
    assert_eq!(c.default_entry_points(), vec!["http"]);
    // A user-defined `traefik` is kept as is.
    let (c, _) =
        static_yaml("entryPoints:\n  traefik:\n    address: ':9000'\nping: true\n").unwrap();
    assert_eq!(c.entry_point("traefik").unwrap().address, ":9000");
    // ping on an unknown entrypoint.
    let e = errs(static_yaml(
        "entryPoints:\n  web:\n    address: ':80'\nping:\n  entryPoint: wbe\n",
    ));
    assert_has(
        &e,
        "ping.entryPoint: unknown entrypoint \"wbe\" (did you mean \"web\"?)",
    );
}

#[test]
fn static_errors_and_warnings() {
    let text = r#"
entryPoints:
  dns:
    address: ":53/udp"
  pp:
    address: ":81"
    proxyProtocol:
      trustedIPs: [127.0.0.1, 300.1.1.1]
  sec:
    address: ":443"
    http:
      tls: {}
      middlewares: [a]
      redirections: {}
      encodeQuerySemicolons: true
    http3: {}
  bad:
    address: ":99999"
  noaddr: {}
  ips:
    address: ":82"
    forwardedHeaders:
      trustedIPs: ["10.0.0.0/33"]
    transport:
      respondingTimeouts:
        readTimeout: soon
providers:
  docker: {}
  file:
    filename: a.yml
    directory: dir
log:
  level: LOUD
  format: xml
core:
  defaultRuleSyntax: v4
http:
  routers: {}
tracing: {}
experimental: {}
certificatesResolvers: {}
entrypoint: {}
"#;
    let e = errs(static_yaml(text));
    assert_has(
        &e,
        "traefik.yml:4:15: entryPoints.dns.address: UDP entrypoints are not supported yet",
    );
    // proxyProtocol is built: only its bad range is an error.
    assert!(
        e.iter().any(|l| l.starts_with("traefik.yml:8:")
            && l.contains("entryPoints.pp.proxyProtocol.trustedIPs")
            && l.contains("300.1.1.1")),
        "{e:?}"
    );
    // Entrypoint TLS, redirections and middlewares are built now.
    assert!(
        !e.iter().any(|l| l.contains("sec.http.tls")
            || l.contains("sec.http.redirections")
            || l.contains("sec.http.middlewares")),
        "{e:?}"
    );
    assert_has(&e, "entryPoints.bad.address: invalid port \"99999\"");
    assert_has(
        &e,
        "traefik.yml:19:3: entryPoints.noaddr: entrypoint has no address",
    );
    assert_has(
        &e,
        "entryPoints.ips.forwardedHeaders.trustedIPs: \"10.0.0.0/33\" has an invalid prefix length",
    );
    assert_has(
        &e,
        "entryPoints.ips.transport.respondingTimeouts.readTimeout: invalid duration \"soon\"",
    );
    assert_has(
        &e,
        "traefik.yml:29:3: providers.file: filename and directory are both set",
    );
    assert_has(&e, "log.level: unknown log level \"LOUD\"");
    assert_has(&e, "log.format: unknown format \"xml\"");
    assert_has(
        &e,
        "core.defaultRuleSyntax: unsupported default rule syntax \"v4\" (expected \"v2\" or \"v3\")",
    );
    assert_has(
        &e,
        "traefik.yml:37:1: http: not supported yet: dynamic configuration belongs in the file given to providers.file",
    );
    assert_has(
        &e,
        "entrypoint: unknown key \"entrypoint\" (did you mean \"entryPoints\"?)",
    );
    assert!(!has(&e, "encodeQuerySemicolons"), "a warning, not an error");
    assert!(
        e[0].starts_with("traefik.yml:4:15:"),
        "in file order: {e:?}"
    );

    // The same file minus the errors: only warnings remain.
    let text = "entryPoints:\n  sec:\n    address: ':443'\n    http:\n      encodeQuerySemicolons: true\n    http3: {}\nproviders:\n  docker: {}\n  file:\n    directory: dir\ntracing: {}\nexperimental: {}\ncertificatesResolvers: {}\npilot: {}\nserversTransport:\n  insecureSkipVerify: true\nhostResolver: {}\n";
    let (c, w) = static_yaml(text).unwrap();
    assert_eq!(
        c.providers.file.as_ref().unwrap().directory,
        Some(PathBuf::from("dir"))
    );
    assert!(c.providers.file.as_ref().unwrap().watch);
    let w = warns(&w);
    // encodeQuerySemicolons is built: no warning.
    assert!(
        !w.iter().any(|l| l.contains("encodeQuerySemicolons")),
        "{w:?}"
    );
    for key in [
        "entryPoints.sec.http3",
        "providers.docker: not supported yet; ignored (only the file, http, redis and etcd providers are supported)",
        "tracing",
        "experimental",
        "certificatesResolvers",
        "pilot",
        "serversTransport",
        "hostResolver",
    ] {
        assert_has(&w, key);
    }
}

#[test]
fn static_case_insensitive_and_toml() {
    let text = "[EntryPoints.Web]\nAddress = \":8081\"\n[EntryPoints.Web.Transport.RespondingTimeouts]\nREADTIMEOUT = 7\n[Providers.File]\nFileName = \"d.toml\"\n[LOG]\nLevel = \"warn\"\n[accesslog]\n";
    let (c, w) = parse_static(text, Format::Toml, Path::new("traefik.toml")).unwrap();
    assert!(w.is_empty());
    let web = c.entry_point("Web").unwrap();
    assert_eq!(web.addr.port(), 8081);
    assert_eq!(
        web.transport.responding_timeouts.read_timeout,
        Duration::from_secs(7)
    );
    assert_eq!(c.log.level, LogLevel::Warn);
    assert!(c.access_log.is_some());
    assert_eq!(
        c.providers.file.unwrap().filename,
        Some(PathBuf::from("d.toml"))
    );
}

#[test]
fn one_key_spelled_two_ways_merges_maps() {
    // paerser fills one field from both spellings: maps merge.
    let text = "[EntryPoints.web]\naddress = \":8081\"\n[entrypoints.web.transport]\nkeepAliveMaxRequests = 1\n";
    let (c, _) = parse_static(text, Format::Toml, Path::new("traefik.toml")).unwrap();
    let web = c.entry_point("web").unwrap();
    assert_eq!(web.addr.port(), 8081);
    assert_eq!(web.transport.keep_alive_max_requests, 1);
    // Names are case-sensitive: `web` and `Web` stay two entrypoints.
    let text = "entryPoints:\n  web:\n    address: ':81'\n  Web:\n    address: ':82'\n";
    assert_eq!(
        static_yaml(text).unwrap().0.entry_point_names(),
        vec!["Web", "web"]
    );
    // Two scalars for one field: which one wins would be a guess.
    let text = "[entryPoints.web]\naddress = \":81\"\n[EntryPoints.web]\naddress = \":82\"\n";
    let e = errs(parse_static(text, Format::Toml, Path::new("traefik.toml")));
    assert_eq!(
        e,
        vec![
            "traefik.toml:4:1: entryPoints.web.address: duplicate key \"address\" (keys are case-insensitive; first set as \"address\" on line 2)"
        ]
    );
}

#[test]
fn public_duration_parser() {
    assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
    assert!(parse_duration("x").is_err());
}

#[test]
fn default_rule_syntax() {
    let (c, w) = static_yaml("entryPoints:\n  web:\n    address: ':80'\n").unwrap();
    assert_eq!(c.default_rule_syntax, RuleSyntax::V3);
    assert!(w.is_empty(), "{w:?}");
    let (c, _) =
        static_yaml("entryPoints:\n  web:\n    address: ':80'\ncore:\n  defaultRuleSyntax: v3\n")
            .unwrap();
    assert_eq!(c.default_rule_syntax, RuleSyntax::V3);
    let (c, w) =
        static_yaml("entryPoints:\n  web:\n    address: ':80'\ncore:\n  defaultRuleSyntax: v2\n")
            .unwrap();
    assert_eq!(c.default_rule_syntax, RuleSyntax::V2);
    let w: Vec<String> = w.iter().map(ToString::to_string).collect();
    assert_has(
        &w,
        "traefik.yml:5:22: core.defaultRuleSyntax: the v2 rule syntax is deprecated",
    );
    let e = errs(static_yaml(
        "entryPoints:\n  web:\n    address: ':80'\ncore:\n  defaultRuleSyntax: V2\n",
    ));
    assert_has(
        &e,
        "traefik.yml:5:22: core.defaultRuleSyntax: unsupported default rule syntax \"V2\"",
    );
}

#[test]
fn http2_settings_have_traefiks_defaults_and_refuse_negative_values() {
    let ok =
        "entryPoints:\n  web:\n    address: \":80\"\n    http2:\n      maxConcurrentStreams: 10\n";
    let (cfg, _) = parse_static(ok, Format::Yaml, Path::new("s.yml")).unwrap();
    assert_eq!(cfg.entry_points[0].http2.max_concurrent_streams, 10);
    assert_eq!(
        cfg.entry_points[0].http2.max_decoder_header_table_size,
        4096
    );
    let (dflt, _) = parse_static(
        "entryPoints:\n  web:\n    address: \":80\"\n",
        Format::Yaml,
        Path::new("s.yml"),
    )
    .unwrap();
    assert_eq!(dflt.entry_points[0].http2.max_concurrent_streams, 250);
    let bad =
        "entryPoints:\n  web:\n    address: \":80\"\n    http2:\n      maxConcurrentStreams: -1\n";
    let err = parse_static(bad, Format::Yaml, Path::new("s.yml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("entryPoints.web.http2.maxConcurrentStreams") && err.contains("s.yml:5"),
        "{err}"
    );
}

#[test]
fn api_section_as_traefik_reads_it() {
    let (c, w) = static_yaml("api: {}\n").unwrap();
    let api = c.api.as_ref().unwrap();
    assert!(!api.insecure);
    assert!(api.dashboard, "the dashboard is on by default");
    assert_eq!(api.base_path, "/");
    assert!(w.is_empty());
    assert_eq!(c.internal_services(), vec!["noop", "api", "dashboard"]);
    assert!(static_yaml("api: false\n").unwrap().0.api.is_none());

    let (c, w) = static_yaml(
        "api:\n  dashboard: false\n  basePath: /traefik\n  debug: true\n  disableDashboardAd: true\n  dashboardName: Edge\n",
    )
    .unwrap();
    let api = c.api.as_ref().unwrap();
    assert!(!api.dashboard);
    assert_eq!(api.base_path, "/traefik");
    assert!(api.debug && api.disable_dashboard_ad);
    assert_eq!(api.dashboard_name, "Edge");
    assert_eq!(c.internal_services(), vec!["noop", "api"]);
    assert_has(
        &warns(&w),
        "traefik.yml:4:10: api.debug: Go's pprof and expvar endpoints (/debug/...) do not exist here: they answer 404",
    );

    let e = errs(static_yaml("api:\n  basePath: traefik\n"));
    assert_has(
        &e,
        "traefik.yml:2:13: api.basePath: invalid basePath \"traefik\": it must start with / and hold only letters, digits and /_.:~-",
    );
    let e = errs(static_yaml("api:\n  dashbord: true\n"));
    assert!(e.iter().any(|m| m.contains("dashbord")), "{e:?}");
}

#[test]
fn proxy_protocol_is_read_with_trusted_ips_and_insecure() {
    let text = "entryPoints:\n  lb:\n    address: \":81\"\n    proxyProtocol:\n      trustedIPs: [\"10.0.0.0/8\", \"::1\"]\n  open:\n    address: \":82\"\n    proxyProtocol:\n      insecure: true\n  plain:\n    address: \":83\"\n";
    let (c, w) = parse_static(text, Format::Yaml, Path::new("traefik.yml")).unwrap();
    assert!(w.is_empty(), "{w:?}");
    let lb = c.entry_point("lb").unwrap().proxy_protocol.clone().unwrap();
    assert!(!lb.insecure);
    assert_eq!(lb.trusted_ips.len(), 2);
    assert!(lb.trusted_ips[0].contains("10.1.2.3".parse().unwrap()));
    let open = c
        .entry_point("open")
        .unwrap()
        .proxy_protocol
        .clone()
        .unwrap();
    assert!(open.insecure && open.trusted_ips.is_empty());
    assert_eq!(c.entry_point("plain").unwrap().proxy_protocol, None);
    // TOML, an empty section: enabled, nobody trusted (headers dropped).
    let toml = "[entryPoints.web]\naddress = \":80\"\n[entryPoints.web.proxyProtocol]\n";
    let (c, _) = parse_static(toml, Format::Toml, Path::new("traefik.toml")).unwrap();
    let pp = c
        .entry_point("web")
        .unwrap()
        .proxy_protocol
        .clone()
        .unwrap();
    assert!(!pp.insecure && pp.trusted_ips.is_empty());
    // An unknown key in it is an error naming it.
    let bad = "entryPoints:\n  lb:\n    address: \":81\"\n    proxyProtocol:\n      trustedIP: [\"10.0.0.0/8\"]\n";
    let e = errs(static_yaml(bad));
    assert!(
        e.iter()
            .any(|l| l.contains("entryPoints.lb.proxyProtocol.trustedIP")
                && l.contains("trustedIPs")),
        "{e:?}"
    );
}

#[test]
fn http_redis_and_etcd_providers_with_traefik_defaults() {
    let text = "providers:
  http:
    endpoint: http://config.local/dyn
    headers:
      X-Token: t
  redis:
    password: hunter2
  etcd:
    rootKey: custom/
    endpoints: [\"10.0.0.1:2379\", \"10.0.0.2:2379\"]
    password: s3cret
";
    let (c, _) = static_yaml(text).unwrap();
    let h = c.providers.http.as_ref().unwrap();
    assert_eq!(h.poll_interval, std::time::Duration::from_secs(5));
    assert_eq!(h.poll_timeout, std::time::Duration::from_secs(5));
    assert_eq!(h.max_response_body_size, -1);
    assert_eq!(h.headers["X-Token"], "t");
    let r = c.providers.redis.as_ref().unwrap();
    assert_eq!(r.root_key, "traefik");
    assert_eq!(r.settings.endpoint, "127.0.0.1:6379");
    let e = c.providers.etcd.as_ref().unwrap();
    assert_eq!(e.root_key, "custom");
    assert_eq!(e.endpoints.len(), 2);
    let shown = format!("{:?}", c.providers);
    assert!(
        !shown.contains("hunter2") && !shown.contains("s3cret"),
        "{shown}"
    );

    let e = errs(static_yaml("providers:\n  http:\n    endpoint: ''\n"));
    assert_has(&e, "non-empty endpoint is required");
    let e = errs(static_yaml(
        "providers:\n  http:\n    endpoint: http://x\n    pollInterval: 0s\n",
    ));
    assert_has(&e, "poll interval must be greater than 0");
}

#[test]
fn entry_point_header_options_as_traefik_reads_them() {
    let (c, w) = static_yaml(
        r#"
entryPoints:
  a:
    address: ":81"
    http:
      underscoreHeadersStrategy: delete
      encodeQuerySemicolons: true
      maxHeaderBytes: 8192
    forwardedHeaders:
      connection: ["X-Keep", " x-other "]
      notAppendXForwardedFor: true
  b:
    address: ":82"
    http:
      underscoreHeadersStrategy: reject
      encodedCharacters:
        allowEncodedSlash: false
        allowEncodedHash: true
  c:
    address: ":83"
    http:
      underscoreHeadersStrategy: keep
"#,
    )
    .unwrap();
    assert!(w.is_empty(), "{w:?}");
    let ep = |n: &str| c.entry_points.iter().find(|e| e.name == n).unwrap();
    assert_eq!(ep("a").underscore_headers, UnderscoreHeaders::Delete);
    assert_eq!(ep("b").underscore_headers, UnderscoreHeaders::Reject);
    assert_eq!(ep("c").underscore_headers, UnderscoreHeaders::Keep);
    assert_eq!(ep("a").forwarded_headers.connection, ["X-Keep", "x-other"]);
    assert!(ep("a").forwarded_headers.not_append_x_forwarded_for);
    assert!(!ep("b").forwarded_headers.not_append_x_forwarded_for);
    assert!(ep("a").encode_query_semicolons && !ep("b").encode_query_semicolons);
    assert_eq!(ep("a").max_header_bytes, 8192);
    assert_eq!(ep("b").encoded_characters.as_deref(), Some(&b"/"[..]));
    assert_eq!(ep("a").encoded_characters, None);
    assert_eq!(ep("b").max_header_bytes, 1 << 20, "Go's default");
    let e = errs(static_yaml(
        "entryPoints:\n  a:\n    address: \":81\"\n    http:\n      maxHeaderBytes: 4294967296\n",
    ));
    assert_has(
        &e,
        "entryPoints.a.http.maxHeaderBytes: must be at most 1073741824 (1 GiB), got 4294967296",
    );
    let (c, _) = static_yaml(
        "entryPoints:\n  a:\n    address: \":81\"\n    http:\n      maxHeaderBytes: -1\n",
    )
    .unwrap();
    assert_eq!(
        c.entry_points[0].max_header_bytes,
        1 << 20,
        "0 and below: the default"
    );
    let e = errs(static_yaml(
        "entryPoints:\n  a:\n    address: \":81\"\n    http:\n      underscoreHeadersStrategy: drop\n",
    ));
    assert_has(
        &e,
        "traefik.yml:5:34: entryPoints.a.http.underscoreHeadersStrategy: invalid underscoreHeadersStrategy value \"drop\" (keep, delete or reject)",
    );
}
