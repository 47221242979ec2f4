# Multi-stage build of the gateway. DuckDB is compiled from source in the first stage (this takes
# a while: ~18 minutes on 2 cores).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# DuckDB is compiled as a release build (NDEBUG): see .cargo/config.toml.
COPY .cargo ./.cargo
COPY src ./src
RUN cargo build --release --locked --bin duckstream

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/duckstream /usr/local/bin/duckstream
# The demo tenant (10M parcels, ~235 MiB) is built into the image; a new volume starts with it.
RUN duckstream --data-dir /data seed-demo
VOLUME /data
EXPOSE 8080
ENV DUCKSTREAM_BIND=0.0.0.0:8080 DUCKSTREAM_DATA_DIR=/data DUCKSTREAM_INSECURE=true
HEALTHCHECK --interval=5s --timeout=2s --start-period=60s CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["/usr/local/bin/duckstream"]
