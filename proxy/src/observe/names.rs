//! Metric names, label names and help texts.
//!
//! Names are Traefik v3's (`pkg/observability/metrics/prometheus.go`) with the
//! `traefik_` prefix replaced by `proxy_`, so a Traefik dashboard ports by one
//! substitution. Names marked "ours" have no Traefik counterpart in v3.

/// Prefix of every metric this proxy exports.
pub const PREFIX: &str = "proxy_";

/// Counter: configurations applied (Traefik `traefik_config_reloads_total`).
pub const CONFIG_RELOADS_TOTAL: &str = "proxy_config_reloads_total";
/// Counter (ours; Traefik v2 had `traefik_config_reloads_failure_total`):
/// configurations rejected by a reload.
pub const CONFIG_RELOAD_FAILURES_TOTAL: &str = "proxy_config_reload_failures_total";
/// Gauge: Unix time in seconds of the last applied configuration
/// (Traefik `traefik_config_last_reload_success`).
pub const CONFIG_LAST_RELOAD_SUCCESS: &str = "proxy_config_last_reload_success";
/// Gauge (ours; Traefik v2 had it): Unix time in seconds of the last rejected
/// configuration.
pub const CONFIG_LAST_RELOAD_FAILURE: &str = "proxy_config_last_reload_failure";
/// Gauge (ours): generation number of the configuration being served.
pub const CONFIG_GENERATION: &str = "proxy_config_generation";
/// Gauge `{kind}` (ours; Traefik shows them in its API only): elements of
/// the configuration being served that an error disabled, by kind
/// (`router`, `service`, `middleware`, `serversTransport`).
pub const CONFIG_DISABLED_ELEMENTS: &str = "proxy_config_disabled_elements";
/// Gauge `{entrypoint, protocol}`: open connections (Traefik
/// `traefik_open_connections`, protocol `TCP`/`UDP`).
pub const OPEN_CONNECTIONS: &str = "proxy_open_connections";

/// Gauge `{service, url}`: 1 while a health-checked server is up, 0 while
/// it is down (Traefik `traefik_service_server_up`).
pub const SERVICE_SERVER_UP: &str = "proxy_service_server_up";

/// Counter `{code, method, protocol, entrypoint}`.
pub const ENTRYPOINT_REQUESTS_TOTAL: &str = "proxy_entrypoint_requests_total";
/// Histogram `{code, method, protocol, entrypoint}`, seconds.
pub const ENTRYPOINT_REQUEST_DURATION: &str = "proxy_entrypoint_request_duration_seconds";
/// Counter `{code, method, protocol, entrypoint}`, request bytes.
pub const ENTRYPOINT_REQUESTS_BYTES: &str = "proxy_entrypoint_requests_bytes_total";
/// Counter `{code, method, protocol, entrypoint}`, response bytes.
pub const ENTRYPOINT_RESPONSES_BYTES: &str = "proxy_entrypoint_responses_bytes_total";

/// Counter `{code, method, protocol, router, service}`.
pub const ROUTER_REQUESTS_TOTAL: &str = "proxy_router_requests_total";
/// Histogram `{code, method, protocol, router, service}`, seconds.
pub const ROUTER_REQUEST_DURATION: &str = "proxy_router_request_duration_seconds";
/// Counter `{code, method, protocol, router, service}`, request bytes.
pub const ROUTER_REQUESTS_BYTES: &str = "proxy_router_requests_bytes_total";
/// Counter `{code, method, protocol, router, service}`, response bytes.
pub const ROUTER_RESPONSES_BYTES: &str = "proxy_router_responses_bytes_total";

/// Counter `{code, method, protocol, service}`.
pub const SERVICE_REQUESTS_TOTAL: &str = "proxy_service_requests_total";
/// Histogram `{code, method, protocol, service}`, seconds.
pub const SERVICE_REQUEST_DURATION: &str = "proxy_service_request_duration_seconds";
/// Counter `{code, method, protocol, service}`, request bytes.
pub const SERVICE_REQUESTS_BYTES: &str = "proxy_service_requests_bytes_total";
/// Counter `{code, method, protocol, service}`, response bytes.
pub const SERVICE_RESPONSES_BYTES: &str = "proxy_service_responses_bytes_total";

/// Histogram (ours, decision 3): time from "request received" to "service
/// chosen", seconds, buckets [`DECISION_BUCKETS`].
pub const ROUTER_DECISION_SECONDS: &str = "proxy_router_decision_seconds";

/// Counter (ours): access-log lines dropped because the writer fell behind.
pub const ACCESSLOG_DROPPED_TOTAL: &str = "proxy_accesslog_dropped_total";

/// Counter `{entrypoint}` (ours): TLS handshakes that failed (no common
/// version or suite, an untrusted client certificate, `sniStrict`, a
/// client gone mid-handshake). Logged at debug only: a scanner must not
/// flood the log.
pub const TLS_HANDSHAKE_ERRORS_TOTAL: &str = "proxy_tls_handshake_errors_total";

/// Traefik's default latency buckets (`metrics.prometheus.buckets`).
pub const DEFAULT_BUCKETS: [f64; 4] = [0.1, 0.3, 1.2, 5.0];

/// Buckets of [`ROUTER_DECISION_SECONDS`]: 1 µs to 1 ms.
pub const DECISION_BUCKETS: [f64; 10] = [
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
];

/// Label `code`.
pub const LABEL_CODE: &str = "code";
/// Label `method`.
pub const LABEL_METHOD: &str = "method";
/// Label `protocol`.
pub const LABEL_PROTOCOL: &str = "protocol";
/// Label `entrypoint`.
pub const LABEL_ENTRYPOINT: &str = "entrypoint";
/// Label `router`.
pub const LABEL_ROUTER: &str = "router";
/// Label `service`.
pub const LABEL_SERVICE: &str = "service";

/// Help text of a metric this module owns, if it is one.
pub(crate) fn help(name: &str) -> Option<&'static str> {
    Some(match name {
        ENTRYPOINT_REQUESTS_TOTAL => {
            "How many HTTP requests processed on an entrypoint, partitioned by status code, protocol, and method."
        }
        ENTRYPOINT_REQUEST_DURATION => {
            "How long it took to process the request on an entrypoint, partitioned by status code, protocol, and method."
        }
        ENTRYPOINT_REQUESTS_BYTES => {
            "The total size of requests in bytes handled by an entrypoint, partitioned by status code, protocol, and method."
        }
        ENTRYPOINT_RESPONSES_BYTES => {
            "The total size of responses in bytes handled by an entrypoint, partitioned by status code, protocol, and method."
        }
        ROUTER_REQUESTS_TOTAL => {
            "How many HTTP requests are processed on a router, partitioned by service, status code, protocol, and method."
        }
        ROUTER_REQUEST_DURATION => {
            "How long it took to process the request on a router, partitioned by service, status code, protocol, and method."
        }
        ROUTER_REQUESTS_BYTES => {
            "The total size of requests in bytes handled by a router, partitioned by service, status code, protocol, and method."
        }
        ROUTER_RESPONSES_BYTES => {
            "The total size of responses in bytes handled by a router, partitioned by service, status code, protocol, and method."
        }
        SERVICE_REQUESTS_TOTAL => {
            "How many HTTP requests processed on a service, partitioned by status code, protocol, and method."
        }
        SERVICE_REQUEST_DURATION => {
            "How long it took to process the request on a service, partitioned by status code, protocol, and method."
        }
        SERVICE_REQUESTS_BYTES => {
            "The total size of requests in bytes received by a service, partitioned by status code, protocol, and method."
        }
        SERVICE_RESPONSES_BYTES => {
            "The total size of responses in bytes returned by a service, partitioned by status code, protocol, and method."
        }
        ROUTER_DECISION_SECONDS => {
            "Time from request received to service chosen (rule matching), in seconds."
        }
        _ => return None,
    })
}
