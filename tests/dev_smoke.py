#!/usr/bin/env python3
"""`make dev` as a newcomer meets it: starts scripts/dev.sh (the existing
build) on workerd or, with --runtime spin, on the Spin host, then checks that the demo works out of the box:

  - the demo API key lists tools on /mcp (not server-everything's get-env);
  - the RFC 9728 metadata names the demo authorization server, a token from
    it (client credentials) is accepted;
  - minted upstream credentials work: notes' whoami verifies the one the
    gateway minted, against /.well-known/jwks.json;
  - the demo policy governs: get-sum's limit answers 429 on the sixth call,
    notes' purge is held for an approver, whom the admin key's inbox shows;
  - the admin key reads the policy through the admin API;
  - the agent API answers with the demo model through the official `openai`
    SDK (as the token's caller: the API key's get-sum budget is spent).

Usage: dev_smoke.py [--runtime workers|spin]   (needs ports 8787 and 3001-3005 free)
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
BASE = "http://127.0.0.1:8787"
FAILED: list[str] = []


def check(ok: bool, what: str, detail: str = "") -> None:
    print(f"{'ok' if ok else 'FAIL'}: dev: {what}{'' if ok else ' -- ' + detail[:400]}", flush=True)
    if not ok:
        FAILED.append(what)


def http(url: str, method: str = "GET", body=None, headers=None, form: bytes | None = None):
    data = form if form is not None else (json.dumps(body).encode() if body is not None else None)
    h = {"Accept": "application/json, text/event-stream", **(headers or {})}
    if body is not None:
        h["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    # The headers as urllib gives them, looked up without regard to case:
    # the Spin host sends lower-case names.
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def rpc(headers: dict, method: str, params: dict, rid: int = 1) -> tuple[int, dict]:
    """A stateless 2026-07-28 request on /mcp."""
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "dev-smoke", "version": "1"}}
    h = {**headers, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method}
    if "name" in params:
        h["Mcp-Name"] = params["name"]
    status, rh, raw = http(f"{BASE}/mcp", "POST", {"jsonrpc": "2.0", "id": rid, "method": method,
                                                    "params": {**params, "_meta": meta}}, h)
    text = raw.decode(errors="replace")
    if rh.get("Content-Type", "").startswith("text/event-stream"):
        data = [l[5:] for l in text.splitlines() if l.startswith("data:") and l[5:].strip()]
        text = data[-1] if data else "{}"
    try:
        return status, json.loads(text)
    except ValueError:
        return status, {"unparsed": text[:300]}


def main() -> int:
    import tempfile
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runtime", choices=["workers", "spin"], default="workers")
    args = ap.parse_args()
    env = {**os.environ, "MCP_EDGE_SKIP_BUILD": "1", "MCP_EDGE_RUNTIME": args.runtime}
    env.pop("MCP_EDGE_DEV_STATE", None)
    state = None
    if args.runtime == "workers":
        # A state directory of its own: counters from an earlier `make dev`
        # would otherwise count against this run's limit check. (The Spin
        # host's store lives in memory: every run starts empty.)
        state = tempfile.mkdtemp(prefix="mcp-edge-dev-smoke-")
        env["MCP_EDGE_DEV_STATE"] = state
    logname = f"dev-smoke-{args.runtime}.log"
    log = open(ROOT / "build" / logname, "w")
    dev = subprocess.Popen(["bash", "scripts/dev.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                # The gateway, the authorization server and both upstreams
                # (any HTTP answer: they take a few seconds to start).
                if http(f"{BASE}/healthz")[0] == 200 and http("http://127.0.0.1:3004/jwks")[0] == 200 \
                        and http("http://127.0.0.1:3001/mcp")[0] and http("http://127.0.0.1:3002/mcp")[0]:
                    break
            except OSError:
                pass
            if dev.poll() is not None:
                break
            time.sleep(1)
        secrets = json.loads((ROOT / "build" / "dev-secrets.json").read_text())
        user = {"X-API-Key": secrets["user_key"]}
        admin = {"X-API-Key": secrets["admin_key"]}
        status, listed = rpc(user, "tools/list", {})
        names = [t["name"] for t in listed.get("result", {}).get("tools", [])]
        check("everything__get-sum" in names and "notes__whoami" in names,
              "the demo API key lists the demo servers' tools on /mcp", f"{status} {listed}")
        check(bool(names) and "everything__get-env" not in names,
              "server-everything's get-env (its process environment) is hidden by the demo registry", str(names))
        status, _, raw = http(f"{BASE}/.well-known/oauth-protected-resource/mcp")
        meta = json.loads(raw or b"{}")
        check(meta.get("authorization_servers") == ["http://127.0.0.1:3004"],
              "the protected-resource metadata names the demo authorization server", raw.decode(errors="replace"))
        form = f"grant_type=client_credentials&resource={BASE}/mcp".encode()
        status, _, raw = http("http://127.0.0.1:3004/token", "POST", form=form, headers={
            "Authorization": "Basic ZGVtby1jbGllbnQ6ZGVtby1zZWNyZXQ=",
            "Content-Type": "application/x-www-form-urlencoded"})
        token = json.loads(raw or b"{}").get("access_token", "")
        status, who = rpc({"Authorization": f"Bearer {token}"}, "tools/call",
                          {"name": "notes__whoami", "arguments": {}})
        text = json.dumps(who.get("result", {}))
        check(bool(token) and "demo-client" in text,
              "a token from the demo authorization server is accepted, and notes verifies the minted credential",
              f"{status} {who}")
        status, _, raw = http(f"{BASE}/.well-known/jwks.json")
        check(status == 200 and b'"mcp-edge-dev"' in raw, "the development signing key's JWKS is served", str(status))
        answers = [rpc(user, "tools/call", {"name": "everything__get-sum", "arguments": {"a": 1, "b": 2}}, i)
                   for i in range(6)]
        check(all("result" in a[1] for a in answers[:5]) and answers[5][0] == 429,
              "the demo policy's get-sum limit refuses the sixth call in a minute (429)",
              str([a[0] for a in answers]))
        status, held = rpc(user, "tools/call", {"name": "notes__purge", "arguments": {"tag": "smoke"}})
        status, _, raw = http(f"{BASE}/approvals", headers=admin)
        inbox = json.loads(raw or b"{}")
        check(any(i.get("tool") == "purge" for i in inbox.get("approvals", [])),
              "notes' purge is held, and the admin key (an approver) finds it in the inbox",
              f"{json.dumps(held)[:200]} {raw[:300]!r}")
        status, _, raw = http(f"{BASE}/admin/policy", headers=admin)
        check(status == 200 and b"get-sum-per-minute" in raw, "the admin key reads the demo policy", str(status))
        status, _, raw = http(f"{BASE}/admin/policy", headers=user)
        check(status == 403, "the demo API key is no admin", str(status))
        import openai
        try:
            agent = openai.OpenAI(base_url=f"{BASE}/v1", api_key=token, max_retries=0, timeout=60)
            reply = agent.chat.completions.create(model="demo", messages=[{"role": "user", "content": "hi"}])
            said = reply.choices[0].message.content or ""
        except openai.OpenAIError as e:
            said = f"{type(e).__name__}: {e}"
        check("The sum of 2 and 3 is 5" in said and "agent says hi" in said,
              "the agent API answers with the demo model, its tools run through the gateway (openai SDK)", said)
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        dev.wait(timeout=30)
        log.close()
        if state:
            subprocess.run(["rm", "-rf", state])
    if FAILED:
        print((ROOT / "build" / logname).read_text()[-3000:])
    print(f"dev smoke ({args.runtime}): {len(FAILED)} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
