"""Governance parts of the end-to-end suite (imported by run.py).

  * the policy the suite runs under: everyone may use everything, and one tool
    (server-everything's `get-sum`, used by no other scenario) is limited to
    LIMIT calls per 10-minute window;
  * the hammer: 64 concurrent clients, each on its own session, call that tool
    at the same moment; exactly LIMIT must succeed and every other call must be
    a 429 with Retry-After and a JSON-RPC error naming the limit (on Spin,
    whose counters are fixed windows, between LIMIT and 2 x LIMIT, the
    documented tolerance, which a test inside one window does not reach).
"""
from __future__ import annotations

import json
import threading

LIMIT = 10
CLIENTS = 64
TOOL = "everything__get-sum"


def policy_entry() -> dict:
    policy = {
        "rules": [{"name": "everyone", "effect": "allow", "subjects": {"everyone": True}}],
        "limits": [{"name": "get-sum-burst", "per": "tool", "servers": ["everything"], "tools": ["get-sum"],
                    "requests": LIMIT, "window_secs": 600}],
    }
    return {"key": "policy", "value": json.dumps(policy)}


def hammer(check, http, base: str, api_key: str, exact: bool) -> None:
    url = f"{base}/mcp"
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream", "X-API-Key": api_key}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "hammer", "version": "1"}}}
    sessions = []
    for _ in range(CLIENTS):
        status, h, _ = http(url, "POST", json.dumps(init).encode(), headers)
        if status == 200:
            sessions.append(h["mcp-session-id"])
    check(len(sessions) == CLIENTS, f"limits: {CLIENTS} sessions opened", f"{len(sessions)}")
    call = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                       "params": {"name": TOOL, "arguments": {"a": 1, "b": 2}}}).encode()
    results: list[tuple[int, dict, bytes]] = []
    lock, start = threading.Lock(), threading.Barrier(len(sessions))

    def client(sid: str) -> None:
        start.wait()
        r = http(url, "POST", call, {**headers, "Mcp-Session-Id": sid})
        with lock:
            results.append(r)

    threads = [threading.Thread(target=client, args=(sid,)) for sid in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ok = [r for r in results if r[0] == 200 and b'"result"' in r[2]]
    limited = [r for r in results if r[0] == 429]
    well_formed = all(
        r[1].get("retry-after", "").isdigit() and int(r[1]["retry-after"]) > 0
        and json.loads(r[2])["error"]["code"] == -32029 and "get-sum-burst" in json.loads(r[2])["error"]["message"]
        for r in limited)
    counts = f"{len(ok)} succeeded, {len(limited)} got 429, {len(results) - len(ok) - len(limited)} other"
    if exact:
        check(len(ok) == LIMIT and len(limited) == len(results) - LIMIT,
              f"limits: {CLIENTS} concurrent calls, exactly {LIMIT} succeed, the rest 429", counts)
    else:
        check(LIMIT <= len(ok) <= 2 * LIMIT and len(ok) + len(limited) == len(results),
              f"limits: {CLIENTS} concurrent calls, {LIMIT}..{2 * LIMIT} succeed (fixed windows), the rest 429", counts)
    check(bool(limited) and well_formed, "limits: every 429 carries Retry-After and names the limit (-32029)",
          limited[0][2][:300].decode(errors="replace") if limited else "no 429 at all")
