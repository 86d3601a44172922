"""Governance parts of the end-to-end suite (imported by run.py).

  * the policy the suite runs under: everyone may use everything, and one tool
    (server-everything's `get-annotated-message`, used by no other scenario;
    the agent checks use `get-sum`) is limited to
    LIMIT calls per 10-minute window;
  * the hammer: 64 concurrent clients, each on its own session, call that tool
    at the same moment; exactly LIMIT must succeed and every other call must be
    a 429 with Retry-After and a JSON-RPC error naming the limit (on Spin,
    whose counters are fixed windows, between LIMIT and 2 x LIMIT, the
    documented tolerance, which a test inside one window does not reach);
  * a daily quota: every notes call passes a (large) daily counter, and a tool
    with a daily quota of DAILY answers 429 on the next call, with Retry-After
    reaching midnight UTC;
  * human approval: the policy opts in to `destructiveHint` (notes' `purge` is
    marked destructive), decided by approvers, and has the user confirm notes'
    `archive` (`decided_by: user`). The elicitation scenario (both SDK clients)
    declines the archive question, then checks notes never ran the call, then
    accepts and checks it ran exactly once; then calls `purge`, answering every
    question with accept, and must not be asked at all: the call is held for an
    approver and never runs. `approval_endpoint` checks the approvers' path: a
    client without elicitation gets a pending approval, an approver (API key
    with role `approver`) approves it at /approvals/{id}, and the same call
    retried runs exactly once.
  * redaction: email addresses are redacted from everything notes sends
    (checked by tests/e2e/security.py);
  * `open`: server-everything again, open to anonymous callers, each caller
    (anonymous ones told apart by address) limited to OPEN_LIMIT calls.
"""
from __future__ import annotations

import hashlib
import json
import threading

import observe  # tests/e2e/observe.py

LIMIT = 10
CLIENTS = 64
TOOL = "everything__get-annotated-message"
LIMIT_NAME = "annotated-burst"
APPROVER_KEY = "mk_e2e_approver_key"
DAILY = 2
OPEN_LIMIT = 2


def policy_entry(*extra_rules: dict) -> list[dict]:
    """The suite's policy: everyone may use the `dev` group; other groups
    only through `extra_rules`."""
    policy = {
        "rules": [{"name": "everyone", "effect": "allow", "subjects": {"everyone": True}, "groups": ["dev"]},
                  observe.DENY_RULE, *extra_rules],
        "limits": [{"name": LIMIT_NAME, "per": "tool", "servers": ["everything"], "tools": ["get-annotated-message"],
                    "requests": LIMIT, "window_secs": 600},
                   # Every notes call passes a daily counter (never reached), and one tool has a
                   # daily quota of DAILY that `daily_quota` exhausts.
                   {"name": "notes-daily", "per": "server", "servers": ["notes"], "daily": 1_000_000},
                   {"name": "image-daily", "per": "tool", "servers": ["everything"], "tools": ["get-tiny-image"],
                    "daily": DAILY},
                   {"name": "open-per-caller", "per": "principal", "servers": ["open"], "requests": OPEN_LIMIT,
                    "window_secs": 600},
                   observe.LIMIT],
        "redact": [{"servers": ["notes"], "kinds": ["email"]}],
        "approval": {"approvers": {"roles": ["approver"]}, "destructive_hint": True, "ttl_secs": 300,
                     "elicitation_timeout_secs": 10,
                     "tools": [{"servers": ["notes"], "tools": ["archive"], "decided_by": "user"}]},
    }
    approver = {"subject": "e2e-approver", "roles": ["approver"], "scopes": ["mcp:tools"]}
    return [
        {"key": "policy", "value": json.dumps(policy)},
        {"key": f"auth/apikeys/{hashlib.sha256(APPROVER_KEY.encode()).hexdigest()}", "value": json.dumps(approver)},
    ]


def _headers(api_key: str) -> dict:
    return {"Content-Type": "application/json", "Accept": "application/json, text/event-stream", "X-API-Key": api_key}


def _initialize(client: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": client, "version": "1"}}}).encode()


def open_session(http, url: str, api_key: str, client: str) -> dict:
    """Initializes a session; the headers every later request of it carries."""
    _, h, _ = http(url, "POST", _initialize(client), _headers(api_key))
    return {**_headers(api_key), "Mcp-Session-Id": h.get("mcp-session-id", ""), "MCP-Protocol-Version": "2025-06-18"}


def daily_quota(check, http, response_of, base: str, api_key: str) -> None:
    """DAILY calls of the tool pass, the next is a 429 whose Retry-After reaches midnight UTC."""
    import time

    url = f"{base}/mcp"
    headers = open_session(http, url, api_key, "daily")
    call = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                       "params": {"name": "everything__get-tiny-image", "arguments": {}}}).encode()
    answers = [http(url, "POST", call, headers) for _ in range(DAILY + 1)]
    passed = [a for a in answers[:DAILY] if a[0] == 200 and "result" in response_of(*a)]
    status, h, body = answers[DAILY]
    to_midnight = 86400 - int(time.time()) % 86400
    retry = int(h.get("retry-after", "0") or 0)
    check(len(passed) == DAILY and status == 429 and "image-daily" in body.decode(errors="replace")
          and abs(retry - to_midnight) <= 5,
          f"limits: a daily quota of {DAILY} lets {DAILY} calls through, then 429 until midnight UTC",
          f"passed {len(passed)}, then {status} retry-after={retry} (midnight in {to_midnight} s): "
          f"{[a[2][:200] for a in answers]}")


def elicitation_scenario(base: str, headers: dict) -> dict:
    """For the SDK clients: `$NONCE` is replaced by each client with its own token."""
    tag = {"tag": "elicit-$NONCE"}
    return {
        "name": "approval by elicitation on /mcp",
        "headers": headers,
        "url": f"{base}/mcp",
        "expect_tools": ["notes__purge", "notes__archive"],
        "calls": [],
        "approvals": [
            {"tool": "notes__archive", "arguments": tag, "answer": "decline",
             "then": {"tool": "notes__archived", "arguments": tag, "expect_text": "0"}},
            {"tool": "notes__archive", "arguments": tag, "answer": "accept", "expect_text": "archived elicit-$NONCE",
             "then": {"tool": "notes__archived", "arguments": tag, "expect_text": "1"}},
            # Approvers decide purge: the client's eager accept is never asked for.
            {"tool": "notes__purge", "arguments": tag, "answer": "accept", "expect": "pending",
             "then": {"tool": "notes__purged", "arguments": tag, "expect_text": "0"}},
        ],
        "delete_session": True,
    }


def approval_endpoint(check, http, response_of, base: str, api_key: str) -> None:
    url = f"{base}/mcp"
    headers = open_session(http, url, api_key, "approval")

    def call(tool: str, tag: str) -> dict:
        body = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": {"tag": tag}}}
        return response_of(*http(url, "POST", json.dumps(body).encode(), headers)).get("result", {})

    pending = call("notes__purge", "endpoint")
    meta = pending.get("_meta", {}).get("mcp-edge/approval", {})
    check(pending.get("isError") is True and meta.get("status") == "pending" and "/approvals/" in meta.get("url", ""),
          "approval: without elicitation, a destructive call gets a pending approval (tool error)", str(pending)[:300])
    check(call("notes__purged", "endpoint").get("content", [{}])[0].get("text") == "0",
          "approval: the pending call never reached the upstream")
    decide = json.dumps({"decision": "approve"}).encode()
    status, _, body = http(meta.get("url", f"{base}/approvals/none"), "POST", decide,
                           {"Content-Type": "application/json", "X-API-Key": api_key})
    check(status == 403, "approval: the requester (not an approver) cannot approve -> 403", f"{status} {body[:200]!r}")
    # The approver finds the call in the inbox and approves it at the
    # address the inbox gives; the requester sees it there as theirs.
    status, _, body = http(f"{base}/approvals", "GET", None, {"X-API-Key": APPROVER_KEY})
    listed = [a for a in (json.loads(body).get("approvals", []) if status == 200 else [])
              if a.get("id") == meta.get("id")]
    item = listed[0] if listed else {}
    check(item.get("tool") == "purge" and item.get("server") == "notes" and item.get("you_may_decide") is True
          and len(item.get("arguments_sha256", "")) == 64,
          "approval inbox: the approver's GET /approvals lists the pending call, theirs to decide",
          f"{status} {body[:300]!r}")
    status, _, body = http(f"{base}/approvals", "GET", None, {"X-API-Key": api_key})
    own = [a for a in (json.loads(body).get("approvals", []) if status == 200 else []) if a.get("id") == meta.get("id")]
    check(len(own) == 1 and own[0].get("yours") is True and own[0].get("you_may_decide") is False,
          "approval inbox: the requester sees their own call waiting, not theirs to decide", f"{status} {body[:300]!r}")
    status, _, body = http(item.get("url", f"{base}/approvals/none"), "POST", decide,
                           {"Content-Type": "application/json", "X-API-Key": APPROVER_KEY})
    check(status == 200 and json.loads(body).get("status") == "approved",
          "approval: an approver approves at /approvals/{id}, from the inbox", f"{status} {body[:200]!r}")
    status, _, body = http(f"{base}/approvals", "GET", None, {"X-API-Key": APPROVER_KEY})
    gone = status == 200 and all(a.get("id") != meta.get("id") for a in json.loads(body).get("approvals", []))
    check(gone, "approval inbox: a decided call leaves the inbox", f"{status} {body[:300]!r}")
    ran = call("notes__purge", "endpoint")
    again = call("notes__purge", "endpoint")
    count = call("notes__purged", "endpoint").get("content", [{}])[0].get("text")
    check(ran.get("content", [{}])[0].get("text") == "purged endpoint" and again.get("isError") is True and count == "1",
          "approval: the approved call, retried, runs exactly once", f"ran={ran} again={str(again)[:200]} count={count}")


def hammer(check, http, base: str, api_key: str, exact: bool) -> None:
    url = f"{base}/mcp"
    headers = _headers(api_key)
    sessions = []
    for _ in range(CLIENTS):
        status, h, _ = http(url, "POST", _initialize("hammer"), headers)
        if status == 200:
            sessions.append(h["mcp-session-id"])
    check(len(sessions) == CLIENTS, f"limits: {CLIENTS} sessions opened", f"{len(sessions)}")
    call = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                       "params": {"name": TOOL, "arguments": {"messageType": "success"}}}).encode()
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
        and json.loads(r[2])["error"]["code"] == -32029 and LIMIT_NAME in json.loads(r[2])["error"]["message"]
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
