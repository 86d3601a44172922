"""End-to-end: W3C trace context through the gateway (issue 13, its first
part). A client sends a `traceparent` with a 2026-07-28 call and with a
legacy one; the gateway answers with `traceresponse` in the same trace, and
the notes upstream logs the `traceparent` it received: the client's trace
id, under the gateway's span (the one `traceresponse` names). A call
without one is answered in a trace of its own, which notes joins too.
Raw HTTP, so the headers are exactly what was sent.
"""
from __future__ import annotations

import json
import pathlib
import re
import secrets
import time

MODERN = "2026-07-28"


def _trace(traceparent: str) -> tuple[str, str] | None:
    m = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}", traceparent or "")
    return (m.group(1), m.group(2)) if m else None


def _seen(notes_log: pathlib.Path, traceparent: str, wait_s: float = 5.0) -> bool:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if f"trace-seen traceparent={traceparent}" in notes_log.read_text(errors="replace"):
            return True
        time.sleep(0.1)
    return False


def trace_checks(check, http, base: str, api_key: str, notes_log: pathlib.Path) -> None:
    caller_trace, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    sent = f"00-{caller_trace}-{caller_span}-01"
    meta = {"io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "e2e-trace", "version": "1"}}
    params = {"name": "echo", "arguments": {"text": "traced"}, "_meta": meta}
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "X-API-Key": api_key, "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call",
               "Mcp-Name": "echo", "traceparent": sent}
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}).encode()
    status, got, _ = http(f"{base}/servers/notes/mcp", "POST", body, headers)
    back = got.get("traceresponse", "")
    parsed = _trace(back)
    check(status == 200 and parsed is not None and parsed[0] == caller_trace and parsed[1] != caller_span,
          "trace: traceresponse names the caller's trace and the gateway's span", f"{status} {back!r}")
    check(_seen(notes_log, back),
          "trace: the notes upstream received the caller's trace under the gateway's span", back)
    # The same in params._meta (the MCP convention) on a legacy call, which
    # also takes the trace's place over the header.
    in_meta = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e-trace", "version": "1"},
        "_meta": {"traceparent": in_meta}}}
    legacy = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
              "X-API-Key": api_key, "traceparent": sent}
    status, got, _ = http(f"{base}/servers/notes/mcp", "POST", json.dumps(init).encode(), legacy)
    back = got.get("traceresponse", "")
    parsed = _trace(back)
    check(status == 200 and parsed is not None and parsed[0] == in_meta.split("-")[1],
          "trace: params._meta's traceparent comes before the header", f"{status} {back!r}")
    check(_seen(notes_log, back), "trace: notes met in the trace from params._meta", back)
    # No trace sent: the gateway starts one, and notes joins it.
    del headers["traceparent"]
    status, got, _ = http(f"{base}/servers/notes/mcp", "POST", body, headers)
    back = got.get("traceresponse", "")
    parsed = _trace(back)
    check(status == 200 and parsed is not None and parsed[0] != caller_trace,
          "trace: a call without a traceparent gets a trace of its own", f"{status} {back!r}")
    check(_seen(notes_log, back), "trace: notes joined the trace the gateway started", back)
