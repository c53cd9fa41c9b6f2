//! The proxy's one Redis client: the connection settings Traefik's Redis
//! users read (`rateLimit.redis` today, the Redis provider next) with
//! Traefik 3.7's defaults, and the client made from them. The file form of
//! those settings (keys, positions, checks) is `config::redis`, which
//! yields a [`Settings`].
//!
//! A [`Client`] is made when a configuration is compiled (no connection
//! yet: Traefik's go-redis client dials on first use too, so a Redis that
//! is down at start is no configuration error). Each worker thread gets its
//! own multiplexed connection on its first command (a `redis`
//! `ConnectionManager`: many commands in flight on one socket, re-dialled
//! after a failure), so requests never share a connection across threads
//! and never wait on a lock of ours.
//!
//! Must not: know what is stored (the commands are the caller's), or hold
//! a `Mutex` on the request path.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisError};
use tokio::sync::OnceCell;

/// Traefik's default endpoint for `rateLimit.redis`.
pub const DEFAULT_ENDPOINT: &str = "localhost:6379";
/// go-redis's dial timeout when none is set.
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Traefik's read and write timeouts when none is set.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(3);

/// Where and how to reach Redis (validated).
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// `host:port` (`endpoints`, one: several mean a Redis Cluster, which
    /// `config::redis` refuses as not supported yet).
    pub endpoint: String,
    /// `sentinel`: `endpoints` are sentinels, asked for this master's
    /// address before each connection.
    pub sentinel: Option<Sentinel>,
    /// `username` (ACL user; empty: none).
    pub username: String,
    /// `password` (empty: none).
    pub password: String,
    /// `db`, selected after connecting.
    pub db: i64,
    /// `tls`: connect over TLS (`rediss`).
    pub tls: Option<Tls>,
    /// `dialTimeout` (5 s unless set above 0).
    pub dial_timeout: Duration,
    /// `readTimeout` (3 s unless set; 0 or less: none).
    pub read_timeout: Option<Duration>,
    /// `writeTimeout` (3 s unless set; 0 or less: none).
    pub write_timeout: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            sentinel: None,
            username: String::new(),
            password: String::new(),
            db: 0,
            tls: None,
            dial_timeout: DEFAULT_DIAL_TIMEOUT,
            read_timeout: Some(DEFAULT_IO_TIMEOUT),
            write_timeout: Some(DEFAULT_IO_TIMEOUT),
        }
    }
}

// The credentials never reach a log line.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("Settings")
            .field("endpoint", &self.endpoint)
            .field("sentinel", &self.sentinel)
            .field("username", &set(&self.username))
            .field("password", &set(&self.password))
            .field("db", &self.db)
            .field("tls", &self.tls)
            .field("dial_timeout", &self.dial_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("write_timeout", &self.write_timeout)
            .finish()
    }
}

/// Redis Sentinel (Traefik's `sentinel`): where to ask for the master.
#[derive(Clone, PartialEq, Eq)]
pub struct Sentinel {
    /// `masterName`: the master the sentinels monitor.
    pub master_name: String,
    /// `endpoints`: the sentinels, tried in turn.
    pub endpoints: Vec<String>,
    /// `sentinel.username` (the sentinels' ACL user; empty: none).
    pub username: String,
    /// `sentinel.password` (empty: none).
    pub password: String,
}

impl fmt::Debug for Sentinel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sentinel")
            .field("master_name", &self.master_name)
            .field("endpoints", &self.endpoints)
            .field("password", &!self.password.is_empty())
            .finish_non_exhaustive()
    }
}

impl Sentinel {
    /// The master's `host:port`, from the first sentinel (in `endpoints`
    /// order) that knows it; the error names each sentinel's failure.
    pub async fn master(&self, dial_timeout: Duration) -> Result<String, String> {
        let mut failures = Vec::new();
        for endpoint in &self.endpoints {
            match self.ask(endpoint, dial_timeout).await {
                Ok(addr) => return Ok(addr),
                Err(e) => failures.push(format!("sentinel {endpoint}: {e}")),
            }
        }
        Err(format!(
            "no sentinel gave master {:?} ({})",
            self.master_name,
            failures.join("; ")
        ))
    }

    async fn ask(&self, endpoint: &str, dial_timeout: Duration) -> Result<String, String> {
        let (host, port) = split_endpoint(endpoint)?;
        let mut redis = redis::RedisConnectionInfo::default();
        if !self.username.is_empty() {
            redis = redis.set_username(self.username.clone());
        }
        if !self.password.is_empty() {
            redis = redis.set_password(self.password.clone());
        }
        let info = ConnectionAddr::Tcp(host, port)
            .into_connection_info()
            .map_err(|e| e.to_string())?
            .set_redis_settings(redis);
        let client = redis::Client::open(info).map_err(|e| e.to_string())?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(dial_timeout))
            .set_response_timeout(Some(dial_timeout));
        let mut con = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| e.to_string())?;
        let reply: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(&self.master_name)
            .query_async(&mut con)
            .await
            .map_err(|e| e.to_string())?;
        match reply {
            Some((host, port)) if host.contains(':') => Ok(format!("[{host}]:{port}")),
            Some((host, port)) => Ok(format!("{host}:{port}")),
            None => Err(format!("does not know master {:?}", self.master_name)),
        }
    }
}

/// The TLS of a Redis connection (Traefik's `ClientTLS`), its PEM already
/// read (from a file or inline) when the configuration was checked.
#[derive(Clone, PartialEq, Eq)]
pub struct Tls {
    /// `ca`: the roots to trust instead of the system's.
    pub ca: Option<Vec<u8>>,
    /// `cert` and `key`: a client certificate.
    pub client: Option<(Vec<u8>, Vec<u8>)>,
    /// `insecureSkipVerify`: accept any server certificate.
    pub insecure_skip_verify: bool,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("ca", &self.ca.is_some())
            .field("client", &self.client.is_some())
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .finish()
    }
}

impl Settings {
    /// The `redis` client of these settings (no connection is made);
    /// an error names what is wrong (a bad endpoint, unusable PEM).
    pub(crate) fn redis_client(&self) -> Result<redis::Client, String> {
        self.redis_client_at(&self.endpoint)
    }

    /// [`Settings::redis_client`] for a server at `endpoint` (the master
    /// a sentinel named).
    pub(crate) fn redis_client_at(&self, endpoint: &str) -> Result<redis::Client, String> {
        let (host, port) = split_endpoint(endpoint)?;
        let addr = match &self.tls {
            None => ConnectionAddr::Tcp(host, port),
            Some(t) => ConnectionAddr::TcpTls {
                host,
                port,
                insecure: t.insecure_skip_verify,
                tls_params: None,
            },
        };
        let mut redis = redis::RedisConnectionInfo::default().set_db(self.db);
        if !self.username.is_empty() {
            redis = redis.set_username(self.username.clone());
        }
        if !self.password.is_empty() {
            redis = redis.set_password(self.password.clone());
        }
        let info: ConnectionInfo = addr
            .into_connection_info()
            .map_err(|e| e.to_string())?
            .set_redis_settings(redis);
        match &self.tls {
            Some(t) if t.ca.is_some() || t.client.is_some() => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: t.client.as_ref().map(|(cert, key)| redis::ClientTlsConfig {
                        client_cert: cert.clone(),
                        client_key: key.clone(),
                    }),
                    root_cert: t.ca.clone(),
                },
            )
            .map_err(|e| format!("tls: {e}")),
            _ => redis::Client::open(info).map_err(|e| e.to_string()),
        }
    }

    /// Checks that a client can be made of these settings (the endpoint
    /// parses, the PEM is usable): what `config::redis` reports at the key.
    pub fn check(&self) -> Result<(), String> {
        if let Some(s) = &self.sentinel {
            for e in &s.endpoints {
                split_endpoint(e).map_err(|e| format!("sentinel: {e}"))?;
            }
        }
        self.redis_client().map(drop)
    }
}

/// `host:port` split; a host alone gets Redis's port 6379.
fn split_endpoint(endpoint: &str) -> Result<(String, u16), String> {
    let bad = || format!("endpoint {endpoint:?} is not host:port");
    let (host, port) = match endpoint.rsplit_once(':') {
        // An IPv6 address without a port ("::1") has colons but no brackets.
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => {
            (h, p.parse::<u16>().map_err(|_| bad())?)
        }
        _ => (endpoint, 6379),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// A Redis client shared by the workers: one lazily made connection per
/// worker thread.
pub struct Client {
    client: redis::Client,
    config: ConnectionManagerConfig,
    /// Indexed by [`crate::rt::worker_index`].
    per_worker: Box<[OnceCell<ConnectionManager>]>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.client.get_connection_info().addr())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `settings` (checked: see [`Settings::check`]).
    pub fn new(settings: &Settings) -> Result<Client, String> {
        let client = settings.redis_client()?;
        // A command's deadline covers writing it and reading its answer.
        let response_timeout = match (settings.read_timeout, settings.write_timeout) {
            (Some(r), Some(w)) => Some(r + w),
            _ => None,
        };
        // go-redis retries a failed dial with a backoff from 8 ms to
        // 512 ms; a request waits for that, not for the manager's default
        // six retries from 100 ms (seconds, with Redis down).
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.dial_timeout))
            .set_response_timeout(response_timeout)
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(8))
            .set_max_delay(Duration::from_millis(512));
        let per_worker = (0..crate::rt::workers()).map(|_| OnceCell::new()).collect();
        Ok(Client {
            client,
            config,
            per_worker,
        })
    }

    /// This worker's connection, dialled on its first use (on the calling
    /// thread's runtime). A clone of the manager is a reference count.
    pub async fn connection(&self) -> Result<ConnectionManager, RedisError> {
        let slot = &self.per_worker[crate::rt::worker_index() % self.per_worker.len()];
        let manager = slot
            .get_or_try_init(|| {
                ConnectionManager::new_with_config(self.client.clone(), self.config.clone())
            })
            .await?;
        Ok(manager.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_host_and_port() {
        assert_eq!(
            split_endpoint("localhost:6379").unwrap(),
            ("localhost".into(), 6379)
        );
        assert_eq!(split_endpoint("redis").unwrap(), ("redis".into(), 6379));
        assert_eq!(split_endpoint("[::1]:7000").unwrap(), ("::1".into(), 7000));
        assert_eq!(split_endpoint("::1").unwrap(), ("::1".into(), 6379));
        assert!(split_endpoint("host:port").is_err());
        assert!(split_endpoint(":6379").is_err());
    }

    #[test]
    fn credentials_never_show() {
        let s = Settings {
            password: "hunter2".into(),
            ..Settings::default()
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn unusable_pem_is_named() {
        let s = Settings {
            tls: Some(Tls {
                ca: None,
                client: Some((b"no certificate".to_vec(), b"no key".to_vec())),
                insecure_skip_verify: false,
            }),
            ..Settings::default()
        };
        let e = s.check().unwrap_err();
        assert!(e.starts_with("tls:"), "{e}");
    }
}
