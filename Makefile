# The Makefile is the project's interface. Every target works from a fresh
# Debian machine: infrastructure is found, started or installed on demand.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin:$(HOME)/go/bin

# The saga's participants come from their one list, saga/saga.conf (lines
# "participant NAME PORT DATABASE TIMELINE"); the gateway and the tools are
# not participants and are named here. $(call column,N) is field N
# after the kind: 1 the name, 2 the port, 3 the database.
column = $(shell awk -v n=$(1) '$$1 == "participant" {print $$(n + 1)}' saga/saga.conf)
PARTICIPANTS := $(call column,1)
ifeq ($(PARTICIPANTS),)
$(error no participants read from saga/saga.conf)
endif
DATABASES    := $(call column,3)
GATEWAY_PORT := 3000
CONSOLE_PORT := 3010
PORTS        := $(GATEWAY_PORT) $(CONSOLE_PORT) $(call column,2)
MODULES  := libs libs/testinfra/containers db saga apps/gateway $(addprefix apps/,$(PARTICIPANTS)) apps/sagactl apps/demo apps/loadgen tests tests/helm
# Modules outside go.work, built and tested on their own go.mod alone:
# tests/helm's Kubernetes and Helm dependencies would otherwise raise the
# versions of shared modules (golang.org/x/net) that the services build with.
SOLO     := tests/helm
# gowork is "GOWORK=off" inside a loop over $$m when $$m is a SOLO module.
gowork    = $$(case " $(SOLO) " in *" $$m "*) echo GOWORK=off;; esac)
APPS     := gateway $(PARTICIPANTS) sagactl demo loadgen
SQLC     := github.com/sqlc-dev/sqlc/cmd/sqlc@v1.31.1
GO_TEST_FLAGS ?= -race -count=1 -timeout 30m
space := $(subst ,, )

.PHONY: build run demo test promtool tools chaos bench bench-micro generate check-generated lint fmt up down infra clean

# Every binary answers --version with these (libs/buildinfo); a build
# outside git says "unknown" rather than failing.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
BUILDINFO := github.com/ordersaga/ordersaga/libs/buildinfo
LDFLAGS   := -X $(BUILDINFO).Version=$(VERSION) -X $(BUILDINFO).Commit=$(COMMIT)

build: ## Build every binary into ./bin, stamped with the version and commit
	@mkdir -p bin
	go build -ldflags "$(LDFLAGS)" -o bin/ $(addprefix ./apps/,$(APPS))

infra: ## Find, start or install PostgreSQL and RabbitMQ (with management), and the pinned Mailpit
	@scripts/ensure-infra.sh
	@scripts/ensure-mailpit.sh >/dev/null

up: ## Infrastructure plus every participant's database
	@scripts/ensure-infra.sh --databases $(DATABASES)

# TRACING=on make run (or make demo) also starts Jaeger and has every service
# export its traces there: scripts/run-local.sh.
run: build up ## Run the whole system locally (TRACING=on: with Jaeger); Ctrl-C stops it
	@scripts/run-local.sh

# The payment latency makes the walkthrough's early cancel land while its
# payment is being decided, and lets you watch the sagas wait.
DEMO_PAYMENT_LATENCY ?= 1s
# make demo runs with AUTH_MODE=required and this administrator, whom
# users-service creates at start-up (ADMIN_EMAIL/ADMIN_PASSWORD) and bin/demo
# logs in as. A local demo account: never use it anywhere else.
DEMO_ADMIN_EMAIL    ?= admin@ordersaga.local
DEMO_ADMIN_PASSWORD ?= demo-admin-password

# demo starts the services like `make run` (scripts/run-local.sh, in the
# background, logs in .run/), runs bin/demo against them, and stops them
# whatever happens (EXIT trap). Outside CI it then pauses payment-service
# (SIGSTOP), has bin/demo -linger leave a stuck saga and a dead letter, and
# keeps everything up for the console until Ctrl-C, exiting with the tour's
# status. The stuck saga shows as stuck after 20 s (CONSOLE_STUCK_AFTER), and
# stays so for 30 min (ORDER_PAYMENT_TIMEOUT; the tour's sagas end in seconds). It refuses to run beside services already on
# the gateway's or a participant's port: their settings are unknown (run
# bin/demo against them).
demo: build up ## Start the system, walk through every saga outcome and a DLQ replay; then, outside CI, keep it up for the console until Ctrl-C
	@set -uo pipefail; \
	for port in $(PORTS); do \
	  if timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$$port" 2>/dev/null; then \
	    echo "make demo: port $$port is already in use; is ordersaga running? Stop it (Ctrl-C, make down), or run bin/demo against it" >&2; \
	    exit 1; \
	  fi; \
	done; \
	mkdir -p .run; \
	echo "make demo: starting the services, payment latency $(DEMO_PAYMENT_LATENCY), AUTH_MODE=required (logs in .run/)"; \
	echo "make demo: demo administrator $(DEMO_ADMIN_EMAIL), password $(DEMO_ADMIN_PASSWORD)"; \
	export AUTH_MODE=required ADMIN_EMAIL='$(DEMO_ADMIN_EMAIL)' ADMIN_PASSWORD='$(DEMO_ADMIN_PASSWORD)'; \
	export ORDER_PAYMENT_TIMEOUT=30m CONSOLE_STUCK_AFTER=20s; \
	PAYMENT_LATENCY=$(DEMO_PAYMENT_LATENCY) scripts/run-local.sh -q >.run/demo-services.log 2>&1 & services=$$!; \
	stop() { kill -TERM $$services 2>/dev/null && wait $$services; echo "make demo: services stopped"; }; \
	trap stop EXIT; trap 'exit 130' INT; trap 'exit 143' TERM HUP; \
	deadline=$$((SECONDS + 120)); \
	until curl -sf -m 2 -o /dev/null http://127.0.0.1:$(GATEWAY_PORT)/readyz; do \
	  if ! kill -0 $$services 2>/dev/null; then \
	    echo "make demo: the services did not start:" >&2; cat .run/demo-services.log >&2; exit 1; \
	  fi; \
	  if ((SECONDS >= deadline)); then \
	    echo "make demo: the gateway was not ready within 120s (.run/demo-services.log, .run/*.log)" >&2; exit 1; \
	  fi; \
	  sleep 0.5; \
	done; \
	bin/demo; rc=$$?; \
	if [[ -n "$${CI:-}" ]]; then exit $$rc; fi; \
	pay=$$(pgrep -x -f '$(CURDIR)/bin/payment-service' | head -n 1); \
	resume() { if [[ -n $$pay ]]; then kill -CONT $$pay 2>/dev/null; fi; }; \
	trap 'resume; stop' EXIT; trap 'exit $$rc' INT TERM HUP; \
	echo; echo "make demo: the tour exited $$rc; the system stays up for the console until Ctrl-C"; \
	if [[ -n $$pay ]] && kill -STOP $$pay; then \
	  echo "make demo: payment-service (pid $$pay) is paused, so a saga placed now stays stuck; kill -CONT $$pay resumes it"; \
	  bin/demo -linger || echo "make demo: could not leave a stuck saga and a dead letter (see above)" >&2; \
	fi; \
	echo; echo "make demo: operator console on http://127.0.0.1:$(CONSOLE_PORT)/ — Ctrl-C stops everything"; \
	while kill -0 $$services 2>/dev/null; do sleep 1; done; \
	exit $$rc

test: infra lint promtool ## gofmt, vet, tidy, the alert rules' tests, then every module's tests, with the race detector, on real Postgres and RabbitMQ
	@set -e; start=$$(date +%s); \
	for m in $(MODULES); do \
	  echo "=== go test $$m"; \
	  (cd $$m && env $(gowork) go test $(GO_TEST_FLAGS) ./...); \
	done; \
	echo "make test: all modules passed in $$(( $$(date +%s) - start ))s"

# promtool, Jaeger and oapi-codegen are pinned in modules of their own
# (tools/*/go.mod) and built once into ~/.cache/ordersaga/tools by scripts/ensure-tools.sh.
promtool: ## Check deploy/prometheus's alert rules and run their tests (promtool test rules)
	@p=$$(scripts/ensure-tools.sh promtool) && cd deploy/prometheus && \
	  $$p check rules alerts.yml && $$p test rules alerts_test.yml

tools: ## Build the pinned tools (Jaeger, promtool, oapi-codegen) once, ahead of their first use
	@scripts/ensure-tools.sh jaeger promtool oapi-codegen

chaos: infra ## The fault scenarios at full size (300 orders each, a 10k backlog), with their figures
	@set -o pipefail; cd tests && CHAOS_ORDERS=300 CHAOS_BACKLOG=10000 CHAOS_SMTP_OUTAGE=2m \
	  go test -race -count=1 -timeout 40m -run 'Chaos|Fault|Killed|Dropped|Timeout|Poison' -v ./e2e/ \
	  | grep --line-buffered -E '^(--- |PASS|FAIL|ok)|^\s+\S+_test\.go:[0-9]+:|Error:|expected|actual|Messages'

# BENCH_FLAGS passes loadgen flags, e.g. BENCH_FLAGS='-soak 5m' or
# BENCH_FLAGS='-steps closed -concurrency 64'; bin/loadgen -h lists them all.
BENCH_FLAGS ?=
bench: build infra ## End-to-end benchmark: bin/loadgen on its own services, vhost and databases (README: Performance)
	@mkdir -p .run
	bin/loadgen -json .run/bench.json $(BENCH_FLAGS)

bench-micro: infra ## Go micro-benchmarks of every module
	@for m in $(MODULES); do (cd $$m && env $(gowork) go test -run '^$$' -bench . -benchmem ./...) || exit 1; done

# GENERATED is what make generate writes and check-generated compares with
# the commit.
GENERATED := db docs/asyncapi.json libs/gatewayclient/client.gen.go
OPENAPI   := apps/gateway/internal/gateway/openapi.json

generate: ## Regenerate sqlc code from db/*/queries, docs/asyncapi.json from libs/events, and libs/gatewayclient from the gateway's OpenAPI document
	@command -v sqlc >/dev/null || go install $(SQLC)
	sqlc generate
	go run ./saga/cmd/asyncapi
	@oapi=$$(scripts/ensure-tools.sh oapi-codegen) && \
	  (cd libs/gatewayclient && $$oapi -config oapi-codegen.yaml $(CURDIR)/$(OPENAPI))

check-generated: generate ## Fail when committed generated code is stale
	@git diff --exit-code -- $(GENERATED) || { echo "generated code is stale: run make generate"; exit 1; }
	@test -z "$$(git ls-files --others --exclude-standard -- $(GENERATED))" || \
	  { git ls-files --others --exclude-standard -- $(GENERATED); echo "generated files not committed: run make generate and commit them"; exit 1; }

lint: ## gofmt, go vet, tidy and golangci-lint (.golangci.yml) on every module
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "run make fmt"; exit 1; }
	@for m in $(MODULES); do (cd $$m && env $(gowork) go vet ./...) || exit 1; done
	@for m in $(MODULES); do (cd $$m && go mod tidy -diff) || { echo "go mod tidy needed in $$m"; exit 1; }; done
	@SOLO='$(SOLO)' scripts/golangci-lint.sh $(MODULES)

fmt:
	gofmt -w $$(git ls-files '*.go')

down: ## Stop what 'make run' started (it stops on Ctrl-C by itself)
	@-pkill -TERM -f '$(CURDIR)/bin/($(subst $(space),|,gateway $(PARTICIPANTS))|sagactl console)' || true

clean:
	rm -rf bin .run
