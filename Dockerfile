# dpsbench as a container image, for shards on Kubernetes (deploy/k8s/).
#
#   docker build -t registry.example.com/dpsbench:0.1.0 .
#
# Build stage: a Rust toolchain image. Runtime stage: Debian, a non-root user, the binary as
# entrypoint (`dpsbench run ...`, `dpsbench report merge ...`, `dpsbench emulator ...`).
# rustls with aws-lc-rs and webpki-roots: no OpenSSL and no CA bundle are needed at run time.
#
# The base images are build arguments, so the same file builds where a registry serves them
# (the defaults) and where it does not: scripts/image builds both bases from Debian's packages
# (a debootstrap root filesystem; Debian's rustc-web and cargo-web for the build stage) and
# passes them here. CARGO_PROFILE=dev builds the debug binary instead (quicker to build).
ARG BUILD_IMAGE=rust:1-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
ARG CARGO_PROFILE=release
WORKDIR /src
# Dependencies first, so a change of dpsbench's sources does not rebuild them. Every bench the
# manifest declares gets a stand-in, or cargo refuses the manifest.
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && for bench in $(sed -n '/^\[\[bench\]\]/,/^name/s/^name = "\(.*\)"/\1/p' Cargo.toml); do \
         echo 'fn main() {}' > "benches/$bench.rs"; done \
    && cargo build --profile "$CARGO_PROFILE" --locked \
    && rm -rf src benches
COPY src src
COPY benches benches
# The commit `dpsbench --version` names (the build context has no .git); scripts/image passes it.
# Declared here, after the dependencies' layer, so a new commit does not rebuild them.
ARG DPSBENCH_COMMIT=
# Cargo names the dev profile's folder "debug".
RUN touch src/main.rs src/lib.rs && cargo build --profile "$CARGO_PROFILE" --locked --bin dpsbench \
    && cp "target/$([ "$CARGO_PROFILE" = dev ] && echo debug || echo "$CARGO_PROFILE")/dpsbench" /usr/local/bin/dpsbench

FROM ${RUNTIME_IMAGE} AS runtime
RUN groupadd --system --gid 10001 dpsbench \
    && useradd --system --uid 10001 --gid dpsbench --home-dir /work --create-home --shell /usr/sbin/nologin dpsbench
COPY --from=build /usr/local/bin/dpsbench /usr/local/bin/dpsbench
COPY scenarios /usr/share/dpsbench/scenarios
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/dpsbench"]
CMD ["--help"]
