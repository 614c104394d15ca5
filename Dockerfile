# syntax=docker/dockerfile:1
#
# The one image of Online Mart: a static `mart` binary plus the files the
# router composes the supergraph from. Every container runs it with its own
# target (MART_TARGETS=product, router, …; see compose.yaml).
#
#   docker build -t onlinemart/mart:dev --build-arg VERSION=$(git describe --tags --always --dirty) .
#
# deploy/deploy_test.go checks this file against compose.yaml and the tree.

ARG GO_VERSION=1.26

# ---- build: a static binary ------------------------------------------------
FROM golang:${GO_VERSION} AS build
WORKDIR /src

# Modules first, so editing code does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/mart ./cmd/mart

# ---- runtime: distroless, non-root ------------------------------------------
# static-debian12 has CA certificates, tzdata and /etc/passwd, and no shell.
FROM gcr.io/distroless/static-debian12:nonroot AS runtime
ARG VERSION=dev
LABEL org.opencontainers.image.title="Online Mart" \
      org.opencontainers.image.description="GraphQL federation router and subgraph services of Online Mart, one binary" \
      org.opencontainers.image.version="${VERSION}"

COPY --from=build /out/mart /usr/local/bin/mart

# The router reads supergraph.yaml at start and composes the schema files it
# names, relative to its own folder.
WORKDIR /srv/mart
COPY supergraph.yaml ./supergraph.yaml
COPY subgraphs/user/schema.graphqls ./subgraphs/user/schema.graphqls
COPY subgraphs/product/schema.graphqls ./subgraphs/product/schema.graphqls
COPY subgraphs/order/schema.graphqls ./subgraphs/order/schema.graphqls
COPY subgraphs/inventory/schema.graphqls ./subgraphs/inventory/schema.graphqls
COPY subgraphs/payment/schema.graphqls ./subgraphs/payment/schema.graphqls
COPY subgraphs/notification/schema.graphqls ./subgraphs/notification/schema.graphqls

# In a container, listen on every interface (the defaults are loopback) and
# find the supergraph config wherever the working directory is.
ENV MART_SUPERGRAPH_CONFIG=/srv/mart/supergraph.yaml \
    MART_ROUTER_ADDR=0.0.0.0:4000 \
    MART_USER_ADDR=0.0.0.0:4001 \
    MART_PRODUCT_ADDR=0.0.0.0:4002 \
    MART_ORDER_ADDR=0.0.0.0:4003 \
    MART_INVENTORY_ADDR=0.0.0.0:4004 \
    MART_PAYMENT_ADDR=0.0.0.0:4005 \
    MART_NOTIFICATION_ADDR=0.0.0.0:4006 \
    MART_LOG_FORMAT=json

# router 4000; user, product, order, inventory, payment, notification 4001-4006.
EXPOSE 4000-4006

USER nonroot:nonroot

# `mart healthcheck URL` exits 0 when a GET of URL answers 200 (there is no
# shell nor curl here). This one fits the default command, every target in
# one process: the router listens last, once all services are up. A
# container running one target checks its own port instead: compose.yaml
# overrides it per service (/readyz on 4001-4006, 4000 for the router);
# Kubernetes uses httpGet probes on the same paths.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/mart", "healthcheck", "http://127.0.0.1:4000/readyz"]

ENTRYPOINT ["/usr/local/bin/mart"]
CMD ["serve"]
