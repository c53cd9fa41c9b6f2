//! The benchmark harness: starts a backend, the proxy and Traefik on
//! loopback, drives identical load at each and writes a comparison.

fn main() {
    eprintln!("harness: not built yet");
    std::process::exit(2);
}
