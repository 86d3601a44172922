"""End-to-end: a modern (2026-07-28) client cancels a call by closing its
response stream, and the gateway tells the legacy upstream it bridged the
call to (`notifications/cancelled`, for the id the call went upstream under).

The notes upstream counts the slow_count calls whose task was cancelled
(`cancelled_counts`); the check opens a slow call, reads its first progress
event, closes the connection, and waits for the count to grow. Raw HTTP, so
the closing is exactly that: the socket goes away mid-stream.
"""
from __future__ import annotations

import http.client
import json
import time
import urllib.parse

MODERN = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "e2e-cancel", "version": "1"},
}


def _request(url: str, api_key: str, id_: int, method: str, params: dict) -> tuple[http.client.HTTPConnection,
                                                                                   http.client.HTTPResponse]:
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    body = json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": {**params, "_meta": {
        **META, **params.get("_meta", {})}}})
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "X-API-Key": api_key, "MCP-Protocol-Version": MODERN, "Mcp-Method": method}
    if "name" in params:
        headers["Mcp-Name"] = params["name"]
    conn.request("POST", u.path, body=body, headers=headers)
    return conn, conn.getresponse()


def _count(url: str, api_key: str) -> int | None:
    conn, r = _request(url, api_key, 1, "tools/call", {"name": "cancelled_counts", "arguments": {}})
    try:
        body = r.read().decode()
        if r.getheader("content-type", "").startswith("text/event-stream"):
            body = [line[5:] for line in body.splitlines() if line.startswith("data:")][-1]
        return int(json.loads(body)["result"]["content"][0]["text"])
    except (ValueError, KeyError, IndexError):
        return None
    finally:
        conn.close()


def closing_the_stream_cancels(check, base: str, api_key: str) -> None:
    url = f"{base}/servers/notes/mcp"
    before = _count(url, api_key)
    if not check(before is not None, "cancel: the notes upstream counts cancelled calls"):
        return
    conn, r = _request(url, api_key, 7, "tools/call", {
        "name": "slow_count", "arguments": {"steps": 40, "interval_ms": 250}, "_meta": {"progressToken": "c1"}})
    first = b""
    deadline = time.monotonic() + 20
    while b"notifications/progress" not in first and time.monotonic() < deadline:
        line = r.fp.readline()
        if not line:
            break
        first += line
    streamed = r.getheader("content-type", "").startswith("text/event-stream")
    check(streamed and b"notifications/progress" in first, "cancel: the slow call streams its progress",
          first[:300])
    conn.sock.close()  # the client goes away mid-stream
    conn.close()
    after = before
    deadline = time.monotonic() + 15
    while after == before and time.monotonic() < deadline:
        time.sleep(0.5)
        after = _count(url, api_key)
    check(after == before + 1, "cancel: closing a modern response stream cancels the call on the legacy upstream",
          f"cancelled before {before}, after {after}")
