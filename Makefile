# mcp-edge: the two commands that matter are `make dev` and `make test`.
# Every target installs what it needs first (scripts/toolchain.sh, cached under
# ~/.cache/mcp-edge), so they work on a fresh machine.

SHELL := /bin/bash
ENV := source scripts/env.sh &&

.PHONY: dev dev-spin seed test bench toolchain build build-spin lint unit e2e e2e-workers e2e-spin dev-smoke dev-smoke-spin playground playground-workers playground-spin conformance conformance-workers conformance-spin fmt clean

## Run the gateway locally on workerd with the demo registry (kv-seed/) and
## two demo upstream MCP servers; prints the URL. `make dev-spin` (or
## MCP_EDGE_RUNTIME=spin make dev): the same on the Spin component, served by
## the local Spin host (tests/spin-host, Wasmtime).
dev:
	bash scripts/dev.sh

dev-spin:
	MCP_EDGE_RUNTIME=spin bash scripts/dev.sh

## Loads kv-seed/ (or SEED=folder) into wrangler dev's local KV, checked by
## the gateway's own parsers; prints what changed. Other stores:
## scripts/seed.py --help (remote Workers KV, Spin's SQLite file).
SEED ?= kv-seed
seed: toolchain
	$(ENV) "$$PYTHON" scripts/seed.py $(SEED) --workers-local

## The whole test suite: lint, native unit + integration tests, end to end on
## wrangler dev (workerd) and on the Spin host (Wasmtime) with the official
## TypeScript and Python SDK clients, and the official conformance suite
## through both endpoints on both runtimes.
test: toolchain lint unit e2e playground conformance

## Benchmarks: the gateway beside a pass-through floor on workerd and on the
## Spin host, plus native core benchmarks; writes bench/RESULTS.md. Prints
## numbers, never fails on them.
bench: toolchain
	$(ENV) "$$PYTHON" bench/run.py

toolchain:
	bash scripts/toolchain.sh

## The Workers bundle (build/index.js + build/index_bg.wasm).
build: toolchain
	bash scripts/build-worker.sh

## The Spin component (target/wasm32-wasip2/spin/mcp_edge.wasm) and the
## local Spin test host (tests/spin-host/target/release/spin-host).
build-spin: toolchain
	cargo build --target wasm32-wasip2 --profile spin --features spin
	cargo build --release --manifest-path tests/spin-host/Cargo.toml

## Style and structure: formatting, clippy on every target, and the layers
## (scripts/layers.py fails on an import from a layer above or any cycle).
lint:
	python3 scripts/layers.py --self-test
	python3 scripts/layers.py
	cargo fmt --check
	cargo fmt --check --manifest-path tests/spin-host/Cargo.toml
	cargo clippy --all-targets -- -D warnings
	cargo clippy --target wasm32-unknown-unknown --features workers -- -D warnings
	cargo clippy --target wasm32-wasip2 --features spin -- -D warnings
	cargo clippy --release --manifest-path tests/spin-host/Cargo.toml -- -D warnings

unit:
	cargo test

e2e: e2e-workers e2e-spin dev-smoke dev-smoke-spin

e2e-workers: toolchain
	$(ENV) "$$PYTHON" tests/e2e/run.py --target workers

e2e-spin: toolchain
	$(ENV) "$$PYTHON" tests/e2e/run.py --target spin

## `make dev` as a newcomer meets it (tests/dev_smoke.py; the build e2e-workers
## made), and `make seed` on a copy of kv-seed/ (tests/seed_check.py).
dev-smoke: toolchain e2e-workers
	$(ENV) "$$PYTHON" tests/seed_check.py
	$(ENV) "$$PYTHON" tests/dev_smoke.py

## `make dev-spin` likewise (the component and host e2e-spin built).
dev-smoke-spin: toolchain e2e-spin
	$(ENV) "$$PYTHON" tests/dev_smoke.py --runtime spin

## The playground (/playground) in headless Chromium, driven by Playwright,
## against `make dev` and `make dev-spin` (tests/playground/run.py; the
## builds the e2e targets made). `run.py --shots docs/playground` redraws
## the README's screenshots.
playground: playground-workers playground-spin

playground-workers: toolchain e2e-workers
	$(ENV) "$$PYTHON" tests/playground/run.py --runtime workers

playground-spin: toolchain e2e-spin
	$(ENV) "$$PYTHON" tests/playground/run.py --runtime spin

## @modelcontextprotocol/conformance (2025-11-25 and 2026-07-28) against the
## project's fixture upstream, directly and through /servers/conf/mcp and /mcp
## (tests/conformance/run.py; uses the build the e2e targets made).
conformance: conformance-workers conformance-spin

conformance-workers: toolchain
	$(ENV) "$$PYTHON" tests/conformance/run.py --target workers --no-build

conformance-spin: toolchain
	$(ENV) "$$PYTHON" tests/conformance/run.py --target spin --no-build

fmt:
	cargo fmt
	cargo fmt --manifest-path tests/spin-host/Cargo.toml

clean:
	cargo clean
	rm -rf build .wrangler
