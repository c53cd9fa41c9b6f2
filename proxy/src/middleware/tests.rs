//! The chain's runner with probe members that answer, act before and after,
//! and wrap the inner call (a retry), against a recording inner call.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::{HeaderValue, Method, Request, Response, StatusCode};

use super::*;
use crate::forward::Shared;
use crate::ipnet::IpSet;
use crate::listener::{ConnCtx, EntryPointInfo};
use crate::observe::MetricsFlags;
use crate::snapshot::Snapshot;

fn empty_snapshot() -> Snapshot {
    Snapshot {
        generation: 1,
        entrypoints: Vec::new(),
        routers: Vec::new(),
        services: Vec::new(),
        tls: crate::tls::TlsRuntime::new()
            .unwrap()
            .prepare(&[], &crate::config::DynamicConfig::default())
            .unwrap()
            .tls,
        disabled: Vec::new(),
        config: Default::default(),
    }
}

fn conn() -> ConnCtx {
    let shared = Arc::new(Shared {
        snapshot: Arc::new(ArcSwap::from_pointee(empty_snapshot())),
        server_name: HeaderValue::from_static("test"),
        metrics: None,
        metric_flags: MetricsFlags::default(),
        access_log: None,
        admin: None,
    });
    let ep = Arc::new(EntryPointInfo {
        index: 0,
        name: "web".into(),
        trusted: IpSet::default(),
        insecure: false,
        handshake_errors: metrics::Counter::noop(),
        headers: Default::default(),
    });
    ConnCtx::new(shared, ep, "127.0.0.1:5000".parse().unwrap(), None)
}

fn run<M: Member>(chain: &Chain<M>, inner: &mut Recorder) -> Served {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let req = Request::get("/").body(RequestBody::full("hello")).unwrap();
    let (conn, snapshot) = (conn(), empty_snapshot());
    let cx = Exchange {
        conn: &conn,
        snapshot: &snapshot,
    };
    rt.block_on(chain.run(req, &cx, inner))
}

/// What a probe does besides leaving its name on the way in and out.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Act {
    Pass,
    Answer,
    /// Sends the request again while the inner call fails, up to n times.
    Retry(u32),
}

#[derive(Debug)]
struct Probe {
    name: &'static str,
    act: Act,
    log: Rc<RefCell<Vec<String>>>,
}

/// A probe's frame: what a retry needs to send the request again.
#[derive(Debug)]
struct Kept {
    attempt: u32,
    again: Option<Request<RequestBody>>,
}

fn replay(req: &Request<RequestBody>) -> Request<RequestBody> {
    let mut copy = Request::new(req.body().replay().expect("a full body replays"));
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.headers_mut() = req.headers().clone();
    copy
}

impl Member for Probe {
    type Frame = Kept;

    async fn inbound(&self, mut req: Request<RequestBody>, cx: &Exchange<'_>) -> Inbound<Kept> {
        assert_eq!(cx.conn.entrypoint.name.as_ref(), "web");
        assert_eq!(cx.snapshot.generation, 1);
        self.log.borrow_mut().push(format!("in {}", self.name));
        if self.act == Act::Answer {
            let mut resp = Response::new(ProxyBody::full("answered"));
            *resp.status_mut() = StatusCode::UNAUTHORIZED;
            return Inbound::Answer(resp);
        }
        req.headers_mut()
            .append("x-trail", HeaderValue::from_static(self.name));
        let again = matches!(self.act, Act::Retry(_)).then(|| replay(&req));
        Inbound::Next(req, Kept { attempt: 0, again })
    }

    async fn outbound(&self, served: Served, mut kept: Kept, _cx: &Exchange<'_>) -> Outbound<Kept> {
        self.log.borrow_mut().push(format!("out {}", self.name));
        if let Act::Retry(max) = self.act
            && let Err(e) = &served
            && kept.attempt < max
            && e.retry_safe(true)
        {
            let req = kept.again.take().expect("kept for a retry");
            kept.again = Some(replay(&req));
            kept.attempt += 1;
            return Outbound::Again(req, kept);
        }
        Outbound::Done(served.map(|mut resp| {
            resp.headers_mut()
                .append("x-out", HeaderValue::from_static(self.name));
            resp
        }))
    }
}

/// The inner call: fails `failures` times (as a refused dial), then
/// answers with the trail the request carried.
#[derive(Debug, Default)]
struct Recorder {
    failures: u32,
    calls: u32,
    log: Rc<RefCell<Vec<String>>>,
}

impl Inner for Recorder {
    async fn call(&mut self, req: Request<RequestBody>) -> Served {
        self.calls += 1;
        let trail: Vec<&str> = req
            .headers()
            .get_all("x-trail")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        self.log
            .borrow_mut()
            .push(format!("service [{}]", trail.join(",")));
        if self.calls <= self.failures {
            return Err(ProxyError::Connect {
                addr: "127.0.0.1:1".into(),
                source: std::io::ErrorKind::ConnectionRefused.into(),
            });
        }
        assert_eq!(req.method(), Method::GET);
        Ok(Response::new(ProxyBody::empty()))
    }
}

fn chain(log: &Rc<RefCell<Vec<String>>>, probes: &[(&'static str, Act)]) -> Chain<Probe> {
    Chain::new(
        probes
            .iter()
            .map(|&(name, act)| Probe {
                name,
                act,
                log: Rc::clone(log),
            })
            .collect(),
    )
}

fn outs(resp: &Response<ProxyBody>) -> Vec<&str> {
    resp.headers()
        .get_all("x-out")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

#[test]
fn an_empty_chain_is_the_inner_call() {
    let chain: Chain = Chain::default();
    assert!(chain.is_empty());
    let mut inner = Recorder::default();
    let served = run(&chain, &mut inner);
    assert_eq!(inner.calls, 1);
    assert_eq!(served.unwrap().status(), StatusCode::OK);
}

#[test]
fn members_act_before_in_order_and_after_in_reverse() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let c = chain(&log, &[("a", Act::Pass), ("b", Act::Pass)]);
    let mut inner = Recorder {
        log: Rc::clone(&log),
        ..Recorder::default()
    };
    let resp = run(&c, &mut inner).unwrap();
    assert_eq!(
        *log.borrow(),
        ["in a", "in b", "service [a,b]", "out b", "out a"]
    );
    assert_eq!(outs(&resp), ["b", "a"]);
}

#[test]
fn a_member_that_answers_stops_the_chain_and_earlier_members_see_the_answer() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let c = chain(
        &log,
        &[("a", Act::Pass), ("auth", Act::Answer), ("c", Act::Pass)],
    );
    let mut inner = Recorder::default();
    let resp = run(&c, &mut inner).unwrap();
    assert_eq!(inner.calls, 0, "the service is not called");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(*log.borrow(), ["in a", "in auth", "out a"]);
    assert_eq!(outs(&resp), ["a"]);
}

#[test]
fn a_wrapping_member_sends_the_request_through_the_rest_of_the_chain_again() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let c = chain(
        &log,
        &[("a", Act::Pass), ("retry", Act::Retry(3)), ("c", Act::Pass)],
    );
    let mut inner = Recorder {
        failures: 2,
        log: Rc::clone(&log),
        ..Recorder::default()
    };
    let resp = run(&c, &mut inner).unwrap();
    assert_eq!(inner.calls, 3, "two failures, then success");
    assert_eq!(
        *log.borrow(),
        [
            "in a",
            "in retry",
            "in c",
            "service [a,retry,c]",
            "out c",
            "out retry",
            "in c",
            "service [a,retry,c]",
            "out c",
            "out retry",
            "in c",
            "service [a,retry,c]",
            "out c",
            "out retry",
            "out a",
        ]
    );
    assert_eq!(outs(&resp), ["c", "retry", "a"]);

    // Out of attempts: the last error goes out through the members before.
    let log = Rc::new(RefCell::new(Vec::new()));
    let c = chain(&log, &[("retry", Act::Retry(1))]);
    let mut inner = Recorder {
        failures: 5,
        ..Recorder::default()
    };
    let err = run(&c, &mut inner).unwrap_err();
    assert_eq!(inner.calls, 2);
    assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
}
