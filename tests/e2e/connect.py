"""Per-user connections to a third-party MCP server (imported by run.py).

The third party is tests/e2e/auth/user_oauth_server.mjs: an MCP server with
one tool, `whoami`, behind its own OAuth 2.1 authorization server
(authorization code + PKCE, refresh tokens rotated on every use, revocation,
RFC 8707 resources, JWT access tokens of TTL seconds). The gateway connects
each user to it once and then calls it with that user's own token.

Two callers, alice and bob (API keys, distinct principals, allowed the
`thirdparty` server by RULE), each with their own "browser" (cookie jar):

  - before connecting, a call of `thirdparty__whoami` is a tool error with
    a connect URL (`/connect/thirdparty?ticket=...`), also under
    `_meta["mcp-edge/connect"]`; a forged ticket, a ticket for another
    server and no credential at all are refused;
  - alice opens her connect URL (the ticket names her), bob opens
    `/connect/thirdparty` with his API key as bearer: each is sent to the
    authorization server with PKCE (S256), state and the resource, signs in
    there as themselves and comes back to `/connect/{server}/callback` -> "Connected";
  - a callback presented by another browser than the one that started the
    flow is refused; replaying a finished callback (from another browser, or
    the same one) is refused with a reason; no code is redeemed twice;
  - each caller's call returns their own identity, never the other's, on
    /mcp and /servers/thirdparty/mcp;
  - `GET /connections` and `GET /admin/connections` list the connections
    and no token;
  - past the access token's expiry the calls still work: the gateway
    refreshes (the AS counts refresh grants), twice, so the rotated refresh
    token was kept;
  - `DELETE /connections/thirdparty` (alice) and
    `DELETE /admin/connections/{id}` (bob's, by the operator, with the id
    the listing gives) revoke at the AS and make the next call ask to
    connect again, while the other user's connection keeps working; alice
    reconnects, and
    past expiry four concurrent calls of hers all work (a spent refresh
    token presented again would make the AS revoke the whole grant);
  - the gateway sent the RFC 8707 resource on every authorization and token
    request (the MCP authorization spec requires it);
  - no access or refresh token the AS issued appears in the gateway's
    stored state (Workers: every file under the wrangler state directory),
    its log, or the telemetry it exported.

tests/e2e/auth/user_oauth_selftest.py checks the fixture alone, playing the
gateway's part (authorize with PKCE, redeem, refresh, revoke) by hand.
"""
from __future__ import annotations

import hashlib
import html
import http.cookiejar
import json
import pathlib
import re
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

SERVER = "thirdparty"
GROUP = "connect"
CLIENT_ID = "gw-client"
SECRET_VAR = "THIRDPARTY_CLIENT_SECRET"
# Fresh per run. The secret is sent form-urlencoded inside Basic auth: keep
# it to unreserved characters so no encoding question arises.
CLIENT_SECRET = "tp-secret-" + secrets.token_hex(16)
CONNECTIONS_KEY = secrets.token_urlsafe(36)
SCOPES = ["openid", "offline_access"]
TTL = 5
ALICE_KEY = "mk_e2e_conn_alice_key"
BOB_KEY = "mk_e2e_conn_bob_key"
ALICE = ("e2e-conn-alice", "alice")  # (API key subject, login at the third party)
BOB = ("e2e-conn-bob", "bob")
RULE = {"name": "connect-thirdparty", "effect": "allow",
        "subjects": {"service_accounts": [ALICE[0], BOB[0]]}, "groups": [GROUP]}
# What no telemetry export may hold.
NEVER = [CLIENT_SECRET, CONNECTIONS_KEY, ALICE_KEY, BOB_KEY]
TOOL = f"{SERVER}__whoami"
ACCEPT = "application/json, text/event-stream"
FIXTURE = pathlib.Path(__file__).resolve().parent / "auth" / "user_oauth_server.mjs"


# ------------------------------------------------------------------ wiring --

def registry_entry(mcp_port: int, as_port: int) -> dict:
    """The `servers/thirdparty` document. A confidential client names its
    authorization server (the gateway never sends a client secret where an
    upstream's metadata points); the server's own RFC 9728 metadata names the
    same one."""
    return {"id": SERVER, "description": "a third-party MCP server, each user with their own OAuth token",
            "group": GROUP, "era": "legacy", "timeout_ms": 10000,
            "endpoints": [{"region": "us", "url": f"http://127.0.0.1:{mcp_port}/mcp"}],
            "credentials": {"type": "oauth", "client_id": CLIENT_ID, "client_secret": SECRET_VAR,
                            "authorization_server": f"http://127.0.0.1:{as_port}", "scopes": SCOPES}}


def kv_entries(scope: str) -> list[dict]:
    """alice's and bob's API keys (service accounts RULE allows the server)."""
    def key(k: str, subject: str) -> dict:
        return {"key": f"auth/apikeys/{hashlib.sha256(k.encode()).hexdigest()}",
                "value": json.dumps({"subject": subject, "teams": ["connect"], "scopes": [scope]})}
    return [key(ALICE_KEY, ALICE[0]), key(BOB_KEY, BOB[0])]


def gateway_vars() -> dict[str, str]:
    return {SECRET_VAR: CLIENT_SECRET, "CONNECTIONS_KEY": CONNECTIONS_KEY}


def command(node: str, as_port: int, mcp_port: int, base: str, tokens_file: pathlib.Path) -> list[str]:
    return [node, str(FIXTURE), "--port", str(as_port), "--mcp-port", str(mcp_port),
            "--client", f"{CLIENT_ID}:{CLIENT_SECRET}", "--redirect", f"{base}/connect/{SERVER}/callback",
            "--ttl", str(TTL), "--tokens-file", str(tokens_file)]


# ----------------------------------------------------------------- browser --

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args, **_kwargs):
        return None


class Browser:
    """A cookie jar and manual redirects, like one user's browser. Loopback
    http counts as a secure context (as browsers treat localhost), so a
    `Secure` cookie is still sent back."""

    def __init__(self) -> None:
        policy = http.cookiejar.DefaultCookiePolicy(secure_protocols=("https", "wss", "http"))
        self.jar = http.cookiejar.CookieJar(policy)
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())

    def request(self, url: str, method: str = "GET", data: bytes | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes, list[str]]:
        """(status, headers, body, Set-Cookie values)."""
        try:
            req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
            with self.opener.open(req, timeout=30) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read(), r.headers.get_all("Set-Cookie") or []
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read(), e.headers.get_all("Set-Cookie") or []
        except (OSError, ValueError) as e:  # refused, reset, or not a URL at all
            return 0, {}, repr(e).encode(), []

    def sign_in(self, url: str, login: str, stop: str | None = None, headers: dict | None = None,
                hops: int = 12) -> dict:
        """Follows redirects from `url` (`headers` on the first request only),
        signs in as `login` where a login form is shown, and stops at the
        first URL starting with `stop` (not requested) or at a page that is
        not a redirect. Returns what happened."""
        trail, first = [], None
        for _ in range(hops):
            if stop and url.startswith(stop):
                return {"stopped_at": url, "trail": trail, "first": first}
            status, h, body, cookies = self.request(url, headers=headers if not trail else None)
            trail.append(f"{status} {url[:120]}")
            if first is None:
                first = {"status": status, "location": h.get("location", ""), "cookies": cookies, "body": body}
            if status in (301, 302, 303, 307, 308) and h.get("location"):
                url = urllib.parse.urljoin(url, h["location"])
                continue
            form = re.search(rb'<form[^>]*action="([^"]+)"', body) if status == 200 else None
            if form and b'name="confirm"' in body:
                # The gateway's page naming who connects what: press its
                # button (a same-site POST, as a browser sends it).
                action = urllib.parse.urljoin(url, form.group(1).decode())
                fields = dict((k.decode(), html.unescape(v.decode())) for k, v in
                              re.findall(rb'<input type="hidden" name="([^"]+)" value="([^"]*)"', body))
                origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(action))
                status, h, body, cookies = self.request(
                    action, "POST", urllib.parse.urlencode(fields).encode(),
                    {"Content-Type": "application/x-www-form-urlencoded", "Origin": origin})
                trail.append(f"{status} POST {action[:120]} (confirmed)")
                first = {"status": status, "location": h.get("location", ""), "cookies": cookies, "body": body,
                         "page": True}
                if status in (302, 303) and h.get("location"):
                    url = urllib.parse.urljoin(action, h["location"])
                    continue
                return {"status": status, "body": body, "url": url, "trail": trail, "first": first}
            if form and b'name="login"' in body:
                action = urllib.parse.urljoin(url, form.group(1).decode())
                status, h, body, _ = self.request(action, "POST", urllib.parse.urlencode({"login": login}).encode(),
                                                  {"Content-Type": "application/x-www-form-urlencoded"})
                trail.append(f"{status} POST {action[:120]} login={login}")
                if status in (302, 303) and h.get("location"):
                    url = urllib.parse.urljoin(action, h["location"])
                    continue
            return {"status": status, "body": body, "url": url, "trail": trail, "first": first}
        return {"status": 0, "body": b"too many redirects", "url": url, "trail": trail, "first": first}


# ------------------------------------------------------------------ helpers --

def _text(body: bytes, n: int = 300) -> str:
    return body[:n].decode(errors="replace")


def _get_json(url: str, headers: dict | None = None, method: str = "GET") -> tuple[int, dict]:
    status, _, body, _ = Browser().request(url, method, None, {"Accept": "application/json", **(headers or {})})
    try:
        return status, json.loads(body) if body else {}
    except ValueError:
        return status, {"unparsed": _text(body)}


def _bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def _tokens(tokens_file: pathlib.Path) -> list[str]:
    try:
        return sorted({t for t in tokens_file.read_text().split() if t})
    except OSError:
        return []


def _leaks(tokens: list[str], blob: bytes) -> list[str]:
    """Fingerprints of the tokens found in `blob` (never the tokens themselves)."""
    return [hashlib.sha256(t.encode()).hexdigest()[:8] for t in tokens if t.encode() in blob]


def _whoami(result: dict) -> dict:
    if isinstance(result.get("structuredContent"), dict):
        return result["structuredContent"]
    try:
        return json.loads(result.get("content", [{}])[0].get("text", ""))
    except (ValueError, AttributeError, IndexError):
        return {}


def _binding(set_cookie: str) -> bool:
    """Whether a Set-Cookie value is the connect flow's browser binding:
    `mcp-edge-connect`, or `mcp-edge-connect-{server}` (one per server, so
    flows to two servers can run side by side)."""
    name = set_cookie.split("=", 1)[0].strip()
    return name in ("mcp-edge-connect", f"mcp-edge-connect-{SERVER}")


def _prompt_text(result: dict) -> str:
    return " ".join(c.get("text", "") for c in result.get("content", []) if isinstance(c, dict))


class Caller:
    """One API-key caller's MCP session on the gateway (legacy, /mcp by default)."""

    def __init__(self, http, response_of, open_session, base: str, key: str, name: str, path: str = "/mcp"):
        self.http, self.response_of, self.url, self.key = http, response_of, f"{base}{path}", key
        self.headers = open_session(http, self.url, key, f"e2e-connect-{name}")
        http(self.url, "POST", json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode(),
             self.headers)
        self.next_id = 1

    def call(self, tool: str = TOOL) -> dict:
        self.next_id += 1
        body = {"jsonrpc": "2.0", "id": self.next_id, "method": "tools/call", "params": {"name": tool, "arguments": {}}}
        status, headers, raw = self.http(self.url, "POST", json.dumps(body).encode(), self.headers)
        try:
            return self.response_of(status, headers, raw)
        except ValueError:
            return {"http_status": status, "unparsed": _text(raw)}


# --------------------------------------------------------------- the checks --

def run(check, http, response_of, open_session, base: str, as_port: int, mcp_port: int,
        tokens_file: pathlib.Path, admin_key: str, target: str, workdir: pathlib.Path, receiver,
        gw_log: pathlib.Path) -> None:
    issuer = f"http://127.0.0.1:{as_port}"
    resource = f"http://127.0.0.1:{mcp_port}/mcp"
    callback = f"{base}/connect/{SERVER}/callback"
    connect_prefix = f"{base}/connect/{SERVER}?ticket="

    def stats() -> dict:
        return _get_json(f"http://127.0.0.1:{mcp_port}/stats")[1]

    def poll_stats(pred, timeout: float = 8.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            s = stats()
            if pred(s) or time.monotonic() > deadline:
                return s
            time.sleep(0.25)

    def prompt_of(answer: dict) -> tuple[bool, str, str]:
        """(asks to connect as a tool error, the connect URL, detail). The URL
        is also taken from a JSON-RPC error's data (URL elicitation, -32042),
        which fails the check but lets the flows after it run."""
        result = answer.get("result", {})
        found = re.search(re.escape(connect_prefix) + r"[A-Za-z0-9._~%-]+", _prompt_text(result))
        url = found.group(0) if found else ""
        meta = (result.get("_meta") or {}).get("mcp-edge/connect") or {}
        ok = (result.get("isError") is True and bool(url) and meta.get("server") == SERVER
              and meta.get("url") == url)
        if not url:
            data = (answer.get("error") or {}).get("data") or {}
            url = str((data.get("mcp-edge/connect") or {}).get("url", ""))
        return ok, url if url.startswith(connect_prefix) else "", json.dumps(answer)[:500]

    before = stats()
    alice = Caller(http, response_of, open_session, base, ALICE_KEY, "alice")
    bob = Caller(http, response_of, open_session, base, BOB_KEY, "bob")

    # 1. Not connected yet: the call asks to connect, with a URL for the caller.
    ok_a, alice_url, detail_a = prompt_of(alice.call())
    ok_b, bob_url, detail_b = prompt_of(bob.call())
    check(ok_a, "connect: before connecting, a call is a tool error with a connect URL (text and "
                "_meta mcp-edge/connect)", detail_a)
    check(ok_b and bob_url != alice_url, "connect: each caller gets their own connect URL", detail_b)

    # 2. Refused starts: a forged ticket, another server's, no credential.
    forged = Browser().request(f"{connect_prefix}{'A' * 40}.{'B' * 43}")
    ticket = urllib.parse.urlsplit(alice_url).query
    elsewhere = Browser().request(f"{base}/connect/notes?{ticket}")
    anonymous = Browser().request(f"{base}/connect/{SERVER}")
    refused = [r for r in (forged, elsewhere, anonymous)
               if 400 <= r[0] < 500 and not any(_binding(c) for c in r[3])]
    check(len(refused) == 3 and anonymous[0] == 401,
          "connect: a forged ticket, a ticket at another server's connect URL and no credential at all are refused "
          "(4xx, no cookie; 401 without a credential)",
          f"forged {forged[0]} {_text(forged[2], 120)!r}, elsewhere {elsewhere[0]}, anonymous {anonymous[0]}")

    # 3. alice connects from her connect URL (the ticket names her).
    alice_browser, bob_browser = Browser(), Browser()
    flow_a = alice_browser.sign_in(alice_url, ALICE[1], stop=callback)
    first = flow_a.get("first") or {}
    location = first.get("location", "")
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    cookie = [c for c in first.get("cookies", []) if _binding(c)]
    attrs = [a.strip().lower() for a in (cookie[0].split(";")[1:] if cookie else [])]
    check(first.get("status") in (302, 303) and location.startswith(f"{issuer}/auth?"),
          "connect: the connect URL answers a redirect to the third party's authorization endpoint "
          "(its metadata read at RFC 8414 / OpenID well-known URLs)", f"{first.get('status')} {location[:200]}")
    check(bool(cookie) and "path=/connect" in attrs and "httponly" in attrs,
          "connect: ... and sets the browser-binding cookie mcp-edge-connect[-SERVER] (Path=/connect, HttpOnly)",
          str(first.get("cookies")))
    check(q.get("response_type") == "code" and q.get("client_id") == CLIENT_ID and q.get("redirect_uri") == callback
          and q.get("code_challenge_method") == "S256" and len(q.get("code_challenge", "")) >= 43
          and len(q.get("state", "")) >= 16 and q.get("resource") == resource
          and set(SCOPES) <= set(q.get("scope", "").split()),
          "connect: the authorization request has code, the client, the callback, PKCE S256, a state, "
          "the resource and the scopes", json.dumps(q))
    alice_callback = flow_a.get("stopped_at", "")
    done_a = alice_browser.sign_in(alice_callback, ALICE[1]) if alice_callback else {"status": 0, "body": b""}
    check(done_a.get("status") == 200 and b"Connected" in done_a.get("body", b""),
          "connect: alice signs in at the third party and the callback says Connected",
          f"{done_a.get('status')} {_text(done_a.get('body', b''))!r} trail {flow_a.get('trail')}")

    # 4. bob connects with his API key as bearer, in his own browser.
    flow_b = bob_browser.sign_in(f"{base}/connect/{SERVER}", BOB[1], stop=callback, headers=_bearer(BOB_KEY))
    first_b = flow_b.get("first") or {}
    bob_callback = flow_b.get("stopped_at", "")
    done_b = bob_browser.sign_in(bob_callback, BOB[1]) if bob_callback else {"status": 0, "body": b""}
    check(first_b.get("status") in (302, 303)
          and any(_binding(c) for c in first_b.get("cookies", []))
          and done_b.get("status") == 200 and b"Connected" in done_b.get("body", b""),
          "connect: bob connects from GET /connect/thirdparty with his API key as bearer",
          f"{first_b.get('status')} {first_b.get('cookies')} -> {done_b.get('status')} "
          f"{_text(done_b.get('body', b''))!r} trail {flow_b.get('trail')}")
    after_connect = poll_stats(lambda s: s.get("code_grants", 0) >= before.get("code_grants", 0) + 2)

    # 5. The flow is bound to the browser that started it: alice starts
    # another one (bearer) and signs in, and a different browser presents
    # the callback before hers does (the flow is then left unfinished).
    started = Browser()
    flow_x = started.sign_in(f"{base}/connect/{SERVER}", ALICE[1], stop=callback, headers=_bearer(ALICE_KEY))
    stolen = Browser().request(flow_x["stopped_at"]) if flow_x.get("stopped_at") else (0, {}, b"", [])
    check(bool(flow_x.get("stopped_at")) and 400 <= stolen[0] < 500 and stolen[2].strip()
          and b"Connected" not in stolen[2],
          "connect: a callback presented by another browser than the one that started the flow is refused (4xx) "
          "with a reason", f"{stolen[0]} {_text(stolen[2])!r} trail {flow_x.get('trail')}")

    # 6. Replays of alice's finished callback: another browser, then her own.
    elsewhere = Browser().request(alice_callback) if alice_callback else (0, {}, b"", [])
    again = alice_browser.request(alice_callback) if alice_callback else (0, {}, b"", [])
    check(400 <= elsewhere[0] < 500 and elsewhere[2].strip() and b"Connected" not in elsewhere[2],
          "connect: the callback replayed from another browser is refused (4xx) with a reason",
          f"{elsewhere[0]} {_text(elsewhere[2])!r}")
    check(400 <= again[0] < 500 and b"Connected" not in again[2],
          "connect: the callback replayed in the same browser is refused (state is one-time)",
          f"{again[0]} {_text(again[2])!r}")
    replayed = stats()
    check(replayed.get("code_grants") == after_connect.get("code_grants")
          == before.get("code_grants", 0) + 2,
          "connect: each code was redeemed once: two connections, two code grants, none for the refused callbacks",
          f"before {before.get('code_grants')}, connected {after_connect.get('code_grants')}, "
          f"after replays {replayed.get('code_grants')}")

    # 7. Each caller sees their own identity, never the other's.
    def identity(caller: Caller) -> tuple[dict, str]:
        answer = caller.call()
        result = answer.get("result", {})
        who = _whoami(result) if not result.get("isError") else {}
        return who, json.dumps(answer)[:400]

    who_a, detail_a = identity(alice)
    who_b, detail_b = identity(bob)
    check(who_a.get("sub") == ALICE[1] and who_a.get("client_id") == CLIENT_ID,
          "connect: alice's call reaches the third party with her own token (sub alice), on the session opened "
          "before she connected", detail_a)
    check(who_b.get("sub") == BOB[1] and who_a.get("token_fingerprint") != who_b.get("token_fingerprint"),
          "connect: bob's call carries his own token (sub bob), never alice's", detail_b)
    direct = Caller(http, response_of, open_session, base, ALICE_KEY, "alice-direct", f"/servers/{SERVER}/mcp")
    answer = direct.call("whoami")
    who_d, detail_d = _whoami(answer.get("result", {})), json.dumps(answer)[:400]
    check(who_d.get("sub") == ALICE[1], "connect: alice's call on /servers/thirdparty/mcp carries her token too",
          detail_d)

    # 8. What each user and the operator see: connections, never tokens.
    tokens = _tokens(tokens_file)
    status, mine = _get_json(f"{base}/connections", _bearer(ALICE_KEY))
    listed = [c for c in mine.get("connections", []) if isinstance(c, dict)]
    raw = json.dumps(mine).encode()
    check(status == 200 and [c.get("server") for c in listed] == [SERVER] and not _leaks(tokens, raw)
          and BOB[0] not in raw.decode() and len(tokens) >= 4,
          "connect: GET /connections lists alice's connection, not bob's, and no token",
          f"{status} {raw[:400]!r} ({len(tokens)} tokens known, leaked {_leaks(tokens, raw)})")
    status, admin_doc = _get_json(f"{base}/admin/connections", {"X-API-Key": admin_key})
    rows = [c for c in admin_doc.get("connections", []) if isinstance(c, dict)]
    raw = json.dumps(admin_doc).encode()
    # Each user's row: the operator deletes one by the `id` the listing
    # gives, else by principal (URL-encoded) and server.
    principals = {who: [c for c in rows if who in str(c.get("principal", "")) and c.get("server") == SERVER]
                  for who in (ALICE[0], BOB[0])}
    check(status == 200 and all(len(p) == 1 for p in principals.values()) and not _leaks(tokens, raw),
          "connect: GET /admin/connections lists alice's and bob's connections, and no token",
          f"{status} {raw[:500]!r} leaked {_leaks(tokens, raw)}")
    denied, _ = _get_json(f"{base}/admin/connections", _bearer(ALICE_KEY))
    check(denied == 403, "connect: a caller without the admin role cannot list everyone's connections (403)",
          str(denied))

    # 9. Past the access token's expiry: refreshed; and again, so the
    # rotated refresh token was kept.
    def past_expiry(round_: int, since: dict, previous: tuple[dict, dict]) -> tuple[dict, tuple[dict, dict]]:
        time.sleep(TTL + 2)
        got_a, detail_a = identity(alice)
        got_b, detail_b = identity(bob)
        after = poll_stats(lambda s: s.get("refresh_grants", 0) >= since.get("refresh_grants", 0) + 2, 3)
        check(got_a.get("sub") == ALICE[1] and got_b.get("sub") == BOB[1]
              and got_a.get("token_fingerprint") != previous[0].get("token_fingerprint")
              and got_b.get("token_fingerprint") != previous[1].get("token_fingerprint")
              and after.get("refresh_grants", 0) >= since.get("refresh_grants", 0) + 2
              and after.get("grants_revoked") == since.get("grants_revoked"),
              f"connect: after the {TTL} s access tokens expire{' again' if round_ > 1 else ''}, alice's and bob's "
              f"calls still work on new tokens (refresh grants at the AS"
              f"{'; the rotated refresh tokens were kept' if round_ > 1 else ''})",
              f"alice {detail_a}, bob {detail_b}, refresh grants {since.get('refresh_grants')} -> "
              f"{after.get('refresh_grants')}, grant errors {since.get('grant_errors')} -> {after.get('grant_errors')}, "
              f"grants revoked {since.get('grants_revoked')} -> {after.get('grants_revoked')}")
        return after, (got_a, got_b)

    once, seen = past_expiry(1, replayed, (who_a, who_b))
    twice, _ = past_expiry(2, once, seen)

    # 10. alice disconnects: revoked at the AS, asked to connect again; bob unaffected.
    status, _, body = http(f"{base}/connections/{SERVER}", "DELETE", None,
                           {**_bearer(ALICE_KEY), "Accept": "application/json"})
    revoked = poll_stats(lambda s: s.get("revocations", 0) > twice.get("revocations", 0)
                         and s.get("grants_revoked", 0) > twice.get("grants_revoked", 0))
    check(status == 200 and revoked.get("revocations", 0) > twice.get("revocations", 0)
          and revoked.get("grants_revoked", 0) > twice.get("grants_revoked", 0),
          "connect: DELETE /connections/thirdparty revokes alice's refresh token at the AS (RFC 7009: her grant is "
          "gone)", f"{status} {_text(body)!r}; revocations {twice.get('revocations')} -> {revoked.get('revocations')}, "
          f"revocation errors {twice.get('revocation_errors')} -> {revoked.get('revocation_errors')}, grants revoked "
          f"{twice.get('grants_revoked')} -> {revoked.get('grants_revoked')}")
    ok_a, alice_url, detail_a = prompt_of(alice.call())
    still_b, detail_b = identity(bob)
    check(ok_a, "connect: after disconnecting, alice's next call asks her to connect again", detail_a)
    check(still_b.get("sub") == BOB[1], "connect: bob's connection still works after alice's is revoked", detail_b)

    # 11. The operator revokes bob's; then neither is listed.
    row = (principals.get(BOB[0]) or [{}])[0]
    principal = str(row.get("principal", f"apikey|{BOB[0]}"))
    path = row.get("id") or f"{urllib.parse.quote(principal, safe='')}/{SERVER}"
    status, _, body = http(f"{base}/admin/connections/{path}", "DELETE", None,
                           {"X-API-Key": admin_key, "Accept": "application/json"})
    by_admin = poll_stats(lambda s: s.get("grants_revoked", 0) > revoked.get("grants_revoked", 0))
    ok_b, _, detail_b = prompt_of(bob.call())
    check(status == 200 and by_admin.get("grants_revoked", 0) > revoked.get("grants_revoked", 0) and ok_b,
          "connect: DELETE /admin/connections/{id} (the listing's id of bob's) revokes it at the AS, and he is asked "
          f"to connect again", f"{status} {_text(body)!r} (DELETE {path}), grants revoked "
          f"{revoked.get('grants_revoked')} -> {by_admin.get('grants_revoked')}; {detail_b}")
    status, admin_doc = _get_json(f"{base}/admin/connections", {"X-API-Key": admin_key})
    left = [c for c in admin_doc.get("connections", []) if isinstance(c, dict) and c.get("server") == SERVER
            and any(w in str(c.get("principal", "")) for w in (ALICE[0], BOB[0]))]
    status_a, mine = _get_json(f"{base}/connections", _bearer(ALICE_KEY))
    check(status == 200 and not left and status_a == 200 and not mine.get("connections"),
          "connect: revoked connections are listed neither for the operator nor for the user",
          f"{status} {json.dumps(admin_doc)[:300]}; alice: {status_a} {json.dumps(mine)[:200]}")

    # 12. alice reconnects from her new connect URL: her AS session is still
    # there, so no sign-in form this time; her calls work again. Past expiry,
    # concurrent calls all work: a gateway that refreshed once per call would
    # present a spent (rotated) refresh token, and the AS would revoke the grant.
    flow = alice_browser.sign_in(alice_url, ALICE[1], stop=callback) if alice_url else {}
    done = alice_browser.sign_in(flow["stopped_at"], ALICE[1]) if flow.get("stopped_at") else {"status": 0, "body": b""}
    back, detail_a = identity(alice)
    check(done.get("status") == 200 and b"Connected" in done.get("body", b"") and back.get("sub") == ALICE[1],
          "connect: alice reconnects, and her calls work again", f"{done.get('status')} {detail_a} {flow.get('trail')}")
    reconnected = stats()
    time.sleep(TTL + 2)
    results: list[dict] = []
    lock = threading.Lock()

    def concurrent() -> None:
        who, detail = identity(alice)
        with lock:
            results.append(who or {"failed": detail})

    threads = [threading.Thread(target=concurrent) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    together = poll_stats(lambda s: s.get("refresh_grants", 0) > reconnected.get("refresh_grants", 0), 3)
    check(len(results) == 4 and all(r.get("sub") == ALICE[1] for r in results)
          and together.get("grant_errors") == reconnected.get("grant_errors")
          and together.get("grants_revoked") == reconnected.get("grants_revoked"),
          "connect: past expiry, four concurrent calls of one user all work, and no spent refresh token reaches the AS",
          f"{results}; refresh grants {reconnected.get('refresh_grants')} -> {together.get('refresh_grants')}, "
          f"grant errors {reconnected.get('grant_errors')} -> {together.get('grant_errors')}, grants revoked "
          f"{reconnected.get('grants_revoked')} -> {together.get('grants_revoked')}")

    # 13. The gateway sent the resource on every authorization and token request.
    final = stats()
    check(final.get("missing_resource") == before.get("missing_resource"),
          "connect: every authorization, code and refresh request carried the RFC 8707 resource (MCP authorization "
          "spec)", f"requests without it: {final.get('missing_resource')} (before {before.get('missing_resource')})")

    # 14. No token at rest, in the log or in telemetry.
    tokens = _tokens(tokens_file)
    time.sleep(2)  # telemetry and logs leave after the response
    if target == "workers":
        state = workdir / "wrangler-state"
        files = [p for p in state.rglob("*") if p.is_file()]
        found = {str(p.relative_to(state)): _leaks(tokens, p.read_bytes()) for p in files}
        found = {k: v for k, v in found.items() if v}
        check(bool(files) and len(tokens) >= 8 and not found,
              "connect: no access or refresh token the third party issued is stored in plaintext (every file of the "
              "Workers state: KV, Durable Objects)", f"{len(files)} files, {len(tokens)} tokens; found {found}")
    else:
        # The test host keeps its stores in memory and answers
        # /.spin-host/kv-dump with every entry as stored (tests/spin-host).
        status, _, dump = http(f"{base}/.spin-host/kv-dump", "GET", None, {})
        check(status == 200 and b"\tconn/" in dump and len(tokens) >= 8 and not _leaks(tokens, dump),
              "connect: no access or refresh token the third party issued is stored in plaintext (every entry of "
              "the Spin host's key-value stores; the connection records are there)",
              f"HTTP {status}, {len(dump)} bytes, {len(tokens)} tokens; found {_leaks(tokens, dump)}")
    log = gw_log.read_bytes() if gw_log.exists() else b""
    check(not _leaks(tokens, log), "connect: no token in the gateway's log", f"leaked {_leaks(tokens, log)}")
    exported = b"".join(b for _, b in receiver.everything()) if receiver else b""
    check(not _leaks(tokens, exported), "connect: no token in the telemetry the gateway exported",
          f"leaked {_leaks(tokens, exported)}")
