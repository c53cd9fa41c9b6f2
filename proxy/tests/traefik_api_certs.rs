//! `/api/certificates[/{id}]` and the overview's `certificates` against a
//! real Traefik 3.7: the same certificates (ECDSA, RSA and Ed25519 keys,
//! subjects with and without organisation and country, one expiring in
//! 10 days, one expired, a configured default) served by both, the same
//! calls (the list, one by id, an unknown id, `search`, `status`,
//! `sortBy` in both directions, pagination), compared field by field.
//!
//! Skipped, saying so, when no Traefik binary is found (see
//! `support/traefik.rs`).

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::tls::{Alg, Ca};
use support::traefik::{Traefik, find_traefik, free_ports, skip_message};
use support::*;

/// The UTC date `days` from today (year, month, day).
fn ymd(days: i64) -> (i32, u8, u8) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let z = now / 86_400 + days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
    (y, m, d)
}

macro_rules! date_in {
    ($days:expr) => {{
        let (y, m, d) = ymd($days);
        rcgen::date_time_ymd(y, m, d)
    }};
}

fn static_cfg(web: SocketAddr, api: SocketAddr, dynamic: &std::path::Path) -> String {
    format!(
        "global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\nentryPoints:\n  web:\n    address: \"{web}\"\n  traefik:\n    address: \"{api}\"\napi:\n  insecure: true\nproviders:\n  file:\n    filename: \"{}\"\n    watch: false\nlog:\n  level: ERROR\n",
        dynamic.display()
    )
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    H1::connect(addr).await.get("api.test", path).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificates_api_answers_as_traefik_does() {
    let Some(bin) = find_traefik() else {
        eprintln!("{}", skip_message("traefik_api_certs"));
        return;
    };
    let ca = Ca::with("Test Root", |p| {
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, "Test Org");
        p.distinguished_name.push(rcgen::DnType::CountryName, "DE");
    });
    let bare_ca = Ca::new("Bare CA");
    let leaves = [
        ca.server(&["a.test", "*.a.test", "127.0.0.1"], Alg::EcdsaP256),
        ca.server_with(&["b.test"], Alg::Rsa2048, |p| {
            p.distinguished_name
                .push(rcgen::DnType::OrganizationName, "B Inc");
            p.distinguished_name.push(rcgen::DnType::CountryName, "FR");
        }),
        bare_ca.server(&["ed.test"], Alg::Ed25519),
        ca.server_with(&["soon.test"], Alg::EcdsaP256, |p| {
            p.not_before = date_in!(-10);
            p.not_after = date_in!(10);
        }),
        ca.server_with(&["old.test"], Alg::EcdsaP256, |p| {
            p.not_before = date_in!(-30);
            p.not_after = date_in!(-2);
        }),
    ];
    let default = bare_ca.server(&["default.test"], Alg::EcdsaP256);
    let dir = TempDir::new("traefik-api-certs");
    let mut dynamic = String::from(
        "http:\n  routers:\n    r:\n      rule: \"Host(`a.test`)\"\n      service: s\n      tls: {}\n  services:\n    s:\n      loadBalancer:\n        servers:\n          - url: \"http://127.0.0.1:9\"\ntls:\n  certificates:\n",
    );
    for (i, l) in leaves.iter().enumerate() {
        let c = dir.write(&format!("c{i}.pem"), &l.cert_pem);
        let k = dir.write(&format!("c{i}.key"), &l.key_pem);
        dynamic += &format!(
            "    - certFile: \"{}\"\n      keyFile: \"{}\"\n",
            c.display(),
            k.display()
        );
    }
    let c = dir.write("default.pem", &default.cert_pem);
    let k = dir.write("default.key", &default.key_pem);
    dynamic += &format!(
        "  stores:\n    default:\n      defaultCertificate:\n        certFile: \"{}\"\n        keyFile: \"{}\"\n",
        c.display(),
        k.display()
    );
    let dynamic = dir.write("dynamic.yml", &dynamic);
    let ports = free_ports(4);
    let addr = |i: usize| SocketAddr::from(([127, 0, 0, 1], ports[i]));
    let traefik = Traefik::start(&bin, &dir, &static_cfg(addr(0), addr(1), &dynamic));
    let ours = dir.write("proxy.yml", &static_cfg(addr(2), addr(3), &dynamic));
    let running = start_file(&ours, 1);
    let (t_api, p_api) = (addr(1), running.addr("traefik").unwrap());

    let t0 = Instant::now();
    loop {
        if let Ok(s) = tokio::net::TcpStream::connect(t_api).await
            && let Ok(r) = tokio::time::timeout(Duration::from_secs(2), async {
                H1::from_stream(s).await.get("api.test", "/api/certificates").await
            })
            .await
            // Before its configuration applies, Traefik answers 404 text.
            && serde_json::from_slice::<Value>(&r.body)
                .ok()
                .and_then(|v| v.as_array().map(Vec::len))
                .is_some_and(|n| n >= 6)
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "Traefik's API did not list the certificates: {}",
            traefik.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut diffs = Vec::new();
    let mut compared = 0usize;
    let (p, t) = (
        get(p_api, "/api/certificates").await.json(),
        get(t_api, "/api/certificates").await.json(),
    );
    assert_eq!(p.as_array().map(Vec::len), Some(6), "{p:#}");
    // Every field of every certificate (Traefik's list order is its own
    // sort by common name, ours too).
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["commonName"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&p), names(&t), "default order");
    for (pc, tc) in p.as_array().unwrap().iter().zip(t.as_array().unwrap()) {
        if pc != tc {
            diffs.push(format!(
                "{}:\n proxy  {pc}\n traefik {tc}",
                pc["commonName"]
            ));
        }
        compared += tc.as_object().unwrap().len();
    }
    // One by id; an unknown id.
    let id = t[0]["name"].as_str().unwrap();
    let one = format!("/api/certificates/{id}");
    let (po, to) = (get(p_api, &one).await, get(t_api, &one).await);
    assert_eq!(po.status, to.status);
    if po.json() != to.json() {
        diffs.push(format!(
            "{one}: proxy {} / traefik {}",
            po.text(),
            to.text()
        ));
    }
    for path in [
        "/api/certificates/0000",
        "/api/certificates?search=B.TEST",
        "/api/certificates?search=test%20org",
        "/api/certificates?status=warning",
        "/api/certificates?status=expired",
        "/api/certificates?sortBy=validUntil&direction=desc",
        "/api/certificates?sortBy=validUntil",
        "/api/certificates?sortBy=issuer",
        "/api/certificates?sortBy=status&direction=desc",
        "/api/certificates?sortBy=cn&direction=desc&per_page=2&page=2",
        "/api/certificates?per_page=2&page=9",
    ] {
        let (pr, tr) = (get(p_api, path).await, get(t_api, path).await);
        compared += 1;
        let pick = |r: &Reply| -> Value {
            let Ok(v) = serde_json::from_slice::<Value>(&r.body) else {
                return Value::String(r.text());
            };
            match v.as_array() {
                Some(a) => a.iter().map(|c| c["commonName"].clone()).collect(),
                None => v,
            }
        };
        if pr.status != tr.status || pick(&pr) != pick(&tr) {
            diffs.push(format!(
                "{path}: proxy {} {} / traefik {} {}",
                pr.status,
                pick(&pr),
                tr.status,
                pick(&tr)
            ));
        }
        if pr.headers.get("x-next-page") != tr.headers.get("x-next-page") {
            diffs.push(format!("{path}: X-Next-Page differs"));
        }
    }
    let (po, to) = (
        get(p_api, "/api/overview").await.json(),
        get(t_api, "/api/overview").await.json(),
    );
    compared += 1;
    if po["certificates"] != to["certificates"] {
        diffs.push(format!(
            "overview.certificates: proxy {} / traefik {}",
            po["certificates"], to["certificates"]
        ));
    }
    eprintln!("compared {compared} fields and answers");
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
