#!/usr/bin/env bash
# `make dev`: the gateway on workerd (wrangler dev) with the demo registry from
# kv-seed/ and two demo upstreams on loopback:
#   server-everything (TypeScript SDK)  http://127.0.0.1:3001/mcp
#   notes (Python SDK)                  http://127.0.0.1:3002/mcp
# Ctrl-C stops everything.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
PORT="${PORT:-8787}"

bash scripts/toolchain.sh
bash scripts/build-worker.sh

echo "==> seeding local KV from kv-seed/" >&2
mkdir -p build
python3 scripts/kv_bulk.py kv-seed > build/kv-bulk.json
"$NODE22" "$WRANGLER" kv bulk put build/kv-bulk.json --binding REGISTRY --local >/dev/null

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

echo "==> starting demo upstreams" >&2
PORT=3001 node node_modules/@modelcontextprotocol/server-everything/dist/index.js streamableHttp \
  > build/server-everything.log 2>&1 &
pids+=($!)
"$PYTHON" tests/e2e/upstream/notes_server.py --port 3002 > build/notes.log 2>&1 &
pids+=($!)

cat >&2 <<MSG

==> mcp-edge is starting on http://127.0.0.1:$PORT
    aggregated endpoint:  http://127.0.0.1:$PORT/mcp          (tools named {server}__{tool})
    one server:           http://127.0.0.1:$PORT/servers/everything/mcp
                          http://127.0.0.1:$PORT/servers/notes/mcp
    try:  npx @modelcontextprotocol/inspector --cli http://127.0.0.1:$PORT/mcp --transport http --method tools/list
    upstream logs in build/*.log; Ctrl-C stops everything.

MSG
MCP_EDGE_SKIP_BUILD=1 "$NODE22" "$WRANGLER" dev --ip 127.0.0.1 --port "$PORT" --show-interactive-dev-session=false &
pids+=($!)
wait "${pids[-1]}"
