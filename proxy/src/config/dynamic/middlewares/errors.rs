//! `errors`' options (`status`, `service`, `query`, `statusRewrites`,
//! `errorRequestHeaders`), with Traefik 3.7's build-time checks
//! (`pkg/middlewares/customerrors`): status ranges parsed, each rewrite's
//! key a range and its value a status. The service is resolved with the
//! others (`resolve`); the request-time part is `crate::middleware::errors`.

use http::HeaderName;
use serde::Deserialize;

use super::super::super::decode::{At, Ctx, Named};
use super::super::super::node::Pos;
use super::super::Ref;
use super::super::status::StatusRanges;
use super::MiddlewareConfig;
use super::retry::statuses;

/// A validated `errors`.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorPage {
    /// `status`: the answers replaced by an error page.
    pub status: StatusRanges,
    /// `service`: where the page is fetched (provider suffix removed; it
    /// exists).
    pub service: String,
    /// `query`: the page's path and query, `{status}`, `{originalStatus}`
    /// and `{url}` replaced per request (empty: `/`).
    pub query: String,
    /// `statusRewrites`, in file order: a caught status in the range is
    /// answered with the other.
    pub rewrites: Vec<((u16, u16), u16)>,
    /// `errorRequestHeaders`: the request headers the page request gets
    /// (`None`: all of them).
    pub request_headers: Option<Vec<HeaderName>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct ErrorPageFile {
    status: Vec<At<String>>,
    service: Option<At<String>>,
    query: String,
    status_rewrites: Named<At<i64>>,
    error_request_headers: Option<Vec<At<String>>>,
}

impl ErrorPageFile {
    /// The checked middleware and the service it names (resolved later).
    pub(super) fn check(
        self,
        ctx: &mut Ctx,
        path: &str,
        pos: Pos,
    ) -> Option<(MiddlewareConfig, Ref)> {
        let status = statuses(ctx, &self.status);
        let mut ok = true;
        let mut rewrites = Vec::new();
        for item in self.status_rewrites.0 {
            let key = At {
                value: item.name.clone(),
                pos: item.key_pos,
                key_pos: item.key_pos,
                path: item.path.clone(),
                ok: true,
            };
            let range = statuses(ctx, std::slice::from_ref(&key));
            let to = item.value.as_ref().and_then(|v| {
                let s = u16::try_from(v.value)
                    .ok()
                    .filter(|s| (100..=999).contains(s));
                if s.is_none() {
                    ctx.error(
                        &v.path,
                        v.pos,
                        format!("invalid HTTP status code {}", v.value),
                    );
                }
                s
            });
            match (range, to) {
                (Some(r), Some(to)) => rewrites.extend(r.ranges().iter().map(|&r| (r, to))),
                _ => ok = false,
            }
        }
        let mut request_headers = None;
        if let Some(list) = self.error_request_headers {
            let mut names = Vec::new();
            for h in list {
                match HeaderName::try_from(h.value.as_str()) {
                    Ok(n) => names.push(n),
                    Err(_) => {
                        ctx.error(
                            &h.path,
                            h.pos,
                            format!("errorRequestHeaders: {:?} is not a header name", h.value),
                        );
                        ok = false;
                    }
                }
            }
            request_headers = Some(names);
        }
        let Some(service) = self.service.filter(|s| !s.value.is_empty()) else {
            ctx.error(path, pos, "errors needs a service to fetch the page from");
            return None;
        };
        let status = status?;
        ok.then(|| {
            (
                MiddlewareConfig::Errors(Box::new(ErrorPage {
                    status,
                    service: String::new(),
                    query: self.query,
                    rewrites,
                    request_headers,
                })),
                Ref {
                    name: service.value,
                    path: service.path,
                    pos: service.pos,
                },
            )
        })
    }
}
