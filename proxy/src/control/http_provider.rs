//! `providers.http`: the dynamic configuration polled from an endpoint
//! every `pollInterval`, as Traefik 3.7's HTTP provider does: a `GET`
//! with the configured headers, answered `200` within `pollTimeout`, its
//! body at most `maxResponseBodySize` bytes, decoded as YAML (JSON is
//! YAML). An answer identical to the last one is not decoded again (no
//! reload); a failed poll (refused, timed out, not `200`, too large)
//! keeps the last good configuration and is retried with backoff.
//!
//! Control plane only (the providers' runtime).

use bytes::Bytes;
use http::{Method, StatusCode};

use super::http_client::HttpClient;
use super::provider::{Backoff, Sink, Stop};
use crate::config::{HttpProviderConfig, ProviderSource};

/// Polls `cfg.endpoint` until the proxy stops.
pub(super) async fn run(cfg: HttpProviderConfig, mut sink: Sink, mut stop: Stop) {
    let client = match HttpClient::new(cfg.tls.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(provider = sink.name(), error = %e, "cannot build the TLS client");
            return;
        }
    };
    let headers: Vec<(String, String)> = cfg.headers.clone().into_iter().collect();
    let mut last: Option<Bytes> = None;
    let mut backoff = Backoff::new();
    while !stop.stopping() {
        match poll(&client, &cfg, &headers).await {
            Ok(body) => {
                backoff.reset();
                sink.reached();
                if last.as_ref() != Some(&body) {
                    last = Some(body.clone());
                    offer(&mut sink, &cfg.endpoint, &body);
                }
                stop.sleep(cfg.poll_interval).await;
            }
            Err(e) => {
                sink.unreachable(&e);
                backoff.wait(&mut stop).await;
            }
        }
    }
}

/// One poll: the body of a `200` answer.
async fn poll(
    client: &HttpClient,
    cfg: &HttpProviderConfig,
    headers: &[(String, String)],
) -> Result<Bytes, String> {
    let fetch = client.fetch(
        Method::GET,
        &cfg.endpoint,
        headers,
        Bytes::new(),
        cfg.max_response_body_size,
    );
    let resp = tokio::time::timeout(cfg.poll_timeout, fetch)
        .await
        .map_err(|_| format!("no answer within pollTimeout ({:?})", cfg.poll_timeout))??;
    if resp.status != StatusCode::OK {
        return Err(format!(
            "received non-ok response code: {}",
            resp.status.as_u16()
        ));
    }
    Ok(resp.body)
}

fn offer(sink: &mut Sink, endpoint: &str, body: &Bytes) {
    match std::str::from_utf8(body) {
        Ok(text) => {
            sink.offer(ProviderSource::Text {
                origin: endpoint.to_owned(),
                text: text.to_owned(),
            });
        }
        Err(e) => tracing::error!(
            provider = sink.name(),
            "configuration refused: the answer is not UTF-8 ({e}); keeping the last good one"
        ),
    }
}
