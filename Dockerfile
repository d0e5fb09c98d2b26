# dpsbench as a container image, for shards on Kubernetes (deploy/k8s/).
#
#   docker build -t registry.example.com/dpsbench:0.1.0 .
#
# Build stage: the Rust toolchain image. Runtime stage: slim Debian, a non-root user, the binary
# as entrypoint (`dpsbench run ...`, `dpsbench report merge ...`, `dpsbench emulator ...`).
# rustls with ring and webpki-roots: no OpenSSL and no CA bundle are needed at run time.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so a change of dpsbench's sources does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && for bench in token codec fleet; do echo 'fn main() {}' > "benches/$bench.rs"; done \
    && cargo build --release --locked \
    && rm -rf src benches
COPY src src
COPY benches benches
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin dpsbench

FROM debian:bookworm-slim AS runtime
RUN groupadd --system --gid 10001 dpsbench \
    && useradd --system --uid 10001 --gid dpsbench --home-dir /work --create-home --shell /usr/sbin/nologin dpsbench
COPY --from=build /src/target/release/dpsbench /usr/local/bin/dpsbench
COPY scenarios /usr/share/dpsbench/scenarios
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/dpsbench"]
CMD ["--help"]
