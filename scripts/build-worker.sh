#!/usr/bin/env bash
# Builds the Workers bundle into build/ with worker-build (wasm-bindgen,
# wasm-opt, esbuild from local copies). wrangler runs this as its build command.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
if [ "${MCP_EDGE_SKIP_BUILD:-}" = 1 ] && [ -f build/index.js ]; then
  echo "mcp-edge: using the existing build/ (MCP_EDGE_SKIP_BUILD=1)" >&2
  exit 0
fi
# A failed build says what the machine had left (a CI run once failed here
# with only cargo's exit code to show) and is tried once more on one job, in
# case the first fell to memory rather than to the code.
if ! worker-build --release --features workers; then
  echo "mcp-edge: worker-build failed; disk and memory at that moment:" >&2
  df -h "$ROOT" "${CARGO_TARGET_DIR:-$ROOT/target}" >&2 || true
  free -m >&2 || true
  echo "mcp-edge: trying once more with one job (CARGO_BUILD_JOBS=1)" >&2
  CARGO_BUILD_JOBS=1 worker-build --release --features workers
fi
# The wasm's `name` section (a fifth of the module, 160 KiB of the gzip
# bundle) goes to build/index_bg.symbols instead: one `index:name` line per
# function, which turns a `wasm-function[N]` frame of a Workers stack trace
# back into its Rust name (README, "Reading a Workers stack trace").
"$WASM_OPT_BIN" build/index_bg.wasm --print-function-map --strip-debug -o build/index_bg.wasm \
  > build/index_bg.symbols
