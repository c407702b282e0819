# Galaxy — build, lint and test entry points. `make help` lists them.
#
# Everything a fresh go-docker machine lacks is installed from here: the
# images (images/build.sh installs debootstrap itself) and the Go tools
# pinned in go.mod (`go tool ...`).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
export TESTCONTAINERS_RYUK_DISABLED := true
export CGO_ENABLED ?= 0

PROFILE ?= default
LABELS ?=
# What the acceptance suite tests: hermetic (everything it starts itself) or
# deployed (the deployment of ginkgo.yml's target section and GALAXY_TARGET_*,
# by default the compose stack of `make up`).
TARGET ?= hermetic
# The compose stack's env file: a deployed run reads the GALAXY_TARGET_*
# secrets in it that the environment does not set.
STACK_ENV ?= .env
REPORTS ?= reports
BIN ?= bin
# A count, not a duration: with a duration Go 1.26's fuzz coordinator can
# report its own end-of-time as "context deadline exceeded" (golang/go#75804).
FUZZTIME ?= 10000x
N ?= 20
RATE ?= 80
DURATION ?= 60s
SOAK_RATE ?= 50
# The service images' names: $(SERVICE_IMAGE_REPOSITORY)/<service>:$(SERVICE_IMAGE_TAG);
# an empty tag is the checkout's `git describe --tags --always --dirty`.
SERVICE_IMAGE_REPOSITORY ?= galaxy
SERVICE_IMAGE_TAG ?=
# The compose command of `make up` / `make down`: docker-compose (1.29) when
# installed, else the Docker CLI's compose plugin (v2).
COMPOSE ?= $(if $(shell command -v docker-compose),docker-compose,docker compose)

# Packages for `go test`: everything but the Ginkgo acceptance program
# (acceptance/, which `make acceptance` runs through the ginkgo CLI). Its other
# packages hold no tests (`ginkgo -r acceptance` would run them as suites):
# go test only builds them.
GO_PACKAGES = $$($(GO) list ./... | grep -vx 'galaxy/acceptance')

.PHONY: help images service-images compose-plugin build lint vet staticcheck fmt-check tidy-check spec-check behaviors-table unit fuzz acceptance repeat bench-acceptance bench-acceptance-cold mutate load soak soak-retention test clean up down

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

images: ## build the local Redis and PostgreSQL images (skips what exists)
	bash images/build.sh

service-images: ## build one image per service into the local Docker daemon (SERVICE_IMAGE_REPOSITORY, SERVICE_IMAGE_TAG); skips what is up to date
	$(GO) run ./images/serviceimages -repository '$(SERVICE_IMAGE_REPOSITORY)' -tag '$(SERVICE_IMAGE_TAG)'

up: ## start the stack of compose.yaml (Redis, PostgreSQL, Mailpit, the four services); builds missing images, creates .env, waits until healthy, prints the URLs
	COMPOSE='$(COMPOSE)' GO='$(GO)' SERVICE_IMAGE_REPOSITORY='$(SERVICE_IMAGE_REPOSITORY)' SERVICE_IMAGE_TAG='$(SERVICE_IMAGE_TAG)' bash deploy/compose/stack.sh up

# Compose v2's Go module is github.com/docker/compose/v5 (its releases are
# numbered 5 since the CLI's v2 line ended); tools/compose pins it.
compose-plugin: ## install Docker Compose v2 as the Docker CLI's plugin (`docker compose`), built from the version tools/compose pins, unless the CLI has one
	@if docker compose version >/dev/null 2>&1; then echo "compose-plugin: have $$(docker compose version)"; else \
	  dir="$${DOCKER_CONFIG:-$$HOME/.docker}/cli-plugins"; mkdir -p "$$dir"; \
	  version=$$(cd tools/compose && $(GO) list -m -f '{{.Version}}' github.com/docker/compose/v5); \
	  (cd tools/compose && $(GO) build -trimpath -ldflags "-s -w -X github.com/docker/compose/v5/internal.Version=$$version" -o "$$dir/docker-compose" github.com/docker/compose/v5/cmd); \
	  echo "compose-plugin: installed $$(docker compose version) in $$dir"; fi

down: ## remove the stack: its containers, the games its Runtime Manager started, networks, volumes, game state
	COMPOSE='$(COMPOSE)' GO='$(GO)' bash deploy/compose/stack.sh down

build: ## build the four service binaries and galaxyctl into bin/
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./user/cmd/userservice ./mail/cmd/mail ./notification/cmd/notification ./rtmanager/cmd/rtmanager ./galaxyctl/cmd/galaxyctl

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# go.mod and go.sum say exactly what the code imports, direct requirements
# marked direct.
tidy-check:
	$(GO) mod tidy -diff

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) tool staticcheck ./...

# The acceptance suite's spec tree (a dry run lists it without running it):
# every spec in its area and proving a behaviour of the catalogue, every
# behaviour proved, smoke exactly one spec per failure kind, and the table
# behaviour → specs of docs/acceptance.md current.
spec-check:
	@mkdir -p $(REPORTS)
	$(GO) tool ginkgo --dry-run --no-color --json-report=specs.json --output-dir=$(REPORTS) acceptance >/dev/null
	$(GO) run ./harness/cmd/speccheck -table docs/acceptance.md $(REPORTS)/specs.json

behaviors-table: ## rewrite the table behaviour → specs in docs/acceptance.md from the catalogue and the suite
	@mkdir -p $(REPORTS)
	$(GO) tool ginkgo --dry-run --no-color --json-report=specs.json --output-dir=$(REPORTS) acceptance >/dev/null
	$(GO) run ./harness/cmd/speccheck -write-table docs/acceptance.md $(REPORTS)/specs.json

lint: fmt-check tidy-check vet staticcheck spec-check ## gofmt, go mod tidy -diff, go vet, staticcheck and the spec tree's rules

unit: images ## unit and integration tests (real Redis, PostgreSQL, Docker)
	@mkdir -p $(REPORTS)
	$(GO) test -count=1 -timeout 20m $(GO_PACKAGES)

fuzz: ## a short run of every fuzz target (FUZZTIME inputs each)
	@for pkg in $(GO_PACKAGES); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

acceptance: images ## the acceptance suite (PROFILE=default|ci|smoke, LABELS='expr', TARGET=hermetic|deployed); junit.xml and report.json in reports/
	@mkdir -p $(REPORTS)
	flags=$$($(GO) run ./harness/cmd/suiteflags -profile $(PROFILE) -label-filter '$(LABELS)' -output-dir $(REPORTS)) && \
	  if [ '$(TARGET)' = deployed ] && [ -f '$(STACK_ENV)' ]; then \
	    while IFS='=' read -r k v; do [ -n "$${!k+x}" ] || export "$$k=$$v"; done < <(grep -E '^GALAXY_TARGET_[A-Z0-9_]+=' '$(STACK_ENV)'); \
	  fi && \
	  GALAXY_TARGET_MODE='$(TARGET)' $(GO) tool ginkgo $$flags -r acceptance

repeat: images ## `make acceptance` N times in a row (N=20, PROFILE, LABELS); stops at the first failing run
	@mkdir -p $(REPORTS)/repeat; t0=$$(date +%s); \
	for i in $$(seq 1 $(N)); do \
	  start=$$(date +%s); dir=$(REPORTS)/repeat/$$i; \
	  if $(MAKE) --no-print-directory acceptance PROFILE=$(PROFILE) LABELS='$(LABELS)' REPORTS=$$dir >$$dir.log 2>&1; then ok=passed; else ok=FAILED; fi; \
	  echo "run $$i/$(N): $$ok in $$(( $$(date +%s) - start ))s; $$($(GO) run ./harness/cmd/reportsummary $$dir/report.json 2>&1 | head -1) (log: $$dir.log)"; \
	  if [ $$ok = FAILED ]; then exit 1; fi; \
	done; \
	echo "repeat: $(N) of $(N) runs passed in $$(( $$(date +%s) - t0 ))s"

bench-acceptance: images ## time `make acceptance` (all, smoke, boundary) 3 times each; median and range into docs/performance.md
	$(GO) run ./harness/cmd/benchacceptance -runs 3

bench-acceptance-cold: ## time one `make acceptance` as on a new machine (removes the local images, fresh caches, a new clone)
	$(GO) run ./harness/cmd/benchacceptance -cold

# Not part of `test`: one focused acceptance run per mutant, about 13 minutes.
mutate: images ## apply each contract mutant of acceptance/mutants to a copy of the tree, run its behaviour's specs; all must be killed; table into docs/acceptance.md
	$(GO) run ./harness/cmd/mutate -doc docs/acceptance.md -reports $(REPORTS)/mutate

load: images ## the whole pipeline at RATE start jobs/s for DURATION (80, 60s); figures, CSV and plots in reports/
	$(GO) run ./loadtest/cmd/pipelineload -rate $(RATE) -duration $(DURATION) -out $(REPORTS)

soak: images ## ten minutes at about half capacity (SOAK_RATE=50 jobs/s); memory plot in reports/
	$(GO) run ./loadtest/cmd/pipelineload -soak -rate $(SOAK_RATE) -out $(REPORTS)

soak-retention: images ## five minutes with a 30 s retention: Redis, streams and tables must level off; reports/retention-soak.csv
	$(GO) run ./loadtest/cmd/retentionsoak -rate 20 -duration 5m -retention 30s -out $(REPORTS)

# The suite runs twice: hermetic, then against the compose stack, which is
# removed whatever the runs' outcome; both reports count (.ci/run).
# The stack runs twice, under each compose the issue names: $(COMPOSE)
# (docker-compose 1.29 where installed) and Compose v2's `docker compose`.
test: lint unit fuzz ## everything CI runs: lint, unit/integration tests, fuzz, acceptance (ci profile) hermetic and against the compose stack under both composes
	status=0; \
	$(MAKE) acceptance PROFILE=ci || status=$$?; \
	$(MAKE) up && { $(MAKE) acceptance PROFILE=ci TARGET=deployed REPORTS=$(REPORTS)/deployed || status=$$?; } || status=$$?; \
	$(MAKE) down || status=$$?; \
	$(MAKE) compose-plugin || status=$$?; \
	$(MAKE) up COMPOSE='docker compose' && { $(MAKE) acceptance PROFILE=ci TARGET=deployed REPORTS=$(REPORTS)/deployed-compose-v2 || status=$$?; } || status=$$?; \
	$(MAKE) down COMPOSE='docker compose' || status=$$?; \
	exit $$status

clean: ## remove build output, reports and test containers
	rm -rf $(BIN) $(REPORTS)
	$(GO) run ./harness/cmd/sweep || true
