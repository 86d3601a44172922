# mcp-edge: the two commands that matter are `make dev` and `make test`.
# Every target installs what it needs first (scripts/toolchain.sh, cached under
# ~/.cache/mcp-edge), so they work on a fresh machine.

SHELL := /bin/bash
ENV := source scripts/env.sh &&

.PHONY: dev test toolchain build lint unit e2e fmt clean

## Run the gateway locally on workerd with the demo registry (kv-seed/) and
## two demo upstream MCP servers; prints the URL.
dev:
	bash scripts/dev.sh

## The whole test suite: lint, native unit + integration tests, end to end on
## wrangler dev with the official TypeScript and Python SDK clients.
test: toolchain lint unit e2e

toolchain:
	bash scripts/toolchain.sh

## The Workers bundle (build/index.js + build/index_bg.wasm).
build: toolchain
	bash scripts/build-worker.sh

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --target wasm32-unknown-unknown --features workers -- -D warnings

unit:
	cargo test

e2e: toolchain
	$(ENV) "$$PYTHON" tests/e2e/run.py --target workers

fmt:
	cargo fmt

clean:
	cargo clean
	rm -rf build .wrangler
