//! The dashboard in a real browser: headless Chromium, driven through
//! chromedriver's WebDriver protocol, loads the page from a running proxy
//! and the test reads the DOM: the routers of the configuration with their
//! status, a disabled router's error, a backend taken down shown as DOWN, a
//! reload's new router appearing without a page reload, and no request
//! leaving the proxy's origin. A screenshot is written to
//! `<target>/dashboard.png` for a person to look at (not committed).
//!
//! Skipped, saying so, without `chromium` and `chromedriver` (Debian's
//! `chromium` and `chromium-driver`, which `.ci/run` installs).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

fn find(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// A chromedriver process, killed on drop.
struct Driver {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver command: `method path` with `body`, the answer's `value`.
fn wd(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    // chromedriver keeps the connection open: read the head, then
    // Content-Length bytes.
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before the head".to_owned());
        }
        out.extend_from_slice(&buf[..n]);
        if let Some(i) = out.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&out[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .ok_or_else(|| format!("no Content-Length in {head}"))?;
    while out.len() < head_end + length {
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    let v: Value = serde_json::from_slice(&out[head_end..]).map_err(|e| e.to_string())?;
    if head.starts_with("HTTP/1.1 200") {
        Ok(v["value"].clone())
    } else {
        Err(format!("{head}: {v}"))
    }
}

struct Browser {
    driver: Driver,
    session: String,
    _profile: TempDir,
}

impl Browser {
    fn start(chromium: &std::path::Path, chromedriver: &std::path::Path) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Driver {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let t0 = Instant::now();
        while wd(driver.addr, "GET", "/status", None).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = TempDir::new("chromium-profile");
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--no-first-run", "--window-size=1400,1000",
                     format!("--user-data-dir={}", profile.path().display())],
        }}}});
        let session = wd(driver.addr, "POST", "/session", Some(&caps)).expect("new session");
        let session = session["sessionId"].as_str().unwrap().to_owned();
        Browser {
            driver,
            session,
            _profile: profile,
        }
    }

    fn cmd(&self, method: &str, what: &str, body: Option<&Value>) -> Value {
        wd(
            self.driver.addr,
            method,
            &format!("/session/{}/{what}", self.session),
            body,
        )
        .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    fn js(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "execute/sync",
            Some(&json!({"script": script, "args": []})),
        )
    }

    /// Polls `script` until it returns `true` (at most `secs` seconds).
    fn wait(&self, what: &str, secs: u64, script: &str) {
        let t0 = Instant::now();
        loop {
            if self.js(script) == Value::Bool(true) {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "{what}: not seen within {secs} s; page text:\n{}",
                self.js("return document.body.innerText")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = wd(
            self.driver.addr,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
    }
}

fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, c)| n | (u32::from(val(*c)) << (18 - 6 * i)));
        out.extend(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

fn dynamic(up: &Backend, flaky: &Backend, extra_router: &str) -> String {
    format!(
        r#"http:
  routers:
    shop:
      rule: "Host(`shop.test`)"
      service: shop
    orphan:
      rule: "Host(`orphan.test`)"
      service: nowhere
{extra_router}  services:
    shop:
      loadBalancer:
        healthCheck:
          path: /
          interval: 200ms
          timeout: 500ms
        servers:
          - url: "http://{}"
          - url: "http://{}"
"#,
        up.addr, flaky.addr
    )
}

#[test]
fn the_dashboard_shows_the_configuration_live_in_chromium() {
    let (Some(chromium), Some(chromedriver)) = (find("chromium"), find("chromedriver")) else {
        eprintln!(
            "SKIP dashboard_browser: chromium and chromedriver not on PATH (apt-get install chromium chromium-driver, as .ci/run does)"
        );
        return;
    };
    let up = backend("up");
    let flaky = backend("flaky");
    let flaky_url = format!("http://{}", flaky.addr);
    let leaf =
        support::tls::Ca::new("Dash CA").server(&["shop.test"], support::tls::Alg::EcdsaP256);
    let pem = |p: &str| {
        p.lines()
            .map(|l| format!("        {l}\n"))
            .collect::<String>()
    };
    let certs = format!(
        "tls:\n  certificates:\n    - certFile: |\n{}      keyFile: |\n{}",
        pem(&leaf.cert_pem),
        pem(&leaf.key_pem)
    );
    let p = start_proxy_static(
        &(dynamic(&up, &flaky, "") + &certs),
        &static_yaml(
            "api:\n  insecure: true\nmetrics:\n  prometheus:\n    addRoutersLabels: true\n",
        )
        .replacen(
            "providers:",
            "  traefik:\n    address: \"127.0.0.1:0\"\nproviders:",
            1,
        ),
        1,
    );
    let origin = format!("http://{}", p.addr("traefik"));
    let browser = Browser::start(&chromium, &chromedriver);
    browser.cmd("POST", "url", Some(&json!({"url": format!("{origin}/")})));
    // `/` redirected to the dashboard, which lists the routers.
    browser.wait(
        "the routers",
        30,
        r#"const s = document.querySelector('#routers tr[data-name="shop@file"] td.status');
           return !!s && s.textContent === 'enabled';"#,
    );
    assert_eq!(browser.js("return location.pathname"), json!("/dashboard/"));
    assert_eq!(
        browser.js(r#"return document.querySelector('#routers tr[data-name="orphan@file"]').dataset.status"#),
        json!("disabled")
    );
    browser.wait(
        "the disabled router's error",
        10,
        r#"return [...document.querySelectorAll('#errors li')].some(l => l.textContent.includes('orphan@file') && l.textContent.includes('unknown service'));"#,
    );
    browser.wait(
        "the certificate",
        10,
        r#"const s = document.querySelector('#certificates tr[data-cn="shop.test"]');
           return !!s && s.dataset.status === 'enabled' && s.textContent.includes('Dash CA');"#,
    );
    browser.wait(
        "both servers up",
        10,
        &format!(
            r#"const s = document.querySelector('#services .server[data-url="{flaky_url}"]');
               return !!s && s.classList.contains('up');"#
        ),
    );

    // Traffic (a request every 20 ms while the page is read) shows as a
    // rate on its router.
    let web = p.web;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let mut c = H1::connect(web).await;
                let t0 = Instant::now();
                while !stop.load(std::sync::atomic::Ordering::Relaxed)
                    && t0.elapsed() < Duration::from_secs(30)
                {
                    c.get("shop.test", "/").await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            });
        })
    };
    browser.wait(
        "a request rate for shop@file",
        15,
        r#"const c = document.querySelector('#routers tr[data-name="shop@file"] td.rate');
           return !!c && c.textContent !== '—' && parseFloat(c.textContent) > 0;"#,
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.join().unwrap();

    // A backend taken down is shown DOWN once its health check fails.
    browser.js("window.__sameDocument = true; return true");
    drop(flaky);
    browser.wait(
        "the stopped server DOWN",
        20,
        &format!(
            r#"const s = document.querySelector('#services .server[data-url="{flaky_url}"]');
               return !!s && s.classList.contains('down');"#
        ),
    );

    // A reload's new router appears without the page being reloaded.
    let flaky_again = backend("flaky-again");
    std::fs::write(
        p.dynamic_path(),
        dynamic(
            &up,
            &flaky_again,
            "    added:\n      rule: \"Host(`added.test`)\"\n      service: shop\n",
        ) + &certs,
    )
    .unwrap();
    p.running().control().reload().unwrap();
    browser.wait(
        "the reloaded router",
        15,
        r#"return !!document.querySelector('#routers tr[data-name="added@file"]');"#,
    );
    assert_eq!(
        browser.js("return window.__sameDocument === true"),
        json!(true)
    );
    browser.wait(
        "the reload in the history",
        10,
        r#"return !!document.querySelector('#reloads tr[data-generation="2"][data-result="applied"]');"#,
    );

    // Every request the page made went to the proxy.
    let urls = browser.js(
        "return performance.getEntriesByType('resource').map(e => e.name).concat([location.href])",
    );
    let urls = urls.as_array().unwrap();
    assert!(urls.len() > 5, "{urls:?}");
    for u in urls {
        assert!(
            u.as_str().unwrap().starts_with(&origin),
            "a request outside the proxy: {u}"
        );
    }

    let shot = browser.cmd("GET", "screenshot", None);
    let png = decode_base64(shot.as_str().unwrap());
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/dashboard.png");
    std::fs::write(&target, png).unwrap();
    eprintln!("screenshot: {}", target.display());
}
