//! `dashboard-open`: what an open dashboard page adds to a target. Every
//! [`EVERY`] over the measured window, the API calls the proxy's dashboard
//! makes on each refresh (`proxy/src/admin/assets/app.js`), one after the
//! other on one keep-alive connection, as a browser tab does. Traefik gets
//! the same calls minus the two paths only the proxy has, so both answer
//! the same questions.
//!
//! Load side only: it runs on the load core beside the driver and counts
//! what was answered; it measures nothing itself (the window's CPU figures
//! include its cost to the target, which is the point).

use std::net::SocketAddr;
use std::time::Duration;

use crate::load::Window;
use crate::load::h1::{self, Conn, Reader};
use crate::results::DashboardFigures;
use crate::targets::Kind;

/// The dashboard's refresh period (`POLL_MS` in its script).
pub(crate) const EVERY: Duration = Duration::from_secs(2);

/// What the proxy's dashboard fetches on each refresh.
const PROXY_PATHS: [&str; 7] = [
    "/api/overview",
    "/api/entrypoints",
    "/api/http/routers?per_page=1000",
    "/api/http/services?per_page=1000",
    "/api/http/middlewares?per_page=1000",
    "/api/proxy/live",
    "/api/proxy/reloads",
];

/// Of those, the paths Traefik's API has.
const TRAEFIK_PATHS: usize = 5;

/// Polls the API at `addr` (a target of `kind`) from the start to the end
/// of `w`: the figures, and the first failed call.
pub(crate) async fn dashboard(
    addr: SocketAddr,
    kind: Kind,
    w: Window,
) -> (DashboardFigures, Option<String>) {
    let paths = match kind {
        Kind::Proxy => &PROXY_PATHS[..],
        _ => &PROXY_PATHS[..TRAEFIK_PATHS],
    };
    let requests: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| {
            format!("GET {p} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\n\r\n")
                .into_bytes()
        })
        .collect();
    let mut out = DashboardFigures {
        refreshes: 0,
        calls_per_refresh: requests.len() as u64,
        failed: 0,
    };
    let mut first_error = None;
    let mut conn: Option<Conn> = None;
    let mut rd = Reader::with_capacity(256 * 1024);
    let mut next = w.start;
    while next < w.end {
        tokio::time::sleep_until(next.into()).await;
        let mut ok = true;
        for req in &requests {
            if let Err(e) = call(&mut conn, &mut rd, addr, req).await {
                ok = false;
                out.failed += 1;
                first_error.get_or_insert(e);
            }
        }
        out.refreshes += u64::from(ok);
        next += EVERY;
    }
    (out, first_error)
}

/// One call on the kept connection (a new one when there is none or the
/// last answer closed it).
async fn call(
    conn: &mut Option<Conn>,
    rd: &mut Reader,
    addr: SocketAddr,
    req: &[u8],
) -> Result<(), String> {
    if conn.is_none() {
        rd.clear();
        *conn = Some(Conn::connect(addr, None).await?);
    }
    let c = conn.as_mut().expect("connected above");
    let answer = tokio::time::timeout(Duration::from_secs(5), h1::exchange(c, req, rd))
        .await
        .map_err(|_| "no answer in 5 s".to_owned())
        .and_then(|r| r.map_err(|f| f.msg));
    match answer {
        Ok(a) => {
            if a.close {
                *conn = None;
            }
            if a.status == 200 {
                Ok(())
            } else {
                Err(format!("{}: status {}", path_of(req), a.status))
            }
        }
        Err(e) => {
            *conn = None;
            Err(format!("{}: {e}", path_of(req)))
        }
    }
}

fn path_of(req: &[u8]) -> &str {
    std::str::from_utf8(req)
        .ok()
        .and_then(|s| s.split(' ').nth(1))
        .unwrap_or("?")
}
