#!/usr/bin/env bash
# `make dev`: the gateway with the demo configuration from kv-seed/ (servers,
# the dev group, the demo policy, the demo authorization server as a trusted
# issuer), and beside it:
#   server-everything (TypeScript SDK)        http://127.0.0.1:3001/mcp
#     (it listens on every interface and cannot be told otherwise: it runs
#     with an empty environment, so its get-env tool shows nothing of yours,
#     and the demo registry hides that tool anyway)
#   notes (Python SDK; its eu region, :3003, is down on purpose)
#                                             http://127.0.0.1:3002/mcp
#   a local OAuth authorization server        http://127.0.0.1:3004
#     (client credentials: demo-client / demo-secret; the playground's
#     browser sign-in: public client mcp-edge-playground, any login name)
#   a scripted model server (the demo model of the agent API, no provider
#     key: it asks for get-sum, then echo, then answers)
#                                             http://127.0.0.1:3005/v1
# Development secrets (a signing key for minted upstream credentials, a demo
# API key and an admin one) are made once in build/dev-secrets.json.
#
# MCP_EDGE_RUNTIME picks the runtime:
#   workers (default)  workerd, through wrangler dev;
#   spin               the Spin component on the local Spin host
#                      (tests/spin-host, Wasmtime), as `make dev-spin` runs it.
# MCP_EDGE_SKIP_BUILD=1 uses the existing build (build/, or the Spin component
# and host) when there is one. MCP_EDGE_DEV_STATE=DIR keeps wrangler's local
# state (KV, Durable Objects) there instead of .wrangler/state; the Spin host
# keeps its store in memory only, so under spin it is ignored and every run
# starts from kv-seed/ and the dev keys with nothing else.
# Ctrl-C stops everything.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
RUNTIME="${MCP_EDGE_RUNTIME:-workers}"
case "$RUNTIME" in
  workers|spin) ;;
  *) echo "dev.sh: MCP_EDGE_RUNTIME is workers or spin, not '$RUNTIME'" >&2; exit 2 ;;
esac
PORT="${PORT:-8787}"
BASE="http://127.0.0.1:$PORT"
AS_PORT=3004
STATE=()
if [[ -n "${MCP_EDGE_DEV_STATE:-}" ]]; then STATE=(--persist-to "$MCP_EDGE_DEV_STATE"); fi
COMPONENT=target/wasm32-wasip2/spin/mcp_edge.wasm
SPIN_HOST=tests/spin-host/target/release/spin-host

bash scripts/toolchain.sh
secret() { "$PYTHON" -c "import json,sys; v=json.load(open('build/dev-secrets.json'))[sys.argv[1]]; print(v if isinstance(v,str) else json.dumps(v))" "$1"; }

# Builds the runtime's artifacts and loads kv-seed/ and the dev API keys into
# its store.
prepare_workers() {
  bash scripts/build-worker.sh   # MCP_EDGE_SKIP_BUILD=1: the existing build/
  echo "==> loading kv-seed/ into local KV (checked by the gateway's parsers)" >&2
  "$PYTHON" scripts/seed.py kv-seed --workers-local "${STATE[@]}"
  "$PYTHON" scripts/dev_secrets.py build/dev-secrets.json build/dev-keys.json build/dev.env >/dev/null
  "$NODE22" "$WRANGLER" kv bulk put build/dev-keys.json --binding REGISTRY --local "${STATE[@]}" >/dev/null
}
prepare_spin() {
  if [[ "${MCP_EDGE_SKIP_BUILD:-}" == 1 && -f "$COMPONENT" && -x "$SPIN_HOST" ]]; then
    echo "mcp-edge: using the existing Spin component and host (MCP_EDGE_SKIP_BUILD=1)" >&2
  else
    cargo build --target wasm32-wasip2 --profile spin --features spin
    cargo build --release --manifest-path tests/spin-host/Cargo.toml
  fi
  [[ -z "${MCP_EDGE_DEV_STATE:-}" ]] ||
    echo "mcp-edge: MCP_EDGE_DEV_STATE is ignored on the Spin host (its store lives in memory)" >&2
  # The host's store starts empty: it is filled from the --kv-seed files
  # (the `wrangler kv bulk put` format), the checked kv-seed/ and the keys.
  echo "==> checking kv-seed/ for the Spin host's store (the gateway's parsers)" >&2
  "$PYTHON" scripts/seed.py kv-seed --bulk-out build/dev-kv-seed.json
  "$PYTHON" scripts/dev_secrets.py build/dev-secrets.json build/dev-keys.json build/dev.env >/dev/null
}
"prepare_$RUNTIME"
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
  --resource "$BASE" --client "demo-client:demo-secret:mcp:tools" \
  --public-client "mcp-edge-playground:$BASE/playground/" > build/authorization-server.log 2>&1 &
pids+=($!)
"$PYTHON" tests/e2e/upstream/model_server.py --port 3005 > build/model.log 2>&1 &
pids+=($!)

cat >&2 <<MSG

==> mcp-edge is starting on $BASE
    the playground:       $BASE/playground/   (sign in with the demo API key below, or with
                          OAuth: client id mcp-edge-playground, any login name)
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

serve_workers() {
  MCP_EDGE_SKIP_BUILD=1 "$NODE22" "$WRANGLER" dev --ip 127.0.0.1 --port "$PORT" --show-interactive-dev-session=false "${STATE[@]}" \
    --var "ADMIN_ROLE:mcp-admin" --var "SCOPES_SUPPORTED:mcp:tools" --env-file build/dev.env &
  pids+=($!)
}
serve_spin() {
  # `spin up` gives the component spin.toml's [variables] defaults; the host
  # reads no manifest, so pass the non-empty ones (the Inspector's origin
  # among them).
  local defaults vars=() v p
  defaults="$("$PYTHON" -c 'import tomllib
for k, v in tomllib.load(open("spin.toml", "rb"))["variables"].items():
    if v.get("default") and not v.get("secret"): print(k + "=" + v["default"])')"
  mapfile -t vars <<<"$defaults"
  local args=(--component "$COMPONENT" --listen "127.0.0.1:$PORT" --kv-store sessions
              --kv-seed build/dev-kv-seed.json --kv-seed build/dev-keys.json --var admin_role=mcp-admin
              --var scopes_supported=mcp:tools)
  for v in "${vars[@]}"; do args+=(--var "$v"); done
  # Outbound to the demo upstreams (3003: notes' eu region, down), the
  # authorization server's JWKS (3004) and the demo model (3005), as
  # spin.toml's allowed_outbound_hosts would; nothing else.
  for p in 3001 3002 3003 3004 3005; do args+=(--allow-outbound "http://127.0.0.1:$p/"); done
  # The signing key (the same one wrangler dev reads from build/dev.env) goes
  # on the command line, where any local user can read it: the host takes
  # variables only as --var (no file, no environment). A development key only.
  local key
  key="$(sed -n "s/^UPSTREAM_SIGNING_KEY='\(.*\)'\$/\1/p" build/dev.env)"
  "$SPIN_HOST" "${args[@]}" --var "upstream_signing_key=$key" &
  pids+=($!)
}
"serve_$RUNTIME"
wait "${pids[-1]}"
