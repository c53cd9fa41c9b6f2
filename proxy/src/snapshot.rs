//! The compiled, immutable configuration the data plane reads.
//!
//! A [`Snapshot`] is built off the request path from a validated
//! configuration (rules parsed, regexes compiled, services resolved to
//! upstream targets) and published with one `ArcSwap` store. Workers keep a
//! cached `Rc` of the current snapshot and notice a new one with a single
//! atomic load, so a request never waits for a reload (decision 2).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use arc_swap::{ArcSwap, Cache};

use crate::config::{DisabledElement, DynamicConfig};
use crate::forward::Redirect;
use crate::middleware::Chain;
use crate::routing::Router;
use crate::tls::{SniOptions, TlsSnapshot};
pub use crate::upstream::Service;

/// What a router sends matching requests to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteTarget {
    /// Index into [`Snapshot::routers`].
    pub router: u32,
    /// Index into [`Snapshot::services`] (unused for a redirection).
    pub service: u32,
    /// For a TLS router, its TLS options (index into the snapshot's
    /// `tls.options`); [`RouteTarget::PLAIN`] for a plain one,
    /// [`RouteTarget::REFUSED`] for one whose options are disabled.
    pub tls_options: u32,
}

impl RouteTarget {
    /// `tls_options` of a router that serves plain connections.
    pub const PLAIN: u32 = u32::MAX;
    /// `tls_options` of a TLS router whose options are disabled (an
    /// error): handshakes for its hosts are refused, as Traefik closes
    /// them.
    pub const REFUSED: u32 = u32::MAX - 1;
}

/// A router: its identity for logs and metrics, and its middlewares.
#[derive(Debug)]
pub struct RouterInfo {
    /// The router name as configured (with Traefik's `@file` provider
    /// suffix in metrics and logs).
    pub name: Arc<str>,
    /// Index into [`Snapshot::services`].
    pub service: u32,
    /// The middlewares its requests pass through, compiled.
    pub chain: Chain,
    /// An entrypoint redirection's generated router answers with this
    /// redirect instead of calling a service.
    pub redirect: Option<Redirect>,
    /// Disabled by a configuration error: it keeps its place and answers
    /// 503 (its `service` is then [`RouterInfo::NO_SERVICE`]).
    pub disabled: bool,
    /// A parent router (multi-layer routing): its children, indexed as an
    /// entrypoint's routers are, matched on the request after its
    /// middlewares (its `service` is then [`RouterInfo::NO_SERVICE`]).
    pub children: Option<Box<Router<RouteTarget>>>,
    /// `redirect`, `disabled` or `children` is set: the request path
    /// tests this one flag, and only then which (a plain router pays one
    /// branch for the three).
    pub special: bool,
}

impl RouterInfo {
    /// The service index of a router without a service of its own
    /// (disabled, a redirection, a parent).
    pub const NO_SERVICE: u32 = u32::MAX;

    /// A router: `special` follows from the rest.
    pub fn new(
        name: Arc<str>,
        service: u32,
        chain: Chain,
        redirect: Option<Redirect>,
        disabled: bool,
        children: Option<Box<Router<RouteTarget>>>,
    ) -> RouterInfo {
        let special = redirect.is_some() || disabled || children.is_some();
        RouterInfo {
            name,
            service,
            chain,
            redirect,
            disabled,
            children,
            special,
        }
    }

    /// Makes it the parent of `children`.
    pub fn set_children(&mut self, children: Router<RouteTarget>) {
        self.children = Some(Box::new(children));
        self.special = true;
    }
}

/// The routers of one entrypoint, indexed for matching: plain
/// connections see only the plain routers, TLS connections only the TLS
/// routers (as in Traefik).
#[derive(Debug)]
pub struct EntryPointRoutes {
    /// The plain (non-TLS) routers.
    pub router: Router<RouteTarget>,
    /// The TLS routers.
    pub tls_router: Router<RouteTarget>,
    /// The TLS options a handshake's SNI gets here.
    pub sni: SniOptions,
}

/// One compiled configuration generation.
#[derive(Debug)]
pub struct Snapshot {
    /// Increments on every applied reload.
    pub generation: u64,
    /// Per static entrypoint (same order as the static config), its routers.
    pub entrypoints: Vec<EntryPointRoutes>,
    /// All routers.
    pub routers: Vec<RouterInfo>,
    /// All services.
    pub services: Vec<Service>,
    /// TLS options and the certificate store.
    pub tls: TlsSnapshot,
    /// Every element disabled by a configuration error, with its errors
    /// (for the API; the disabled routers that keep their place are in
    /// `routers` too).
    pub disabled: Vec<DisabledElement>,
    /// The validated configuration it was compiled from, as the API shows
    /// it (never read per request).
    pub config: Arc<DynamicConfig>,
}

/// The published configuration: the control plane stores, workers load.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

/// A worker's handle on a snapshot. The `Rc` around the `Arc` is
/// deliberate: a request clones the `Rc` (a plain increment on this
/// worker's memory) instead of the `Arc`, whose counter every worker would
/// otherwise bump on the same cache line for every request.
#[allow(clippy::redundant_allocation)]
pub type SnapshotRef = Rc<Arc<Snapshot>>;

thread_local! {
    static CURRENT: RefCell<Option<WorkerView>> = const { RefCell::new(None) };
}

struct WorkerView {
    cache: Cache<SharedSnapshot, Arc<Snapshot>>,
    current: SnapshotRef,
}

/// The current snapshot for this worker thread.
///
/// The returned `Rc` is cloned without atomics; the shared `Arc` is cloned
/// only when a new generation was published. Holding it keeps the snapshot
/// a request started with alive until the request ends, whatever reloads
/// happen meanwhile.
#[inline]
pub fn current(shared: &SharedSnapshot) -> SnapshotRef {
    CURRENT.with(|cell| {
        let mut cell = cell.borrow_mut();
        match cell.as_mut() {
            Some(view) if std::ptr::eq(view.cache.arc_swap(), &**shared) => {
                let latest = view.cache.load();
                if !Arc::ptr_eq(latest, &*view.current) {
                    view.current = Rc::new(Arc::clone(latest));
                }
                Rc::clone(&view.current)
            }
            _ => {
                let mut cache = Cache::new(Arc::clone(shared));
                let current = Rc::new(Arc::clone(cache.load()));
                *cell = Some(WorkerView {
                    cache,
                    current: Rc::clone(&current),
                });
                current
            }
        }
    })
}
