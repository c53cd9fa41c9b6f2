//! Goose, the load tool the design card names: closed-loop users on
//! reqwest, each request timed inside the goose transaction into a µs
//! hdrhistogram (goose's own metrics are whole milliseconds). One scenario
//! per report runs on it (`small-get-goose`), beside the driver's figures.
//!
//! Every user keeps its own figures in goose's session data and sends them
//! over a channel when goose stops it: no lock while load runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use goose::config::GooseConfiguration;
use goose::prelude::*;

use super::driver::micros;
use super::{LoadResult, Window, check};
use crate::scenario::RequestSpec;

/// Per-user state, kept in goose's session data.
#[derive(Clone)]
struct UserStats(LoadResult);

/// Runs `users` keep-alive goose users against `base` (`http://127.0.0.1:PORT`).
pub(crate) async fn closed(
    base: &str,
    spec: &RequestSpec,
    users: usize,
    window: Window,
) -> Result<LoadResult, String> {
    let cpu0 = crate::procs::self_cpu_seconds().0;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<LoadResult>();
    let spec = Arc::new(spec.clone());
    let upload = spec.upload.map(|n| Bytes::from(vec![b'x'; n]));

    let on_start: TransactionFunction = Arc::new(move |user| {
        Box::pin(async move {
            user.set_session_data(UserStats(LoadResult::empty()));
            Ok(())
        })
    });
    let spec2 = spec.clone();
    let request: TransactionFunction = Arc::new(move |user| {
        let spec = spec2.clone();
        let upload = upload.clone();
        Box::pin(async move {
            let now = Instant::now();
            if now >= window.end {
                // Past the window: stay idle until goose stops.
                tokio::time::sleep(Duration::from_millis(20)).await;
                return Ok(());
            }
            if now < window.load_start {
                tokio::time::sleep_until(window.load_start.into()).await;
            }
            let method = if upload.is_some() {
                GooseMethod::Post
            } else {
                GooseMethod::Get
            };
            let mut rb = user.get_request_builder(&method, &spec.path)?;
            if let Some(h) = &spec.host {
                rb = rb.header(http::header::HOST, h.as_str());
            }
            if let Some(b) = upload {
                rb = rb.body(b);
            }
            let greq = GooseRequest::builder().set_request_builder(rb).build();
            let t0 = Instant::now();
            let outcome = match user.request(greq).await {
                Ok(g) => match g.response {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let backend = resp.headers().get("x-backend").cloned();
                        match resp.bytes().await {
                            Ok(b) => check(
                                status,
                                backend.as_ref().map(|v| v.as_bytes()),
                                b.len(),
                                &spec,
                            ),
                            Err(e) => Err(format!("reading body: {e}")),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                },
                Err(e) => Err(format!("{e:?}")),
            };
            let t1 = Instant::now();
            let counted = window.contains(t0, t1);
            if let Some(UserStats(st)) = user.get_session_data_mut::<UserStats>() {
                match outcome {
                    Ok(()) => st.answered(counted, micros(t1 - t0)),
                    Err(e) => st.error(counted, || e),
                }
            }
            Ok(())
        })
    });
    let on_stop: TransactionFunction = Arc::new(move |user| {
        let tx = tx.clone();
        Box::pin(async move {
            if let Some(UserStats(st)) = user.get_session_data_mut::<UserStats>() {
                let _ = tx.send(std::mem::replace(st, LoadResult::empty()));
            }
            Ok(())
        })
    });

    let run_time = ((window.end - Instant::now()).as_secs_f64().ceil() as u64).max(1);
    let args: Vec<String> = [
        "--host",
        base,
        "--users",
        &users.to_string(),
        "--increase-rate",
        "1000",
        "--run-time",
        &run_time.to_string(),
        "--no-metrics",
        "--no-print-metrics",
        "--no-error-summary",
        "--no-telnet",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let config =
        GooseConfiguration::parse_args_default(&args).map_err(|e| format!("goose config: {e}"))?;
    let scenario = scenario!("Load")
        .register_transaction(Transaction::new(on_start).set_on_start())
        .register_transaction(Transaction::new(request))
        .register_transaction(Transaction::new(on_stop).set_on_stop());
    let started = tokio::time::timeout(
        window.end - Instant::now() + Duration::from_secs(30),
        async {
            GooseAttack::initialize_with_config(config)
                .map_err(|e| e.to_string())?
                .register_scenario(scenario)
                .execute()
                .await
                .map_err(|e| format!("goose: {e}"))
        },
    )
    .await;
    match started {
        Ok(r) => {
            r?;
        }
        Err(_) => return Err("goose did not stop 30 s after its run time".into()),
    }
    let mut total = LoadResult::empty();
    rx.close();
    while let Some(r) = rx.recv().await {
        total.absorb(r);
    }
    let cpu = crate::procs::self_cpu_seconds().0 - cpu0;
    if total.answered_total > 0 {
        total.load_cpu_us_per_req = Some(cpu * 1e6 / total.answered_total as f64);
    }
    Ok(total)
}
