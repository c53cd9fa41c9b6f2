//! `proxy::redis_client` against a real `redis-server` (started by the
//! test on a free loopback port): commands go through, `password` and
//! `db` are applied, a Redis that is down fails fast with an error (no
//! hang) and the client reconnects by itself once it is back.

mod support;

use std::time::{Duration, Instant};

use proxy::redis_client::{Client, Settings};
use support::redis::RedisServer;

fn settings(server: &RedisServer) -> Settings {
    Settings {
        endpoint: server.endpoint(),
        ..Settings::default()
    }
}

async fn set(client: &Client, key: &str, value: &str) -> redis::RedisResult<()> {
    let mut c = client.connection().await?;
    redis::cmd("SET")
        .arg(key)
        .arg(value)
        .query_async(&mut c)
        .await
}

#[tokio::test]
async fn commands_reach_the_server() {
    let Some(server) = RedisServer::start("commands_reach_the_server") else {
        return;
    };
    let client = Client::new(&settings(&server)).unwrap();
    set(&client, "k", "v").await.unwrap();
    assert_eq!(server.command(&["GET", "k"]), "$1\r\nv\r\n");
}

#[tokio::test]
async fn password_and_db_are_applied() {
    let Some(server) =
        RedisServer::start_with("password_and_db_are_applied", &["--requirepass", "s3cret"])
    else {
        return;
    };
    let wrong = Client::new(&Settings {
        password: "nope".into(),
        ..settings(&server)
    })
    .unwrap();
    assert!(
        set(&wrong, "k", "v").await.is_err(),
        "a wrong password is refused"
    );
    let client = Client::new(&Settings {
        password: "s3cret".into(),
        db: 3,
        ..settings(&server)
    })
    .unwrap();
    set(&client, "k", "in-3").await.unwrap();
    assert_eq!(
        server.command_as(Some("s3cret"), &["GET", "k"]),
        "$-1\r\n",
        "not in db 0"
    );
    // SELECT 3 then GET over one raw connection.
    let mut s = std::net::TcpStream::connect(server.addr()).unwrap();
    let reply = {
        use std::io::{Read, Write};
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"AUTH s3cret\r\nSELECT 3\r\nGET k\r\n")
            .unwrap();
        let mut got = String::new();
        let mut buf = [0u8; 256];
        while !got.ends_with("in-3\r\n") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "closed: {got}");
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        got
    };
    assert!(reply.ends_with("$4\r\nin-3\r\n"), "{reply}");
}

#[tokio::test]
async fn redis_down_fails_fast_and_the_client_reconnects() {
    let Some(mut server) = RedisServer::start("redis_down_fails_fast_and_the_client_reconnects")
    else {
        return;
    };
    let client = Client::new(&settings(&server)).unwrap();
    set(&client, "a", "1").await.unwrap();
    server.stop();
    let t = Instant::now();
    let mut failed = 0;
    for _ in 0..3 {
        if set(&client, "a", "2").await.is_err() {
            failed += 1;
        }
    }
    assert_eq!(failed, 3, "every command fails while Redis is down");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "no hang: {:?}",
        t.elapsed()
    );
    server.restart();
    // The manager re-dials in the background after a failure.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if set(&client, "a", "3").await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "no reconnection");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.command(&["GET", "a"]), "$1\r\n3\r\n");
}

#[test]
fn a_client_is_made_without_connecting() {
    // Nothing listens there: making the client still works (Traefik's
    // go-redis dials on first use too).
    let client = Client::new(&Settings {
        endpoint: "127.0.0.1:1".into(),
        ..Settings::default()
    });
    assert!(client.is_ok());
}

/// The fixture's readiness probe (support::redis::ping) passes only a
/// Redis that answers: a port held by something else that accepts and
/// hangs up, or accepts and says nothing, is not ready. (CI once saw the
/// first AUTH reset when the probe was a bare TCP connect.)
#[test]
fn readiness_probe_wants_a_redis_answer() {
    use std::io::Write;
    use std::net::TcpListener;
    let closer = TcpListener::bind("127.0.0.1:0").unwrap();
    let closer_addr = closer.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in closer.incoming() {
            drop(s);
        }
    });
    assert!(!support::redis::ping(closer_addr), "accept + close");
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let other_addr = other.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in other.incoming().flatten() {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    assert!(!support::redis::ping(other_addr), "not a Redis");
    let Some(server) = RedisServer::start_with(
        "readiness_probe_wants_a_redis_answer",
        &["--requirepass", "p"],
    ) else {
        return;
    };
    assert!(support::redis::ping(server.addr()), "-NOAUTH is ready");
}
