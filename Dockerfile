# syntax=docker/dockerfile:1
# Build: docker build --build-arg CLUSTERDNS_GIT_COMMIT=$(git rev-parse --short=12 HEAD) -t clusterdns .
FROM rust:1.89-bookworm AS build
WORKDIR /src
ARG CLUSTERDNS_GIT_COMMIT=unknown
ENV CLUSTERDNS_GIT_COMMIT=${CLUSTERDNS_GIT_COMMIT}
COPY . .
RUN cargo build --release --locked --bin clusterdns \
 && cp target/release/clusterdns /clusterdns

# Distroless with glibc and CA certificates, no shell; UID 65532 ("nonroot").
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /clusterdns /usr/local/bin/clusterdns
COPY config/clusterdns.toml /etc/clusterdns/clusterdns.toml
COPY config/demo-cluster /etc/clusterdns/demo-cluster
USER 65532:65532
EXPOSE 53/udp 53/tcp 8080 8181 9153
ENTRYPOINT ["/usr/local/bin/clusterdns"]
CMD ["--config", "/etc/clusterdns/clusterdns.toml"]
