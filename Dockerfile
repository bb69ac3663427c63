# Untested here (no Docker engine on the build machines); kept minimal on purpose.
FROM rust:1.95-slim-bookworm AS build
# A C compiler (the slim image's gcc) and make: jemalloc, the binary's allocator, is built from
# C with make; ring and the bundled SQLite are built with cc.
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The production binary: without the default `demo` feature, so neither the provider
# simulators nor the demo's signing key are in it.
RUN cargo build --release -p gatehouse --no-default-features --bin gatehouse

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --home-dir /var/lib/gatehouse gatehouse \
    && mkdir -p /var/lib/gatehouse /etc/gatehouse \
    && chown gatehouse:gatehouse /var/lib/gatehouse && chmod 0700 /var/lib/gatehouse
COPY --from=build /src/target/release/gatehouse /usr/local/bin/gatehouse
# The store (tokens, audit) goes to the writable volume whatever directory the config is
# mounted in: a config without `[store] data_dir` uses GATEHOUSE_DATA_DIR, instead of `data`
# beside the config file (read-only /etc/gatehouse for the runtime user).
ENV GATEHOUSE_DATA_DIR=/var/lib/gatehouse \
    GATEHOUSE_CONFIG=/etc/gatehouse/gatehouse.toml
VOLUME /var/lib/gatehouse
USER gatehouse
WORKDIR /var/lib/gatehouse
EXPOSE 8080 9090
ENTRYPOINT ["gatehouse"]
CMD ["run"]
