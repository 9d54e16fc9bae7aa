# syntax=docker/dockerfile:1
#
# The strait image: one binary for every role the manifests of `strait install` and the
# sidecar injector give it (control plane, injector, sidecar and gateway proxies, and the
# `istio-init` container that writes the pod's iptables rules). Containers set only `args`, so
# the entrypoint is the binary itself.
#
#   docker build -t ghcr.io/strait-mesh/strait:<version> .
#
# <version> is the workspace's package version: `strait install` renders that tag by default.
# crates/strait/tests/packaging.rs holds this file to the rendered manifests (entrypoint,
# ports, user).

# --- build: a release binary from the locked dependency set ------------------------------
FROM rust:1.95-slim-trixie AS build
WORKDIR /src
# protoc comes vendored (protoc-bin-vendored) and ring builds with the image's C compiler:
# nothing else is needed from the system.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p strait --bin strait \
    && install -D -m 0755 target/release/strait /out/strait

# --- run: Debian slim with what the binary calls ---------------------------------------------
FROM debian:trixie-slim
# iptables: `strait init` runs iptables-restore and iptables-save (as root, with NET_ADMIN and
# NET_RAW, in the istio-init container). ca-certificates: JWKS documents fetched over HTTPS.
RUN apt-get update \
    && apt-get install -y --no-install-recommends iptables ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 1337 istio-proxy \
    && useradd --uid 1337 --gid 1337 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin istio-proxy
COPY --from=build /out/strait /usr/local/bin/strait
LABEL org.opencontainers.image.source="https://github.com/strait-mesh/strait" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.description="strait: a multi-cluster service mesh that speaks Istio's API"
# Istio's proxy user: traffic capture lets its connections through, so a proxy never captures
# itself. The manifests set it too; the init container overrides it with root.
USER 1337:1337
# Control plane: 15010 discovery (plaintext, loopback only), 15012 discovery and certificates,
# 15014 metrics and readiness, 15017 injector webhook. Proxies: 15001 outbound, 15006 inbound
# capture, 15021 health, 15090 Prometheus, 15443 east-west gateway, 8080 and 8443 the ingress
# gateway (unprivileged ports for 80 and 443).
EXPOSE 15001 15006 15010 15012 15014 15017 15021 15090 15443 8080 8443
ENTRYPOINT ["/usr/local/bin/strait"]
CMD ["--help"]
