# kubewright developer targets. The README's two commands are `bash hack/quickstart.sh`
# (a real local HA cluster on lab machines) and `bash hack/test-all.sh` (every test,
# as CI runs it); the targets below are the pieces they use.
SHELL   := /bin/bash
GO      ?= $(shell hack/ensure-go.sh)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin
PKGS    := ./...
# Every test gets a clear timeout; e2e tests share one lab cluster.
TEST_TIMEOUT ?= 10m
E2E_TIMEOUT  ?= 55m

.PHONY: build test e2e bench lint fmt deps ci clean fuzz

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

test:
	$(GO) test -timeout $(TEST_TIMEOUT) $(PKGS)

# e2e needs root, systemd-nspawn and the artifacts (built and cached by `make artifacts`).
e2e: build
	KUBEWRIGHT_BIN=$(CURDIR)/$(BIN)/kubewright $(GO) test -tags e2e -count=1 -timeout $(E2E_TIMEOUT) -v ./test/e2e/... ./installer/artifacts/ ./installer/kube/

bench:
	bash hack/bench.sh

# fuzz runs every fuzz target for FUZZTIME, one after another (go test -fuzz
# takes one target per invocation). New inputs land in the Go build cache;
# copy the ones worth keeping into the package's testdata/fuzz/<Target>/,
# which plain `go test` already runs as seeds.
FUZZTIME    ?= 20s
FUZZTARGETS := ./installer/inventory:FuzzParse ./installer/inventory:FuzzExpand \
               ./installer/inventory:FuzzHostRange ./installer/engine:FuzzLoadPlaybook
fuzz:
	@set -e; for t in $(FUZZTARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz: $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10s $$pkg; \
	done

lint:
	$(GO) vet $(PKGS)
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fmt:
	gofmt -w $$(git ls-files '*.go')

# deps installs the host packages tests and the lab use (idempotent).
deps:
	bash hack/install-deps.sh

ci:
	bash hack/test-all.sh

clean:
	rm -rf $(BIN) _output

-include hack/artifacts.mk
