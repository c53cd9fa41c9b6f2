#!/usr/bin/env bash
# How long a configuration change takes to apply while wrk keeps every core
# busy (issue 20, item 5: under 1 s). 1,000 routers, an nginx backend,
# the release proxy with one worker per core, `wrk -t2 -c200` on one route;
# five times, a new route is written (atomic rename) and polled with curl
# every 5 ms until it answers 200: the time from the write to that answer.
#
#   benches/scripts/saturated-reload.sh [path/to/proxy]   (default target/release/proxy)
#
# Needs nginx, wrk and curl. Everything started here is stopped on exit.
set -euo pipefail
proxy=${1:-target/release/proxy}
[ -x "$proxy" ] || { echo "no proxy binary at $proxy (cargo build --release -p proxy)" >&2; exit 2; }
for t in nginx wrk curl; do command -v $t >/dev/null || { echo "$t is not installed" >&2; exit 2; }; done
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
bport=$(free_port); pport=$(free_port)

mkdir -p "$dir/nginx/logs"
cat > "$dir/nginx/nginx.conf" <<NGX
worker_processes 1; daemon off; error_log $dir/nginx/logs/error.log; pid $dir/nginx/nginx.pid;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:$bport; location / { return 200 "ok\n"; } } }
NGX
nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" & pids+=($!)

routes() { # $1: extra route name or empty
  echo "http:"; echo "  routers:"
  for i in $(seq 0 999); do printf '    r%d:\n      rule: "Path(`/r%d`)"\n      service: svc\n' "$i" "$i"; done
  [ -n "$1" ] && printf '    %s:\n      rule: "Path(`/%s`)"\n      service: svc\n' "$1" "$1"
  printf '  services:\n    svc:\n      loadBalancer:\n        servers:\n          - url: "http://127.0.0.1:%d"\n' "$bport"
}
routes "" > "$dir/dynamic.yml"
cat > "$dir/static.yml" <<YML
entryPoints:
  web:
    address: "127.0.0.1:$pport"
providers:
  file:
    filename: "$dir/dynamic.yml"
    watch: true
log:
  level: WARN
YML
"$proxy" --configFile "$dir/static.yml" & pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$pport/r999" && break; sleep 0.1; done

wrk -t2 -c200 -d14s "http://127.0.0.1:$pport/r500" > "$dir/wrk.txt" & wrkpid=$!; pids+=($wrkpid)
sleep 3
for k in 1 2 3 4 5; do
  routes "new$k" > "$dir/next.yml"
  start=$(date +%s%N)
  mv "$dir/next.yml" "$dir/dynamic.yml"
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$pport/new$k")" = 200 ]; do
    if [ $(( ($(date +%s%N) - start) / 1000000 )) -gt 10000 ]; then echo "change $k: not applied in 10 s"; break; fi
    sleep 0.005
  done
  echo "change $k: new route answered $(( ($(date +%s%N) - start) / 1000000 )) ms after the write"
  sleep 1
done
wait $wrkpid || true
grep -E "Requests/sec|Non-2xx|Socket errors" "$dir/wrk.txt" || true
