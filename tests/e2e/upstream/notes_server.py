"""notes: a small upstream MCP server for mcp-edge's end-to-end tests.

Built on the official Python MCP SDK (`mcp` 2.x, `MCPServer`) and served over
Streamable HTTP with sessions, so legacy-era clients (protocol revisions
2025-03-26, 2025-06-18, 2025-11-25, e.g. the TypeScript SDK 1.x) can connect
with `initialize` + `Mcp-Session-Id`. The same endpoint also answers the
stateless 2026-07-28 revision, because the SDK routes by `MCP-Protocol-Version`.

Offers:
  tools      echo(text) -> text, add(a, b) -> "a+b", slow_count(steps, interval_ms)
             (streams notifications/progress, then "counted to {steps}"; counts
             its cancellations, read with cancelled_counts()),
             whoami() -> the subject of the credential the gateway minted for this
             call, after checking it like a real upstream would: signature against
             the gateway's JWKS (--gateway-jwks), `aud` (--audience), `exp`, `iss`,
             purge(tag) (annotated destructiveHint: true; counts its runs per tag),
             purged(tag) -> how many times purge(tag) ran,
             archive(tag) / archived(tag) (the same, not destructive),
             whois() -> the minted credential's `sub_id` (JSON), checked like whoami,
             and, for the security checks, tools that leak personal data:
             log_email (a log notification and a progress message carrying an
             email address), fail_with_email (a JSON-RPC error whose message and
             data carry one), huge(bytes) (one log notification of that size)
  prompt     greeting(name), contact() (an email address in its text and in an
             embedded resource)
  resource   notes://readme (text/plain)

Usage:
  python notes_server.py --host 127.0.0.1 --port 3002     # serves http://127.0.0.1:3002/mcp
         [--gateway-jwks URL --audience notes]

Every request's bearer token is also logged as `auth-seen iss=... sub=...` (its
claims decoded without verification), so a test can prove which tokens reached
this upstream: the gateway's own, never its callers'. Every `traceparent`
header is logged as `trace-seen traceparent=...` (the trace a request joined).

All logging (SDK and uvicorn, including access logs) goes to stderr; stdout
stays empty.
"""

import argparse
import copy
import logging
import sys

import json

import anyio
import jwt
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.types import EmbeddedResource, TextResourceContents, ToolAnnotations

SERVER_NAME = "notes"

README_TEXT = (
    "notes is a test upstream for mcp-edge.\n"
    "Tools: echo, add, slow_count. Prompt: greeting. Resource: notes://readme.\n"
)

mcp = MCPServer(
    SERVER_NAME,
    version="0.1.0",
    instructions="Test upstream for the mcp-edge gateway end-to-end suite.",
)


# structured_output=False everywhere: the results are plain text content only
# (no outputSchema / structuredContent), which keeps the expected wire shape
# simple for gateway tests that compare the first text block.
@mcp.tool(description="Return `text` unchanged.", structured_output=False)
def echo(text: str) -> str:
    return text


@mcp.tool(description="Add two integers and return the sum as text.", structured_output=False)
def add(a: int, b: int) -> str:
    return str(a + b)


@mcp.tool(
    description=(
        "Count to `steps`, sleeping `interval_ms` before each step and sending a "
        "progress notification after it (when the caller passed a progressToken)."
    ),
    structured_output=False,
)
async def slow_count(ctx: Context, steps: int = 4, interval_ms: int = 400) -> str:
    try:
        for i in range(1, steps + 1):
            await anyio.sleep(interval_ms / 1000)
            # No-op when the request carried no progressToken.
            await ctx.report_progress(i, total=steps, message=f"step {i}/{steps}")
    except anyio.get_cancelled_exc_class():
        # notifications/cancelled for this request (the SDK cancels its task).
        CANCELLED["slow_count"] = CANCELLED.get("slow_count", 0) + 1
        print(f"slow_count-cancelled count={CANCELLED['slow_count']}", file=sys.stderr, flush=True)
        raise
    return f"counted to {steps}"


CANCELLED: dict[str, int] = {}


@mcp.tool(description="How many slow_count calls were cancelled.", structured_output=False)
def cancelled_counts() -> str:
    return str(CANCELLED.get("slow_count", 0))


# Set from the command line: where the gateway publishes its signing keys, and
# the `aud` the gateway mints tokens for this server with.
VERIFY = {"jwks": None, "audience": None}


def verified_claims(ctx: Context) -> dict:
    """The minted credential's claims, checked like a real upstream would."""
    if not VERIFY["jwks"]:
        raise ValueError("whoami needs --gateway-jwks")
    header = ctx.request_context.request.headers.get("authorization", "")
    token = header.removeprefix("Bearer ").strip()
    if not token:
        raise ValueError("no credential reached this upstream")
    key = jwt.PyJWKClient(VERIFY["jwks"]).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["ES256", "EdDSA"],
        audience=VERIFY["audience"],
        options={"require": ["exp", "iat", "sub", "iss", "jti"]},
    )
    if claims["exp"] - claims["iat"] > 300:
        raise ValueError("minted credential lives longer than 5 minutes")
    return claims


@mcp.tool(description="The caller the gateway vouches for (checks the minted credential).", structured_output=False)
def whoami(ctx: Context) -> str:
    return verified_claims(ctx)["sub"]


@mcp.tool(description="Where the caller's identity comes from (the minted credential's sub_id).", structured_output=False)
def whois(ctx: Context) -> str:
    return json.dumps(verified_claims(ctx).get("sub_id"), sort_keys=True)


# How many times purge ran, per tag: the proof that a call reached (or never
# reached) this upstream.
PURGES: dict[str, int] = {}


@mcp.tool(
    description="Delete everything tagged `tag` (destructive; counted for the tests).",
    structured_output=False,
    annotations=ToolAnnotations(destructiveHint=True),
)
def purge(tag: str) -> str:
    PURGES[tag] = PURGES.get(tag, 0) + 1
    print(f"purge-ran tag={tag} count={PURGES[tag]}", file=sys.stderr, flush=True)
    return f"purged {tag}"


@mcp.tool(description="How many times purge(tag) ran.", structured_output=False)
def purged(tag: str) -> str:
    return str(PURGES.get(tag, 0))


# archive is like purge but not destructive: the policy under test has the
# user confirm it (decided_by: user).
ARCHIVES: dict[str, int] = {}


@mcp.tool(description="Archive everything tagged `tag` (counted for the tests).", structured_output=False)
def archive(tag: str) -> str:
    ARCHIVES[tag] = ARCHIVES.get(tag, 0) + 1
    return f"archived {tag}"


@mcp.tool(description="How many times archive(tag) ran.", structured_output=False)
def archived(tag: str) -> str:
    return str(ARCHIVES.get(tag, 0))


@mcp.tool(description="Logs and reports progress mentioning an email address.", structured_output=False)
async def log_email(ctx: Context) -> str:
    await ctx.info("mailing dana@corp.example")
    await ctx.report_progress(1, total=1, message="sent to erin@corp.example")
    return "logged"


@mcp.tool(description="Fails with a JSON-RPC error naming email addresses.", structured_output=False)
def fail_with_email() -> str:
    raise MCPError(-32603, "cannot mail gina@corp.example", {"owner": "hank@corp.example"})


@mcp.tool(description="Sends one log notification of `bytes` bytes, then answers.", structured_output=False)
async def huge(ctx: Context, bytes: int) -> str:
    await ctx.info("x" * bytes)
    return "sent"


def log_tokens(app):
    """ASGI wrapper: logs the claims of every bearer token that arrives, and
    every `traceparent` (`trace-seen traceparent=...`)."""

    async def wrapped(scope, receive, send):
        if scope["type"] == "http":
            for name, value in scope.get("headers", []):
                if name == b"traceparent":
                    print(f"trace-seen traceparent={value.decode(errors='replace')}", file=sys.stderr, flush=True)
                if name == b"authorization" and value.lower().startswith(b"bearer "):
                    token = value[7:].decode(errors="replace").strip()
                    try:
                        c = jwt.decode(token, options={"verify_signature": False})
                        print(f"auth-seen iss={c.get('iss')} sub={c.get('sub')}", file=sys.stderr, flush=True)
                    except jwt.PyJWTError:
                        print("auth-seen not-a-jwt", file=sys.stderr, flush=True)
        await app(scope, receive, send)

    return wrapped


@mcp.prompt(description="A friendly greeting for `name`.")
def greeting(name: str) -> str:
    return f"Please greet {name} warmly."


@mcp.prompt(description="Who to write to.")
def contact() -> list[UserMessage]:
    return [
        UserMessage("Write to ceo@corp.example today."),
        UserMessage(EmbeddedResource(type="resource", resource=TextResourceContents(
            uri="notes://contacts", mime_type="text/plain", text="cfo@corp.example"))),
    ]


@mcp.resource("notes://readme", name="readme", description="What this server is.", mime_type="text/plain")
def readme() -> str:
    return README_TEXT


def _stderr_log_config() -> dict:
    """uvicorn's default logging config with the access log moved from stdout to stderr."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    return config


async def serve(host: str, port: int, log_level: str) -> None:
    app = mcp.streamable_http_app(
        streamable_http_path="/mcp",
        # With host=127.0.0.1 the SDK would otherwise turn on DNS-rebinding
        # protection and reject (421) any Host header not on its allow-list.
        # The gateway under test forwards from 127.0.0.1 with its own Host
        # (e.g. 127.0.0.1:8787 or a made-up name), so accept any Host/Origin.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        host=host,
    )
    config = uvicorn.Config(
        log_tokens(app), host=host, port=port, log_level=log_level, log_config=_stderr_log_config()
    )
    await uvicorn.Server(config).serve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--gateway-jwks", help="the gateway's /.well-known/jwks.json, for whoami")
    parser.add_argument("--audience", default="notes", help="the aud minted tokens must carry")
    args = parser.parse_args()
    VERIFY["jwks"], VERIFY["audience"] = args.gateway_jwks, args.audience
    # MCPServer() already set up root logging with a stderr StreamHandler;
    # this only applies the requested level (basicConfig is a no-op then, and
    # a safety net to stderr otherwise).
    logging.basicConfig(stream=sys.stderr)
    logging.getLogger().setLevel(args.log_level.upper())
    anyio.run(serve, args.host, args.port, args.log_level)


if __name__ == "__main__":
    main()
