# Untested here (no Docker engine on the build machines); kept minimal on purpose.
FROM rust:1.95-slim-bookworm AS build
# make: jemalloc, the binary's allocator, is built from C.
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p gatehouse --bin gatehouse

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 gatehouse && mkdir -p /var/lib/gatehouse && chown gatehouse /var/lib/gatehouse
COPY --from=build /src/target/release/gatehouse /usr/local/bin/gatehouse
USER gatehouse
WORKDIR /var/lib/gatehouse
EXPOSE 8080 9090
ENTRYPOINT ["gatehouse"]
CMD ["run", "--config", "/etc/gatehouse/gatehouse.toml"]
