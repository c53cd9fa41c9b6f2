//! `providers.etcd`: Traefik's key layout read from etcd v3 through its
//! JSON gateway (`/v3/kv/range` for every key under `<rootKey>/`, then a
//! streamed `/v3/watch` from the revision read, keys and values base64),
//! over the providers' HTTP client; no gRPC stack. With `username`, a
//! token from `/v3/auth/authenticate` goes in each request's
//! `Authorization`. Watch events are gathered for [`GATHER`] before the
//! keys are read again; the endpoints are tried in turn; an unreachable
//! store keeps the last good configuration and is retried with backoff,
//! logged once per state change. Credentials are never logged.
//!
//! Control plane only (the providers' runtime).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::{Bytes, BytesMut};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::http_client::HttpClient;
use super::provider::{Backoff, GATHER, Sink, Stop};
use crate::config::{EtcdProviderConfig, ProviderSource};

/// The deadline of one request other than the watch.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read whole.
const LIMIT: i64 = 64 << 20;

/// Reads and watches the store until the proxy stops.
pub(super) async fn run(cfg: EtcdProviderConfig, mut sink: Sink, mut stop: Stop) {
    let client = match HttpClient::new(cfg.tls.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(provider = sink.name(), error = %e, "cannot build the TLS client");
            return;
        }
    };
    let scheme = if cfg.tls.is_some() { "https" } else { "http" };
    let bases: Vec<String> = cfg
        .endpoints
        .iter()
        .map(|e| {
            if e.contains("://") {
                e.trim_end_matches('/').to_owned()
            } else {
                format!("{scheme}://{e}")
            }
        })
        .collect();
    let mut backoff = Backoff::new();
    let mut at = 0;
    while !stop.stopping() {
        let base = &bases[at % bases.len()];
        let store = Store {
            client: &client,
            base,
            cfg: &cfg,
            headers: Vec::new(),
        };
        match session(store, &mut sink, &mut stop).await {
            Ok(()) => backoff.reset(),
            Err(e) => {
                sink.unreachable(&e);
                at += 1;
                backoff.wait(&mut stop).await;
            }
        }
    }
}

/// One endpoint.
struct Store<'a> {
    client: &'a HttpClient,
    base: &'a str,
    cfg: &'a EtcdProviderConfig,
    /// `Authorization` once authenticated.
    headers: Vec<(String, String)>,
}

impl Store<'_> {
    /// `POST`s `body` to `path`, the JSON answer of a `200`.
    async fn call(&self, path: &str, body: Value) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let fetch = self.client.fetch(
            Method::POST,
            &url,
            &self.headers,
            Bytes::from(body.to_string()),
            LIMIT,
        );
        let resp = tokio::time::timeout(TIMEOUT, fetch)
            .await
            .map_err(|_| format!("{path}: no answer within {TIMEOUT:?}"))??;
        if resp.status != StatusCode::OK {
            // The gateway's error message says why (never a credential).
            let why = serde_json::from_slice::<Value>(&resp.body)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default();
            return Err(format!("{path}: {} {why}", resp.status.as_u16()));
        }
        serde_json::from_slice(&resp.body).map_err(|e| format!("{path}: {e}"))
    }

    async fn authenticate(&mut self) -> Result<(), String> {
        if self.cfg.username.is_empty() {
            return Ok(());
        }
        let body = json!({"name": self.cfg.username, "password": self.cfg.password});
        let answer = self.call("/v3/auth/authenticate", body).await?;
        let token = answer
            .get("token")
            .and_then(Value::as_str)
            .ok_or("authentication: no token in the answer")?;
        self.headers = vec![("Authorization".to_owned(), token.to_owned())];
        Ok(())
    }

    /// The key range of every key under the root key (base64).
    fn range(&self) -> (String, String) {
        let prefix = format!("{}/", self.cfg.root_key).into_bytes();
        (B64.encode(&prefix), B64.encode(prefix_end(prefix)))
    }

    /// Every pair under the root key, and the store's revision.
    async fn read(&self) -> Result<(Vec<(String, String)>, i64), String> {
        let (key, range_end) = self.range();
        let answer = self
            .call("/v3/kv/range", json!({"key": key, "range_end": range_end}))
            .await?;
        let revision = revision(&answer).ok_or("/v3/kv/range: no revision in the answer")?;
        let mut pairs = Vec::new();
        for kv in answer
            .get("kvs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let field = |name: &str| -> Result<String, String> {
                let raw = kv.get(name).and_then(Value::as_str).unwrap_or("");
                let bytes = B64.decode(raw).map_err(|e| format!("{name}: {e}"))?;
                String::from_utf8(bytes).map_err(|e| format!("{name}: {e}"))
            };
            pairs.push((field("key")?, field("value")?));
        }
        Ok((pairs, revision))
    }
}

/// The revision in an answer's header (the gateway writes int64 as a
/// string).
fn revision(answer: &Value) -> Option<i64> {
    match answer.get("header")?.get("revision")? {
        Value::String(s) => s.parse().ok(),
        v => v.as_i64(),
    }
}

/// The end of the range of keys starting with `prefix`, as etcd's
/// `clientv3.GetPrefixRangeEnd`.
fn prefix_end(mut prefix: Vec<u8>) -> Vec<u8> {
    while let Some(last) = prefix.pop() {
        if last < 0xff {
            prefix.push(last + 1);
            return prefix;
        }
    }
    vec![0]
}

/// One endpoint's life: read, then watch until an error.
async fn session(mut store: Store<'_>, sink: &mut Sink, stop: &mut Stop) -> Result<(), String> {
    store.authenticate().await?;
    let (pairs, revision) = store.read().await?;
    offer(sink, &store, pairs);
    let (key, range_end) = store.range();
    let body = json!({"create_request": {
        "key": key, "range_end": range_end, "start_revision": (revision + 1).to_string(),
    }});
    let url = format!("{}/v3/watch", store.base);
    let connect = store.client.send(
        Method::POST,
        &url,
        &store.headers,
        Bytes::from(body.to_string()),
    );
    let (status, mut stream) = tokio::time::timeout(TIMEOUT, connect)
        .await
        .map_err(|_| format!("/v3/watch: no answer within {TIMEOUT:?}"))??;
    if status != StatusCode::OK {
        return Err(format!("/v3/watch: {}", status.as_u16()));
    }
    let mut buf = BytesMut::new();
    loop {
        let frame = tokio::select! {
            f = stream.frame() => f,
            _ = stop.stopped() => return Ok(()),
        };
        let mut changed = take_events(&mut buf, frame)?;
        if !changed {
            continue;
        }
        // Gather the rest of a multi-key update.
        let deadline = tokio::time::Instant::now() + GATHER;
        while changed {
            match tokio::time::timeout_at(deadline, stream.frame()).await {
                Ok(frame) => {
                    take_events(&mut buf, frame)?;
                }
                Err(_) => changed = false,
            }
        }
        let (pairs, _) = store.read().await?;
        offer(sink, &store, pairs);
    }
}

/// Adds a watch stream frame to `buf`; whether a complete message in it
/// reports events. The end of the stream or a watch error is an error.
fn take_events(
    buf: &mut BytesMut,
    frame: Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>,
) -> Result<bool, String> {
    let frame = frame
        .ok_or("/v3/watch: the stream ended")?
        .map_err(|e| format!("/v3/watch: {e}"))?;
    let Ok(data) = frame.into_data() else {
        return Ok(false);
    };
    buf.extend_from_slice(&data);
    let mut events = false;
    while let Some(end) = buf.iter().position(|&b| b == b'\n') {
        let line = buf.split_to(end + 1);
        let Ok(msg) = serde_json::from_slice::<Value>(&line) else {
            continue;
        };
        if let Some(e) = msg.get("error") {
            return Err(format!("/v3/watch: {e}"));
        }
        let result = msg.get("result").unwrap_or(&msg);
        if result.get("canceled").and_then(Value::as_bool) == Some(true) {
            return Err("/v3/watch: canceled by the server".to_owned());
        }
        if result
            .get("events")
            .and_then(Value::as_array)
            .is_some_and(|e| !e.is_empty())
        {
            events = true;
        }
    }
    Ok(events)
}

fn offer(sink: &mut Sink, store: &Store<'_>, pairs: Vec<(String, String)>) {
    sink.offer(ProviderSource::Kv {
        origin: "etcd".to_owned(),
        root_key: store.cfg.root_key.clone(),
        pairs,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends_as_etcd_computes_them() {
        assert_eq!(prefix_end(b"traefik/".to_vec()), b"traefik0".to_vec());
        assert_eq!(prefix_end(vec![b'a', 0xff]), b"b".to_vec());
        assert_eq!(prefix_end(vec![0xff]), vec![0]);
    }

    #[test]
    fn watch_messages_with_events_are_seen_across_frames() {
        let mut buf = BytesMut::new();
        let created = br#"{"result":{"header":{"revision":"3"},"created":true}}"#;
        let mut f = created.to_vec();
        f.push(b'\n');
        assert!(
            !take_events(&mut buf, Some(Ok(hyper::body::Frame::data(Bytes::from(f))))).unwrap()
        );
        let ev = br#"{"result":{"events":[{"kv":{"key":"dA=="}}]}}"#;
        let (a, b) = ev.split_at(10);
        assert!(
            !take_events(
                &mut buf,
                Some(Ok(hyper::body::Frame::data(Bytes::copy_from_slice(a))))
            )
            .unwrap()
        );
        let mut rest = b.to_vec();
        rest.push(b'\n');
        assert!(
            take_events(
                &mut buf,
                Some(Ok(hyper::body::Frame::data(Bytes::from(rest))))
            )
            .unwrap()
        );
        assert!(take_events(&mut buf, None).is_err());
    }
}
