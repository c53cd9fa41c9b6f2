//! The v2 part of the differential test's vocabulary: matchers of
//! `ruleSyntax: v2` (several values, mux templates in `HostRegexp`, `Path`,
//! `PathPrefix` and `Query`, `Headers`, `HeadersRegexp`), with the requests
//! that match them. Templates come with hosts or paths they match; some can
//! be indexed by the proxy (`{sub:[a-z]+}.example.com`, `/users/{id}`),
//! others cannot (`{h:[a-z.]+}.internal`).

use super::corpus::{
    CLIENT_IPS, Guide, HEADER_REGEXPS, HEADERS, HOSTS, Kind, METHODS, PATH_SUFFIXES, Rng, SOURCES,
    header_value,
};

/// `HostRegexp` templates and hosts each matches.
const HOST_TEMPLATES: &[(&str, &[&str])] = &[
    (
        "{sub:[a-z]+}.example.com",
        &["api.example.com", "www.example.com", "m.example.com"],
    ),
    ("{sub}.test", &["a.test", "b.test", "e.test"]),
    ("{sub:(a|b)}.b.c.test", &["a.b.c.test"]),
    ("api.example.org", &["api.example.org", "API.example.org"]),
    ("EXAMPLE.ORG", &["example.org"]),
    ("{h:[a-z.]+}.internal", &["x.internal", "foo.internal"]),
    ("{a}.{b}.example.com", &["deep.api.example.com"]),
    ("local{x:host}", &["localhost"]),
];

/// `Path` / `PathPrefix` templates and paths each matches.
const PATH_TEMPLATES: &[(&str, &[&str])] = &[
    ("/users/{id:[0-9]+}", &["/users/42", "/users/7"]),
    ("/api/{version}", &["/api/v1", "/api/v2"]),
    ("/static/{rest:.*}", &["/static/css/site.css", "/static/x"]),
    ("/api/v{n:[0-9]}", &["/api/v1", "/api/v2"]),
    ("/health", &["/health"]),
    ("/{page:[a-z]+}", &["/admin", "/health", "/static"]),
    ("/caf{e:é|e}", &["/café", "/cafe"]),
];

/// `Query` values and a (key, value) pair each matches.
const QUERIES: &[(&str, (&str, &str))] = &[
    ("id=42", ("id", "42")),
    ("mobile=true", ("mobile", "true")),
    ("lang=", ("lang", "en")),
    ("id={n:[0-9]+}", ("id", "7")),
    ("q={any}", ("q", "hello world")),
    ("debug=", ("debug", "")),
    ("tag=a+b", ("tag", "a+b")),
];

/// A matcher of the v2 syntax with its values.
#[derive(Clone, Debug)]
pub(crate) enum V2Atom {
    /// `Host` or, when the flag is set, `HostHeader`.
    Host(Vec<&'static str>, bool),
    HostRegexp(Vec<usize>),
    Path(Vec<usize>),
    PathPrefix(Vec<usize>),
    Method(Vec<&'static str>),
    Headers(Vec<(&'static str, &'static str)>),
    HeadersRegexp(Vec<(&'static str, &'static str)>),
    Query(Vec<usize>),
    ClientIp(Vec<&'static str>),
}

/// One to `max` distinct picks among `0..n`.
fn some(rng: &mut Rng, n: usize, max: usize) -> Vec<usize> {
    let mut v: Vec<usize> = Vec::new();
    for _ in 0..1 + rng.below(max) {
        let i = rng.below(n);
        if !v.contains(&i) {
            v.push(i);
        }
    }
    v
}

impl V2Atom {
    pub(crate) fn random(rng: &mut Rng) -> V2Atom {
        match rng.below(10) {
            0 => V2Atom::Path(some(rng, PATH_TEMPLATES.len(), 2)),
            1 | 2 => V2Atom::PathPrefix(some(rng, PATH_TEMPLATES.len(), 2)),
            3 => V2Atom::Method(
                some(rng, METHODS.len(), 2)
                    .into_iter()
                    .map(|i| METHODS[i])
                    .collect(),
            ),
            4 => V2Atom::Headers(
                some(rng, HEADERS.len(), 2)
                    .into_iter()
                    .map(|i| (HEADERS[i].0, *rng.pick(HEADERS[i].1)))
                    .collect(),
            ),
            5 => V2Atom::HeadersRegexp(
                some(rng, HEADER_REGEXPS.len(), 1)
                    .into_iter()
                    .map(|i| HEADER_REGEXPS[i])
                    .collect(),
            ),
            6 => V2Atom::Query(some(rng, QUERIES.len(), 2)),
            7 => V2Atom::ClientIp(
                some(rng, CLIENT_IPS.len(), 2)
                    .into_iter()
                    .map(|i| CLIENT_IPS[i])
                    .collect(),
            ),
            _ => V2Atom::host_like(rng),
        }
    }

    pub(crate) fn host_like(rng: &mut Rng) -> V2Atom {
        match rng.below(10) {
            0..=5 => V2Atom::Host(
                some(rng, HOSTS.len(), 2)
                    .into_iter()
                    .map(|i| HOSTS[i])
                    .collect(),
                rng.chance(20),
            ),
            _ => V2Atom::HostRegexp(some(rng, HOST_TEMPLATES.len(), 2)),
        }
    }

    /// `Host` with two or three hosts.
    pub(crate) fn several_hosts(rng: &mut Rng) -> V2Atom {
        let mut hosts = vec![*rng.pick(HOSTS)];
        while hosts.len() < 2 + rng.below(2) {
            hosts.push(*rng.pick(HOSTS));
        }
        V2Atom::Host(hosts, false)
    }

    pub(crate) fn is_host(&self) -> bool {
        matches!(self, V2Atom::Host(..) | V2Atom::HostRegexp(_))
    }

    /// A host matcher that matches many hosts.
    pub(crate) fn is_broad_host(&self) -> bool {
        matches!(self, V2Atom::HostRegexp(_))
    }

    /// Matches a large share of the corpus on its own.
    pub(crate) fn is_broad(&self) -> bool {
        matches!(self, V2Atom::Method(_) | V2Atom::ClientIp(_))
    }

    pub(crate) fn kind(&self) -> Kind {
        match self {
            V2Atom::Host(..) => Kind::V2Host,
            V2Atom::HostRegexp(_) => Kind::V2HostRegexp,
            V2Atom::Path(_) => Kind::V2Path,
            V2Atom::PathPrefix(_) => Kind::V2PathPrefix,
            V2Atom::Method(_) => Kind::V2Method,
            V2Atom::Headers(_) => Kind::V2Headers,
            V2Atom::HeadersRegexp(_) => Kind::V2HeadersRegexp,
            V2Atom::Query(_) => Kind::V2Query,
            V2Atom::ClientIp(_) => Kind::V2ClientIp,
        }
    }

    /// The matcher's name and arguments.
    pub(crate) fn call(&self) -> (&'static str, Vec<&'static str>) {
        let flat = |pairs: &[(&'static str, &'static str)]| {
            pairs.iter().flat_map(|(k, v)| [*k, *v]).collect()
        };
        match self {
            V2Atom::Host(hs, header) => (if *header { "HostHeader" } else { "Host" }, hs.clone()),
            V2Atom::HostRegexp(ts) => (
                "HostRegexp",
                ts.iter().map(|&i| HOST_TEMPLATES[i].0).collect(),
            ),
            V2Atom::Path(ts) => ("Path", ts.iter().map(|&i| PATH_TEMPLATES[i].0).collect()),
            V2Atom::PathPrefix(ts) => (
                "PathPrefix",
                ts.iter().map(|&i| PATH_TEMPLATES[i].0).collect(),
            ),
            V2Atom::Method(ms) => ("Method", ms.clone()),
            V2Atom::Headers(p) => ("Headers", flat(p)),
            V2Atom::HeadersRegexp(p) => ("HeadersRegexp", flat(p)),
            V2Atom::Query(qs) => ("Query", qs.iter().map(|&i| QUERIES[i].0).collect()),
            V2Atom::ClientIp(ips) => ("ClientIP", ips.clone()),
        }
    }

    /// Shapes the request to satisfy this matcher.
    pub(crate) fn guide(&self, rng: &mut Rng, g: &mut Guide) {
        match self {
            V2Atom::Host(hs, _) => g.host = Some(rng.pick(hs).to_string()),
            V2Atom::HostRegexp(ts) => {
                let t = *rng.pick(ts);
                g.host = Some(rng.pick(HOST_TEMPLATES[t].1).to_string());
            }
            V2Atom::Path(ts) => {
                let t = *rng.pick(ts);
                g.path = Some(rng.pick(PATH_TEMPLATES[t].1).to_string());
            }
            V2Atom::PathPrefix(ts) => {
                let t = *rng.pick(ts);
                let p = rng.pick(PATH_TEMPLATES[t].1);
                g.path = Some(format!("{p}{}", rng.pick(PATH_SUFFIXES)));
            }
            V2Atom::Method(ms) => g.method = Some(rng.pick(ms).to_string()),
            V2Atom::Headers(p) => g
                .headers
                .extend(p.iter().map(|(k, v)| (k.to_string(), v.to_string()))),
            V2Atom::HeadersRegexp(p) => {
                for (k, _) in p {
                    let v = header_value(rng, k);
                    g.headers.push((k.to_string(), v));
                }
            }
            V2Atom::Query(qs) => {
                for &i in qs {
                    let (k, v) = QUERIES[i].1;
                    g.query.push((k.to_owned(), v.to_owned()));
                }
            }
            V2Atom::ClientIp(_) => g.source = Some(std::net::Ipv4Addr::from(*rng.pick(SOURCES))),
        }
    }
}
