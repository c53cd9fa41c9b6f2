//! The composite service types of `http.services.<name>`: `weighted`,
//! `highestRandomWeight`, `failover` and `mirroring` (services naming
//! services): their file schema, their checks, and the checks across
//! services (cycles, the health tracking a parent's `healthCheck` needs).
//!
//! Configuration only: it names child services and never resolves them
//! to servers (the compiler in `upstream::service` does), nor touches the
//! network.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Deserialize;

use super::super::decode::{At, Ctx, Ignored};
use super::super::error::{ConfigError, Origin};
use super::super::node::Pos;
use super::services::{ServiceConfig, ServiceDraft, draft, sticky_of};
use super::status::StatusRanges;
use super::sticky::{StickyCookie, StickyFile};
use super::{ChildRefs, Ref, err_at};

/// `services.<name>.mirroring`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirroringConfig {
    /// The service that answers.
    pub service: String,
    /// Where copies go, each for `percent` of the requests.
    pub mirrors: Vec<MirrorConfig>,
    /// `mirrorBody` (default true): copies carry the request body.
    pub mirror_body: bool,
    /// `maxBodySize` (default -1, no limit): a larger body is not mirrored.
    pub max_body_size: Option<u64>,
    /// `healthCheck`: a parent sees this service as up as its main one.
    pub health_check: bool,
    /// Where the service's name is written.
    pub origin: Origin,
}

/// One `mirroring.mirrors[i]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorConfig {
    /// The service it names, without provider.
    pub service: String,
    /// The share of requests copied to it, 0 to 100.
    pub percent: u32,
}

/// One child of a `weighted` or `highestRandomWeight` service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildService {
    /// The name as written: what sticky cookies and hrw hash, as Traefik.
    pub name: String,
    /// The service it names, without provider.
    pub service: String,
    /// Its weight (default 1; 0 takes it out).
    pub weight: u32,
}

/// `services.<name>.weighted`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedConfig {
    /// The child services and their weights.
    pub services: Vec<ChildService>,
    /// `sticky.cookie` (weighted only).
    pub sticky: Option<StickyCookie>,
    /// `healthCheck`: children with no server up are skipped, and parents
    /// see this service down when no child is up.
    pub health_check: bool,
    /// Where the service's name is written.
    pub origin: Origin,
}

/// `services.<name>.failover`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverConfig {
    /// The main service.
    pub service: String,
    /// Where requests go while the main service has no server up.
    pub fallback: String,
    /// `healthCheck`: a parent sees this service down when neither has a
    /// server up.
    pub health_check: bool,
    /// `errors`: the main service's answers that go to the fallback
    /// instead.
    pub errors: Option<FailoverErrors>,
    /// Where the service's name is written.
    pub origin: Origin,
}

/// `failover.errors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverErrors {
    /// `status` as written.
    pub status: Vec<String>,
    /// `status` parsed: the main service's statuses (its servers' or the
    /// proxy's own 502, 503, 504) answered by the fallback instead. Empty:
    /// none, as in Traefik.
    pub ranges: StatusRanges,
    /// `maxRequestBodyBytes` (default -1, no limit): the body kept to be
    /// sent again to the fallback; a larger one is answered 413.
    pub max_request_body_bytes: Option<u64>,
}

// === file schema ===

/// `weighted` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct WeightedFile {
    services: Vec<At<ChildFile>>,
    health_check: Option<Ignored>,
    sticky: Option<At<StickyFile>>,
}

/// `mirroring` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct MirroringFile {
    service: Option<At<String>>,
    mirrors: Vec<At<MirrorFile>>,
    mirror_body: Option<bool>,
    max_body_size: Option<At<i64>>,
    health_check: Option<Ignored>,
}

/// `mirroring.mirrors[i]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct MirrorFile {
    name: Option<At<String>>,
    percent: Option<At<i64>>,
}

/// `highestRandomWeight` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct HrwFile {
    services: Vec<At<ChildFile>>,
    health_check: Option<Ignored>,
}

/// `weighted.services[i]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ChildFile {
    name: Option<At<String>>,
    weight: Option<At<u32>>,
}

/// `failover` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct FailoverFile {
    service: Option<At<String>>,
    fallback: Option<At<String>>,
    health_check: Option<Ignored>,
    errors: Option<At<FailoverErrorsFile>>,
}

/// `failover.errors` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct FailoverErrorsFile {
    status: Option<At<Vec<At<String>>>>,
    max_request_body_bytes: Option<At<i64>>,
}

// === checks ===

/// `weighted`: `None` when it cannot be served; its errors are in `ctx`.
pub(super) fn weighted(ctx: &mut Ctx, pos: Pos, w: At<WeightedFile>) -> Option<ServiceDraft> {
    if !w.ok {
        return None;
    }
    let sticky = sticky_of(ctx, w.value.sticky)?;
    let kids = children_of(ctx, "weighted", w.value.services);
    kids.map(|(services, refs)| {
        draft(
            ServiceConfig::Weighted(WeightedConfig {
                services,
                sticky,
                health_check: w.value.health_check.is_some(),
                origin: ctx.origin(pos),
            }),
            refs,
        )
    })
}

/// `highestRandomWeight`: `None` when it cannot be served.
pub(super) fn hrw(ctx: &mut Ctx, pos: Pos, h: At<HrwFile>) -> Option<ServiceDraft> {
    if !h.ok {
        return None;
    }
    let kids = children_of(ctx, "highestRandomWeight", h.value.services);
    kids.map(|(services, refs)| {
        draft(
            ServiceConfig::HighestRandomWeight(WeightedConfig {
                services,
                sticky: None,
                health_check: h.value.health_check.is_some(),
                origin: ctx.origin(pos),
            }),
            refs,
        )
    })
}

/// The `services` list of a weighted or highestRandomWeight service.
fn children_of(
    ctx: &mut Ctx,
    kind: &str,
    list: Vec<At<ChildFile>>,
) -> Option<(Vec<ChildService>, Vec<Ref>)> {
    let mut ok = true;
    let mut services = Vec::new();
    let mut children = Vec::new();
    for child in list {
        let Some(name) = child.value.name.filter(|n| n.ok && !n.value.is_empty()) else {
            ctx.error(
                &child.path,
                child.pos,
                format!("{kind} service entry has no name"),
            );
            ok = false;
            continue;
        };
        let weight = match child.value.weight {
            Some(wt) if wt.ok => wt.value,
            Some(_) => {
                ok = false;
                1
            }
            None => 1,
        };
        services.push(ChildService {
            name: name.value.clone(),
            service: name.value.clone(),
            weight,
        });
        children.push(Ref {
            name: name.value,
            path: name.path,
            pos: name.pos,
        });
    }
    ok.then_some((services, children))
}

pub(super) fn failover(ctx: &mut Ctx, pos: Pos, f: At<FailoverFile>) -> Option<ServiceDraft> {
    if !f.ok {
        return None;
    }
    let mut refs = Vec::new();
    for (key, field) in [("service", f.value.service), ("fallback", f.value.fallback)] {
        match field {
            Some(v) if v.ok && !v.value.is_empty() => refs.push(Ref {
                name: v.value,
                path: v.path,
                pos: v.pos,
            }),
            Some(v) if !v.ok => return None,
            _ => {
                ctx.error(&f.path, f.key_pos, format!("failover has no {key}"));
                return None;
            }
        }
    }
    let errors = match f.value.errors {
        None => None,
        Some(e) if !e.ok => return None,
        Some(e) => Some(failover_errors(ctx, e.value)?),
    };
    let origin = ctx.origin(pos);
    Some(ServiceDraft {
        config: ServiceConfig::Failover(FailoverConfig {
            service: refs[0].name.clone(),
            fallback: refs[1].name.clone(),
            health_check: f.value.health_check.is_some(),
            errors,
            origin,
        }),
        transport: None,
        children: refs,
        middlewares: Vec::new(),
    })
}

/// `failover.errors`: `None` on an error (in `ctx`).
fn failover_errors(ctx: &mut Ctx, e: FailoverErrorsFile) -> Option<FailoverErrors> {
    let mut status = Vec::new();
    if let Some(list) = e.status {
        if !list.ok {
            return None;
        }
        for entry in list.value {
            if !entry.ok {
                return None;
            }
            if let Err(msg) = StatusRanges::parse([entry.value.trim()]) {
                ctx.error(&entry.path, entry.pos, msg);
                return None;
            }
            status.push(entry.value.trim().to_owned());
        }
    }
    let max_request_body_bytes = match e.max_request_body_bytes {
        Some(v) if !v.ok => return None,
        // Negative: no limit, as Traefik's -1 default.
        Some(v) => u64::try_from(v.value).ok(),
        None => None,
    };
    let ranges = StatusRanges::parse(status.iter().map(String::as_str)).ok()?;
    Some(FailoverErrors {
        status,
        ranges,
        max_request_body_bytes,
    })
}

pub(super) fn mirroring(ctx: &mut Ctx, pos: Pos, m: At<MirroringFile>) -> Option<ServiceDraft> {
    if !m.ok {
        return None;
    }
    let f = m.value;
    let main = match f.service {
        Some(v) if v.ok && !v.value.is_empty() => v,
        Some(v) if !v.ok => return None,
        _ => {
            ctx.error(&m.path, m.key_pos, "mirroring has no service");
            return None;
        }
    };
    let mut ok = true;
    let mut refs = vec![Ref {
        name: main.value.clone(),
        path: main.path,
        pos: main.pos,
    }];
    let mut mirrors = Vec::new();
    for mirror in f.mirrors {
        let Some(name) = mirror.value.name.filter(|n| n.ok && !n.value.is_empty()) else {
            ctx.error(&mirror.path, mirror.pos, "mirror has no name");
            ok = false;
            continue;
        };
        let percent = match mirror.value.percent {
            Some(p) if p.ok && (0..=100).contains(&p.value) => p.value as u32,
            Some(p) if p.ok => {
                ctx.error(
                    &p.path,
                    p.pos,
                    format!(
                        "mirror percent must be between 0 and 100, found {}",
                        p.value
                    ),
                );
                ok = false;
                0
            }
            Some(_) => {
                ok = false;
                0
            }
            None => 0,
        };
        mirrors.push(MirrorConfig {
            service: name.value.clone(),
            percent,
        });
        refs.push(Ref {
            name: name.value,
            path: name.path,
            pos: name.pos,
        });
    }
    let max_body_size = match f.max_body_size {
        Some(v) if !v.ok => {
            ok = false;
            None
        }
        // Negative: no limit, as Traefik's -1 default.
        Some(v) => u64::try_from(v.value).ok(),
        None => None,
    };
    let origin = ctx.origin(pos);
    ok.then(|| {
        draft(
            ServiceConfig::Mirroring(MirroringConfig {
                service: main.value,
                mirrors,
                mirror_body: f.mirror_body.unwrap_or(true),
                max_body_size,
                health_check: f.health_check.is_some(),
                origin,
            }),
            refs,
        )
    })
}

/// Rejects every service that reaches itself through the services it
/// names, with the cycle in the message (`a -> b -> a`), at the first
/// service each one names (`refs`: file, key path, position).
pub(super) fn reject_cycles(
    children: &BTreeMap<String, Vec<String>>,
    refs: &BTreeMap<String, (PathBuf, String, Pos)>,
    errors: &mut Vec<ConfigError>,
) {
    for start in children.keys() {
        // Depth-first, keeping the path; a service is reported when the
        // walk from it comes back to it.
        let mut stack = vec![(start.as_str(), 0usize)];
        let mut path: Vec<&str> = vec![start.as_str()];
        let mut seen = BTreeSet::new();
        while let Some((node, next)) = stack.pop() {
            let kids = children.get(node).map_or(&[][..], Vec::as_slice);
            if next >= kids.len() {
                path.pop();
                continue;
            }
            stack.push((node, next + 1));
            let kid = kids[next].as_str();
            if kid == start {
                let (file, key, pos) = &refs[start];
                errors.push(ConfigError {
                    file: file.clone(),
                    key: key.clone(),
                    line: (pos.line > 0).then_some(pos.line),
                    column: (pos.line > 0).then_some(pos.column),
                    message: format!("service cycle: {} -> {start}", path.join(" -> ")),
                });
                break;
            }
            if seen.insert(kid) {
                path.push(kid);
                stack.push((kid, 0));
            }
        }
    }
}

/// Refuses, as Traefik does, a parent whose health depends on a child
/// that tracks none: every child of a `weighted` or `highestRandomWeight`
/// service with `healthCheck`, the main service of a `failover` (unless it
/// has `errors.status`), and its fallback when the failover has
/// `healthCheck` itself, must have a `healthCheck` of its own. The error
/// is at the child's reference.
pub(super) fn check_tracking(
    services: &BTreeMap<String, ServiceConfig>,
    tracking: &[ChildRefs],
    errors: &mut Vec<ConfigError>,
) {
    for (name, file, refs) in tracking {
        let (kind, needs): (&str, Vec<(usize, &str)>) = match services.get(name) {
            Some(ServiceConfig::Weighted(w)) if w.health_check => (
                "weighted.healthCheck",
                w.services
                    .iter()
                    .map(|c| c.service.as_str())
                    .enumerate()
                    .collect(),
            ),
            Some(ServiceConfig::HighestRandomWeight(w)) if w.health_check => (
                "highestRandomWeight.healthCheck",
                w.services
                    .iter()
                    .map(|c| c.service.as_str())
                    .enumerate()
                    .collect(),
            ),
            Some(ServiceConfig::Mirroring(m)) if m.health_check => {
                ("mirroring.healthCheck", vec![(0, m.service.as_str())])
            }
            Some(ServiceConfig::Failover(f)) => {
                // With `errors.status`, Traefik takes a main service that
                // tracks no health as always up.
                let with_errors = f.errors.as_ref().is_some_and(|e| !e.status.is_empty());
                let mut needs = Vec::new();
                if !with_errors {
                    needs.push((0, f.service.as_str()));
                }
                if f.health_check {
                    needs.push((1, f.fallback.as_str()));
                }
                ("failover", needs)
            }
            _ => continue,
        };
        for (i, child) in needs {
            let Some(c) = services.get(child) else {
                continue;
            };
            if !c.health_tracked() {
                errors.push(err_at(
                    file,
                    &refs[i].path,
                    refs[i].pos,
                    format!(
                        "service {child:?} has no healthCheck, which {kind} of {name:?} needs to follow its health"
                    ),
                ));
            }
        }
    }
}
