"""End-to-end scenario runner for mcp-edge, driven by the official Python MCP SDK client.

Usage:
    python py_client.py SCENARIO_JSON_FILE

The scenario file (JSON) describes what to check against one MCP endpoint
(the gateway, or an upstream server directly):

    {
      "name": "aggregate",                        label for output (default: file name)
      "url": "http://127.0.0.1:8787/mcp",         required
      "headers": {"Authorization": "..."},        extra HTTP headers on every request
      "mode": "legacy",                           Client mode: "legacy" (default; initialize
                                                  handshake + sessions), "auto", or "2026-07-28"
      "timeout_s": 60,                            overall scenario timeout (default 60)
      "expect_tools": ["everything__echo"],       must appear in tools/list (all pages)
      "absent_tools": ["echo"],                   must not appear
      "calls": [{"tool": "...", "arguments": {...}, "expect_text": "...",
                 "expect_contains": false}],      first text block equals (or contains) expect_text;
                                                  isError must be falsy
      "progress": {"tool": "...", "arguments": {...},
                   "min_notifications": 3, "min_lead_ms": 600},
      "asks": {"elicit": {...}, "sample": "...", "roots": [{"uri": "...", "name": "..."}]},
                                                  the client declares elicitation, sampling and
                                                  roots and answers an upstream's questions with
                                                  these ("calls" check what came back)
      "subscribe": {"uri": "...", "start": "tool"}, subscribe, call `start` (it makes the server
                                                  send updates), wait for an update of the URI,
                                                  call `start` again, unsubscribe
      "expect_tools_changed": true,               a tools/list_changed arrived
      "settle_ms": 1000,                          wait after connecting (the SDK's GET stream
                                                  opens in the background)
      "approvals": [{"tool": "...", "arguments": {...}, "answer": "decline" | "accept",
                     "expect_text": "...", "then": {a call as in "calls"}}],
                                                  the client declares elicitation and answers the
                                                  gateway's question with `answer`: declined calls
                                                  must be tool errors, accepted ones succeed; each
                                                  step must be asked exactly once. With
                                                  "expect": "pending" (a call approvers decide)
                                                  the client is never asked and the call is a
                                                  tool error naming a pending approval, however
                                                  eagerly the client would accept
      "stateless": true                           (modern modes) no Mcp-Session-Id is ever
                                                  issued or sent
      "delete_session": true                      end the session (SDK sends DELETE), then a raw
                                                  POST with the old Mcp-Session-Id must get 404
    }

`$NONCE` anywhere in the scenario is replaced by a token fresh for this run,
so runs by different clients do not share upstream state.

Output: one `ok: ...` / `FAIL: ...` line per check (plus `info: ...` lines),
then a summary line. Exit status: 0 all checks passed, 1 any failure or error
(including the overall timeout), 2 usage error.

SDK notes (mcp 2.x): `mcp.Client` over `streamable_http_client(url,
http_client=...)`. The 2.x transport does not expose the session id, so an
httpx2 event hook on our own AsyncClient records the `Mcp-Session-Id` the
client sends and the DELETE it issues on close (`terminate_on_close=True`).
"""

import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import secrets

import anyio
import httpx2
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

DEFAULT_TIMEOUT_S = 60.0
MAX_LIST_PAGES = 100  # guard against a paginator that never ends


class UsageError(Exception):
    """Bad command line or scenario file (exit status 2)."""


# --------------------------------------------------------------------------- output


class Report:
    """Collects check results and prints one line per check."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.passed = 0
        self.failed = 0
        self.phase = "start"  # what the scenario was doing, for error messages

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"ok: [{self.name}] {what}", flush=True)
        else:
            self.failed += 1
            suffix = f" ({detail})" if detail else ""
            print(f"FAIL: [{self.name}] {what}{suffix}", flush=True)
        return ok

    def info(self, text: str) -> None:
        print(f"info: [{self.name}] {text}", flush=True)

    def summary(self) -> int:
        verdict = "PASS" if self.failed == 0 else "FAIL"
        print(f"summary: [{self.name}] {verdict}: {self.passed} passed, {self.failed} failed", flush=True)
        return 0 if self.failed == 0 else 1


def describe(exc: BaseException) -> str:
    """One-line description of an exception, flattening anyio's exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(e) for e in exc.exceptions)
    if isinstance(exc, MCPError):
        return f"MCPError {exc.error.code}: {exc.error.message}"
    text = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {text}"


# --------------------------------------------------------------------------- scenario parsing


def _str_list(scenario: dict[str, Any], key: str) -> list[str]:
    value = scenario.setdefault(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"'{key}' must be a list of strings")
    return value


def load_scenario(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text().replace("$NONCE", f"py{secrets.token_hex(4)}")
        scenario = json.loads(text)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read scenario {path}: {exc}") from exc
    if not isinstance(scenario, dict):
        raise UsageError("scenario must be a JSON object")
    if not isinstance(scenario.get("url"), str):
        raise UsageError("scenario needs a string 'url'")
    scenario.setdefault("name", Path(path).stem)
    headers = scenario.setdefault("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise UsageError("'headers' must be an object of string values")
    _str_list(scenario, "expect_tools")
    _str_list(scenario, "absent_tools")
    calls = scenario.setdefault("calls", [])
    if not isinstance(calls, list) or not all(isinstance(c, dict) and isinstance(c.get("tool"), str) for c in calls):
        raise UsageError("'calls' must be a list of objects with a string 'tool'")
    for call in calls:
        if "expect_text" in call and not isinstance(call["expect_text"], str):
            raise UsageError(f"call {call['tool']}: 'expect_text' must be a string")
    approvals = scenario.setdefault("approvals", [])
    if not isinstance(approvals, list) or not all(
        isinstance(a, dict) and isinstance(a.get("tool"), str) and a.get("answer") in ("accept", "decline")
        for a in approvals
    ):
        raise UsageError("'approvals' must be a list of objects with 'tool' and 'answer' (accept|decline)")
    progress = scenario.get("progress")
    if progress is not None and not (isinstance(progress, dict) and isinstance(progress.get("tool"), str)):
        raise UsageError("'progress' must be an object with a string 'tool'")
    timeout = scenario.setdefault("timeout_s", DEFAULT_TIMEOUT_S)
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise UsageError("'timeout_s' must be a positive number")
    return scenario


# --------------------------------------------------------------------------- HTTP observation


class WireLog:
    """httpx2 event hooks that record what the SDK client put on the wire.

    mcp 2.x keeps the session id inside its private transport object, so we
    watch the requests instead: the `Mcp-Session-Id` / `MCP-Protocol-Version`
    the client last sent, and every DELETE (session termination) with its status.
    """

    def __init__(self) -> None:
        self.session_id: str | None = None
        self.protocol_header: str | None = None
        self.deletes: list[tuple[str | None, int | None]] = []  # (session id sent, response status)

    async def on_request(self, request: httpx2.Request) -> None:
        sid = request.headers.get("mcp-session-id")
        if request.method == "DELETE":
            self.deletes.append((sid, None))
            return
        if sid:
            self.session_id = sid
        if pv := request.headers.get("mcp-protocol-version"):
            self.protocol_header = pv

    async def on_response(self, response: httpx2.Response) -> None:
        # Called once headers arrive (before an SSE body is read).
        if response.request.method == "DELETE" and self.deletes:
            sid, _ = self.deletes[-1]
            self.deletes[-1] = (sid, response.status_code)
        elif self.session_id is None and (sid := response.headers.get("mcp-session-id")):
            self.session_id = sid


# --------------------------------------------------------------------------- checks


def first_text(result: Any) -> str | None:
    for block in result.content:
        if getattr(block, "type", None) == "text":
            return block.text
    return None


async def check_tools(client: Client, scenario: dict[str, Any], report: Report) -> None:
    names: list[str] = []
    cursor: str | None = None
    seen_cursors: set[str] = set()
    pages = 0
    while True:
        page = await client.list_tools(cursor=cursor)
        pages += 1
        names.extend(tool.name for tool in page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
        if cursor in seen_cursors or pages >= MAX_LIST_PAGES:
            report.check(False, "tools/list pagination terminates", f"cursor {cursor!r} after {pages} pages")
            break
        seen_cursors.add(cursor)
    report.info(f"tools/list: {len(names)} tools in {pages} page(s): {', '.join(sorted(names))}")
    report.check(len(names) == len(set(names)), "tools/list has no duplicate names")
    for name in scenario["expect_tools"]:
        report.check(name in names, f"tools/list contains {name}")
    for name in scenario["absent_tools"]:
        report.check(name not in names, f"tools/list does not contain {name}")


async def check_call(client: Client, call: dict[str, Any], report: Report) -> None:
    tool = call["tool"]
    label = f"call {tool}"
    try:
        result = await client.call_tool(tool, call.get("arguments") or {})
    except MCPError as exc:  # protocol-level error; the session is still usable
        report.check(False, label, describe(exc))
        return
    text = first_text(result)
    if call.get("expect_contains"):
        # "contains" looks through every text item, "equals" at the first.
        text = "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))
    report.check(not result.is_error, f"{label} isError is falsy", f"isError=true, text={text!r}")
    if "expect_text" in call:
        expected = call["expect_text"]
        if call.get("expect_contains"):
            report.check(text is not None and expected in text, f"{label} text contains {expected!r}", f"got {text!r}")
        else:
            report.check(text == expected, f"{label} text == {expected!r}", f"got {text!r}")


class Heard:
    """Server notifications heard on the session (issue 12): the URIs of
    `notifications/resources/updated`, and how many tool list changes."""

    def __init__(self) -> None:
        self.updated: list[str] = []
        self.tools_changed = 0

    async def __call__(self, message: Any) -> None:
        root = getattr(message, "root", message)
        method = getattr(root, "method", None)
        if method == "notifications/resources/updated":
            self.updated.append(str(root.params.uri))
        elif method == "notifications/tools/list_changed":
            self.tools_changed += 1


async def check_subscribe(client: Client, sub: dict[str, Any], heard: Heard, report: Report) -> None:
    """Subscribe, start the server's updates with a tool, wait for an update
    of the URI (on the gateway's merged GET stream), stop them, unsubscribe."""
    label = f"subscription to {sub['uri']}"
    await client.subscribe_resource(sub["uri"])
    report.check(True, f"{label}: subscribed")
    await client.call_tool(sub["start"], {})
    wait = sub.get("wait_ms", 15000) / 1000
    with anyio.move_on_after(wait):
        while sub["uri"] not in heard.updated:
            await anyio.sleep(0.05)
    report.check(sub["uri"] in heard.updated, f"{label}: notifications/resources/updated arrived",
                 f"none within {wait} s (heard {heard.updated})")
    await client.call_tool(sub["start"], {})
    await client.unsubscribe_resource(sub["uri"])
    report.check(True, f"{label}: unsubscribed")


def answering(asks: dict[str, Any]) -> dict[str, Any]:
    """Handlers that answer an upstream's own questions (elicitation,
    sampling, roots) with the scenario's answers; giving them declares the
    capabilities."""

    async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content=asks["elicit"])

    async def on_sample(context: Any, params: Any) -> types.CreateMessageResult:
        text = types.TextContent(type="text", text=asks["sample"])
        return types.CreateMessageResult(role="assistant", content=text, model="e2e-model")

    async def on_roots(context: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri=r["uri"], name=r.get("name")) for r in asks["roots"]])

    return {"elicitation_callback": on_elicit, "sampling_callback": on_sample, "list_roots_callback": on_roots}


class Elicitation:
    """The client's elicitation handler: answers with the current step's answer."""

    def __init__(self) -> None:
        self.answer = "decline"
        self.asked: list[str] = []
        self.modes: list[str] = []

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.asked.append(getattr(params, "message", ""))
        self.modes.append(getattr(params, "mode", None) or "form")
        if self.answer == "accept":
            return types.ElicitResult(action="accept", content={})
        return types.ElicitResult(action=self.answer)


async def check_approval(client: Client, step: dict[str, Any], elicit: Elicitation, report: Report) -> None:
    tool, answer = step["tool"], step["answer"]
    label = f"approval {tool} ({answer})"
    elicit.answer, elicit.asked, elicit.modes = answer, [], []
    try:
        result = await client.call_tool(tool, step.get("arguments") or {})
    except MCPError as exc:
        report.check(False, label, describe(exc))
        return
    text = first_text(result)
    if step.get("expect") == "pending":
        # A URL question (the client declared URL elicitation) only sends the
        # user to the approval; a form question would let them decide.
        report.check("form" not in elicit.modes, f"{label}: the requester is not asked to decide",
                     f"asked {elicit.asked} in modes {elicit.modes}")
        report.check(
            bool(result.is_error) and text is not None and "approver" in text and "pending" in text,
            f"{label}: a tool error names the pending approval for an approver",
            f"isError={result.is_error}, text={text!r}",
        )
    else:
        report.check(
            len(elicit.asked) == 1 and tool.split("__")[-1] in elicit.asked[0],
            f"{label}: asked once through elicitation",
            f"asked {elicit.asked}",
        )
    if step.get("expect") == "pending":
        pass
    elif answer == "accept":
        report.check(not result.is_error, f"{label}: the call ran", f"isError=true, text={text!r}")
        if "expect_text" in step:
            report.check(text == step["expect_text"], f"{label}: text == {step['expect_text']!r}", f"got {text!r}")
    else:
        report.check(
            bool(result.is_error) and text is not None and "declined" in text,
            f"{label}: a tool error says it was declined",
            f"isError={result.is_error}, text={text!r}",
        )
    if step.get("then"):
        await check_call(client, step["then"], report)


async def check_progress(client: Client, spec: dict[str, Any], report: Report) -> None:
    tool = spec["tool"]
    min_notifications = int(spec.get("min_notifications", 1))
    min_lead_ms = float(spec.get("min_lead_ms", 0))
    arrivals: list[tuple[float, float, float | None, str | None]] = []  # (monotonic t, progress, total, message)

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        arrivals.append((time.monotonic(), progress, total, message))

    start = time.monotonic()
    try:
        result = await client.call_tool(tool, spec.get("arguments") or {}, progress_callback=on_progress)
    except MCPError as exc:
        report.check(False, f"progress call {tool}", describe(exc))
        return
    result_time = time.monotonic()

    report.check(not result.is_error, f"progress call {tool} isError is falsy", f"text={first_text(result)!r}")

    def fmt(t: float, p: float, tot: float | None) -> str:
        return f"{(t - start) * 1000:.0f}ms:{p:g}/{'?' if tot is None else format(tot, 'g')}"

    offsets = ", ".join(fmt(t, p, tot) for t, p, tot, _ in arrivals)
    result_ms = (result_time - start) * 1000
    report.info(f"progress {tool}: {len(arrivals)} notification(s) [{offsets}], result at {result_ms:.0f}ms")
    report.check(
        len(arrivals) >= min_notifications,
        f"progress {tool}: >= {min_notifications} notifications",
        f"got {len(arrivals)}",
    )
    if arrivals:
        values = [p for _, p, _, _ in arrivals]
        report.check(all(a < b for a, b in zip(values, values[1:])), f"progress {tool}: values increase", f"{values}")
        lead_ms = (result_time - arrivals[0][0]) * 1000
        report.check(
            lead_ms >= min_lead_ms,
            f"progress {tool}: first notification {lead_ms:.0f}ms before result (>= {min_lead_ms:g}ms, streamed)",
            "notifications look buffered until the end",
        )
    else:
        report.check(False, f"progress {tool}: streamed before result", "no notifications arrived")


async def check_deleted_session(
    scenario: dict[str, Any], wire: WireLog, session_id: str, protocol_version: str, report: Report
) -> None:
    """After the SDK closed the session: it sent DELETE, and the old id now gets 404."""
    deletes = [status for sid, status in wire.deletes if sid == session_id]
    report.check(bool(deletes), "client sent DELETE with Mcp-Session-Id on close", f"DELETEs seen: {wire.deletes}")
    if deletes:
        report.check(
            deletes[-1] is not None and 200 <= deletes[-1] < 300,
            f"DELETE answered 2xx (got {deletes[-1]})",
            "session may not have been ended",
        )
    headers = {
        **scenario["headers"],
        "Mcp-Session-Id": session_id,
        "MCP-Protocol-Version": protocol_version,
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    body = {"jsonrpc": "2.0", "id": 99, "method": "tools/list"}
    async with httpx2.AsyncClient(timeout=15.0) as http:
        response = await http.post(scenario["url"], json=body, headers=headers)
    report.check(
        response.status_code == 404,
        "POST with the ended session id gets HTTP 404",
        f"got {response.status_code}: {response.text[:200]!r}",
    )


# --------------------------------------------------------------------------- main flow


async def run_scenario(scenario: dict[str, Any], report: Report) -> None:
    wire = WireLog()
    http = httpx2.AsyncClient(
        headers=scenario["headers"],
        # The SDK's defaults: 30 s connect/write/pool, 300 s read for SSE streams
        # (the overall scenario timeout bounds everything anyway).
        timeout=httpx2.Timeout(30.0, read=300.0),
        event_hooks={"request": [wire.on_request], "response": [wire.on_response]},
    )
    session_id: str | None = None
    protocol_version: str | None = None
    async with http:
        # terminate_on_close=True: leaving the transport sends DELETE with the session id.
        transport = streamable_http_client(scenario["url"], http_client=http, terminate_on_close=True)
        report.phase = "connect"
        # cache=None: every list request must reach the server under test.
        elicit = Elicitation()
        # The elicitation capability is declared only when a callback is given.
        callbacks: dict[str, Any] = {"elicitation_callback": elicit if scenario["approvals"] else None}
        if scenario.get("asks"):
            callbacks = answering(scenario["asks"])
        heard = Heard()
        async with Client(transport, mode=scenario.get("mode", "legacy"), cache=None, message_handler=heard,
                          **callbacks) as client:
            protocol_version = client.protocol_version
            info = client.server_info
            report.info(
                f"connected: protocol {protocol_version}, server {info.name if info else '?'} "
                f"{info.version if info else ''}, session {wire.session_id}"
            )
            if scenario.get("settle_ms"):
                # Give the SDK's background GET stream time to open first.
                await anyio.sleep(scenario["settle_ms"] / 1000)
            report.phase = "tools/list"
            await check_tools(client, scenario, report)
            for call in scenario["calls"]:
                report.phase = f"call {call['tool']}"
                await check_call(client, call, report)
            for step in scenario["approvals"]:
                report.phase = f"approval {step['tool']}"
                await check_approval(client, step, elicit, report)
            if scenario.get("progress"):
                report.phase = f"progress call {scenario['progress']['tool']}"
                await check_progress(client, scenario["progress"], report)
            if scenario.get("subscribe"):
                report.phase = f"subscribe {scenario['subscribe']['uri']}"
                await check_subscribe(client, scenario["subscribe"], heard, report)
            if scenario.get("expect_tools_changed"):
                report.check(heard.tools_changed > 0, "notifications/tools/list_changed arrived", "none")
            # Capture what the client actually used before closing.
            session_id = wire.session_id
            if scenario.get("stateless"):
                report.check(session_id is None, "stateless: no Mcp-Session-Id issued or sent",
                             f"session {session_id}")
            if wire.protocol_header is not None:
                report.check(
                    wire.protocol_header == protocol_version,
                    "MCP-Protocol-Version header matches the negotiated version",
                    f"header {wire.protocol_header}, negotiated {protocol_version}",
                )
            report.phase = "close"
        # Client closed here (the SDK sent DELETE if it had a session).

    if scenario.get("delete_session"):
        if not report.check(session_id is not None, "server issued an Mcp-Session-Id", "no session id was used"):
            return
        assert session_id is not None and protocol_version is not None
        report.phase = "check ended session"
        await check_deleted_session(scenario, wire, session_id, protocol_version, report)


async def run_with_timeout(scenario: dict[str, Any], report: Report) -> None:
    timeout = float(scenario["timeout_s"])
    with anyio.move_on_after(timeout) as scope:
        try:
            await run_scenario(scenario, report)
        except Exception as exc:  # any error is a failed scenario, never a traceback
            report.check(False, "scenario ran without error", f"during {report.phase}: {describe(exc)}")
    if scope.cancelled_caught:
        report.check(False, f"scenario finished within {timeout:g}s", f"timed out during {report.phase}")


def start_watchdog(seconds: float, name: str) -> None:
    """Last resort if cancellation cannot unwind (e.g. a shielded close hangs): exit hard."""

    def fire() -> None:
        print(f"FAIL: [{name}] watchdog: still running after {seconds:g}s, exiting", flush=True)
        os._exit(1)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print("usage: python py_client.py SCENARIO_JSON_FILE  (format: see this file's docstring)", file=sys.stderr)
        return 2
    try:
        scenario = load_scenario(argv[1])
    except UsageError as exc:
        print(f"usage error: {exc}", file=sys.stderr)
        return 2
    # SDK/httpx logs stay on stderr, warnings and up only.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    report = Report(str(scenario["name"]))
    start_watchdog(float(scenario["timeout_s"]) + 15, report.name)
    anyio.run(run_with_timeout, scenario, report)
    return report.summary()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
