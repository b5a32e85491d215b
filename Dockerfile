# meshkeeper manager: controllers and admission webhooks in one static binary.
# Build from the repository root: docker build -t meshkeeper-manager .
# (The kubectl plugin is the same kind of static binary: go build ./cmd/meshkeeper.)

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
ENV GOTOOLCHAIN=local CGO_ENABLED=0
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
COPY webhooks/ webhooks/
RUN go build -trimpath -ldflags="-s -w" -o /out/manager ./cmd/manager

# No shell, no package manager; UID 65532 matches runAsNonRoot in config/manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
