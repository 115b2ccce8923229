# The routing layer: control-tower, data-gateway and their plugins.
# `make help` lists the targets.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := run

GO       ?= go
BIN      := bin
PLUGINS  := $(BIN)/plugins
TOOLS    := $(CURDIR)/$(BIN)/tools
# Every module of the workspace; `./...` alone covers only the root one.
PKGS     := ./... ./sdk/... ./examples/... ./plugins/riffyn/...
TESTFLAGS ?= -race -count=1 -timeout 20m
# The Python plugins run on the system Python with Debian's python3-grpcio
# and python3-protobuf (scripts/services up installs them).
PYTHON   ?= /usr/bin/python3
# The broker's memory watermark outside the alarm test (RabbitMQ's default).
RABBITMQ_MEMORY_WATERMARK ?= 0.4

BUF_VERSION                := v1.75.0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.1
STATICCHECK_VERSION        := v0.8.2

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

.PHONY: run
run: build broker ## build, start RabbitMQ if needed, then run both services with the example plugins (embedded SQLite, data/) and the example robot
	scripts/run

# broker makes RabbitMQ reachable as `make test` does, and when it cannot,
# says why and lets the services run anyway: triggers are then stored and
# stay pending until the broker is reachable.
.PHONY: broker
broker: ## make RabbitMQ reachable (scripts/services up rabbitmq); say why when it cannot, without failing
	@scripts/services up rabbitmq || echo "make: RabbitMQ is not reachable (see above): the services run anyway; triggers are stored and stay pending until a broker answers on 127.0.0.1:5672, then they are published" >&2

.PHONY: build
build: ## build the services into bin/, the example plugins into bin/plugins/, the example robot into bin/robot-sim, the Riffyn plugins into bin/riffyn/, the Python examples into bin/python/
	@mkdir -p $(BIN) $(PLUGINS)
	$(GO) build -o $(BIN)/ ./host/cmd/...
	$(GO) build -o $(PLUGINS)/ ./examples/cmd/...
	$(GO) build -o $(BIN)/ ./examples/servicelayer/cmd/...
	$(GO) build -o $(BIN)/riffyn/ ./plugins/riffyn/cmd/...
	@# Zipapps need only a python3 to be built; they run on $(PYTHON).
	@if command -v python3 >/dev/null; then python3 scripts/pyplugins -o $(BIN)/python; \
	  else echo "build: no python3 on PATH: the Python example plugins (bin/python/) are not built"; fi

.PHONY: cluster
cluster: build ## run 3 control-towers and 2 data-gateways on the local PostgreSQL and RabbitMQ (scripts/cluster)
	scripts/services up
	scripts/cluster

.PHONY: test
test: ## start RabbitMQ and PostgreSQL if needed, then run every module's tests, the broker alarm test alone, and each benchmark once
	scripts/services up
	$(MAKE) --no-print-directory test-python
	$(GO) test $(TESTFLAGS) $(PKGS)
	@# A memory alarm blocks every publisher on the node: this test runs alone,
	@# and the alarm is cleared even if it fails or is interrupted.
	trap 'rabbitmqctl -q set_vm_memory_high_watermark $(RABBITMQ_MEMORY_WATERMARK) >/dev/null 2>&1 || \
	  echo "could not clear the broker memory alarm: run rabbitmqctl set_vm_memory_high_watermark $(RABBITMQ_MEMORY_WATERMARK)" >&2' EXIT; \
	  $(GO) test $(TESTFLAGS) -tags brokeralarm -run '^TestBlockedBroker$$' ./host/controltower/
	$(GO) test -run '^$$' -bench . -benchtime 1x $(PKGS)

.PHONY: test-python
test-python: ## run the unit tests of the Python plugin kit (sdk/python) and of the Python examples
	PYTHONPATH=sdk/python $(PYTHON) -m unittest discover -s sdk/python/tests -t sdk/python/tests
	for d in examples/python/*/; do PYTHONPATH=sdk/python $(PYTHON) -m unittest discover -s "$$d" -t "$$d" || exit 1; done

.PHONY: bench
bench: ## measure throughput, latency, restart time and memory; writes scripts/bench/RESULTS.md
	scripts/services up
	$(GO) run ./scripts/bench $(BENCHFLAGS)

.PHONY: check
check: proto-check check-files $(TOOLS)/staticcheck ## gofmt, go vet, staticcheck, stale protos, sdk independence (of host; the contract of transport and unsafe), tracked files
	@out=$$(gofmt -l host sdk examples $$(ls -d plugins 2>/dev/null) | grep -v '\.pb\.go$$' || true); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(TOOLS)/staticcheck $(PKGS)
	@if $(GO) list -deps ./sdk/... | grep -q '^github.com/routinglayer/routing/host'; then \
	  echo "sdk depends on host: the SDK must stand alone"; exit 1; fi
	@deps=$$($(GO) list -deps ./sdk | grep -E '^(google\.golang\.org/grpc|github\.com/hashicorp/go-plugin|github\.com/hashicorp/go-hclog|github\.com/routinglayer/routing/sdk/internal/pluginpb)(/|$$)' || true); \
	  if [ -n "$$deps" ]; then echo "package sdk (the plugin contract) depends on:"; echo "$$deps" | sed 's/^/  /'; \
	    echo "transport belongs in sdk/serve, sdk/pluginhost or sdk/internal"; exit 1; fi
	@if $(GO) list -f '{{join .Imports "\n"}}' ./sdk | grep -qx unsafe; then \
	  echo "package sdk (the plugin contract) imports unsafe: keep it to safe Go"; exit 1; fi
	@echo "check: ok"

# check-files fails on a tracked file over 1 MB (a build output or data set
# belongs outside git) or an executable one outside scripts/ and .ci/ (a
# built binary, or a source file with a stray mode bit). It reads the index,
# as a commit would hold it.
.PHONY: check-files
check-files:
	@big=$$(git ls-files -s | awk '$$1 != "160000"' | sed -E 's/^[0-9]+ ([0-9a-f]+) [0-9]+\t/\1 /' | \
	  git cat-file --batch-check='%(objectsize) %(rest)' | awk '$$1 > 1048576 { printf "  %s (%.1f MB)\n", substr($$0, index($$0, " ") + 1), $$1 / 1048576 }'); \
	  if [ -n "$$big" ]; then echo "tracked files over 1 MB:"; echo "$$big"; \
	    echo "remove each from git, keeping the file: git rm --cached <file>, then ignore it in .gitignore (or publish it elsewhere)"; exit 1; fi
	@exe=$$(git ls-files -s | awk '$$1 == "100755"' | cut -f2- | grep -vE '^(scripts|\.ci)/' || true); \
	  if [ -n "$$exe" ]; then echo "executable files outside scripts/ and .ci/:"; echo "$$exe" | sed 's/^/  /'; \
	    echo "clear the mode bit: git update-index --chmod=-x <file> (and chmod -x <file>), or move a script to scripts/; a built binary does not belong in git: git rm --cached <file>"; exit 1; fi

.PHONY: proto
proto: $(TOOLS)/buf ## regenerate the plugin protocol's Go code and the Python kit's message code (protoc 3.21)
	cd sdk && PATH="$(TOOLS):$$PATH" buf generate
	scripts/pyproto

.PHONY: proto-check
proto-check: proto
	@if ! git diff --quiet -- sdk/internal/pluginpb sdk/python/routing_plugin/_pb; then \
	  echo "generated protobuf code was stale; commit the regenerated files"; \
	  git diff --stat -- sdk/internal/pluginpb sdk/python/routing_plugin/_pb; exit 1; fi

$(TOOLS)/buf:
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) GOWORK=off $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	GOBIN=$(TOOLS) GOWORK=off $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(TOOLS) GOWORK=off $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

$(TOOLS)/staticcheck:
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) GOWORK=off $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

.PHONY: clean
clean: ## remove build outputs (not data/)
	rm -rf $(BIN)
