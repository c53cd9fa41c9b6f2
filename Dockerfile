# Builds the proxy and the harness (whose `backend` subcommand is the test
# backend) into one small image. Used by docker-compose.yml; the harness
# itself runs natively (`cargo run -p harness`), not in Docker.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p proxy -p harness \
 && cp target/release/proxy target/release/harness /usr/local/bin/

FROM debian:bookworm-slim
COPY --from=build /usr/local/bin/proxy /usr/local/bin/harness /usr/local/bin/
EXPOSE 8000 9100
ENTRYPOINT []
CMD ["proxy", "--configFile", "/etc/bench/proxy.yml", "--workers", "1", "--log-level", "error"]
