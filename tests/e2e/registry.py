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
