"""OAuth client-credentials runner for mcp-edge, driven by the official Python MCP SDK (`mcp` 2.3.0).

Usage:
    python tests/e2e/auth/py_cc_client.py URL CLIENT_ID CLIENT_SECRET [SCOPE]

Given only the MCP endpoint URL and a client id/secret, the SDK does the discovery and the
token request itself:
    POST URL (no token)                  -> 401 + WWW-Authenticate: Bearer resource_metadata=..., scope=...
    GET  resource_metadata URL, then /.well-known/oauth-protected-resource{path}, then the root form
    GET  AS metadata: /.well-known/oauth-authorization-server{path}, OIDC forms as fallbacks
    POST token_endpoint grant_type=client_credentials&resource=...&scope=... (HTTP Basic client auth)
    POST URL again with Authorization: Bearer <token>

    SCOPE  space-separated scopes for the token request. Without it the SDK picks the scope itself:
           WWW-Authenticate `scope`, else PRM `scopes_supported`, else AS `scopes_supported`.

Environment:
    MCP_EXPECTED_ISSUER   pass the AS issuer as `issuer=` (omitting it is deprecated; the SDK then
                          emits an MCPDeprecationWarning on stderr and uses whatever AS the server names)
    MCP_TOKEN_AUTH        client_secret_basic (default) or client_secret_post
    MCP_CLIENT_MODE       `mcp.Client` mode: legacy (default), auto or 2026-07-28

Output (stdout, one line): {"tools": [names...], "sub_seen": <text of tools/call whoami, or null when
no whoami tool is listed>}. Exit 0 on success; 1 with `error: ...` on stderr on any failure;
2 on usage errors. stderr also gets one `http: ...` line per HTTP exchange (method, URL, the headers
and form fields that matter, status, WWW-Authenticate), secrets masked.

Auth API used: `mcp.client.auth.extensions.client_credentials.ClientCredentialsOAuthProvider` (an
`httpx2.Auth`) on the `httpx2.AsyncClient` handed to `streamable_http_client`; tokens live in an
in-memory `TokenStorage`.
"""

import base64
import json
import logging
import os
import sys
from typing import Any
from urllib.parse import parse_qsl, urlencode

import anyio
import httpx2
from mcp import Client
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from mcp.shared.exceptions import MCPError

DEADLINE_S = 30.0
SHOWN_HEADERS = ("mcp-protocol-version", "accept", "content-type", "mcp-session-id")


class MemoryStorage:
    """In-memory `mcp.client.auth.TokenStorage`."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


def describe(exc: BaseException) -> str:
    """One line for an exception, flattening anyio's exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(e) for e in exc.exceptions)
    if isinstance(exc, MCPError):
        return f"MCPError {exc.error.code}: {exc.error.message}"
    return f"{type(exc).__name__}: {str(exc) or repr(exc)}"


class OneLineFormatter(logging.Formatter):
    """SDK log records as one stderr line each (the auth flow logs a full traceback on failure)."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"log: {record.name}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            line += f": {describe(record.exc_info[1])}"
        return line


def setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])


# --------------------------------------------------------------------------- HTTP trace


def _describe_request(request: httpx2.Request) -> str:
    parts = [f"{h}={request.headers[h]}" for h in SHOWN_HEADERS if h in request.headers]
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, cred = auth.partition(" ")
        if scheme.lower() == "basic":
            user = base64.b64decode(cred).decode(errors="replace").split(":")[0]
            parts.append(f"authorization=Basic({user}:***)")
        else:
            parts.append(f"authorization={scheme} ***")
    body = request.content
    ctype = request.headers.get("content-type", "")
    if body and ctype.startswith("application/x-www-form-urlencoded"):
        fields = [(k, "***" if k == "client_secret" else v) for k, v in parse_qsl(body.decode())]
        parts.append(f"form{{{urlencode(fields, safe=':/ *')}}}")
    elif body and ctype.startswith("application/json"):
        try:
            parts.append(f"jsonrpc{{{json.loads(body).get('method', 'response')}}}")
        except (ValueError, AttributeError):
            parts.append(f"{len(body)} bytes")
    return " ".join(parts)


async def _on_response(response: httpx2.Response) -> None:
    request = response.request
    www = response.headers.get("www-authenticate")
    suffix = f" www-authenticate: {www}" if www else ""
    print(
        f"http: {request.method} {request.url} [{_describe_request(request)}] -> {response.status_code}{suffix}",
        file=sys.stderr,
        flush=True,
    )


# --------------------------------------------------------------------------- run


async def run(url: str, client_id: str, client_secret: str, scope: str | None) -> dict[str, Any]:
    auth_method = os.environ.get("MCP_TOKEN_AUTH", "client_secret_basic")
    if auth_method not in ("client_secret_basic", "client_secret_post"):
        raise SystemExit("usage error: MCP_TOKEN_AUTH must be client_secret_basic or client_secret_post")
    storage = MemoryStorage()
    provider = ClientCredentialsOAuthProvider(
        server_url=url,
        storage=storage,
        client_id=client_id,
        client_secret=client_secret,
        token_endpoint_auth_method=auth_method,
        scope=scope,
        issuer=os.environ.get("MCP_EXPECTED_ISSUER") or None,
    )
    http = httpx2.AsyncClient(
        auth=provider,
        timeout=httpx2.Timeout(30.0, read=300.0),
        event_hooks={"response": [_on_response]},
    )
    async with http:
        transport = streamable_http_client(url, http_client=http, terminate_on_close=True)
        async with Client(transport, mode=os.environ.get("MCP_CLIENT_MODE", "legacy"), cache=None) as client:
            tools: list[str] = []
            cursor: str | None = None
            while True:
                page = await client.list_tools(cursor=cursor)
                tools.extend(t.name for t in page.tools)
                cursor = page.next_cursor
                if cursor is None:
                    break
            sub_seen: str | None = None
            if "whoami" in tools:
                result = await client.call_tool("whoami", {})
                texts = [b.text for b in result.content if getattr(b, "type", None) == "text"]
                if result.is_error:
                    raise RuntimeError(f"whoami returned isError: {texts}")
                sub_seen = texts[0] if texts else None
    if storage.tokens is not None:
        print(f"info: granted scope {json.dumps(storage.tokens.scope)}", file=sys.stderr)
    return {"tools": tools, "sub_seen": sub_seen}


def main(argv: list[str]) -> int:
    if len(argv) not in (4, 5):
        print("usage: python py_cc_client.py URL CLIENT_ID CLIENT_SECRET [SCOPE]", file=sys.stderr)
        return 2
    url, client_id, client_secret = argv[1:4]
    scope = argv[4] if len(argv) == 5 and argv[4] else None
    setup_logging()

    async def bounded() -> dict[str, Any] | None:
        with anyio.move_on_after(DEADLINE_S):
            return await run(url, client_id, client_secret, scope)
        return None

    try:
        out = anyio.run(bounded)
    except BaseException as exc:  # noqa: BLE001 - report any failure as one line
        if isinstance(exc, SystemExit):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"error: {describe(exc)}", file=sys.stderr)
        return 1
    if out is None:
        print(f"error: deadline of {DEADLINE_S:g} s exceeded", file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
