//! `digestAuth` over real sockets, against a backend that echoes what it
//! received, with a client computing RFC 2617 digests itself: the
//! challenge (401, realm, nonce, opaque, `algorithm="MD5"`, `qop="auth"`),
//! an accepted digest, a replayed nonce count, a later count, a wrong
//! password, an unknown nonce, another opaque, a user of another realm,
//! a `uri` that is a path prefix of the request's, `usersFile` (htdigest)
//! with the list after it, `headerField`, `removeHeader`, and the
//! configurations refused where they are written.

mod support;

use http::{Request, StatusCode};
use md5::{Digest as _, Md5};
use support::*;

fn h(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn ha1(user: &str, realm: &str, password: &str) -> String {
    h(&format!("{user}:{realm}:{password}"))
}

fn config(b: &Backend, users_file: &str) -> String {
    format!(
        r#"http:
  routers:
    plain:
      rule: "Host(`plain.test`)"
      service: s
      middlewares: [plain]
    named:
      rule: "Host(`named.test`)"
      service: s
      middlewares: [named]
  services:
    s:
      loadBalancer:
        servers:
          - url: "http://{b}"
  middlewares:
    plain:
      digestAuth:
        users:
          - "alice:traefik:{alice}"
          - "carol:elsewhere:{carol}"
    named:
      digestAuth:
        usersFile: "{users_file}"
        users: ["dave:private:{dave}"]
        realm: private
        headerField: X-WebAuth-User
        removeHeader: true
"#,
        b = b.addr,
        alice = ha1("alice", "traefik", "secret"),
        carol = ha1("carol", "elsewhere", "secret"),
        dave = ha1("dave", "private", "pw"),
    )
}

/// The challenge's realm, nonce and opaque.
struct Challenge {
    realm: String,
    nonce: String,
    opaque: String,
}

fn param(header: &str, key: &str) -> String {
    let at = header.find(&format!("{key}=\"")).unwrap() + key.len() + 2;
    header[at..].split('"').next().unwrap().to_owned()
}

async fn challenge(c: &mut H1, host: &str) -> Challenge {
    let r = c.get(host, "/x").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.text(), "401 Unauthorized\n");
    let w = r.headers["www-authenticate"].to_str().unwrap().to_owned();
    assert!(w.starts_with("Digest realm=\""), "{w}");
    assert!(w.ends_with(r#", algorithm="MD5", qop="auth""#), "{w}");
    Challenge {
        realm: param(&w, "realm"),
        nonce: param(&w, "nonce"),
        opaque: param(&w, "opaque"),
    }
}

/// An `Authorization: Digest` for GET `uri` as a browser writes it.
fn authorization(ch: &Challenge, user: &str, password: &str, uri: &str, nc: u32) -> String {
    let nc = format!("{nc:08x}");
    let response = h(&format!(
        "{}:{}:{nc}:c0ffee:auth:{}",
        ha1(user, &ch.realm, password),
        ch.nonce,
        h(&format!("GET:{uri}"))
    ));
    format!(
        r#"Digest username="{user}", realm="{}", nonce="{}", uri="{uri}", algorithm=MD5, qop=auth, nc={nc}, cnonce="c0ffee", response="{response}", opaque="{}""#,
        ch.realm, ch.nonce, ch.opaque
    )
}

async fn send(c: &mut H1, host: &str, path: &str, auth: &str) -> Reply {
    let req = Request::get(path)
        .header("host", host)
        .header("authorization", auth)
        .body(empty())
        .unwrap();
    c.send(req).await.unwrap()
}

#[tokio::test]
async fn a_digest_is_accepted_once_per_nonce_count_and_refused_otherwise() {
    let b = backend("app");
    let dir = TempDir::new("digest");
    let file = dir.write("users", "");
    let p = start_proxy(&config(&b, &file.display().to_string()));
    let mut c = H1::connect(p.web).await;
    let ch = challenge(&mut c, "plain.test").await;
    assert_eq!(ch.realm, "traefik");

    let ok = authorization(&ch, "alice", "secret", "/x", 1);
    let r = send(&mut c, "plain.test", "/x", &ok).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // Authorization kept without removeHeader.
    assert!(r.json()["headers"]["authorization"].is_string());
    // The same count again is a replay.
    let r = send(&mut c, "plain.test", "/x", &ok).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A later count passes; an earlier one after it does not.
    let r = send(
        &mut c,
        "plain.test",
        "/x",
        &authorization(&ch, "alice", "secret", "/x", 3),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(
        &mut c,
        "plain.test",
        "/x",
        &authorization(&ch, "alice", "secret", "/x", 2),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The digest's uri may be a path prefix of the request's.
    let r = send(
        &mut c,
        "plain.test",
        "/x/y?z=1",
        &authorization(&ch, "alice", "secret", "/x", 4),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(
        &mut c,
        "plain.test",
        "/other",
        &authorization(&ch, "alice", "secret", "/x", 5),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let before = b.stats.requests.load(std::sync::atomic::Ordering::Relaxed);
    let refused = [
        authorization(&ch, "alice", "wrong", "/x", 10),
        // A nonce this middleware never issued.
        authorization(
            &Challenge {
                nonce: "AAAAAAAAAAAAAAAA".into(),
                ..challenge(&mut c, "plain.test").await
            },
            "alice",
            "secret",
            "/x",
            1,
        ),
        // Another opaque.
        authorization(
            &Challenge {
                opaque: "other".into(),
                ..challenge(&mut c, "plain.test").await
            },
            "alice",
            "secret",
            "/x",
            1,
        ),
        // A user of another realm than the middleware's.
        authorization(
            &Challenge {
                realm: "elsewhere".into(),
                ..challenge(&mut c, "plain.test").await
            },
            "carol",
            "secret",
            "/x",
            1,
        ),
        // Not qop=auth.
        authorization(
            &challenge(&mut c, "plain.test").await,
            "alice",
            "secret",
            "/x",
            1,
        )
        .replace("qop=auth", "qop=auth-int"),
        // An unknown user with an empty HA1.
        {
            let ch = challenge(&mut c, "plain.test").await;
            let response = h(&format!(
                ":{}:00000001:c0ffee:auth:{}",
                ch.nonce,
                h("GET:/x")
            ));
            format!(
                r#"Digest username="nobody", realm="traefik", nonce="{}", uri="/x", qop=auth, nc=00000001, cnonce="c0ffee", response="{response}", opaque="{}""#,
                ch.nonce, ch.opaque
            )
        },
    ];
    for auth in refused {
        let r = send(&mut c, "plain.test", "/x", &auth).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{auth}");
        assert!(r.headers.contains_key("www-authenticate"));
    }
    assert_eq!(
        b.stats.requests.load(std::sync::atomic::Ordering::Relaxed),
        before,
        "a refused request never reaches the backend"
    );
}

#[tokio::test]
async fn users_file_header_field_and_remove_header() {
    let b = backend("app");
    let dir = TempDir::new("digest");
    let file = dir.write(
        "users",
        &format!(
            "# htdigest\n\n  bob:private:{}  \n",
            ha1("bob", "private", "hunter2")
        ),
    );
    let p = start_proxy(&config(&b, &file.display().to_string()));
    let mut c = H1::connect(p.web).await;
    let ch = challenge(&mut c, "named.test").await;
    assert_eq!(ch.realm, "private");
    for (n, (user, password)) in [("bob", "hunter2"), ("dave", "pw")].into_iter().enumerate() {
        let auth = authorization(&ch, user, password, "/x", n as u32 + 1);
        let r = send(&mut c, "named.test", "/x", &auth).await;
        assert_eq!(r.status, StatusCode::OK, "{user}");
        let seen = &r.json()["headers"];
        assert_eq!(seen["x-webauth-user"], user);
        assert!(seen.get("authorization").is_none(), "{seen}");
    }
}

#[test]
fn bad_entries_are_refused_where_written() {
    let err = dynamic_errors(
        "http:\n  middlewares:\n    m:\n      digestAuth:\n        users: [\"alice:abc\"]\n",
    );
    assert!(
        err.contains("digestAuth user is not name:realm:HA1"),
        "{err}"
    );
    assert!(err.contains("users[0]"), "{err}");
    let err = dynamic_errors(
        "http:\n  middlewares:\n    m:\n      digestAuth:\n        usersFile: /nonexistent/htdigest\n",
    );
    assert!(err.contains("cannot read users file"), "{err}");
}
