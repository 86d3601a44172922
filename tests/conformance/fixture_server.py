"""mcp-edge conformance fixture: the upstream the official MCP conformance suite is run against.

A dual-era MCP server built on the official Python SDK (`mcp` 2.3.0, `MCPServer`),
served over Streamable HTTP at `/mcp`:

  * legacy era (2025-11-25 and earlier): `initialize` + `Mcp-Session-Id` sessions,
    server-to-client requests (sampling, elicitation) on the POST's SSE stream;
  * modern era (2026-07-28): stateless, every request carries its own `_meta`
    (protocolVersion, clientCapabilities, ...), multi round-trip requests (MRTR)
    answered with `resultType: "input_required"`, `server/discover`, and
    `subscriptions/listen` streams for list-changed notifications.

The SDK routes each request by its `MCP-Protocol-Version` header, so both eras
share one endpoint. The tool, prompt and resource names, argument names and
texts are exactly what `@modelcontextprotocol/conformance@0.2.0-alpha.12`
expects; it covers every scored server scenario of

  --requirements 2025-11-25: server-initialize, ping, logging-set-level,
      completion-complete, tools-list, tools-call-* (simple-text, image, audio,
      embedded-resource, mixed-content, with-logging, error, with-progress,
      sampling, elicitation), elicitation-sep1034-defaults,
      elicitation-sep1330-enums, server-sse-multiple-streams, resources-list,
      resources-read-text, resources-read-binary, resources-templates-read,
      resources-subscribe, resources-unsubscribe, prompts-*,
      dns-rebinding-protection
  --requirements 2026-07-28: the same content scenarios, plus server-stateless
      (diagnostic tools test_missing_capability, test_streaming_elicitation,
      test_logging_tool, test_trigger_tool_change, test_trigger_prompt_change),
      caching, sep-2164-resource-not-found and the 14 input-required-result-*
      scenarios (test_input_required_result_* tools and prompt).

It also passes the suite's unscored server scenarios that a gateway should
keep working: json-schema-2020-12 (json_schema_2020_12_tool),
http-custom-header-server-validation (test_x_mcp_header, `Mcp-Param-Region`),
http-header-validation, server-session-lifecycle and server-sse-polling
(test_reconnection + an event store). Not implemented: the tasks-* extension
scenarios (SEP-2663; the SDK has no server-side tasks support).

Usage:
  python fixture_server.py --port 3001 [--host 127.0.0.1] [--allowed-host NAME[:PORT]]
  -> http://127.0.0.1:3001/mcp

All logging goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import json
import logging
import sys
import warnings
from collections import deque
from typing import Annotated

import uvicorn
from pydantic import BaseModel, Field

from mcp.server import ServerRequestContext
from mcp.server.caching import CacheHint
from mcp.server.mcpserver import Context, MCPServer, RequestStateSecurity
from mcp.server.mcpserver.prompts.base import Prompt, UserMessage
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp.types import (
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    AudioContent,
    CallToolResult,
    Completion,
    CompletionArgument,
    CompletionContext,
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    EmbeddedResource,
    EmptyResult,
    ImageContent,
    InputRequest,
    InputRequiredResult,
    JSONRPCMessage,
    ListRootsRequest,
    ListRootsResult,
    PromptReference,
    ResourceTemplateReference,
    SamplingMessage,
    SetLevelRequestParams,
    SubscribeRequestParams,
    TextContent,
    TextResourceContents,
    UnsubscribeRequestParams,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

logger = logging.getLogger("conformance-fixture")


class MemoryEventStore(EventStore):
    """Bounded in-memory SSE event log, for legacy stream resumption (SEP-1699).

    With an event store the SDK sends a priming event (id + empty data) and a
    `retry:` field on every legacy POST SSE stream, and replays the events after
    `Last-Event-ID` when a client reconnects with GET (server-sse-polling).
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._events: deque[tuple[str, int, JSONRPCMessage | None]] = deque(maxlen=limit)
        self._next_id = 0

    async def store_event(self, stream_id: str, message: JSONRPCMessage | None) -> str:
        self._next_id += 1
        self._events.append((stream_id, self._next_id, message))
        return str(self._next_id)

    async def replay_events_after(self, last_event_id: str, send_callback: EventCallback) -> str | None:
        if not last_event_id.isdigit():
            return None
        after = int(last_event_id)
        stream = next((sid for sid, eid, _ in self._events if eid == after), None)
        if stream is None:
            return None
        for sid, eid, message in list(self._events):
            # None is a priming event: it only marks a position, nothing to replay.
            if sid == stream and eid > after and message is not None:
                await send_callback(EventMessage(message, str(eid)))
        return stream


# 1x1 PNG and a minimal (empty) WAV: the suite only checks type, mimeType and
# that data is present.
PNG_1X1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
WAV_EMPTY = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="

# requestState is sealed by the SDK's request-state boundary (AES-256-GCM,
# audience = server name, 10 min TTL, bound to the method, the tool/prompt/URI
# and a digest of the arguments), so the MRTR handlers read plaintext while a
# client that alters the echoed blob gets a JSON-RPC error
# (input-required-result-tampered-state). A fixed key (>= 32 bytes) keeps the
# state valid across restarts and across replicas behind a gateway.
REQUEST_STATE_KEY = b"mcp-edge-conformance-fixture-request-state-key-v1"

mcp = MCPServer(
    name="mcp-edge-conformance-fixture",
    version="1.0.0",
    request_state_security=RequestStateSecurity(keys=[REQUEST_STATE_KEY]),
    # caching (2026-07-28) requires ttlMs + cacheScope on these results. The
    # lists are the same for every caller, hence "public"; short TTLs because
    # test_trigger_*_change mutates the lists.
    cache_hints={
        "tools/list": CacheHint(ttl_ms=5_000, scope="public"),
        "prompts/list": CacheHint(ttl_ms=5_000, scope="public"),
        "resources/list": CacheHint(ttl_ms=5_000, scope="public"),
        "resources/templates/list": CacheHint(ttl_ms=5_000, scope="public"),
        "resources/read": CacheHint(ttl_ms=5_000, scope="public"),
    },
)


def is_modern(ctx: Context) -> bool:
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


# ---------------------------------------------------------------- content tools


@mcp.tool(description="Tests simple text content response")
def test_simple_text() -> str:
    return "This is a simple text response for testing."


@mcp.tool(description="Tests image content response")
def test_image_content() -> list[ImageContent]:
    return [ImageContent(type="image", data=PNG_1X1, mime_type="image/png")]


@mcp.tool(description="Tests audio content response")
def test_audio_content() -> list[AudioContent]:
    return [AudioContent(type="audio", data=WAV_EMPTY, mime_type="audio/wav")]


@mcp.tool(description="Tests embedded resource content response")
def test_embedded_resource() -> list[EmbeddedResource]:
    return [
        EmbeddedResource(
            type="resource",
            resource=TextResourceContents(
                uri="test://embedded-resource", mime_type="text/plain", text="This is an embedded resource content."
            ),
        )
    ]


@mcp.tool(description="Tests response with multiple content types (text, image, resource)")
def test_multiple_content_types() -> list[TextContent | ImageContent | EmbeddedResource]:
    return [
        TextContent(type="text", text="Multiple content types test:"),
        ImageContent(type="image", data=PNG_1X1, mime_type="image/png"),
        EmbeddedResource(
            type="resource",
            resource=TextResourceContents(
                uri="test://mixed-content-resource", mime_type="application/json", text='{"test": "data", "value": 123}'
            ),
        ),
    ]


@mcp.tool(description="Tests error response handling")
def test_error_handling() -> CallToolResult:
    # A tool-level error (isError: true, exact text), not a JSON-RPC error:
    # raising would make the SDK prefix the text ("Error executing tool ...").
    return CallToolResult(
        content=[TextContent(type="text", text="This tool intentionally returns an error for testing")], is_error=True
    )


@mcp.tool(description="Tests tool that reports progress notifications (0, 50, 100 of 100)")
async def test_tool_with_progress(ctx: Context) -> str:
    # report_progress is a no-op when the request carried no progressToken.
    await ctx.report_progress(progress=0, total=100, message="Completed step 0 of 100")
    await asyncio.sleep(0.05)
    await ctx.report_progress(progress=50, total=100, message="Completed step 50 of 100")
    await asyncio.sleep(0.05)
    await ctx.report_progress(progress=100, total=100, message="Completed step 100 of 100")
    return "Progress test completed"


@mcp.tool(description="Tests tool that emits log messages during execution")
async def test_tool_with_logging(ctx: Context) -> str:
    # Legacy only in the suite (tools-call-with-logging). ctx.info is deprecated
    # at 2026-07-28 (SEP-2577), hence the filterwarnings in main().
    for text in ("Tool execution started", "Tool processing data", "Tool execution completed"):
        await ctx.info(text)
        await asyncio.sleep(0.05)
    return "Tool with logging executed successfully"


@mcp.tool(description="Closes its own SSE stream mid-call; the client resumes with Last-Event-ID (legacy)")
async def test_reconnection(ctx: Context) -> str:
    # server-sse-polling (pending in the suite): the log sent after the close
    # reaches the client only through the event-store replay on its GET.
    await ctx.info("Before disconnect")
    await ctx.close_sse_stream()
    await asyncio.sleep(0.2)
    await ctx.info("After reconnect")
    return "Reconnection test completed"


# ------------------------------------------- legacy server-to-client requests


@mcp.tool(description="Tests server-initiated sampling (legacy sampling/createMessage)")
async def test_sampling(prompt: str, ctx: Context) -> str:
    try:
        # related_request_id puts the request on this POST's SSE stream; without
        # it the request would go to the standalone GET stream, which the
        # suite's client may not have opened.
        result = await ctx.session.create_message(
            messages=[SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
            max_tokens=100,
            related_request_id=ctx.request_id,
        )
    except Exception as e:  # noqa: BLE001 - reported to the caller as text
        return f"Sampling not supported or error: {e}"
    text = result.content.text if result.content.type == "text" else "No response"
    return f"LLM response: {text}"


class UserResponse(BaseModel):
    response: str = Field(description="User's response")


class Sep1034Defaults(BaseModel):
    """Every primitive type with a default (SEP-1034)."""

    name: str = Field(default="John Doe", description="User name")
    age: int = Field(default=30, description="User age")
    score: float = Field(default=95.5, description="User score")
    status: str = Field(
        default="active", description="User status", json_schema_extra={"enum": ["active", "inactive", "pending"]}
    )
    verified: bool = Field(default=True, description="Verification status")


class Sep1330Enums(BaseModel):
    """The enum schema variants of SEP-1330."""

    untitledSingle: str = Field(
        description="Simple enum without titles", json_schema_extra={"enum": ["active", "inactive", "pending"]}
    )
    titledSingle: str = Field(
        description="Enum with titled options (oneOf)",
        json_schema_extra={
            "oneOf": [
                {"const": "low", "title": "Low Priority"},
                {"const": "medium", "title": "Medium Priority"},
                {"const": "high", "title": "High Priority"},
            ]
        },
    )
    untitledMulti: list[str] = Field(
        description="Multi-select without titles",
        json_schema_extra={"items": {"type": "string", "enum": ["read", "write", "execute"]}},
    )
    titledMulti: list[str] = Field(
        description="Multi-select with titled options",
        json_schema_extra={
            "items": {
                "anyOf": [
                    {"const": "feature", "title": "New Feature"},
                    {"const": "bug", "title": "Bug Fix"},
                    {"const": "docs", "title": "Documentation"},
                ]
            }
        },
    )
    legacyEnum: str = Field(
        description="Legacy enum with enumNames",
        json_schema_extra={"enum": ["small", "medium", "large"], "enumNames": ["Small Size", "Medium Size", "Large Size"]},
    )


async def _elicit_text(ctx: Context, message: str, schema: type[BaseModel], label: str) -> str:
    try:
        result = await ctx.elicit(message=message, schema=schema)
    except Exception as e:  # noqa: BLE001
        return f"Elicitation not supported or error: {e}"
    content = result.data.model_dump_json() if result.action == "accept" else "{}"
    return f"{label}: action={result.action}, content={content}"


@mcp.tool(description="Tests server-initiated elicitation (legacy elicitation/create)")
async def test_elicitation(message: str, ctx: Context) -> str:
    return await _elicit_text(ctx, message, UserResponse, "User response")


@mcp.tool(description="Tests elicitation with default values for all primitive types (SEP-1034)")
async def test_elicitation_sep1034_defaults(ctx: Context) -> str:
    return await _elicit_text(ctx, "Please provide user information", Sep1034Defaults, "Elicitation result")


@mcp.tool(description="Tests elicitation with enum schema variations (SEP-1330)")
async def test_elicitation_sep1330_enums(ctx: Context) -> str:
    return await _elicit_text(
        ctx, "Please select values using different enum schema types", Sep1330Enums, "Elicitation completed"
    )


# ------------------------------------------- server-stateless diagnostic tools


@mcp.tool(description="Requires the client 'sampling' capability; -32021 when it is not declared")
async def test_missing_capability(ctx: Context) -> str:
    caps = ctx.client_capabilities
    if caps is None or caps.sampling is None:
        # An MCPError is re-raised by tool dispatch as a JSON-RPC error (not an
        # isError result); the modern transport maps -32021 to HTTP 400.
        raise MCPError(
            code=MISSING_REQUIRED_CLIENT_CAPABILITY,
            message="This tool requires the client 'sampling' capability",
            data={"requiredCapabilities": {"sampling": {}}},
        )
    return "Client declared sampling capability; proceeding."


CONFIRM_SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


@mcp.tool(description="Needs user input: input_required (modern) or elicitation/create on the stream (legacy)")
async def test_streaming_elicitation(ctx: Context) -> str | InputRequiredResult:
    # server-stateless checks that a modern response stream carries only
    # notifications and the final result, never a server-to-client request:
    # at 2026-07-28 input is asked for with an InputRequiredResult instead.
    if not is_modern(ctx):
        return await _elicit_text(ctx, "Please confirm", UserResponse, "User response")
    answer = (ctx.input_responses or {}).get("confirm")
    if isinstance(answer, ElicitResult):
        return f"Confirmation received: action={answer.action}"
    await ctx.report_progress(progress=0, total=1, message="waiting for confirmation")
    return InputRequiredResult(
        input_requests={
            "confirm": ElicitRequest(params=ElicitRequestFormParams(message="Please confirm", requested_schema=CONFIRM_SCHEMA))
        }
    )


@mcp.tool(description="Logs three messages; at 2026-07-28 they are sent only if _meta carries a logLevel")
async def test_logging_tool(ctx: Context) -> str:
    # The SDK drops notifications/message for a modern request without
    # io.modelcontextprotocol/logLevel (server-stateless checks exactly that).
    await ctx.info("logging tool: started")
    await ctx.warning("logging tool: halfway")
    await ctx.info("logging tool: done")
    return "Logged three messages"


def _dynamic_tool() -> str:
    """Registered and removed again by test_trigger_tool_change."""
    return "dynamic"


def _dynamic_prompt() -> str:
    """Registered and removed again by test_trigger_prompt_change."""
    return "dynamic"


@mcp.tool(description="Changes the tool list and sends notifications/tools/list_changed to listen streams")
async def test_trigger_tool_change(ctx: Context) -> str:
    # Add-then-remove leaves the advertised list unchanged (keeps other
    # scenarios and caches stable) while still being a real mutation.
    mcp.add_tool(_dynamic_tool, name="test_dynamic_tool")
    mcp.remove_tool("test_dynamic_tool")
    await ctx.notify_tools_changed()
    return "tool list changed"


@mcp.tool(description="Changes the prompt list and sends notifications/prompts/list_changed to listen streams")
async def test_trigger_prompt_change(ctx: Context) -> str:
    mcp.add_prompt(Prompt.from_function(_dynamic_prompt, name="test_dynamic_prompt", description="dynamic"))
    mcp.remove_prompt("test_dynamic_prompt")
    await ctx.notify_prompts_changed()
    return "prompt list changed"


# ---------------------------------- schema / header fixtures (pending in the suite)

# json-schema-2020-12 (pending, not scored): every 2020-12 keyword the scenario
# looks for must survive tools/list untouched ($schema, $defs + $anchor,
# allOf/anyOf, if/then/else, additionalProperties). Useful to prove a gateway
# forwards inputSchema verbatim.
JSON_SCHEMA_2020_12 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}


@mcp.tool(name="json_schema_2020_12_tool", description="Tool with JSON Schema 2020-12 features")
def json_schema_2020_12_tool() -> str:
    return "json_schema_2020_12_tool"


# MCPServer derives inputSchema from the signature and has no override
# parameter, so install the hand-written schema on the registered tool.
mcp._tool_manager.get_tool("json_schema_2020_12_tool").parameters = JSON_SCHEMA_2020_12  # noqa: SLF001


@mcp.tool(description="Echoes `region`, which clients mirror into the Mcp-Param-Region header (SEP-2243)")
def test_x_mcp_header(
    region: Annotated[str, Field(description="Sent as Mcp-Param-Region too", json_schema_extra={"x-mcp-header": "Region"})],
) -> str:
    # The SDK's modern transport checks the Mcp-Param-Region header against
    # arguments.region (Base64 "=?base64?...?=" decoding, missing header,
    # mismatch -> 400 + -32020) before this runs
    # (http-custom-header-server-validation, pending in the suite).
    return f"region={region}"


# ------------------------------------------------------- MRTR (SEP-2322) tools

NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
COLOR_SCHEMA = {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}


def ask(message: str, schema: dict = NAME_SCHEMA) -> ElicitRequest:
    return ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=schema))


def sample(text: str, max_tokens: int) -> CreateMessageRequest:
    return CreateMessageRequest(
        params=CreateMessageRequestParams(
            messages=[SamplingMessage(role="user", content=TextContent(type="text", text=text))], max_tokens=max_tokens
        )
    )


def elicited(answer: object, key: str) -> str | None:
    """The string `key` of an accepted elicitation answer, else None."""
    if isinstance(answer, ElicitResult) and answer.action == "accept" and answer.content:
        value = answer.content.get(key)
        return value if isinstance(value, str) else None
    return None


@mcp.tool(description="MRTR: asks for the user's name (elicitation), then greets")
async def test_input_required_result_elicitation(ctx: Context) -> str | InputRequiredResult:
    # The SDK validates inputResponses before the handler runs: a non-object
    # answer (validate-input) is a JSON-RPC error. A missing key
    # (missing-input-response) just re-asks; extra keys are ignored.
    name = elicited((ctx.input_responses or {}).get("user_name"), "name")
    if name is not None:
        return f"Hello, {name}!"
    return InputRequiredResult(input_requests={"user_name": ask("What is your name?")})


@mcp.tool(description="MRTR: asks the client to sample an answer, then returns it")
async def test_input_required_result_sampling(ctx: Context) -> str | InputRequiredResult:
    answer = (ctx.input_responses or {}).get("capital_question")
    if isinstance(answer, CreateMessageResult):
        text = answer.content.text if answer.content.type == "text" else "?"
        return f"Model said: {text}"
    return InputRequiredResult(input_requests={"capital_question": sample("What is the capital of France?", 100)})


@mcp.tool(description="MRTR: asks for the client's roots, then reports them")
async def test_input_required_result_list_roots(ctx: Context) -> str | InputRequiredResult:
    answer = (ctx.input_responses or {}).get("client_roots")
    if isinstance(answer, ListRootsResult):
        uris = ", ".join(str(root.uri) for root in answer.roots) or "none"
        return f"Client exposed {len(answer.roots)} root(s): {uris}"
    return InputRequiredResult(input_requests={"client_roots": ListRootsRequest()})


@mcp.tool(description="MRTR: round-trips a requestState alongside a confirmation")
async def test_input_required_result_request_state(ctx: Context) -> str | InputRequiredResult:
    if "confirm" in (ctx.input_responses or {}) and ctx.request_state == "awaiting-confirmation":
        return "state-ok: confirmation received"
    return InputRequiredResult(
        input_requests={"confirm": ask("Please confirm", CONFIRM_SCHEMA)}, request_state="awaiting-confirmation"
    )


@mcp.tool(description="MRTR: elicitation + sampling + roots in one round")
async def test_input_required_result_multiple_inputs(ctx: Context) -> str | InputRequiredResult:
    responses = ctx.input_responses or {}
    if {"user_name", "greeting", "client_roots"} <= responses.keys() and ctx.request_state == "multiple-inputs":
        name = elicited(responses["user_name"], "name") or "stranger"
        return f"All inputs received for {name}."
    return InputRequiredResult(
        input_requests={
            "user_name": ask("What is your name?"),
            "greeting": sample("Generate a greeting", 50),
            "client_roots": ListRootsRequest(),
        },
        request_state="multiple-inputs",
    )


@mcp.tool(description="MRTR: two rounds of elicitation, the requestState carrying the first answer")
async def test_input_required_result_multi_round(ctx: Context) -> str | InputRequiredResult:
    state = json.loads(ctx.request_state) if ctx.request_state else {"round": 0}
    responses = ctx.input_responses or {}
    if state.get("round") == 1 and (name := elicited(responses.get("step1"), "name")) is not None:
        return InputRequiredResult(
            input_requests={"step2": ask("Step 2: What is your favorite color?", COLOR_SCHEMA)},
            request_state=json.dumps({"round": 2, "name": name}),
        )
    if state.get("round") == 2 and (color := elicited(responses.get("step2"), "color")) is not None:
        return f"{state.get('name')} likes {color}."
    # First call, or an answer missing / out of order: (re)start at step 1.
    return InputRequiredResult(
        input_requests={"step1": ask("Step 1: What is your name?")}, request_state=json.dumps({"round": 1})
    )


@mcp.tool(description="MRTR: a tampered requestState must be rejected (the SDK boundary does it)")
async def test_input_required_result_tampered_state(ctx: Context) -> str | InputRequiredResult:
    if ctx.request_state is None:
        return InputRequiredResult(
            input_requests={"confirm": ask("Please confirm", CONFIRM_SCHEMA)}, request_state="round-1"
        )
    # Only reached when the sealed state verified.
    return f"state-ok: {ctx.request_state}"


@mcp.tool(description="MRTR: only asks for inputs whose capability the client declared")
async def test_input_required_result_capabilities(ctx: Context) -> str | InputRequiredResult:
    caps = ctx.client_capabilities
    requests: dict[str, InputRequest] = {}
    if caps is not None and caps.sampling is not None:
        requests["sample"] = sample("Say hello", 50)
    if caps is not None and caps.elicitation is not None:
        requests["ask"] = ask("What is your name?")
    if caps is not None and caps.roots is not None:
        requests["roots"] = ListRootsRequest()
    if not requests or set(requests) <= (ctx.input_responses or {}).keys():
        return "No further input needed."
    return InputRequiredResult(input_requests=requests, request_state="capability-gated")


# -------------------------------------------------------------------- resources


@mcp.resource("test://static-text", name="static-text", description="A static text resource", mime_type="text/plain")
def static_text() -> str:
    return "This is the content of the static text resource."


@mcp.resource(
    "test://static-binary", name="static-binary", description="A static binary resource (PNG)", mime_type="image/png"
)
def static_binary() -> bytes:
    return base64.b64decode(PNG_1X1)


@mcp.resource(
    "test://template/{id}/data",
    name="template-data",
    description="A resource template with parameter substitution",
    mime_type="application/json",
)
def template_data(id: str) -> str:
    return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})


@mcp.resource(
    "test://watched-resource", name="watched-resource", description="Subscribable (legacy)", mime_type="text/plain"
)
def watched_resource() -> str:
    return "Watched resource content"


# ---------------------------------------------------------------------- prompts


@mcp.prompt(description="A simple prompt without arguments")
def test_simple_prompt() -> list[UserMessage]:
    return [UserMessage(content=TextContent(type="text", text="This is a simple prompt for testing."))]


@mcp.prompt(description="A prompt with required arguments")
def test_prompt_with_arguments(arg1: str, arg2: str) -> list[UserMessage]:
    return [UserMessage(content=TextContent(type="text", text=f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"))]


@mcp.prompt(description="A prompt that includes an embedded resource")
def test_prompt_with_embedded_resource(resourceUri: str) -> list[UserMessage]:  # noqa: N803 - wire name
    return [
        UserMessage(
            content=EmbeddedResource(
                type="resource",
                resource=TextResourceContents(
                    uri=resourceUri, mime_type="text/plain", text="Embedded resource content for testing."
                ),
            )
        ),
        UserMessage(content=TextContent(type="text", text="Please process the embedded resource above.")),
    ]


@mcp.prompt(description="A prompt that includes image content")
def test_prompt_with_image() -> list[UserMessage]:
    return [
        UserMessage(content=ImageContent(type="image", data=PNG_1X1, mime_type="image/png")),
        UserMessage(content=TextContent(type="text", text="Please analyze the image above.")),
    ]


@mcp.prompt(description="MRTR on prompts/get: asks for context first")
async def test_input_required_result_prompt(ctx: Context) -> list[UserMessage] | InputRequiredResult:
    context = elicited((ctx.input_responses or {}).get("user_context"), "context")
    if context is not None:
        return [UserMessage(content=TextContent(type="text", text=f"Use the following context: {context}"))]
    return InputRequiredResult(
        input_requests={
            "user_context": ask(
                "What context should the prompt use?",
                {"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]},
            )
        }
    )


@mcp.completion()
async def complete(
    ref: PromptReference | ResourceTemplateReference, argument: CompletionArgument, context: CompletionContext | None
) -> Completion:
    # completion-complete only needs a well-formed result (and the capability,
    # which registering this handler declares).
    if isinstance(ref, PromptReference) and ref.name == "test_prompt_with_arguments":
        values = [v for v in ("test", "testing", "tested") if v.startswith(argument.value)]
        return Completion(values=values, total=len(values), has_more=False)
    return Completion(values=[], total=0, has_more=False)


# ----------------------------------------- legacy-only methods (2025-11-25)
# logging/setLevel and resources/(un)subscribe were removed at 2026-07-28; the
# SDK answers them there with 404 + -32601 (server-stateless checks it). MCPServer
# has no public decorator for them, so they go on the low-level server.
SUBSCRIPTIONS: set[str] = set()


async def set_level(ctx: ServerRequestContext, params: SetLevelRequestParams) -> EmptyResult:
    logger.info("log level set to %s", params.level)
    return EmptyResult()


async def subscribe(ctx: ServerRequestContext, params: SubscribeRequestParams) -> EmptyResult:
    SUBSCRIPTIONS.add(str(params.uri))
    return EmptyResult()


async def unsubscribe(ctx: ServerRequestContext, params: UnsubscribeRequestParams) -> EmptyResult:
    SUBSCRIPTIONS.discard(str(params.uri))
    return EmptyResult()


_low = mcp._lowlevel_server  # noqa: SLF001 - no public API for these yet
_low.add_request_handler("logging/setLevel", SetLevelRequestParams, set_level)
_low.add_request_handler("resources/subscribe", SubscribeRequestParams, subscribe)
_low.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, unsubscribe)


# ------------------------------------------------------------------------ main


def transport_security(extra_hosts: list[str]) -> TransportSecuritySettings:
    """DNS-rebinding protection (dns-rebinding-protection): only loopback Host/Origin.

    Host `evil.example.com` / Origin `http://evil.example.com` get a 4xx (421 / 403
    from the SDK); `localhost`, `127.0.0.1`, `[::1]` with any port are served.
    A request without an Origin header (any non-browser client) passes the
    Origin check. `--allowed-host` adds names a gateway may send as Host.
    """
    hosts = ["127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*"]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    for host in extra_hosts:
        hosts += [host] if ":" in host else [host, f"{host}:*"]
        origins += [f"http://{host}", f"https://{host}"] if ":" in host else [f"http://{host}:*", f"https://{host}:*"]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def main() -> None:
    parser = argparse.ArgumentParser(description="mcp-edge conformance fixture upstream (dual-era MCP server)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--allowed-host", action="append", default=[], help="extra Host value to accept (repeatable)")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args()

    # Sampling, elicitation and logging helpers are deprecated at 2026-07-28;
    # this fixture uses them on purpose for the legacy scenarios.
    warnings.filterwarnings("ignore", message=r".*deprecated as of 2026-07-28.*")
    logging.basicConfig(stream=sys.stderr)
    logging.getLogger().setLevel(args.log_level.upper())

    app = mcp.streamable_http_app(
        streamable_http_path="/mcp",
        transport_security=transport_security(args.allowed_host),
        host=args.host,
        event_store=MemoryEventStore(),
        # SSE `retry:` hint (ms) for clients reconnecting a closed stream.
        retry_interval=100,
    )
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, log_config=log_config)


if __name__ == "__main__":
    main()
