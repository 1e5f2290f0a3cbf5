# The project's commands. `make test` is what CI runs (through .ci/run): it installs what it
# needs that is missing (project-local only), then checks formatting, lints, and runs every test.

SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: help test fmt-check clippy cargo-test bench emulator fmt clean-tools

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

test: fmt-check clippy cargo-test ## Everything CI checks: fmt, clippy -D warnings, all tests

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
