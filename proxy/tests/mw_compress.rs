//! `compress` over real sockets: each encoding round-trips (a response
//! with a length and a stream), `Accept-Encoding` q-values and the
//! `encodings` order choose, `defaultEncoding` answers a request without
//! the header, `minResponseBodyBytes` and the content-type lists decide,
//! nothing is compressed twice, nor a range, a 304 or a HEAD, every
//! negotiated answer varies on `Accept-Encoding`, and a slow stream is
//! flushed as it arrives.

mod support;

use std::io::Write;
use std::time::Duration;

use http::Request;
use http_body_util::BodyExt;
use support::*;

fn config(b: &Backend) -> String {
    format!(
        r#"http:
  routers:
    all:
      rule: "Host(`all.test`)"
      service: main
      middlewares: [all]
    zs:
      rule: "Host(`zs.test`)"
      service: main
      middlewares: [zstd-first]
    html:
      rule: "Host(`html.test`)"
      service: main
      middlewares: [only-html]
    twice:
      rule: "Host(`twice.test`)"
      service: main
      middlewares: [all, zstd-first]
  services:
    main:
      loadBalancer:
        servers:
          - url: "http://{addr}"
{COMPRESS_MIDDLEWARES}"#,
        addr = b.addr
    )
}

/// `body` decoded as `coding` says.
fn decode(coding: &str, body: &[u8]) -> Vec<u8> {
    decoded(coding, body).unwrap_or_else(|| panic!("not {coding}"))
}

async fn ask(p: &TestProxy, host: &str, path: &str, ae: Option<&str>) -> Reply {
    let mut req = Request::get(path).header("host", host);
    if let Some(ae) = ae {
        req = req.header("accept-encoding", ae);
    }
    H1::connect(p.web)
        .await
        .send(req.body(empty()).unwrap())
        .await
        .unwrap()
}

fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.headers.get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_encoding_round_trips_with_a_length_and_as_a_stream() {
    let b = backend("main");
    let p = start_proxy(&config(&b));
    for coding in ["gzip", "br", "zstd"] {
        for path in ["/content/65536?type=text/plain", "/content/65536?chunked"] {
            let r = ask(&p, "all.test", path, Some(coding)).await;
            assert_eq!(r.status, 200);
            assert_eq!(header(&r, "content-encoding"), Some(coding), "{path}");
            assert_eq!(header(&r, "vary"), Some("Accept-Encoding"));
            assert_eq!(
                header(&r, "accept-ranges"),
                None,
                "no ranges of a coded body"
            );
            assert!(
                r.body.len() < 65536 / 4,
                "{coding} {path}: {} bytes",
                r.body.len()
            );
            assert_eq!(decode(coding, &r.body), text_body(65536), "{coding} {path}");
        }
    }
    // Not asked for: as it is, no Vary (no encoding was chosen).
    let r = ask(&p, "all.test", "/content/4096", None).await;
    assert_eq!(header(&r, "content-encoding"), None);
    assert_eq!(header(&r, "vary"), None);
    assert_eq!(header(&r, "content-length"), Some("4096"));
    assert_eq!(r.body, text_body(4096));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q_values_the_encodings_order_and_the_default_choose() {
    let b = backend("main");
    let p = start_proxy(&config(&b));
    let coding = async |host: &str, ae: Option<&str>| {
        let r = ask(&p, host, "/content/4096", ae).await;
        let c = header(&r, "content-encoding").map(str::to_owned);
        if let Some(c) = &c {
            assert_eq!(decode(c, &r.body), text_body(4096));
        }
        c
    };
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(coding("all.test", Some("gzip, br, zstd")).await, s("gzip"));
    assert_eq!(coding("zs.test", Some("gzip, br, zstd")).await, s("zstd"));
    assert_eq!(
        coding("all.test", Some("gzip;q=0.5, br;q=0.9")).await,
        s("br")
    );
    assert_eq!(
        coding("all.test", Some("zstd;q=0, gzip;q=0.2")).await,
        s("gzip")
    );
    assert_eq!(coding("all.test", Some("identity")).await, None);
    assert_eq!(coding("all.test", Some("")).await, None);
    assert_eq!(coding("all.test", Some("deflate")).await, None);
    // No header, or `*`: the default encoding.
    assert_eq!(coding("zs.test", None).await, s("br"));
    assert_eq!(coding("zs.test", Some("*")).await, s("br"));
    // gzip through `*` alone is not applied (as Traefik's gzip handler),
    // but the answer varies.
    let r = ask(&p, "all.test", "/content/4096", Some("*")).await;
    assert_eq!(header(&r, "content-encoding"), None);
    assert_eq!(header(&r, "vary"), Some("Accept-Encoding"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_and_content_types_decide() {
    let b = backend("main");
    let p = start_proxy(&config(&b));
    let coded = async |host: &str, path: &str| {
        let r = ask(&p, host, path, Some("gzip, br, zstd")).await;
        assert_eq!(header(&r, "vary"), Some("Accept-Encoding"), "{host}{path}");
        header(&r, "content-encoding").map(str::to_owned)
    };
    // minResponseBodyBytes, by Content-Length: 1024 by default, 200 set.
    assert_eq!(coded("all.test", "/content/1023").await, None);
    assert_eq!(
        coded("all.test", "/content/1024").await.as_deref(),
        Some("gzip")
    );
    assert_eq!(coded("zs.test", "/content/199").await, None);
    assert_eq!(
        coded("zs.test", "/content/200").await.as_deref(),
        Some("zstd")
    );
    // A stream is compressed whatever its size, as Traefik's are.
    assert_eq!(
        coded("all.test", "/content/100?chunked").await.as_deref(),
        Some("gzip")
    );
    // Excluded types (and gRPC, always); an unparsable type is left as is.
    assert_eq!(
        coded("all.test", "/content/4096?type=text/event-stream").await,
        None
    );
    assert_eq!(
        coded("all.test", "/content/4096?type=application/grpc").await,
        None
    );
    assert_eq!(
        coded("all.test", "/content/4096?type=text/html;+x")
            .await
            .as_deref(),
        Some("gzip"),
        "parameters are not read"
    );
    assert_eq!(
        coded("all.test", "/content/4096?type=text+html").await,
        None,
        "no type"
    );
    assert_eq!(
        coded("all.test", "/content/4096?type=text/html")
            .await
            .as_deref(),
        Some("gzip")
    );
    // Included types only, by type/subtype (the entries' parameters are
    // not compared, as Traefik drops them).
    assert_eq!(
        coded("html.test", "/content/4096?type=text/html;+charset=utf-8")
            .await
            .as_deref(),
        Some("gzip")
    );
    assert_eq!(
        coded("html.test", "/content/4096?type=application/json")
            .await
            .as_deref(),
        Some("gzip")
    );
    assert_eq!(
        coded(
            "html.test",
            "/content/4096?type=application/json;+charset=utf-8"
        )
        .await
        .as_deref(),
        Some("gzip")
    );
    assert_eq!(
        coded("html.test", "/content/4096?type=text/plain").await,
        None
    );
    assert_eq!(
        coded("html.test", "/content/4096").await.as_deref(),
        Some("gzip"),
        "no type"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_twice_never_a_range_a_304_or_a_head() {
    let b = backend("main");
    let p = start_proxy(&config(&b));
    // Encoded by the backend: as it is.
    let r = ask(&p, "all.test", "/content/4096?ce=br", Some("gzip")).await;
    assert_eq!(header(&r, "content-encoding"), Some("br"));
    assert_eq!(r.body, text_body(4096));
    // Two compress middlewares: one encoding, one Vary.
    let r = ask(&p, "twice.test", "/content/4096", Some("gzip, zstd")).await;
    assert_eq!(
        header(&r, "content-encoding"),
        Some("zstd"),
        "the inner one"
    );
    assert_eq!(r.headers.get_all("vary").iter().count(), 1);
    assert_eq!(decode("zstd", &r.body), text_body(4096));
    // A backend's Vary is kept, Accept-Encoding added once.
    let r = ask(&p, "all.test", "/content/4096?vary=Origin", Some("gzip")).await;
    let vary: Vec<_> = r.headers.get_all("vary").iter().collect();
    assert_eq!(vary, ["Accept-Encoding", "Origin"]);
    let r = ask(
        &p,
        "all.test",
        "/content/4096?vary=accept-encoding",
        Some("gzip"),
    )
    .await;
    assert_eq!(r.headers.get_all("vary").iter().count(), 1);
    // A range, a 304, a 204: as they are.
    let r = ask(&p, "all.test", "/content/4096?range", Some("gzip")).await;
    assert_eq!(r.status, 206);
    assert_eq!(header(&r, "content-encoding"), None);
    assert_eq!(r.body, text_body(4096));
    for code in [304, 204] {
        let r = ask(
            &p,
            "all.test",
            &format!("/content/4096?status={code}"),
            Some("gzip"),
        )
        .await;
        assert_eq!(r.status.as_u16(), code);
        assert_eq!(header(&r, "content-encoding"), None);
    }
    // An error page is compressed like any answer.
    let r = ask(&p, "all.test", "/content/4096?status=404", Some("br")).await;
    assert_eq!(header(&r, "content-encoding"), Some("br"));
    // HEAD: not negotiated at all.
    let req = Request::head("/content/4096")
        .header("host", "all.test")
        .header("accept-encoding", "gzip")
        .body(empty())
        .unwrap();
    let r = H1::connect(p.web).await.send(req).await.unwrap();
    assert_eq!(header(&r, "content-encoding"), None);
    assert_eq!(header(&r, "vary"), None);
    // A request of an excluded type: not negotiated either.
    let req = Request::post("/content/4096")
        .header("host", "all.test")
        .header("accept-encoding", "gzip")
        .header("content-type", "text/event-stream")
        .body(body("x"))
        .unwrap();
    let r = H1::connect(p.web).await.send(req).await.unwrap();
    assert_eq!(header(&r, "content-encoding"), None);
    // Over HTTP/2 too.
    let mut h2 = H2::connect(p.web).await;
    let req = Request::get("http://all.test/content/8192")
        .header("accept-encoding", "zstd")
        .body(empty())
        .unwrap();
    let r = h2.send(req).await.unwrap();
    assert_eq!(header(&r, "content-encoding"), Some("zstd"));
    assert_eq!(decode("zstd", &r.body), text_body(8192));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_stream_is_flushed_as_it_arrives() {
    let b = backend("main");
    let p = start_proxy(&config(&b));
    for coding in ["gzip", "br", "zstd"] {
        // The backend sends "first", then nothing for 30 s.
        let req = Request::get("/hang-body")
            .header("host", "all.test")
            .header("accept-encoding", coding)
            .body(empty())
            .unwrap();
        let mut c = H1::connect(p.web).await;
        c.sender().ready().await.unwrap();
        let resp = c.sender().send_request(req).await.unwrap();
        assert_eq!(resp.headers()["content-encoding"], coding);
        let mut body = resp.into_body();
        let mut got = Vec::new();
        let decoded = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let frame = body.frame().await.unwrap().unwrap();
                got.extend_from_slice(frame.data_ref().unwrap());
                let partial = match coding {
                    "gzip" => {
                        let mut d = flate2::write::GzDecoder::new(Vec::new());
                        let _ = d.write_all(&got);
                        let _ = d.flush();
                        d.get_ref().clone()
                    }
                    "br" => {
                        let mut d = brotli::DecompressorWriter::new(Vec::new(), 4096);
                        let _ = d.write_all(&got);
                        let _ = d.flush();
                        d.get_ref().clone()
                    }
                    _ => {
                        let mut d = zstd::stream::write::Decoder::new(Vec::new()).unwrap();
                        let _ = d.write_all(&got);
                        let _ = d.flush();
                        d.get_ref().clone()
                    }
                };
                if partial == b"first" {
                    return partial;
                }
            }
        })
        .await;
        assert!(decoded.is_ok(), "{coding}: the first bytes were held back");
    }
}
