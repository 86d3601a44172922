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
exec worker-build --release --features workers
