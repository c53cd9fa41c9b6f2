//! Formatting access-log lines as Traefik writes them: `common` (CLF plus
//! request count, router, server URL and duration), `genericCLF` and
//! `json` (logrus's sorted keys), with Go's time formats in UTC.
//!
//! Writer thread only: allocates freely, never runs on the request path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::Version;
use serde_json::Value;

use super::{AccessLogEntry, AccessLogFormat};

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

fn proto_str(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// Go's `net.SplitHostPort` as Traefik's `silentSplitHostPort` uses it:
/// `(host, port)`, or `(value, "-")` when there is no port.
pub(super) fn split_host_port(value: &str) -> (&str, &str) {
    if let Some(rest) = value.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']')
            && let Some(port) = after.strip_prefix(':')
        {
            return (host, port);
        }
        return (value, "-");
    }
    match value.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, port),
        _ => (value, "-"),
    }
}

/// `host:port` of a server URL (`ServiceAddr`).
pub(super) fn url_addr(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

/// Civil date (year, month 1..=12, day 1..=31) of a day count since
/// 1970-01-01 (Howard Hinnant's algorithm).
pub(super) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

struct Utc {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    min: u64,
    sec: u64,
    nanos: u32,
}

fn utc(t: SystemTime) -> Utc {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    Utc {
        year,
        month,
        day,
        hour: sod / 3600,
        min: sod % 3600 / 60,
        sec: sod % 60,
        nanos: d.subsec_nanos(),
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Go's `02/Jan/2006:15:04:05 -0700`, in UTC.
fn clf_time(out: &mut String, t: SystemTime) {
    let u = utc(t);
    let _ = write!(
        out,
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        u.day,
        MONTHS[(u.month - 1) as usize],
        u.year,
        u.hour,
        u.min,
        u.sec
    );
}

/// Go's `time.RFC3339Nano` in UTC (fraction without trailing zeros, none
/// when zero), as `encoding/json` writes a `time.Time`.
pub(crate) fn rfc3339_nano(t: SystemTime) -> String {
    let u = utc(t);
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        u.year, u.month, u.day, u.hour, u.min, u.sec
    );
    if u.nanos != 0 {
        let frac = format!("{:09}", u.nanos);
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Go's `time.RFC3339` in UTC (logrus's `time` field).
fn rfc3339(t: SystemTime) -> String {
    let u = utc(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        u.year, u.month, u.day, u.hour, u.min, u.sec
    )
}

/// Traefik's `toLog(..., quoted=true)` for strings: `"-"` when absent or
/// empty, else quoted with `"` escaped.
fn quoted(out: &mut String, v: Option<&str>) {
    match v {
        Some(s) if !s.is_empty() => {
            out.push('"');
            out.push_str(&s.replace('"', "\\\""));
            out.push('"');
        }
        _ => out.push_str("\"-\""),
    }
}

fn or_dash(v: &str) -> &str {
    if v.is_empty() { "-" } else { v }
}

/// `ClientHost`: `X-Forwarded-For` when present, else the peer's IP.
fn client_host(e: &AccessLogEntry) -> String {
    match &e.forwarded_for {
        Some(xff) if !xff.is_empty() => lossy(xff).into_owned(),
        _ => e
            .client_addr
            .map_or_else(String::new, |a| a.ip().to_string()),
    }
}

/// Formats one line (with its newline) into `out`.
pub(super) fn format_entry(
    out: &mut String,
    e: &AccessLogEntry,
    count: u64,
    format: AccessLogFormat,
    keep_headers: bool,
    now: SystemTime,
) {
    match format {
        AccessLogFormat::Json => json_line(out, e, count, keep_headers, now),
        AccessLogFormat::Common | AccessLogFormat::GenericClf => {
            let referer = e
                .referer
                .as_ref()
                .filter(|_| keep_headers)
                .map(|b| lossy(b));
            let agent = e
                .user_agent
                .as_ref()
                .filter(|_| keep_headers)
                .map(|b| lossy(b));
            let status = if e.status == 0 {
                "-".to_owned()
            } else {
                e.status.to_string()
            };
            let _ = write!(out, "{} - - [", or_dash(&client_host(e)));
            clf_time(out, e.start);
            let _ = write!(
                out,
                "] \"{} {} {}\" {} {} ",
                e.method,
                or_dash(&lossy(&e.path)),
                proto_str(e.version),
                status,
                e.response_size
            );
            quoted(out, referer.as_deref());
            out.push(' ');
            quoted(out, agent.as_deref());
            if format == AccessLogFormat::Common {
                let _ = write!(out, " {count} ");
                quoted(out, e.router.as_deref());
                out.push(' ');
                quoted(out, e.service_url.as_deref());
                let _ = write!(out, " {}ms", e.duration.as_nanos() / 1_000_000);
            }
            out.push('\n');
        }
    }
}

fn nanos(d: Duration) -> Value {
    Value::from(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn json_line(
    out: &mut String,
    e: &AccessLogEntry,
    count: u64,
    keep_headers: bool,
    now: SystemTime,
) {
    // A BTreeMap sorts the keys, as Go's encoding/json does for logrus.
    let mut m: BTreeMap<&str, Value> = BTreeMap::new();
    let start = rfc3339_nano(e.start);
    m.insert("StartUTC", Value::from(start.clone()));
    // No timezone database here: local time is logged as UTC.
    m.insert("StartLocal", Value::from(start));
    m.insert("Duration", nanos(e.duration));
    let overhead = e
        .origin_duration
        .map_or(e.duration, |o| e.duration.saturating_sub(o));
    m.insert("Overhead", nanos(overhead));
    if let Some(o) = e.origin_duration {
        m.insert("OriginDuration", nanos(o));
    }
    if let Some(r) = &e.router {
        m.insert("RouterName", Value::from(&**r));
    }
    if let Some(s) = &e.service {
        m.insert("ServiceName", Value::from(&**s));
    }
    if let Some(u) = &e.service_url {
        m.insert("ServiceURL", Value::from(&**u));
        m.insert("ServiceAddr", Value::from(url_addr(u)));
    }
    if let Some(a) = e.client_addr {
        m.insert("ClientAddr", Value::from(a.to_string()));
        m.insert("ClientPort", Value::from(a.port().to_string()));
    }
    m.insert("ClientHost", Value::from(client_host(e)));
    m.insert("ClientUsername", Value::from("-"));
    if let Some(h) = &e.host {
        let h = lossy(h);
        let (host, port) = split_host_port(&h);
        m.insert("RequestHost", Value::from(host));
        m.insert("RequestPort", Value::from(port));
        m.insert("RequestAddr", Value::from(&*h));
    }
    m.insert("RequestMethod", Value::from(e.method.as_str()));
    m.insert("RequestPath", Value::from(lossy(&e.path)));
    m.insert("RequestProtocol", Value::from(proto_str(e.version)));
    m.insert(
        "RequestScheme",
        Value::from(if e.tls { "https" } else { "http" }),
    );
    m.insert("RequestContentSize", Value::from(e.request_size));
    m.insert("RequestCount", Value::from(count));
    m.insert("RetryAttempts", Value::from(e.retry_attempts));
    m.insert("DownstreamStatus", Value::from(e.status));
    m.insert("DownstreamContentSize", Value::from(e.response_size));
    if let Some(s) = e.origin_status {
        m.insert("OriginStatus", Value::from(s));
    }
    if let Some(o) = e.origin_size {
        m.insert("OriginContentSize", Value::from(o));
        if o != e.response_size && e.response_size != 0 {
            m.insert("GzipRatio", Value::from(o as f64 / e.response_size as f64));
        }
    }
    if keep_headers {
        if let Some(r) = &e.referer {
            m.insert("request_Referer", Value::from(lossy(r)));
        }
        if let Some(a) = &e.user_agent {
            m.insert("request_User-Agent", Value::from(lossy(a)));
        }
    }
    m.insert("level", Value::from("info"));
    m.insert("msg", Value::from(""));
    m.insert("time", Value::from(rfc3339(now)));
    // Serializing a map of `Value`s cannot fail.
    if let Ok(s) = serde_json::to_string(&m) {
        out.push_str(&s);
    }
    out.push('\n');
}
