# syntax=docker/dockerfile:1
#
# kube-elector container image: a static binary on `scratch`, running as a non-root numeric user.
#
#   docker build -t kube-elector .
#
# The `builder` stage compiles a static (crt-static glibc) release binary in the public Rust image,
# with its dependency list embedded (cargo auditable).
# The final stage only copies `/kube-elector` out of it, so a pre-built static binary can stand in
# for the whole builder stage without touching this file:
#
#   podman build --build-context builder=DIR .   # DIR/kube-elector is the static binary
#
# (scripts/check-ship.sh builds the image that way, offline.)

ARG RUST_VERSION=1.89

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
# cargo auditable embeds the dependency list (name, version, source of every crate) in the
# binary's .dep-v0 section: the image's bill of materials, read by `cargo audit bin`, syft, trivy.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo install --locked cargo-auditable@0.7.7
# The glibc x86_64 target with crt-static gives a static-pie that runs on `scratch`.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    RUSTFLAGS='-C target-feature=+crt-static' \
    cargo auditable build --release --locked --target x86_64-unknown-linux-gnu --bin kube-elector \
    && install -D -m 0755 target/x86_64-unknown-linux-gnu/release/kube-elector /kube-elector

FROM scratch
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="kube-elector" \
      org.opencontainers.image.description="Leader-election sidecar for Kubernetes: one leader, readiness gating, metrics, fencing tokens" \
      org.opencontainers.image.source="https://github.com/kube-elector/kube-elector" \
      org.opencontainers.image.url="https://github.com/kube-elector/kube-elector" \
      org.opencontainers.image.documentation="https://github.com/kube-elector/kube-elector/tree/main/k8s" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="scratch"
COPY --from=builder --chmod=0555 /kube-elector /kube-elector
# 65532 is the conventional "nonroot" uid/gid of distroless images; numeric so that
# `runAsNonRoot` can verify it without an /etc/passwd.
USER 65532:65532
EXPOSE 8080
# No init and no shell: the binary is PID 1 and handles SIGTERM itself (releases the lease, exits 0).
# In exec mode (`-- COMMAND`, k8s/exec/) it stays PID 1: it reaps every orphaned process in the
# container, and its command dies with it (parent-death signal), so no init is needed either.
ENTRYPOINT ["/kube-elector"]
