"""End-to-end observability (issue 13).

Trace context: a client sends a `traceparent` with a 2026-07-28 call and
with a legacy one; the gateway answers with `traceresponse` in the same
trace, and the notes upstream logs the `traceparent` it received: the
client's trace id, under a span of the gateway's. A call without one is
answered in a trace of its own, which notes joins too.

OTLP export: the gateway runs with `OTEL_EXPORTER_OTLP_ENDPOINT` set to a
test receiver (`otlp_receiver.py`, decoding with the official protobuf
definitions) and the `OTEL_EXPORTER_OTLP_HEADERS` secret. For an allowed
call that fails over, a denied call, a rate-limited one and an approval,
each in the client's trace, the receiver gets the server span under the
client's span, a child per phase, the audit records of each decision and
the metrics; notes logs the trace under the exported upstream attempt's
span; nothing exported holds a key, a secret or an argument value.
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
    """Whether notes received a request in `traceparent`'s trace, under a
    span of the gateway's (not the caller's, not the gateway's own server
    span: an upstream attempt's)."""
    trace = _trace(traceparent)
    if trace is None:
        return False
    pattern = re.compile(rf"trace-seen traceparent=00-{trace[0]}-([0-9a-f]{{16}})-")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if pattern.search(notes_log.read_text(errors="replace")):
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


# The policy entries the OTLP checks need (governance.policy_entry adds them).
DENY_RULE = {"name": "no-forbidden", "effect": "deny", "subjects": {"everyone": True}, "servers": ["notes"],
             "tools": ["forbidden"]}
# A tool notes does not have: nothing else calls it.
LIMIT = {"name": "otlp-limited", "per": "principal", "servers": ["notes"], "tools": ["otlp-limited"],
         "requests": 1, "window_secs": 600}
# What the exporter sends as headers (the OTEL_EXPORTER_OTLP_HEADERS secret).
EXPORT_SECRET = "otlp-export-" + secrets.token_hex(8)


def _modern_call(http, base, api_key, tool, arguments, traceparent, extra=None, caps=None):
    meta = {"io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": caps or {},
            "io.modelcontextprotocol/clientInfo": {"name": "e2e-otlp", "version": "1"}}
    params = {"name": tool, "arguments": arguments, "_meta": meta, **(extra or {})}
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "X-API-Key": api_key, "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call",
               "Mcp-Name": tool, "traceparent": traceparent}
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}).encode()
    return http(f"{base}/servers/notes/mcp", "POST", body, headers)


def _exported(receiver, trace: str, wait_s: float = 15.0) -> list[dict]:
    """The spans of `trace` once its server span arrived (one post has them all)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        spans = receiver.spans(trace)
        if any(s.get("kind") == 2 for s in spans):
            return spans
        time.sleep(0.1)
    return receiver.spans(trace)


def _events(receiver, trace: str, want: str = "authenticated", wait_s: float = 10.0) -> list[dict]:
    """The audit records of `trace` (their post may come after the spans'),
    once one of kind `want` is among them."""
    deadline = time.monotonic() + wait_s
    while True:
        events = [json.loads(r["body"]["stringValue"]) for r in receiver.logs(trace)]
        if any(e.get("event") == want for e in events) or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


def otlp_checks(check, http, response_of, base: str, api_key: str, notes_log: pathlib.Path, receiver,
                never: list[str], target: str, workdir: pathlib.Path) -> None:
    from otlp_receiver import attrs

    def traced():
        trace, span = secrets.token_hex(16), secrets.token_hex(8)
        return trace, span, f"00-{trace}-{span}-01"

    def tree(spans, trace, span, name):
        roots = [s for s in spans if s.get("kind") == 2]
        root = roots[0] if len(roots) == 1 else {}
        children = [s for s in spans if s is not root]
        ok = (root.get("traceId") == trace and root.get("parentSpanId") == span and root.get("name") == name
              and all(c.get("parentSpanId") == root.get("spanId") for c in children))
        return ok, root, children

    # 1. An allowed call that fails over: notes' eu region is down, and a
    # new session on /mcp meets notes first there (a legacy client).
    from governance import open_session
    argument = "otlp-argument-" + secrets.token_hex(6)
    never = never + [argument, EXPORT_SECRET]
    trace, span, parent = traced()
    session = open_session(http, f"{base}/mcp", api_key, "e2e-otlp")
    http(f"{base}/mcp", "POST", json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode(),
         session)
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "notes__echo", "arguments": {"text": f"{argument} frank@corp.example"}}}
    status, _, body = http(f"{base}/mcp", "POST", json.dumps(call).encode(), {**session, "traceparent": parent})
    spans = _exported(receiver, trace)
    ok, root, children = tree(spans, trace, span, "tools/call notes__echo")
    names = sorted({c["name"] for c in children})
    a = attrs(root)
    check(status == 200 and ok and a.get("mcp.method.name") == "tools/call"
          and a.get("gen_ai.tool.name") == "notes__echo" and a.get("mcp_edge.server.id") == "notes"
          and a.get("enduser.id") == "e2e-client" and a.get("jsonrpc.request.id") == "1"
          and a.get("mcp.protocol.version") == "2025-06-18"
          and a.get("mcp.session.id") == session.get("Mcp-Session-Id"),
          "otlp: an allowed call is one trace under the client's span, with the MCP attributes",
          f"{status} {root} {names}")
    check({"authenticate", "policy", "rate_limit", "validate_arguments"} <= set(names),
          "otlp: the allowed call has authentication, policy, limit and validation spans", str(names))
    attempts = [c for c in children if c.get("kind") == 3]
    failed = [c for c in attempts if attrs(c).get("mcp_edge.region") == "eu"
              and attrs(c).get("error.type") == "unreachable" and c.get("status", {}).get("code") == 2]
    served = [c for c in attempts if c["name"] == "tools/call echo" and attrs(c).get("mcp_edge.region") == "us"
              and "error.type" not in attrs(c)]
    check(bool(failed) and bool(served), "otlp: the failover is an eu attempt that failed, then the us one",
          json.dumps(attempts)[:1500])
    under = served[0]["spanId"] if served else "?"
    check(_seen_exactly(notes_log, f"00-{trace}-{under}-"),
          "otlp: notes received the call under the exported us attempt's span", under)
    events = _events(receiver, trace, "redacted")
    kinds = [e.get("event") for e in events]
    check({"authenticated", "policy", "failover"} <= set(kinds),
          "otlp: audit records of the allowed call (authenticated, policy, failover) in its trace", str(kinds))
    # notes' answer echoes an email address, which the policy redacts.
    check(any(e.get("event") == "redacted" and e.get("server") == "notes" and e.get("counts") == {"email": 1}
              for e in events)
          and any(c["name"] == "redact" and attrs(c).get("mcp_edge.redacted.email") == "1" for c in children),
          "otlp: a redaction is a span and a record with counts per kind", f"{events} {names}")

    # 2. A denied call.
    trace, span, parent = traced()
    status, _, body = _modern_call(http, base, api_key, "forbidden", {}, parent)
    spans = _exported(receiver, trace)
    ok, root, children = tree(spans, trace, span, "tools/call forbidden")
    policy = [c for c in children if c["name"] == "policy"]
    pa = attrs(policy[0]) if policy else {}
    events = _events(receiver, trace, "policy")
    check(ok and pa.get("mcp_edge.policy.rule") == "no-forbidden" and pa.get("mcp_edge.policy.decision") == "deny"
          and root.get("status", {}).get("code") == 2 and attrs(root).get("error.type") == "-32602"
          and any(e.get("event") == "policy" and e.get("decision") == "deny" for e in events),
          "otlp: a denied call: the policy span names the rule, the server span is an error, the decision is a record",
          f"{status} {body[:200]!r} {json.dumps(spans)[:1200]} {events}")

    # 3. A rate-limited call (the first passes).
    trace, span, parent = traced()
    s1, _, _ = _modern_call(http, base, api_key, "otlp-limited", {}, f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01")
    status, headers, body = _modern_call(http, base, api_key, "otlp-limited", {}, parent)
    spans = _exported(receiver, trace)
    ok, root, children = tree(spans, trace, span, "tools/call otlp-limited")
    limits = [attrs(c) for c in children if c["name"] == "rate_limit"]
    check(s1 == 200 and status == 429 and ok
          and any(l.get("mcp_edge.limit") == "otlp-limited" and l.get("mcp_edge.limit.decision") == "deny"
                  for l in limits)
          and any(e.get("event") == "limited" and e.get("limit") == "otlp-limited"
                  for e in _events(receiver, trace, "limited")),
          "otlp: a rate-limited call: a span per limit checked, the refusing one marked, and a limited record",
          f"{s1} {status} {limits}")

    # 4. An approval: asked through input_required, given on the retry.
    tag = "otlp-" + secrets.token_hex(4)
    caps = {"elicitation": {"form": {}}}
    asked_trace, asked_span, parent = traced()
    status, h, body = _modern_call(http, base, api_key, "archive", {"tag": tag}, parent, caps=caps)
    asked = response_of(status, h, body).get("result", {})
    trace, span, parent = traced()
    answer = {"requestState": asked.get("requestState"),
              "inputResponses": {"mcp-edge/approval": {"action": "accept", "content": {}}}}
    status, h, body = _modern_call(http, base, api_key, "archive", {"tag": tag}, parent, extra=answer, caps=caps)
    first_spans = _exported(receiver, asked_trace)
    spans = _exported(receiver, trace)
    outcome = lambda sp: [attrs(c).get("mcp_edge.approval.outcome") for c in sp if c["name"] == "approval"]
    events = [e.get("event") for e in _events(receiver, asked_trace, "approval_requested")
              + _events(receiver, trace, "approval_used")]
    check(asked.get("resultType") == "input_required" and status == 200 and outcome(first_spans) == ["asked"]
          and outcome(spans) == ["approved"]
          and {"approval_requested", "approval_decided", "approval_used"} <= set(events),
          "otlp: an approval: the approval span (asked, then approved) and its records",
          f"{asked} {status} {outcome(first_spans)} {outcome(spans)} {events}")

    # 5. Metrics.
    time.sleep(0.5)
    durations = [attrs(p) for p in receiver.metrics("mcp.server.operation.duration")]
    refusals = [attrs(p) for p in receiver.metrics("mcp_edge.limit.refusals")]
    approvals = [attrs(p) for p in receiver.metrics("mcp_edge.approvals")]
    upstream = [attrs(p) for p in receiver.metrics("mcp_edge.upstream.duration")]
    calls = [attrs(p) for p in receiver.metrics("mcp_edge.calls")]
    check(any(d.get("gen_ai.tool.name") == "echo" and d.get("mcp_edge.server.id") == "notes"
              and d.get("mcp_edge.teams") == "qa" and d.get("mcp.method.name") == "tools/call" for d in durations)
          and any(c.get("mcp_edge.outcome") == "error" and c.get("gen_ai.tool.name") == "_OTHER" for c in calls)
          and any(r.get("mcp_edge.limit") == "otlp-limited" for r in refusals)
          and {"requested", "decided", "used"} <= {a.get("mcp_edge.approval.event") for a in approvals}
          and any(u.get("mcp_edge.region") == "eu" and u.get("mcp_edge.outcome") == "unreachable" for u in upstream),
          "otlp: metrics: operation duration, calls by outcome, limit refusals, approvals, upstream attempts by region",
          f"{len(durations)} durations, {calls[:3]}, {refusals}, {approvals[:3]}, {upstream[:3]}")

    # 6. Headers from the secret; nothing secret in what was exported.
    posts = receiver.everything()
    leaks = [n[:12] for h, b in posts for n in never if n and n.encode() in b]
    check(posts and all(h.get("x-otlp-key") == EXPORT_SECRET for h, _ in posts) and not leaks,
          "otlp: every post carries the secret's headers, and no body holds a key, a secret or an argument",
          f"{len(posts)} posts, leaks {leaks}")
    check(not receiver.errors, "otlp: every post decodes with the official protobuf definitions",
          "; ".join(receiver.errors[:3]))
    usage_checks(check, http, base, target, workdir)


def usage_checks(check, http, base: str, target: str, workdir: pathlib.Path) -> None:
    """The usage rows the calls above left: on workerd read from the day's
    UsageStore Durable Object as workerd persisted it; on the Spin host,
    counted in the store operations the host served (three increments per
    call)."""
    if target == "workers":
        import sqlite3
        deadline, rows = time.monotonic() + 10, {}
        while time.monotonic() < deadline:
            rows = {}
            for db in (workdir / "wrangler-state").glob("v3/do/*-UsageStore/*.sqlite"):
                if db.name == "metadata.sqlite":
                    continue
                with sqlite3.connect(db) as conn:
                    for _, value in conn.execute("select key, value from _cf_KV"):
                        # workerd keeps values in V8's serialization: the
                        # stored JSON text follows a short header.
                        text = bytes(value).decode("utf-8", "replace")
                        # The value: the row's key and its counts, as JSON.
                        stored = json.loads(text[text.index('{"key"'):])
                        row = stored.get("key", {})
                        if row.get("principal") == "apikey|e2e-client":
                            rows[(row["server"], row["tool"])] = (row, stored.get("count", {}))
            wanted = {("notes", "echo"), ("notes", "_OTHER"), ("notes", "archive")}
            if wanted <= set(rows) and rows[("notes", "archive")][1].get("calls", 0) >= 2:
                break
            time.sleep(0.2)
        # A denied call, and calls of a tool notes does not list, count
        # under _OTHER: a caller cannot mint rows by making up names.
        echo, other, archive = (rows.get(("notes", t), ({}, {})) for t in ("echo", "_OTHER", "archive"))
        check(echo[0].get("team") == "qa" and echo[0].get("principal") == "apikey|e2e-client"
              and echo[1].get("calls", 0) >= 1 and echo[1].get("upstream_ms", 0) > 0
              and other[1].get("errors", 0) >= 2 and archive[1].get("calls", 0) >= 2,
              "usage: rows per day, team, principal, server and tool in the UsageStore Durable Object", str(rows))
    else:
        status, _, body = http(f"{base}/.spin-host/kv-ops", "GET", None, {})
        ops = json.loads(body) if status == 200 else {}
        check(ops.get("sessions:usage", 0) >= 3 * 6,
              "usage: each call's row counters incremented in the Spin store", str(ops))


def _seen_exactly(notes_log: pathlib.Path, prefix: str, wait_s: float = 5.0) -> bool:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if f"trace-seen traceparent={prefix}" in notes_log.read_text(errors="replace"):
            return True
        time.sleep(0.1)
    return False
