# syntax=docker/dockerfile:1
# deployguard: a static glibc binary on distroless/static (no shell, no package manager).
#   docker build -t deployguard .
# Build context: the repository root (see .dockerignore).

ARG RUST_VERSION=1.95
ARG TARGET=x86_64-unknown-linux-gnu

FROM rust:${RUST_VERSION}-bookworm AS builder
ARG TARGET
WORKDIR /build
# crt-static: glibc linked in, so the binary runs on distroless/static and scratch.
# Applied to the target only (--target), not to build scripts and proc macros.
ENV RUSTFLAGS="-C target-feature=+crt-static" \
    CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0

# 1. Dependencies only, cached until Cargo.toml or Cargo.lock change. The manifest's
#    [[bench]]/[[test]]/[[example]] tables are dropped: they need files outside src/
#    and play no part in the release binary. The engine and the offline door are
#    workspace members.
COPY Cargo.toml Cargo.lock ./
COPY engine/Cargo.toml engine/
COPY offline/Cargo.toml offline/
RUN awk '/^\[\[(bench|test|example)\]\]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' Cargo.toml > Cargo.build.toml \
 && mv Cargo.build.toml Cargo.toml \
 && mkdir -p src engine/src offline/src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs engine/src/lib.rs offline/src/lib.rs \
 && cargo build --release --locked --target "${TARGET}" \
 && rm -rf src engine/src offline/src

# 2. The application itself (built with the manifest from step 1; touch, because
#    COPY keeps the context's mtimes, which may be older than the placeholder's).
COPY engine/src ./engine/src
COPY offline/src ./offline/src
COPY src ./src
RUN touch src/main.rs src/lib.rs engine/src/lib.rs offline/src/lib.rs \
 && cargo build --release --locked --target "${TARGET}" \
 && cp "target/${TARGET}/release/deployguard" /deployguard \
 && /deployguard --help > /dev/null

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="deployguard" \
      org.opencontainers.image.description="Kubernetes admission webhook: health probes, resource limits and a Go runtime sized to its container" \
      org.opencontainers.image.source="https://github.com/deployguard/deployguard" \
      org.opencontainers.image.url="https://github.com/deployguard/deployguard" \
      org.opencontainers.image.documentation="https://github.com/deployguard/deployguard#readme" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"
COPY --from=builder /deployguard /deployguard
# distroless "nonroot": uid/gid 65532, matching the Helm chart's securityContext.
USER 65532:65532
# 8443: admission webhook (TLS), /healthz, /readyz; 9090: /metrics (plain HTTP).
EXPOSE 8443 9090
ENTRYPOINT ["/deployguard", "serve"]
