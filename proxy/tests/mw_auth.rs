//! `basicAuth` over real sockets, against a backend that echoes what it
//! received: every htpasswd format Traefik 3.7 accepts (bcrypt, `{SHA}`,
//! `$apr1$`, `$1$`) accepted with its password and refused with another
//! (401, `WWW-Authenticate` with the realm, the backend never reached),
//! `usersFile` read with the list after it, `headerField`, `removeHeader`,
//! bcrypt checks that leave the worker serving other requests, and the
//! configurations refused where they are written.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use http::{Request, StatusCode};
use support::*;

// `openssl passwd -apr1 -salt Nf8Hbmnt secret`, `openssl passwd -1 -salt
// dlPL2MqE hello`, and `{SHA}` + base64(sha1("secret")).
const APR1: &str = "$apr1$Nf8Hbmnt$vzN4/HYwFkrBpFBNM27mO/";
const MD5: &str = "$1$dlPL2MqE$oQmn16q49SqdmhenQuNgs1";
const SHA: &str = "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=";

fn bcrypt_of(password: &str, cost: u32) -> String {
    bcrypt::hash_with_salt(password, cost, [9; 16])
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY)
}

fn config(b: &Backend, users_file: &str, slow_hash: &str) -> String {
    let bc = bcrypt_of("secret", 4);
    format!(
        r#"http:
  routers:
    every:
      rule: "Host(`every.test`)"
      service: s
      middlewares: [every]
    named:
      rule: "Host(`named.test`)"
      service: s
      middlewares: [named]
    from-file:
      rule: "Host(`file.test`)"
      service: s
      middlewares: [from-file]
    slow:
      rule: "Host(`slow.test`)"
      service: s
      middlewares: [slow]
    open:
      rule: "Host(`open.test`)"
      service: s
  services:
    s:
      loadBalancer:
        servers:
          - url: "http://{b}"
  middlewares:
    every:
      basicAuth:
        users:
          - "apr:{APR1}"
          - "md5:{MD5}"
          - "sha:{SHA}"
          - "bc:{bc}"
    named:
      basicAuth:
        realm: "Private area"
        headerField: X-WebAuth-User
        removeHeader: true
        users: ["sha:{SHA}"]
    from-file:
      basicAuth:
        usersFile: "{users_file}"
        users: ["late:{SHA}"]
    slow:
      basicAuth:
        users: ["slow:{slow_hash}"]
"#,
        b = b.addr
    )
}

fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

fn req(host: &str, auth: Option<&str>) -> Request<TestBody> {
    let mut b = Request::builder().uri("/").header("host", host);
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    b.body(empty()).unwrap()
}

struct Setup {
    b: Backend,
    p: TestProxy,
    _dir: TempDir,
}

fn setup() -> Setup {
    let dir = TempDir::new("mw-auth");
    let file = dir.write(
        "users",
        &format!("# the team\n\n  apr:{APR1}  \nlate:{MD5}\n"),
    );
    let b = backend("b");
    let p = start_proxy(&config(&b, &file.display().to_string(), APR1));
    Setup { b, p, _dir: dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hash_format_accepts_its_password_and_refuses_others() {
    let s = setup();
    let mut c = H1::connect(s.p.web).await;
    for (user, good) in [
        ("apr", "secret"),
        ("md5", "hello"),
        ("sha", "secret"),
        ("bc", "secret"),
    ] {
        let r = c
            .send(req("every.test", Some(&basic(user, good))))
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::OK, "{user}");
        assert_eq!(
            r.json()["headers"]["authorization"],
            basic(user, good),
            "kept without removeHeader"
        );
        let r = c
            .send(req("every.test", Some(&basic(user, "wrong"))))
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{user}");
        assert_eq!(r.headers["www-authenticate"], "Basic realm=\"traefik\"");
        assert_eq!(r.text(), "401 Unauthorized\n");
    }
    // Unknown user, no header, another scheme, bad base64, no colon: 401.
    let no_colon = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("sha")
    );
    for auth in [
        Some(basic("nobody", "secret")),
        None,
        Some("Bearer abc".to_owned()),
        Some("Basic !!!".to_owned()),
        Some(no_colon),
    ] {
        let r = c.send(req("every.test", auth.as_deref())).await.unwrap();
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{auth:?}");
    }
    // The scheme's name in any case, as Go reads it.
    let lower = basic("sha", "secret").replace("Basic", "bAsIc");
    let r = c.send(req("every.test", Some(&lower))).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        s.b.stats.requests.load(Ordering::Relaxed),
        5,
        "refusals never reach the backend"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realm_header_field_and_remove_header() {
    let s = setup();
    let mut c = H1::connect(s.p.web).await;
    let r = c.send(req("named.test", None)).await.unwrap();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers["www-authenticate"],
        "Basic realm=\"Private area\""
    );
    let r = c
        .send(req("named.test", Some(&basic("sha", "secret"))))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    let seen = r.json();
    assert_eq!(seen["headers"]["x-webauth-user"], "sha");
    assert!(seen["headers"].get("authorization").is_none(), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_file_is_read_then_the_list() {
    let s = setup();
    let mut c = H1::connect(s.p.web).await;
    let status = |r: Reply| r.status;
    let apr = c.send(req("file.test", Some(&basic("apr", "secret"))));
    assert_eq!(status(apr.await.unwrap()), StatusCode::OK, "file line");
    // `late` is in the file (MD5) and the list (SHA): the list's wins.
    let r = c.send(req("file.test", Some(&basic("late", "secret"))));
    assert_eq!(status(r.await.unwrap()), StatusCode::OK);
    let r = c.send(req("file.test", Some(&basic("late", "hello"))));
    assert_eq!(status(r.await.unwrap()), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bcrypt_checks_leave_the_worker_serving_others() {
    // One worker; cost 14 takes about a second per check.
    let dir = TempDir::new("mw-auth-slow");
    let file = dir.write("users", "");
    let b = backend("b");
    let slow = bcrypt_of("secret", 14);
    let p = start_proxy_with(&config(&b, &file.display().to_string(), &slow), "", 1);
    let addr = p.web;
    let checks: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(async move {
                let mut c = H1::connect(addr).await;
                c.send(req("slow.test", Some(&basic("slow", "secret"))))
                    .await
                    .unwrap()
                    .status
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut c = H1::connect(addr).await;
    let r = c.get("open.test", "/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        checks.iter().all(|h| !h.is_finished()),
        "the open router answered only after the bcrypt checks: they ran on the worker"
    );
    for h in checks {
        assert_eq!(h.await.unwrap(), StatusCode::OK);
    }
}

#[test]
fn bad_basic_auths_are_refused_where_written() {
    let b = backend("b");
    let good = config(&b, "", APR1);
    let errors = dynamic_errors(
        &good
            .replace(&format!("\"md5:{MD5}\""), "\"md5:$apr1$x$y\"")
            .replace(&format!("\"apr:{APR1}\""), "\"no-colon\"")
            .replace("usersFile: \"\"", "usersFile: \"/nonexistent/users\"")
            .replace("headerField: X-WebAuth-User", "headerField: \"bad header\""),
    );
    assert!(
        errors.contains("basicAuth user \"md5\": unsupported password hash"),
        "{errors}"
    );
    assert!(
        errors.contains("http.middlewares.every.basicAuth.users[0]"),
        "{errors}"
    );
    assert!(errors.contains("not name:hashed-password"), "{errors}");
    assert!(
        errors.contains("cannot read users file \"/nonexistent/users\""),
        "{errors}"
    );
    assert!(
        errors.contains("\"bad header\" is not a header name"),
        "{errors}"
    );
    let errors = dynamic_errors(&good.replace(&format!("users: [\"late:{SHA}\"]"), "users: []"));
    assert!(errors.contains("basicAuth: no users found"), "{errors}");
}
