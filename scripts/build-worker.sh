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
worker-build --release --features workers
# The wasm's `name` section (a fifth of the module, 160 KiB of the gzip
# bundle) goes to build/index_bg.symbols instead: one `index:name` line per
# function, which turns a `wasm-function[N]` frame of a Workers stack trace
# back into its Rust name (README, "Reading a Workers stack trace").
"$WASM_OPT_BIN" build/index_bg.wasm --print-function-map --strip-debug -o build/index_bg.wasm \
  > build/index_bg.symbols
