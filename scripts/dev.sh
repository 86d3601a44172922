#!/usr/bin/env bash
# `make dev`: the gateway on workerd (wrangler dev) with the demo
# configuration from kv-seed/ (servers, the dev group, the demo policy, the
# demo authorization server as a trusted issuer), and beside it:
#   server-everything (TypeScript SDK)        http://127.0.0.1:3001/mcp
#     (it listens on every interface and cannot be told otherwise: it runs
#     with an empty environment, so its get-env tool shows nothing of yours,
#     and the demo registry hides that tool anyway)
#   notes (Python SDK; its eu region, :3003, is down on purpose)
#                                             http://127.0.0.1:3002/mcp
#   a local OAuth authorization server        http://127.0.0.1:3004
#     (client credentials: demo-client / demo-secret)
#   a scripted model server (the demo model of the agent API, no provider
#     key: it asks for get-sum, then echo, then answers)
#                                             http://127.0.0.1:3005/v1
# Development secrets (a signing key for minted upstream credentials, a demo
# API key and an admin one) are made once in build/dev-secrets.json.
# MCP_EDGE_SKIP_BUILD=1 uses the existing build/; MCP_EDGE_DEV_STATE=DIR keeps
# wrangler's local state (KV, Durable Objects) there instead of .wrangler/state.
# Ctrl-C stops everything.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
PORT="${PORT:-8787}"
BASE="http://127.0.0.1:$PORT"
AS_PORT=3004
STATE=()
if [[ -n "${MCP_EDGE_DEV_STATE:-}" ]]; then STATE=(--persist-to "$MCP_EDGE_DEV_STATE"); fi

bash scripts/toolchain.sh
bash scripts/build-worker.sh   # MCP_EDGE_SKIP_BUILD=1: the existing build/

echo "==> loading kv-seed/ into local KV (checked by the gateway's parsers)" >&2
"$PYTHON" scripts/seed.py kv-seed --workers-local "${STATE[@]}"
"$PYTHON" scripts/dev_secrets.py build/dev-secrets.json build/dev-keys.json build/dev.env >/dev/null
"$NODE22" "$WRANGLER" kv bulk put build/dev-keys.json --binding REGISTRY --local "${STATE[@]}" >/dev/null
secret() { "$PYTHON" -c "import json,sys; v=json.load(open('build/dev-secrets.json'))[sys.argv[1]]; print(v if isinstance(v,str) else json.dumps(v))" "$1"; }
USER_KEY="$(secret user_key)"
ADMIN_KEY="$(secret admin_key)"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

echo "==> starting the demo upstreams and authorization server" >&2
env -i PATH="$PATH" PORT=3001 node node_modules/@modelcontextprotocol/server-everything/dist/index.js streamableHttp \
  > build/server-everything.log 2>&1 &
pids+=($!)
"$PYTHON" tests/e2e/upstream/notes_server.py --port 3002 \
  --gateway-jwks "$BASE/.well-known/jwks.json" --audience notes > build/notes.log 2>&1 &
pids+=($!)
"$NODE22" tests/e2e/auth/oidc_server.mjs --port "$AS_PORT" --alg ES256 \
  --resource "$BASE/mcp" --resource "$BASE/servers/everything/mcp" --resource "$BASE/servers/notes/mcp" \
  --client "demo-client:demo-secret:mcp:tools" > build/authorization-server.log 2>&1 &
pids+=($!)
"$PYTHON" tests/e2e/upstream/model_server.py --port 3005 > build/model.log 2>&1 &
pids+=($!)

cat >&2 <<MSG

==> mcp-edge is starting on $BASE
    aggregated endpoint:  $BASE/mcp          (tools named {server}__{tool})
    one server:           $BASE/servers/everything/mcp
                          $BASE/servers/notes/mcp
    demo API key:         $USER_KEY
    admin API key:        $ADMIN_KEY   (roles mcp-admin, approver)
    a token:              curl -s -u demo-client:demo-secret -d grant_type=client_credentials \\
                            -d resource=$BASE/mcp http://127.0.0.1:$AS_PORT/token
    try:  npx @modelcontextprotocol/inspector --cli $BASE/mcp --transport http --method tools/list \\
            --header "X-API-Key: $USER_KEY"
          curl -s -H "X-API-Key: $USER_KEY" $BASE/registry
          curl -s -H "X-API-Key: $ADMIN_KEY" $BASE/admin/policy
          curl -s -H "X-API-Key: $USER_KEY" -H "Content-Type: application/json" $BASE/v1/chat/completions \\
            -d '{"model":"demo","messages":[{"role":"user","content":"add 2 and 3"}]}'
    the agent API (OpenAI-compatible): base URL $BASE/v1, API key $USER_KEY, model demo
    the demo policy (kv-seed/policy.json): get-sum 5 calls a minute, notes' email addresses
    redacted, notes' purge held for an approver ($BASE/approvals).
    logs in build/*.log; Ctrl-C stops everything.

MSG
MCP_EDGE_SKIP_BUILD=1 "$NODE22" "$WRANGLER" dev --ip 127.0.0.1 --port "$PORT" --show-interactive-dev-session=false "${STATE[@]}" \
  --var "ADMIN_ROLE:mcp-admin" --env-file build/dev.env &
pids+=($!)
wait "${pids[-1]}"
