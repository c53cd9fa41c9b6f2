//! `ipAllowList` and its deprecated alias `ipWhiteList`: the client IPs
//! allowed (`sourceRange`), how the client IP is found (`ipStrategy`:
//! the peer, the `X-Forwarded-For` entry `depth` from the right, or the
//! rightmost one not in `excludedIPs`; `ipv6Subnet`), and the status of a
//! refusal (`rejectStatusCode`, default 403), with Traefik 3.7's
//! build-time checks (`pkg/middlewares/ipallowlist`, `pkg/ip`). The
//! request-time part is `crate::middleware::ip_allow`.

use http::StatusCode;
use serde::Deserialize;

use super::super::super::decode::{At, Ctx};
use super::super::super::node::Pos;
use super::MiddlewareConfig;
use crate::ipnet::{IpNet, IpSet};

/// A validated `ipAllowList` (or `ipWhiteList`).
#[derive(Debug, Clone, PartialEq)]
pub struct IpAllowList {
    /// `sourceRange`: the allowed addresses and networks (not empty).
    pub allowed: IpSet,
    /// Where the client IP is read.
    pub strategy: IpStrategy,
    /// `rejectStatusCode` (403 unless set).
    pub reject: StatusCode,
}

/// `ipStrategy`, resolved as Traefik's `IPStrategy.Get` resolves it.
#[derive(Debug, Clone, PartialEq)]
pub enum IpStrategy {
    /// The connection's peer (no `ipStrategy`, or neither `depth` nor
    /// `excludedIPs`).
    Peer {
        /// `ipv6Subnet`: an IPv6 address is reduced to this prefix.
        ipv6_subnet: Option<u8>,
    },
    /// `depth`: the `X-Forwarded-For` entry this far from the right
    /// (none when the header has fewer).
    Depth {
        /// At least 1.
        depth: usize,
        /// `ipv6Subnet`.
        ipv6_subnet: Option<u8>,
    },
    /// `excludedIPs`: the rightmost `X-Forwarded-For` entry not in them.
    Excluded(IpSet),
}

/// `ipStrategy` as written (also `sourceCriterion.ipStrategy`).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct IpStrategyFile {
    depth: i64,
    #[serde(rename = "excludedIPs")]
    excluded_ips: Vec<At<String>>,
    ipv6_subnet: Option<At<i64>>,
}

/// `ipAllowList` / `ipWhiteList` as written (`rejectStatusCode` is only
/// `ipAllowList`'s; the alias refuses it as an unknown key).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct IpAllowListFile {
    source_range: Vec<At<String>>,
    ip_strategy: Option<IpStrategyFile>,
    reject_status_code: Option<At<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in super::super) struct IpWhiteListFile {
    source_range: Vec<At<String>>,
    ip_strategy: Option<IpStrategyFile>,
}

impl IpWhiteListFile {
    pub(super) fn check(self, ctx: &mut Ctx, path: &str, pos: Pos) -> Option<MiddlewareConfig> {
        ctx.warn(
            path,
            pos,
            "ipWhiteList is deprecated: use ipAllowList (it behaves the same here, as in Traefik 3.7)",
        );
        IpAllowListFile {
            source_range: self.source_range,
            ip_strategy: self.ip_strategy,
            reject_status_code: None,
        }
        .check(ctx, path, pos)
    }
}

/// The networks of `list`, each bad one reported where written.
fn networks(ctx: &mut Ctx, option: &str, list: &[At<String>]) -> Option<IpSet> {
    let mut nets = Vec::new();
    let mut ok = true;
    for item in list {
        match IpNet::parse(item.value.trim()) {
            Some(n) => nets.push(n),
            None => {
                ok = false;
                ctx.error(
                    &item.path,
                    item.pos,
                    format!(
                        "{option}: {:?} is neither an IP address nor a CIDR network",
                        item.value
                    ),
                );
            }
        }
    }
    ok.then(|| IpSet::new(nets))
}

impl IpAllowListFile {
    pub(super) fn check(self, ctx: &mut Ctx, path: &str, pos: Pos) -> Option<MiddlewareConfig> {
        if self.source_range.is_empty() {
            ctx.error(
                path,
                pos,
                "sourceRange is empty: every request would be refused",
            );
            return None;
        }
        let allowed = networks(ctx, "sourceRange", &self.source_range);
        let reject = match self.reject_status_code.filter(|c| c.value != 0) {
            None => Some(StatusCode::FORBIDDEN),
            Some(c) => match u16::try_from(c.value)
                .ok()
                .and_then(|v| StatusCode::from_u16(v).ok())
                .filter(|s| s.canonical_reason().is_some())
            {
                Some(s) => Some(s),
                None => {
                    ctx.error(
                        &c.path,
                        c.pos,
                        format!("invalid HTTP status code {}", c.value),
                    );
                    None
                }
            },
        };
        let strategy = strategy(ctx, self.ip_strategy);
        Some(MiddlewareConfig::IpAllowList(IpAllowList {
            allowed: allowed?,
            strategy: strategy?,
            reject: reject?,
        }))
    }
}

/// The strategy `file` describes, as Traefik's `IPStrategy.Get` resolves
/// it (none: the peer), each bad option reported where written.
pub(super) fn strategy(ctx: &mut Ctx, file: Option<IpStrategyFile>) -> Option<IpStrategy> {
    match file {
        None => Some(IpStrategy::Peer { ipv6_subnet: None }),
        Some(s) if s.depth <= 0 && !s.excluded_ips.is_empty() => {
            // Traefik ignores ipv6Subnet with excludedIPs.
            networks(ctx, "excludedIPs", &s.excluded_ips).map(IpStrategy::Excluded)
        }
        Some(s) => {
            let subnet = match &s.ipv6_subnet {
                None => Some(None),
                Some(n) if (1..=128).contains(&n.value) => Some(u8::try_from(n.value).ok()),
                Some(n) => {
                    ctx.error(
                        &n.path,
                        n.pos,
                        format!(
                            "invalid IPv6 subnet {} value, should be greater to 0 and lower or equal to 128",
                            n.value
                        ),
                    );
                    None
                }
            };
            subnet.map(|ipv6_subnet| match usize::try_from(s.depth) {
                Ok(depth) if depth > 0 => IpStrategy::Depth { depth, ipv6_subnet },
                _ => IpStrategy::Peer { ipv6_subnet },
            })
        }
    }
}
