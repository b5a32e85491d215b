# meshkeeper — run `make help` for the targets.
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
export GOTOOLCHAIN := local

BIN          := $(CURDIR)/bin
CONTROLLER_GEN := $(BIN)/controller-gen
GOLANGCI_LINT  := $(BIN)/golangci-lint
KWOK           := $(BIN)/kwok
# helm, pinned and built from the Go module proxy by hack/cluster/osm.sh (the OSM install uses it too).
HELM_VERSION   ?= 3.21.4
HELM           := $(BIN)/helm/$(HELM_VERSION)/helm
CHART          := charts/meshkeeper
# Every long build step says what it builds, how long it usually takes, and its elapsed time.
PROGRESS       := KB_NAME=make hack/lib/progress.sh
COLD_MANAGER   := a few minutes on 2 cores when cold, seconds when warm
IMG          ?= ghcr.io/meshkeeper/manager:latest
INIT_IMG     ?= ghcr.io/meshkeeper/init:latest
# Bounded fuzzing in CI; run `make fuzz FUZZTIME=5m` for a longer session.
FUZZTIME     ?= 10s
GO_TEST_FLAGS ?= -count=1

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z0-9_-]+:.*##/ {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs, RBAC (one role per mode's needs) and webhook configuration from markers.
	$(CONTROLLER_GEN) crd webhook paths="./api/..." paths="./webhooks/..." \
		output:crd:artifacts:config=config/crd/bases output:webhook:artifacts:config=config/webhook
	$(CONTROLLER_GEN) rbac:roleName=manager-role paths="./controllers/..." output:rbac:artifacts:config=config/rbac
	$(CONTROLLER_GEN) rbac:roleName=webhook-role paths="./webhooks" output:rbac:artifacts:config=config/webhook
	$(CONTROLLER_GEN) rbac:roleName=injector-role paths="./webhooks/pod" output:rbac:artifacts:config=config/injector
	@$(MAKE) --no-print-directory chart-files

.PHONY: chart-files
chart-files: ## Copy what the Helm chart reads from config/ (generated RBAC rules and webhooks, alerts, dashboard) into charts/meshkeeper/files.
	@mkdir -p $(CHART)/files/rbac
	@cp config/rbac/role.yaml $(CHART)/files/rbac/manager-role.yaml
	@cp config/webhook/role.yaml $(CHART)/files/rbac/webhook-role.yaml
	@cp config/injector/role.yaml $(CHART)/files/rbac/injector-role.yaml
	@cp config/webhook/manifests.yaml $(CHART)/files/webhooks.yaml
	@cp config/prometheus/prometheusrule.yaml $(CHART)/files/prometheusrule.yaml
	@cp config/grafana/meshkeeper.json $(CHART)/files/meshkeeper-dashboard.json

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code for the API types.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths="./api/..."

.PHONY: fmt
fmt: ## gofmt the tree.
	gofmt -s -w $$(git ls-files -co --exclude-standard '*.go')

.PHONY: vet
vet: ## go vet (the e2e-tagged tests too).
	go vet ./...
	go vet -tags e2e ./test/e2e/...
	cd test/rules && go vet ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## golangci-lint with .golangci.yml.
	$(GOLANGCI_LINT) run --allow-parallel-runners ./...
	cd test/rules && $(GOLANGCI_LINT) run --allow-parallel-runners -c ../../.golangci.yml ./...

.PHONY: verify
verify: manifests generate ## Regenerate everything, then fail on any diff, untracked generated file, gofmt, vet or lint finding.
	@hack/verify.sh
	$(MAKE) vet lint

.PHONY: envtest
envtest: ## Build kube-apiserver and etcd for envtest from the Go module proxy (cached in bin/).
	@hack/envtest.sh >/dev/null

.PHONY: test
test: envtest $(HELM) ## Run every test: unit, golden, envtest integration, real-kernel (as root), Helm chart, alert rules, bounded fuzzing.
	@$(PROGRESS) "go test ./... (compiles and runs every package, envtest and the chart included; about 5 min on 2 cores with a warm build cache)" \
		env KUBEBUILDER_ASSETS="$$(hack/envtest.sh 2>/dev/null)" HELM="$(HELM)" go test $(GO_TEST_FLAGS) ./...
	$(MAKE) test-rules
	$(MAKE) fuzz

# MESHKEEPER_FAULTS=long runs the fault tests' drift waves on 1,000 pods instead of 200-300.
FAULTS       ?= 1

.PHONY: test-faults
test-faults: envtest ## Run the fault tests of docs/reliability.md, the long ones included (API server restart, leader killed, throttling; FAULTS=long for 1,000-pod waves).
	@$(PROGRESS) "fault tests (internal/manager: envtest, several minutes on 2 cores)" \
		env KUBEBUILDER_ASSETS="$$(hack/envtest.sh 2>/dev/null)" MESHKEEPER_FAULTS=$(FAULTS) go test $(GO_TEST_FLAGS) -timeout 30m -v \
		-run 'TestSlippedMeshConfigsStall|TestAPIServerRestartMidWave|TestLeaderKilledMidWave|TestConcurrentWritersKeepTheirFields|TestThrottledAPIServerBackoff' ./internal/manager/

.PHONY: test-rules
test-rules: ## Evaluate the alerting rules and check the dashboard's queries (test/rules, its own module: the Prometheus engine).
	@$(PROGRESS) "alert rules and dashboard (test/rules: compiles Prometheus's rule evaluator; about 2 min when cold, seconds when warm)" \
		env -C test/rules go test $(GO_TEST_FLAGS) ./...

.PHONY: helm-lint
helm-lint: $(HELM) ## helm lint the chart in each mode.
	$(HELM) lint --strict $(CHART)
	$(HELM) lint --strict $(CHART) --set mode=inject
	$(HELM) lint --strict $(CHART) --set mode=inject,certManager.enabled=true

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (FUZZPARALLEL=n: n workers per target instead of one per core).
	@FUZZPARALLEL=$(FUZZPARALLEL) hack/fuzz.sh $(FUZZTIME)

.PHONY: bench
bench: envtest ## Run the benchmarks (figures go to docs/benchmarks.md).
	KUBEBUILDER_ASSETS="$$(hack/envtest.sh 2>/dev/null)" go test -run '^$$' -bench . -benchmem ./...

##@ Build and run

.PHONY: build
build: ## Build the manager, the init program and the CLI into bin/.
	@$(PROGRESS) "bin/manager (go build ./cmd/manager; $(COLD_MANAGER))" \
		env CGO_ENABLED=0 go build -o $(BIN)/manager ./cmd/manager
	@$(PROGRESS) "bin/meshkeeper-init (go build ./cmd/meshkeeper-init; seconds)" \
		env CGO_ENABLED=0 go build -o $(BIN)/meshkeeper-init ./cmd/meshkeeper-init
	@$(PROGRESS) "bin/meshkeeper, the CLI and kubectl plugin (go build ./cmd/meshkeeper; under a minute after the manager)" \
		env CGO_ENABLED=0 go build -o $(BIN)/meshkeeper ./cmd/meshkeeper
	ln -sf meshkeeper $(BIN)/kubectl-meshkeeper
	@$(PROGRESS) "bin/meshkeeper-demo (go build ./cmd/meshkeeper-demo; under a minute after the manager)" \
		env CGO_ENABLED=0 go build -o $(BIN)/meshkeeper-demo ./cmd/meshkeeper-demo

.PHONY: dist
dist: ## kubectl plugin archives for linux/darwin amd64/arm64, checksums and the krew manifest in dist/ (VERSION=vX.Y.Z).
	@hack/dist.sh

.PHONY: cluster-up
cluster-up: ## Start a real one-node cluster here (root; builds Kubernetes from the Go module proxy, ~15 min cold).
	@hack/cluster/up.sh

.PHONY: cluster-down
cluster-down: ## Stop the real cluster and restore the host (binaries and images are kept).
	@hack/cluster/down.sh

.PHONY: e2e
e2e: manifests ## Run the end-to-end tests on the real cluster (make cluster-up first).
	@hack/cluster/e2e.sh

.PHONY: osm-install
osm-install: ## Install OSM v1.2.4 from its own Helm chart on the real cluster (builds helm and OSM's images, ~10 min cold).
	@hack/cluster/osm.sh install

.PHONY: osm-uninstall
osm-uninstall: ## Uninstall OSM: its release, CRDs, webhook configurations and namespace.
	@hack/cluster/osm.sh uninstall

.PHONY: e2e-osm
e2e-osm: manifests ## End-to-end tests of audit mode beside OSM itself: installs OSM, runs test/e2e/osm, uninstalls.
	@hack/cluster/e2e-osm.sh

.PHONY: e2e-helm
e2e-helm: manifests $(HELM) ## End-to-end test of the Helm chart: helm install in audit mode on the real cluster, manager Ready, helm uninstall (make cluster-up first).
	@hack/cluster/e2e-helm.sh

.PHONY: demo
ifeq ($(CLUSTER),real)
demo: build ## Local demo on an embedded control plane (no cluster needed); CLUSTER=real: on the real node, with real traffic.
	@hack/demo-real.sh
else
demo: build envtest $(KWOK)
	@hack/demo.sh
endif

.PHONY: run
run: ## Run the manager against the current kubeconfig.
	go run ./cmd/manager

.PHONY: install
install: manifests ## Install meshkeeper's CRDs where none are installed (never over OSM's).
	@hack/install-crds.sh

.PHONY: deploy
deploy: manifests ## Deploy the operator in audit mode (config/default): mutates no pod.
	kubectl apply --server-side -k config/default

.PHONY: deploy-injector
deploy-injector: manifests ## Deploy the operator in inject mode (config/injector).
	kubectl apply --server-side -k config/injector

.PHONY: undeploy
undeploy: ## Remove the operator (either mode); CRDs and the objects in them stay.
	kubectl delete --ignore-not-found -k config/injector

##@ Tools

# Each tool has its own module under hack/tools so its dependencies never touch ours.
$(CONTROLLER_GEN): hack/tools/controller-gen/go.mod
	@$(PROGRESS) "bin/controller-gen (hack/tools/controller-gen; about a minute when cold)" \
		env -C hack/tools/controller-gen go build -o $(CONTROLLER_GEN) sigs.k8s.io/controller-tools/cmd/controller-gen

$(KWOK): hack/tools/kwok/go.mod
	@$(PROGRESS) "bin/kwok (fake nodes and pod lifecycle for the demo; a few minutes when cold)" \
		env -C hack/tools/kwok CGO_ENABLED=0 go build -o $(KWOK) sigs.k8s.io/kwok/cmd/kwok

$(HELM):
	@hack/cluster/osm.sh helm

$(GOLANGCI_LINT): hack/tools/golangci-lint/go.mod
	@$(PROGRESS) "bin/golangci-lint (hack/tools/golangci-lint; several minutes when cold)" \
		env -C hack/tools/golangci-lint go build -o $(GOLANGCI_LINT) github.com/golangci/golangci-lint/v2/cmd/golangci-lint
