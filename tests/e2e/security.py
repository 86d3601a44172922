"""Security checks of the end-to-end suite (imported by run.py): issue 9's
items that cross the wire, on the real build (workerd or the Spin host), with
raw HTTP so every status and byte is visible. See SECURITY.md.

  1  approvers decide: a client declaring form elicitation is not asked and
     its call stays pending; one declaring URL elicitation is sent to the
     approval and its stream goes on only once an approver approved; an
     approver cannot approve their own call
  4  redaction: prompts (embedded resources included), JSON-RPC errors, log
     and progress notifications from notes carry no email address, on both
     endpoints
  5  a DNS-rebinding page (forged Host + Origin) is refused
  6  a token for /servers/notes/mcp, once used, does not open /mcp
  7  a tools/call without id is refused, never forwarded
  8  anonymous callers from two addresses are two callers; an API key and an
     OAuth token with the same subject reach notes as two identities (sub_id)
  10 each caller opens a bounded number of sessions; an upstream event larger
     than MAX_UPSTREAM_BYTES ends the call with a clean error
  -  an upstream answering with a redirect does not steer the call (its body
     and minted credential) to another host: the redirect is not followed
"""
from __future__ import annotations

import base64
import hashlib
import http.client as httpclient
import http.server
import json
import threading
import urllib.error
import urllib.parse
import urllib.request

SESSIONS_KEY = "mk_e2e_sessions_key"
ALICE_KEY = "mk_e2e_alice_key"
# The checks' own caller, so what other parts of the suite did (open
# approval questions, counters) does not decide their outcome.
SECURITY_KEY = "mk_e2e_security_key"
SESSIONS_PER_MINUTE = 120
MAX_UPSTREAM_BYTES = 1048576
ACCEPT = "application/json, text/event-stream"


def kv_entries(scope: str) -> list[dict]:
    """API keys: one that only opens sessions, and one whose subject is `alice`
    (the OAuth client's subject too)."""
    def key(k: str, record: dict) -> dict:
        return {"key": f"auth/apikeys/{hashlib.sha256(k.encode()).hexdigest()}", "value": json.dumps(record)}
    return [key(SESSIONS_KEY, {"subject": "e2e-sessions", "scopes": [scope]}),
            key(ALICE_KEY, {"subject": "alice", "scopes": [scope]}),
            key(SECURITY_KEY, {"subject": "e2e-security", "scopes": [scope]})]


class Bouncer:
    """A hostile upstream: every request is answered `307` to a trap on
    another port, which counts what reaches it (on 127.0.0.1, in threads)."""

    def __init__(self, free_port):
        self.hits = {"bouncer": 0, "trap": 0}
        self.port, self.trap_port = free_port(), free_port()
        self.trap_url = f"http://127.0.0.1:{self.trap_port}/mcp"
        for name, port in (("bouncer", self.port), ("trap", self.trap_port)):
            server = http.server.ThreadingHTTPServer(("127.0.0.1", port), self._handler(name))
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def _handler(self, name: str):
        bouncer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                bouncer.hits[name] += 1
                self.rfile.read(int(self.headers.get("content-length") or 0))
                if name == "bouncer":
                    self.send_response(307)
                    self.send_header("Location", bouncer.trap_url)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    body = b'{"jsonrpc":"2.0","id":1,"result":{}}'
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args):
                pass
        return Handler

    def registry_entry(self) -> dict:
        """The bouncer as a server only the security caller may use, with a
        minted credential (what a followed redirect would carry away)."""
        return {"description": "answers every request with a redirect", "group": "traps",
                "endpoints": [{"region": "us", "url": f"http://127.0.0.1:{self.port}/mcp"}], "timeout_ms": 5000,
                "credentials": {"type": "jwt"}}


# Only the security checks' caller may use the traps group.
TRAPS_RULE = {"name": "security-traps", "effect": "allow", "subjects": {"service_accounts": ["e2e-security"]},
              "groups": ["traps"]}


def redirects(check, http, base: str, api_key: str, bouncer: Bouncer) -> None:
    status, h, body = http(f"{base}/servers/bouncer/mcp", "POST", _init("e2e-redirect"),
                           _headers({"X-API-Key": api_key}))
    refused = status != 200 or b'"error"' in body
    check(bouncer.hits["bouncer"] >= 1 and bouncer.hits["trap"] == 0 and refused,
          "an upstream's redirect is not followed: the call never reaches the host it points at, the caller "
          "gets an error", f"{status} {body[:200]!r}, hits {bouncer.hits}")


def _headers(extra: dict | None = None) -> dict:
    return {"Content-Type": "application/json", "Accept": ACCEPT, **(extra or {})}


def _init(client: str, capabilities: dict | None = None) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": capabilities or {},
        "clientInfo": {"name": client, "version": "1"}}}).encode()


class Session:
    """One MCP session over raw HTTP."""

    def __init__(self, http, url: str, auth: dict, capabilities: dict | None = None, client: str = "e2e-security"):
        self.http, self.url, self.auth = http, url, auth
        status, h, body = http(url, "POST", _init(client, capabilities), _headers(auth))
        self.status, self.id = status, h.get("mcp-session-id", "")
        self.headers = _headers({**auth, "Mcp-Session-Id": self.id, "MCP-Protocol-Version": "2025-11-25"})
        if status == 200:
            http(url, "POST", json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode(), self.headers)

    def post(self, message: dict) -> tuple[int, dict, bytes]:
        return self.http(self.url, "POST", json.dumps(message).encode(), self.headers)

    def call(self, tool: str, arguments: dict | None = None, meta: dict | None = None) -> tuple[int, dict, bytes]:
        params = {"name": tool, "arguments": arguments or {}}
        if meta:
            params["_meta"] = meta
        return self.post({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": params})


def _text(response: dict) -> str:
    return ((response.get("result") or {}).get("content") or [{}])[0].get("text", "")


def _sse_messages(body: bytes) -> list[dict]:
    return [json.loads(line[5:]) for line in body.decode(errors="replace").splitlines()
            if line.startswith("data:") and line[5:].strip()]


def approvers_decide(check, http, response_of, base: str, api_key: str, approver_key: str) -> None:
    url = f"{base}/mcp"
    key = {"X-API-Key": api_key}

    def purged(tag: str) -> str:
        return _text(response_of(*Session(http, url, key).call("notes__purged", {"tag": tag})))

    form = Session(http, url, key, {"elicitation": {}})
    status, h, body = form.call("notes__purge", {"tag": "sec-form"})
    meta = (response_of(status, h, body).get("result") or {}).get("_meta", {}).get("mcp-edge/approval", {})
    check(not h.get("content-type", "").startswith("text/event-stream") and meta.get("status") == "pending"
          and meta.get("decider") == "approvers" and purged("sec-form") == "0",
          "approvers decide: a client with elicitation is not asked; the call stays pending", body[:300])

    # URL elicitation: read the question off the open stream, approve, read on.
    sess = Session(http, url, key, {"elicitation": {"form": {}, "url": {}}})
    parts = urllib.parse.urlsplit(url)
    conn = _Stream(parts.hostname, parts.port)
    call = {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
            "params": {"name": "notes__purge", "arguments": {"tag": "sec-url"}}}
    question = conn.open_stream(parts.path, json.dumps(call).encode(), sess.headers)
    params = (question or {}).get("params", {})
    approval_url = params.get("url", "")
    ok = params.get("mode") == "url" and "/approvals/ap_" in approval_url
    consent = {"jsonrpc": "2.0", "id": (question or {}).get("id"), "result": {"action": "accept"}}
    status_answer = sess.post(consent)[0]
    still = purged("sec-url")
    status_approve, _, approved = http(approval_url or f"{base}/approvals/none", "POST",
                                       json.dumps({"decision": "approve"}).encode(),
                                       {"Content-Type": "application/json", "X-API-Key": approver_key})
    rest = _sse_messages(conn.read_rest())
    methods = [m.get("method") for m in rest]
    check(ok and status_answer == 202 and still == "0" and status_approve == 200
          and "notifications/elicitation/complete" in methods and _text(rest[-1] if rest else {}) == "purged sec-url"
          and purged("sec-url") == "1",
          "approvers decide: URL elicitation points to the approval; the call runs once an approver approved",
          f"question={question} consent={status_answer} before={still} approve={status_approve} {approved[:200]!r} rest={rest}")

    own = Session(http, url, {"X-API-Key": approver_key})
    pending = response_of(*own.call("notes__purge", {"tag": "sec-self"}))
    own_url = (pending.get("result") or {}).get("_meta", {}).get("mcp-edge/approval", {}).get("url", f"{base}/approvals/none")
    status, _, body = http(own_url, "POST", json.dumps({"decision": "approve"}).encode(),
                           {"Content-Type": "application/json", "X-API-Key": approver_key})
    check(status == 403 and b"requester may not approve" in body and purged("sec-self") == "0",
          "approvers decide: an approver cannot approve their own call", f"{status} {body[:200]!r}")


class _Stream:
    """A POST whose SSE answer is read in two parts: the first event, then the rest."""

    def __init__(self, host: str, port: int):
        self.conn = httpclient.HTTPConnection(host, port, timeout=60)
        self.resp = None

    def open_stream(self, path: str, body: bytes, headers: dict) -> dict | None:
        self.conn.request("POST", path, body, headers)
        self.resp = self.resp or self.conn.getresponse()
        data = b""
        while b"\n\n" not in data:
            line = self.resp.readline()
            if not line:
                break
            data += line.replace(b"\r\n", b"\n")
        messages = _sse_messages(data)
        return messages[0] if messages else None

    def read_rest(self) -> bytes:
        try:
            return self.resp.read() if self.resp else b""
        finally:
            self.conn.close()


def redaction(check, http, response_of, base: str, api_key: str) -> None:
    key = {"X-API-Key": api_key}
    for path, prefix in [("/mcp", "notes__"), ("/servers/notes/mcp", "")]:
        s = Session(http, f"{base}{path}", key)
        status, h, body = s.post({"jsonrpc": "2.0", "id": 3, "method": "prompts/get", "params": {"name": f"{prefix}contact"}})
        check(status == 200 and b"@corp.example" not in body and body.count(b"[EMAIL]") >= 2,
              f"redaction on {path}: prompts/get, embedded resource included", body[:400])
        status, h, body = s.call(f"{prefix}fail_with_email")
        err = response_of(status, h, body).get("error", {})
        check(b"@corp.example" not in body and "[EMAIL]" in err.get("message", "")
              and "[EMAIL]" in json.dumps(err.get("data")),
              f"redaction on {path}: a JSON-RPC error's message and data", body[:400])
        status, h, body = s.call(f"{prefix}log_email", meta={"progressToken": "p1"})
        methods = [m.get("method") for m in _sse_messages(body)]
        check(b"@corp.example" not in body and body.count(b"[EMAIL]") >= 2
              and "notifications/message" in methods and "notifications/progress" in methods,
              f"redaction on {path}: log and progress notifications", body[:600])


def rebinding(check, http, base: str, api_key: str) -> None:
    port = urllib.parse.urlsplit(base).port
    status, _, body = http(f"{base}/mcp", "POST", _init("rebinding"),
                           _headers({"X-API-Key": api_key, "Host": f"evil.test:{port}",
                                     "Origin": f"http://evil.test:{port}"}))
    check(status == 403, "DNS rebinding: forged Host + Origin -> 403", f"{status} {body[:200]!r}")


def client_token(http, as_issuer: str, client: tuple[str, str], scope: str, resource: str) -> str:
    """An access token from the authorization server (client credentials, RFC 8707 resource)."""
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": scope, "resource": resource}).encode()
    basic = base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()
    status, _, body = http(f"{as_issuer}/token", "POST", form,
                           {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic}"})
    return json.loads(body).get("access_token", "") if status == 200 else ""


def token_audience(check, http, base: str, as_issuer: str, client: tuple[str, str], scope: str) -> None:
    token = client_token(http, as_issuer, client, scope, f"{base}/servers/notes/mcp")
    auth = {"Authorization": f"Bearer {token}"}
    first = http(f"{base}/servers/notes/mcp", "POST", _init("aud"), _headers(auth))[0]
    second, h, body = http(f"{base}/mcp", "POST", _init("aud"), _headers(auth))
    check(first == 200 and second == 401 and "audience" in body.decode(errors="replace"),
          "token audience: a token for /servers/notes/mcp, once used, does not open /mcp",
          f"notes={first} /mcp={second} {body[:200]!r}")


def smuggled(check, http, response_of, base: str, api_key: str) -> None:
    key = {"X-API-Key": api_key}
    s = Session(http, f"{base}/servers/notes/mcp", key)
    status, _, body = s.post({"jsonrpc": "2.0", "method": "tools/call",
                              "params": {"name": "purge", "arguments": {"tag": "sec-smuggle"}}})
    count = _text(response_of(*Session(http, f"{base}/mcp", key).call("notes__purged", {"tag": "sec-smuggle"})))
    check(status == 400 and b"needs an id" in body and count == "0",
          "a tools/call without id is refused (400), never forwarded", f"{status} {body[:200]!r} purged={count}")


def identities(check, http, response_of, base: str, as_issuer: str, client: tuple[str, str], scope: str,
               addresses, open_limit: int, forged: dict | None) -> None:
    """`addresses(name)` gives the `http` function and headers that make a
    request come from client address `name` (a different loopback source
    address on Spin, the address Cloudflare would report on workerd).
    `forged`: a header by which a client claims another address where the
    platform reports the real one after it (Spin's `spin-client-addr`)."""
    url = f"{base}/servers/open/mcp"
    a_http, a_headers = addresses("a")
    b_http, b_headers = addresses("b")
    a = Session(a_http, url, a_headers)
    results = [response_of(*a.call("echo", {"message": f"{i}"})) for i in range(open_limit + 1)]
    passed = [r for r in results if "result" in r]
    limited = results[-1].get("error", {}).get("code") == -32029
    b = Session(b_http, url, b_headers)
    theirs = response_of(*b.call("echo", {"message": "b"}))
    borrowed = b_http(url, "POST", json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).encode(),
                      {**a.headers, **b_headers})[0]
    check(a.status == 200 and len(passed) == open_limit and limited and "result" in theirs and borrowed == 404,
          "identities: anonymous callers from two addresses are two callers (limits, sessions)",
          f"a: {len(passed)} passed then {results[-1]}; b: {theirs}; b with a's session: {borrowed}")
    if forged:
        disguised = Session(a_http, url, {**a_headers, **forged})
        again = response_of(*disguised.call("echo", {"message": "disguised"}))
        check(again.get("error", {}).get("code") == -32029,
              "identities: a client naming another address in spin-client-addr is still itself",
              str(again)[:300])

    token = client_token(http, as_issuer, client, scope, f"{base}/mcp")
    via_key = _text(response_of(*Session(http, f"{base}/mcp", {"X-API-Key": ALICE_KEY}).call("notes__whois")))
    via_jwt = _text(response_of(*Session(http, f"{base}/mcp", {"Authorization": f"Bearer {token}"}).call("notes__whois")))
    try:
        k, j = json.loads(via_key), json.loads(via_jwt)
    except json.JSONDecodeError:
        k, j = {}, {}
    check(k == {"format": "opaque", "id": "apikey|alice"} and j == {"format": "iss_sub", "iss": as_issuer, "sub": "alice"},
          "identities: an API key and an OAuth token for `alice` reach notes as two identities (sub_id)",
          f"api key: {via_key!r}; oauth: {via_jwt!r}")


def bounded(check, http, response_of, base: str, api_key: str) -> None:
    url = f"{base}/mcp"
    statuses = []
    for _ in range(SESSIONS_PER_MINUTE + 60):
        status, h, body = http(url, "POST", _init("sessions"), _headers({"X-API-Key": SESSIONS_KEY}))
        statuses.append(status)
        if status != 200:
            break
    opened = statuses.count(200)
    check(statuses[-1] == 429 and SESSIONS_PER_MINUTE <= opened < SESSIONS_PER_MINUTE + 60
          and h.get("retry-after", "").isdigit() and b"sessions-per-minute" in body,
          f"bounded: one caller opens {SESSIONS_PER_MINUTE} sessions a minute, then 429 with Retry-After",
          f"{opened} opened, then {statuses[-1]} {body[:200]!r}")
    s = Session(http, url, {"X-API-Key": api_key})
    status, h, body = s.call("notes__huge", {"bytes": 2 * MAX_UPSTREAM_BYTES})
    last = response_of(status, h, body)
    check(status == 200 and last.get("error", {}).get("code") == -32001
          and "MAX_UPSTREAM_BYTES" in last.get("error", {}).get("message", "") and len(body) < 100_000,
          "bounded: an upstream event larger than MAX_UPSTREAM_BYTES ends the call with a clean error",
          f"{status} {len(body)} bytes, last {str(last)[:200]}")


def loopback_addresses():
    """On the Spin host the client address is the peer's: requests from
    127.0.0.2 and 127.0.0.3 (any 127/8 address is this machine)."""
    def sender(source: str):
        class Conn(httpclient.HTTPConnection):
            def __init__(self, *args, **kwargs):
                kwargs["source_address"] = (source, 0)
                super().__init__(*args, **kwargs)

        class Handler(urllib.request.HTTPHandler):
            def http_open(self, req):
                return self.do_open(Conn, req)

        opener = urllib.request.build_opener(Handler())

        def send(url, method, data, headers):
            req = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with opener.open(req, timeout=30) as r:
                    return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
            except urllib.error.HTTPError as e:
                return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()
        return send

    sources = {"a": "127.0.0.2", "b": "127.0.0.3"}
    return lambda name: (sender(sources[name]), {})


def cf_addresses(http):
    """On workerd the client address is `CF-Connecting-IP`, which Cloudflare's
    edge sets on every request; `wrangler dev` passes what the client sent,
    so the test plays the edge."""
    ips = {"a": "203.0.113.10", "b": "198.51.100.20"}
    return lambda name: (http, {"CF-Connecting-IP": ips[name]})


def run(check, http, response_of, base: str, approver_key: str, as_issuer: str,
        client: tuple[str, str], scope: str, target: str, open_limit: int, bouncer: Bouncer) -> None:
    api_key = SECURITY_KEY
    redirects(check, http, base, api_key, bouncer)
    approvers_decide(check, http, response_of, base, api_key, approver_key)
    redaction(check, http, response_of, base, api_key)
    rebinding(check, http, base, api_key)
    token_audience(check, http, base, as_issuer, client, scope)
    smuggled(check, http, response_of, base, api_key)
    addresses = loopback_addresses() if target == "spin" else cf_addresses(http)
    forged = {"spin-client-addr": "198.51.100.77:1"} if target == "spin" else None
    identities(check, http, response_of, base, as_issuer, client, scope, addresses, open_limit, forged)
    bounded(check, http, response_of, base, api_key)
