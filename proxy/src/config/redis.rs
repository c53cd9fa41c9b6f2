//! The file form of the Redis connection settings (Traefik 3.7's
//! `dynamic.Redis`: `endpoints`, `tls`, `username`, `password`, `db`,
//! `poolSize`, `minIdleConns`, `maxActiveConns`, `readTimeout`,
//! `writeTimeout`, `dialTimeout`), checked into a
//! [`crate::redis_client::Settings`] with Traefik's defaults. Every user
//! of Redis (`rateLimit.redis`; the Redis provider) decodes it here, so
//! the keys, defaults and messages are the same everywhere.
//!
//! Control plane only: the PEM of `tls` is read here, when the
//! configuration is checked.

use std::time::Duration;

use serde::Deserialize;

use super::decode::{At, Ctx};
use super::dynamic::{ClientTlsFile, client_tls};
use super::node::Pos;
use crate::redis_client::{
    DEFAULT_DIAL_TIMEOUT, DEFAULT_ENDPOINT, DEFAULT_IO_TIMEOUT, Settings, Tls,
};

/// `redis` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct RedisFile {
    endpoints: Vec<At<String>>,
    tls: Option<At<ClientTlsFile>>,
    username: String,
    password: String,
    db: Option<At<i64>>,
    pool_size: Option<At<i64>>,
    min_idle_conns: Option<At<i64>>,
    max_active_conns: Option<At<i64>>,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    dial_timeout: Option<Duration>,
}

impl RedisFile {
    /// The settings of `redis` (written at `path`, `pos`) for `owner`
    /// (`rateLimit` in messages); `None` when something is wrong (reported
    /// at its key).
    pub(crate) fn check(
        self,
        ctx: &mut Ctx,
        owner: &str,
        path: &str,
        pos: Pos,
    ) -> Option<Settings> {
        let mut ok = true;
        let endpoint = match self.endpoints.as_slice() {
            [] => DEFAULT_ENDPOINT.to_owned(),
            [one] => one.value.trim().to_owned(),
            [_, second, ..] => {
                ctx.error(
                    &second.path,
                    second.pos,
                    format!(
                        "{owner} redis: several endpoints (a Redis Cluster) are not supported yet; \
                         give one"
                    ),
                );
                return None;
            }
        };
        let db = match self.db {
            Some(d) if d.value < 0 => {
                ctx.error(
                    &d.path,
                    d.pos,
                    format!("db must not be negative, found {}", d.value),
                );
                ok = false;
                0
            }
            Some(d) => d.value,
            None => 0,
        };
        // One multiplexed connection per worker carries every command, so
        // the pool's sizes have nothing to size; the limit is the same.
        for a in [
            &self.pool_size,
            &self.min_idle_conns,
            &self.max_active_conns,
        ]
        .into_iter()
        .flatten()
        {
            ctx.warn(
                &a.path,
                a.key_pos,
                "ignored: each worker sends its Redis commands over one multiplexed connection",
            );
        }
        let tls = match self.tls {
            None => None,
            Some(t) => {
                let (tls_path, tls_pos) = (t.path.clone(), t.key_pos);
                let upstream = client_tls(ctx, owner, t)?;
                let read = |ctx: &mut Ctx, what: &str, src: &crate::config::PemSource| {
                    src.read()
                        .map_err(|e| ctx.error(&tls_path, tls_pos, format!("tls {what}: {e}")))
                        .ok()
                };
                let ca = match upstream.root_cas.first() {
                    Some(src) => Some(read(ctx, "ca", src)?),
                    None => None,
                };
                let client = match upstream.certificates.first() {
                    Some(c) => Some((read(ctx, "cert", &c.cert)?, read(ctx, "key", &c.key)?)),
                    None => None,
                };
                Some(Tls {
                    ca,
                    client,
                    insecure_skip_verify: upstream.insecure_skip_verify,
                })
            }
        };
        // Traefik: a read or write timeout of 0 (or less) is none at all;
        // a dial timeout of 0 is go-redis's default.
        let io = |t: Option<Duration>| match t {
            None => Some(DEFAULT_IO_TIMEOUT),
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
        };
        let settings = Settings {
            endpoint,
            sentinel: None,
            username: self.username,
            password: self.password,
            db,
            tls,
            dial_timeout: self
                .dial_timeout
                .filter(|d| !d.is_zero())
                .unwrap_or(DEFAULT_DIAL_TIMEOUT),
            read_timeout: io(self.read_timeout),
            write_timeout: io(self.write_timeout),
        };
        if let Err(e) = settings.check() {
            ctx.error(path, pos, format!("{owner} redis: {e}"));
            return None;
        }
        ok.then_some(settings)
    }
}
