"""Registry checks of the end-to-end suite (imported by run.py): discovery
for callers (`GET /registry`, `GET /registry/{id}`) on the real build,
with raw HTTP.

  - a caller lists the servers it may use, with tool counts; a server whose
    only endpoint is down is listed with `"tools": null` and why;
  - one server's tools carry their name on `/mcp`, description and
    annotations;
  - a server of a group the caller may not use (the redirect trap of
    security.py) is a 404 like an unknown one, and listed for the one caller
    allowed it.
"""
from __future__ import annotations

import json


def _get(http, url: str, api_key: str | None) -> tuple[int, dict]:
    headers = {"Accept": "application/json"}
    if api_key:
        headers["X-API-Key"] = api_key
    status, _, body = http(url, "GET", None, headers)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {"unparsed": body[:200].decode(errors="replace")}


def discovery(check, http, base: str, api_key: str, trap_key: str) -> None:
    status, doc = _get(http, f"{base}/registry", api_key)
    servers = {s.get("id"): s for s in doc.get("servers", [])}
    check(status == 200 and {"everything", "notes", "ghost", "open"} <= set(servers) and "bouncer" not in servers,
          "discovery: a caller lists the servers it may use, and no other", f"{status} {sorted(servers)}")
    everything = servers.get("everything", {})
    check(isinstance(everything.get("tools"), int) and everything["tools"] > 0
          and everything.get("endpoint") == f"{base}/servers/everything/mcp" and everything.get("group") == "dev",
          "discovery: each server with its group, endpoint on the gateway and tool count", json.dumps(everything))
    ghost = servers.get("ghost", {})
    check(ghost.get("tools", 0) is None and bool(ghost.get("error")),
          "discovery: a server that cannot be listed is there, with why", json.dumps(ghost))
    status, notes = _get(http, f"{base}/registry/notes", api_key)
    tools = {t.get("name"): t for t in notes.get("tools") or []}
    add = tools.get("add", {})
    check(status == 200 and add.get("on_mcp") == "notes__add" and bool(add.get("description")),
          "discovery: one server's tools, with their names on /mcp and descriptions", f"{status} {json.dumps(add)}")
    hidden, _ = _get(http, f"{base}/registry/bouncer", api_key)
    unknown, _ = _get(http, f"{base}/registry/nowhere", api_key)
    allowed, trap = _get(http, f"{base}/registry/bouncer", trap_key)
    check(hidden == 404 and unknown == 404 and allowed == 200 and trap.get("id") == "bouncer",
          "discovery: a server the caller may not use is a 404 like an unknown one, and there for the one allowed",
          f"hidden {hidden}, unknown {unknown}, allowed {allowed}")
    anonymous, _ = _get(http, f"{base}/registry", None)
    check(anonymous == 200, "discovery: an anonymous caller is answered (the `open` server admits anonymous use)",
          str(anonymous))


ADMIN_KEY = "mk_e2e_admin_key"
ADMIN_ROLE = "e2e-admin"


def kv_entries(scope: str) -> list[dict]:
    """The operator's API key: the admin role (ADMIN_ROLE names it)."""
    import hashlib
    record = {"subject": "e2e-operator", "roles": [ADMIN_ROLE], "scopes": [scope]}
    return [{"key": f"auth/apikeys/{hashlib.sha256(ADMIN_KEY.encode()).hexdigest()}", "value": json.dumps(record)}]


def _admin(http, base: str, method: str, path: str, body=None, headers=None, key: str = ADMIN_KEY):
    h = {"Accept": "application/json", "X-API-Key": key, **(headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    status, rh, raw = http(f"{base}/admin/{path}", method, data, h)
    try:
        doc = json.loads(raw) if raw else {}
    except ValueError:
        doc = {"unparsed": raw[:200].decode(errors="replace")}
    return status, rh, doc


def admin(check, http, response_of, base: str, api_key: str, open_session) -> None:
    """An operator registers a server through the admin API, a caller finds
    and calls it; a policy change through the API hides one of its tools;
    both undone through the API (rollback, delete)."""
    import time

    status, _, doc = _admin(http, base, "GET", "servers", key=api_key)
    check(status == 403, "admin: a caller without the admin role is refused (403)", f"{status} {doc}")
    status, _, everything = _admin(http, base, "GET", "servers/everything")
    fresh = {**everything.get("document", {}), "id": "fresh", "description": "registered through the admin API"}
    status, _, bad = _admin(http, base, "POST", "servers", {**fresh, "endpoints": []})
    data = bad.get("error", {}).get("data", {})
    check(status == 400 and data.get("path") == "servers/fresh" and "endpoint" in data.get("reason", ""),
          "admin: a broken server entry is refused with its path and reason", f"{status} {bad}")
    status, h, created = _admin(http, base, "POST", "servers", fresh)
    check(status == 201 and created.get("version") == 1 and h.get("etag") == '"1"',
          "admin: an operator registers a server (201, version 1)", f"{status} {created}")

    # Within the registry TTL a caller discovers it and calls its tools.
    deadline, found = time.monotonic() + 35, {}
    while time.monotonic() < deadline:
        status, found = _get(http, f"{base}/registry/fresh", api_key)
        if status == 200:
            break
        time.sleep(1)
    names = [t.get("name") for t in found.get("tools") or []]
    check("echo" in names, "admin: a caller discovers the new server within the registry TTL",
          f"{status} {json.dumps(found)[:300]}")
    url = f"{base}/mcp"

    def echo() -> dict:
        headers = open_session(http, url, api_key, "admin-e2e")
        body = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "fresh__echo", "arguments": {"message": "via admin"}}}
        return response_of(*http(url, "POST", json.dumps(body).encode(), headers))

    answer = echo()
    check("via admin" in json.dumps(answer.get("result", {})), "admin: the caller calls a tool of the new server",
          json.dumps(answer)[:300])

    # Usage counts the call (written after the response: polled).
    deadline, rows = time.monotonic() + 20, {}
    while time.monotonic() < deadline:
        status, _, usage = _admin(http, base, "GET", "usage?by=tool")
        rows = {r.get("key"): r.get("calls") for r in usage.get("rows", [])}
        if rows.get("fresh__echo"):
            break
        time.sleep(1)
    check(status == 200 and rows.get("fresh__echo", 0) >= 1,
          "admin: usage by tool (GET /admin/usage) counts the call", f"{status} {rows}")

    # A policy change hides the tool: dry run first, then for real.
    status, h, policy = _admin(http, base, "GET", "policy")
    version = policy.get("version")
    hide = {"name": "e2e-admin-hide", "effect": "deny", "subjects": {"everyone": True},
            "servers": ["fresh"], "tools": ["echo"]}
    changed = dict(policy.get("document", {}))
    changed["rules"] = [*changed.get("rules", []), hide]
    status, _, dry = _admin(http, base, "POST", "policy/dry-run", changed)
    lost = [p for p in dry.get("principals", []) if p.get("principal") == "apikey|e2e-client"]
    check(status == 200 and lost and "fresh__echo" in lost[0].get("loses", []),
          "admin: a policy dry run says which principal loses which tool", f"{status} {json.dumps(dry)[:400]}")
    status, _, stale = _admin(http, base, "PUT", "policy", changed, {"If-Match": f'"{(version or 0) + 5}"'})
    check(status == 412, "admin: a write with a stale If-Match is refused (412)", f"{status} {stale}")
    status, _, put = _admin(http, base, "PUT", "policy", changed, {"If-Match": f'"{version}"'})
    check(status == 200 and put.get("version") == (version or 0) + 1, "admin: the policy is replaced (If-Match)",
          f"{status} {put}")
    deadline, names, status = time.monotonic() + 35, ["echo"], 0
    while time.monotonic() < deadline:
        status, found = _get(http, f"{base}/registry/fresh", api_key)
        names = [t.get("name") for t in found.get("tools") or []]
        if status == 200 and found.get("tools") and "echo" not in names:
            break
        time.sleep(1)
    answer = echo()
    # The server is still there with its other tools: only echo is gone.
    check(status == 200 and bool(names) and "echo" not in names and "error" in answer,
          "admin: a policy change through the API hides a tool from the caller (discovery and calls)",
          f"{names} {json.dumps(answer)[:300]}")

    # Undone through the API: the policy rolled back, the server deleted.
    blind, _, _ = _admin(http, base, "POST", "policy/rollback", {"version": version})
    check(blind == 428, "admin: a change without If-Match is refused (428)", str(blind))
    status, _, back = _admin(http, base, "POST", "policy/rollback", {"version": version},
                             {"If-Match": f'"{put.get("version")}"'})
    status2, _, versions = _admin(http, base, "GET", "policy/versions")
    check(status == 200 and versions.get("versions", [{}])[0].get("action") == f"rollback to {version}",
          "admin: the policy is rolled back to the version before, kept as a new version", f"{status} {back} {versions}")
    status, _, gone = _admin(http, base, "DELETE", "servers/fresh", headers={"If-Match": '"1"'})
    check(status == 200 and gone.get("deleted") is True, "admin: the server is deleted", f"{status} {gone}")
