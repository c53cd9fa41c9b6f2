//! Request fixtures shared by the routing tests.

use std::net::IpAddr;

use bumpalo::Bump;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::request::ProxyRequest;
use crate::routing::{RuleSyntax, parse_rule, parse_rule_with};

/// An owned request from which a [`ProxyRequest`] view is taken.
pub(super) struct Req {
    pub(super) method: Method,
    pub(super) host: String,
    pub(super) path: String,
    pub(super) query: Option<String>,
    pub(super) headers: HeaderMap,
    pub(super) ip: IpAddr,
    pub(super) arena: Bump,
}

impl Req {
    pub(super) fn new(host: &str, path: &str) -> Self {
        Req {
            method: Method::GET,
            host: host.to_owned(),
            path: path.to_owned(),
            query: None,
            headers: HeaderMap::new(),
            ip: "10.0.0.1".parse().unwrap_or(IpAddr::from([10, 0, 0, 1])),
            arena: Bump::new(),
        }
    }

    pub(super) fn query(mut self, q: &str) -> Self {
        self.query = Some(q.to_owned());
        self
    }

    pub(super) fn method(mut self, m: &str) -> Self {
        self.method = Method::from_bytes(m.as_bytes()).expect("valid method");
        self
    }

    pub(super) fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.append(
            HeaderName::from_bytes(k.as_bytes()).expect("valid name"),
            HeaderValue::from_str(v).expect("valid value"),
        );
        self
    }

    /// A header value that need not be ASCII or UTF-8 (obs-text).
    pub(super) fn header_bytes(mut self, k: &str, v: &[u8]) -> Self {
        self.headers.append(
            HeaderName::from_bytes(k.as_bytes()).expect("valid name"),
            HeaderValue::from_bytes(v).expect("valid value"),
        );
        self
    }

    pub(super) fn ip(mut self, ip: &str) -> Self {
        self.ip = ip.parse().expect("valid ip");
        self
    }

    pub(super) fn view(&self) -> ProxyRequest<'_> {
        ProxyRequest {
            method: &self.method,
            host: &self.host,
            authority: &self.host,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
            client_ip: self.ip,
            arena: &self.arena,
        }
    }
}

/// Parses `rule` (panicking with the error) and matches it against `req`.
pub(super) fn m(rule: &str, req: &Req) -> bool {
    match parse_rule(rule) {
        Ok(r) => r.matches(&req.view()),
        Err(e) => panic!("rule {rule:?} failed to parse: {e}"),
    }
}

/// The error of a rule expected to be rejected.
pub(super) fn err(rule: &str) -> crate::routing::RuleError {
    match parse_rule(rule) {
        Ok(_) => panic!("rule {rule:?} parsed but should not"),
        Err(e) => e,
    }
}

/// [`m`] for a rule in the v2 syntax.
pub(super) fn m2(rule: &str, req: &Req) -> bool {
    match parse_rule_with(rule, RuleSyntax::V2) {
        Ok(r) => r.matches(&req.view()),
        Err(e) => panic!("v2 rule {rule:?} failed to parse: {e}"),
    }
}

/// [`err`] for a rule in the v2 syntax.
pub(super) fn err2(rule: &str) -> crate::routing::RuleError {
    match parse_rule_with(rule, RuleSyntax::V2) {
        Ok(_) => panic!("v2 rule {rule:?} parsed but should not"),
        Err(e) => e,
    }
}
