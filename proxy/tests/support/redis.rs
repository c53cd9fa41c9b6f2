//! A real `redis-server` for the tests: started on a free 127.0.0.1 port
//! with no persistence, in a directory of its own, killed on drop (also
//! when a test panics), plus a few raw RESP commands to read what it
//! holds. `.ci/run` installs Debian's `redis-server`; where it is missing
//! a test prints a SKIP line and returns (see [`RedisServer::start`]).

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::io::{Read, Write};

use super::TempDir;

/// A running `redis-server`.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    args: Vec<String>,
    /// A configuration file given first (a sentinel's: it rewrites it).
    conf: Option<PathBuf>,
}

/// The `redis-server` binary: `$REDIS_SERVER`, else on `$PATH`.
pub fn find_redis_server() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("REDIS_SERVER") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
}

/// The SKIP line a test prints when there is no `redis-server`.
pub fn skip_message(test: &str) -> String {
    format!(
        "SKIP {test}: no redis-server (apt-get install redis-server, as .ci/run does, or set \
         REDIS_SERVER)"
    )
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    /// A server with no password; `None` (after printing why) when
    /// `redis-server` is not installed.
    pub fn start(test: &str) -> Option<RedisServer> {
        Self::start_with(test, &[])
    }

    /// A server with extra `redis-server` arguments (`--requirepass x`).
    pub fn start_with(test: &str, extra: &[&str]) -> Option<RedisServer> {
        if find_redis_server().is_none() {
            eprintln!("{}", skip_message(test));
            return None;
        }
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir: TempDir::new("redis"),
            args: extra.iter().map(|s| s.to_string()).collect(),
            conf: None,
        };
        server.spawn();
        Some(server)
    }

    /// A Redis Sentinel (`redis-server <conf> --sentinel`) monitoring
    /// `master` as `name` with a quorum of 1, quick to fail over (down
    /// after 500 ms); `password`, when given, is the sentinel's own.
    pub fn start_sentinel(
        test: &str,
        name: &str,
        master: &RedisServer,
        password: Option<&str>,
    ) -> Option<RedisServer> {
        if find_redis_server().is_none() {
            eprintln!("{}", skip_message(test));
            return None;
        }
        let dir = TempDir::new("sentinel");
        let mut text = format!(
            "sentinel monitor {name} 127.0.0.1 {port} 1\n\
             sentinel down-after-milliseconds {name} 500\n\
             sentinel failover-timeout {name} 3000\n",
            port = master.port
        );
        if let Some(p) = password {
            text.push_str(&format!("requirepass {p}\n"));
        }
        let conf = dir.write("sentinel.conf", &text);
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir,
            args: vec!["--sentinel".into()],
            conf: Some(conf),
        };
        server.spawn();
        Some(server)
    }

    fn spawn(&mut self) {
        let bin = find_redis_server().expect("redis-server");
        // A port taken between free_port and the bind: try another.
        for _ in 0..5 {
            let mut child = Command::new(&bin)
                .args(self.conf.iter())
                .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
                .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
                .args(["--dir", self.dir.path().to_str().unwrap()])
                .args(&self.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                // A TCP connect alone passes for another process holding
                // the port, or for a server that accepts before it serves
                // (CI saw the first AUTH reset): ready means this child is
                // alive and answered a PING.
                if ping(self.addr()) && matches!(child.try_wait(), Ok(None)) {
                    self.child = Some(child);
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            self.port = free_port();
        }
        panic!("redis-server did not start");
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `127.0.0.1:<port>`, as an `endpoints` entry.
    pub fn endpoint(&self) -> String {
        self.addr().to_string()
    }

    /// Kills the server (Redis down); [`RedisServer::restart`] brings it
    /// back on the same port, empty.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port after [`RedisServer::stop`].
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port;
        self.spawn();
        assert_eq!(self.port, port, "the port was taken meanwhile");
    }

    /// Sends one command (`AUTH` first when `auth` is given) and returns
    /// the raw RESP reply of the command.
    pub fn command_as(&self, auth: Option<&str>, args: &[&str]) -> String {
        let mut s = TcpStream::connect(self.addr()).expect("connect to redis");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        if let Some(p) = auth {
            s.write_all(&resp(&["AUTH", p])).unwrap();
            let r = read_reply(&mut s);
            assert!(r.starts_with("+OK"), "AUTH: {r}");
        }
        s.write_all(&resp(args)).unwrap();
        read_reply(&mut s)
    }

    /// [`RedisServer::command_as`] without a password.
    pub fn command(&self, args: &[&str]) -> String {
        self.command_as(None, args)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a Redis answers a PING at `addr`: `+PONG`, or `-NOAUTH` from
/// a server started with a password (it serves, it wants AUTH first).
pub fn ping(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(&resp(&["PING"])).is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let mut n = 0;
    // Until one whole line: the reply may come in more than one read.
    while !buf[..n].contains(&b'\n') && n < buf.len() {
        match s.read(&mut buf[n..]) {
            Ok(0) | Err(_) => return false,
            Ok(k) => n += k,
        }
    }
    buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH")
}

/// `args` as a RESP array of bulk strings.
fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// One reply, read until the bytes received form a complete one (enough
/// for the simple, bulk and flat array replies the tests read).
fn read_reply(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).expect("redis reply");
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if complete(&buf) {
            break;
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Whether `buf` holds a whole reply: the number of lines its type says.
fn complete(buf: &[u8]) -> bool {
    let text = String::from_utf8_lossy(buf);
    let lines: Vec<&str> = text.split("\r\n").collect();
    if !text.ends_with("\r\n") {
        return false;
    }
    let first = lines[0];
    let count = |l: &str| l[1..].parse::<i64>().unwrap_or(0);
    let needed = match first.as_bytes().first() {
        Some(b'$') if count(first) < 0 => 1,
        Some(b'$') => 2,
        Some(b'*') => {
            // A flat array of bulk strings (or nulls).
            let mut need = 1;
            let mut i = 1;
            for _ in 0..count(first).max(0) {
                match lines.get(i) {
                    Some(l) if l.starts_with("$-1") || !l.starts_with('$') => {
                        need += 1;
                        i += 1;
                    }
                    Some(_) => {
                        need += 2;
                        i += 2;
                    }
                    None => return false,
                }
            }
            need
        }
        _ => 1,
    };
    lines.len() > needed
}
