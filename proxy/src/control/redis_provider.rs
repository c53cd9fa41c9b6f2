//! `providers.redis`: Traefik's key layout read from Redis (`SCAN` of
//! `<rootKey>/*`, then `MGET`), watched through keyspace notifications as
//! Traefik's Redis store does: `CONFIG SET notify-keyspace-events KEA` on
//! connect (Redis ships them off), then `PSUBSCRIBE
//! __keyspace@<db>__:<rootKey>/*`. Where `CONFIG` is refused (a managed
//! Redis), the store is polled every [`POLL`] instead, with a warning.
//! Events are gathered for [`GATHER`] before the store is read again: a
//! multi-key update passes through partial states. With `sentinel`, the
//! master is asked of the sentinels before each connection (so a failover,
//! which closes the old master's connections, is followed on reconnect).
//!
//! The store unreachable (at start or later): the last good configuration
//! stays, the connection is retried with backoff, logged once per state
//! change. Credentials are never logged (`Settings`' `Debug` hides them).
//!
//! Control plane only (the providers' runtime).

use std::time::Duration;

use futures_core::Stream;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;

use super::provider::{Backoff, GATHER, Sink, Stop};
use crate::config::{ProviderSource, RedisProviderConfig};

/// How often the store is read when notifications cannot be enabled.
const POLL: Duration = Duration::from_millis(500);

/// Reads and watches the store until the proxy stops.
pub(super) async fn run(cfg: RedisProviderConfig, mut sink: Sink, mut stop: Stop) {
    let client = match cfg.settings.redis_client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(provider = sink.name(), error = %e, "cannot make the Redis client");
            return;
        }
    };
    let mut backoff = Backoff::new();
    let mut warned_polling = false;
    while !stop.stopping() {
        let ended = session(&client, &cfg, &mut sink, &mut stop, &mut warned_polling).await;
        if let Err(e) = ended {
            sink.unreachable(&e);
            backoff.wait(&mut stop).await;
        } else {
            backoff.reset();
        }
    }
}

/// One connection's life: read, then watch (or poll) until an error.
async fn session(
    client: &redis::Client,
    cfg: &RedisProviderConfig,
    sink: &mut Sink,
    stop: &mut Stop,
    warned_polling: &mut bool,
) -> Result<(), String> {
    let timeouts = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(cfg.settings.dial_timeout))
        .set_response_timeout(cfg.settings.read_timeout);
    // With Sentinel, the master is asked for before every connection: a
    // failover closes the old master's connections (the sentinels kill
    // its clients when they reconfigure it), so the next session follows.
    let at_master;
    let client = match &cfg.settings.sentinel {
        None => client,
        Some(s) => {
            let master = s.master(cfg.settings.dial_timeout).await?;
            at_master = cfg.settings.redis_client_at(&master)?;
            &at_master
        }
    };
    let mut con = client
        .get_multiplexed_async_connection_with_config(&timeouts)
        .await
        .map_err(|e| e.to_string())?;
    if cfg.settings.sentinel.is_some() {
        // A sentinel may still name a master it is demoting: serve only
        // from one that says it is the master (re-asked after a backoff).
        let role: Vec<redis::Value> = redis::cmd("ROLE")
            .query_async(&mut con)
            .await
            .map_err(|e| e.to_string())?;
        let is_master = matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master");
        if !is_master {
            return Err(
                "the server the sentinels named is not a master (failover under way)".to_owned(),
            );
        }
    }
    let notify: redis::RedisResult<()> = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("KEA")
        .query_async(&mut con)
        .await;
    // Subscribed before the first read: a change between the two is seen.
    let mut pubsub = match notify {
        Ok(()) => {
            let mut p = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
            let pattern = format!("__keyspace@{}__:{}/*", cfg.settings.db, cfg.root_key);
            p.psubscribe(&pattern).await.map_err(|e| e.to_string())?;
            Some(p)
        }
        Err(e) => {
            if !*warned_polling {
                tracing::warn!(
                    provider = sink.name(),
                    error = %e,
                    "CONFIG SET notify-keyspace-events refused: polling the store every {POLL:?} instead"
                );
                *warned_polling = true;
            }
            None
        }
    };
    read(&mut con, cfg, sink).await?;
    match pubsub.as_mut() {
        Some(p) => {
            let mut messages = std::pin::pin!(p.on_message());
            loop {
                tokio::select! {
                    m = next(&mut messages) => {
                        if m.is_none() {
                            return Err("the notification connection closed".to_owned());
                        }
                    }
                    _ = stop.stopped() => return Ok(()),
                }
                // Gather the rest of a multi-key update.
                let deadline = tokio::time::Instant::now() + GATHER;
                while let Ok(Some(_)) = tokio::time::timeout_at(deadline, next(&mut messages)).await
                {
                }
                read(&mut con, cfg, sink).await?;
            }
        }
        None => loop {
            stop.sleep(POLL).await;
            if stop.stopping() {
                return Ok(());
            }
            read(&mut con, cfg, sink).await?;
        },
    }
}

/// The next item of `s`.
async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *s).poll_next(cx)).await
}

/// Reads every key under the root key and offers the pairs.
async fn read(
    con: &mut MultiplexedConnection,
    cfg: &RedisProviderConfig,
    sink: &mut Sink,
) -> Result<(), String> {
    let pattern = format!("{}/*", cfg.root_key);
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(con)
            .await
            .map_err(|e| e.to_string())?;
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    keys.sort();
    keys.dedup();
    let mut pairs = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(chunk)
            .query_async(con)
            .await
            .map_err(|e| e.to_string())?;
        // A key deleted between SCAN and MGET is left out.
        pairs.extend(
            chunk
                .iter()
                .zip(values)
                .filter_map(|(k, v)| Some((k.clone(), v?))),
        );
    }
    sink.offer(ProviderSource::Kv {
        origin: "redis".to_owned(),
        root_key: cfg.root_key.clone(),
        pairs,
    });
    Ok(())
}
