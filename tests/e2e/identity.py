"""Identity parts of the end-to-end suite (imported by run.py).

  * the gateway's upstream signing key (a fresh EC P-256 private JWK per run);
  * the KV entries that make the gateway trust the loopback authorization
    server and know the suite's API key;
  * the OAuth checks: both official SDK clients, given only the gateway URL
    and a client id/secret, discover the authorization server from the 401 and
    the protected-resource metadata, get a token (client credentials) and call
    `whoami` on notes, which verifies the credential the gateway minted;
    notes' log must show only gateway-minted tokens.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import pathlib
import re
import subprocess
import urllib.request

from cryptography.hazmat.primitives.asymmetric import ec


def signing_key(kid: str = "e2e-gateway") -> dict:
    """A fresh EC P-256 private JWK for UPSTREAM_SIGNING_KEY."""
    key = ec.generate_private_key(ec.SECP256R1())
    n = key.private_numbers()

    def b64(i: int) -> str:
        return base64.urlsafe_b64encode(i.to_bytes(32, "big")).rstrip(b"=").decode()

    return {"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(n.public_numbers.x), "y": b64(n.public_numbers.y),
            "d": b64(n.private_value)}


def kv_entries(as_issuer: str, api_key: str, scope: str) -> list[dict]:
    """Trust the authorization server (its jwks_uri from discovery) and store the API key hashed."""
    with urllib.request.urlopen(f"{as_issuer}/.well-known/openid-configuration", timeout=10) as r:
        discovery = json.loads(r.read())
    issuer = {"issuer": discovery["issuer"], "jwks_uri": discovery["jwks_uri"]}
    key_hash = hashlib.sha256(api_key.encode()).hexdigest()
    record = {"subject": "e2e-client", "teams": ["qa"], "scopes": [scope]}
    return [
        {"key": "auth/issuers/e2e-as", "value": json.dumps(issuer)},
        {"key": f"auth/apikeys/{key_hash}", "value": json.dumps(record)},
    ]


def oauth_checks(check, http, base: str, as_issuer: str, client: tuple[str, str], scope: str,
                 notes_log: pathlib.Path, node: str, python: str, root: pathlib.Path) -> None:
    mcp = f"{base}/mcp"
    # /mcp admits anonymous callers (the registry has a server open to them),
    # so the challenge is checked on a server that needs a credential.
    notes = f"{base}/servers/notes/mcp"
    init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}}).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    status, h, body = http(notes, "POST", init, headers)
    challenge = h.get("www-authenticate", "")
    check(status == 401 and f'resource_metadata="{base}/.well-known/oauth-protected-resource/servers/notes/mcp"' in challenge
          and f'scope="{scope}"' in challenge, "oauth: no credential -> 401 with a challenge naming the metadata",
          f"{status} {challenge} {body[:200]!r}")
    status, _, body = http(f"{base}/.well-known/oauth-protected-resource/mcp", "GET", None, {})
    doc = json.loads(body) if status == 200 else {}
    check(doc.get("resource") == mcp and doc.get("authorization_servers") == [as_issuer],
          "oauth: RFC 9728 metadata names the resource and the authorization server", json.dumps(doc))
    status, h, _ = http(mcp, "POST", init, {**headers, "Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."})
    check(status == 401 and 'error="invalid_token"' in h.get("www-authenticate", ""),
          "oauth: an unsigned token -> 401 invalid_token", f"{status} {h.get('www-authenticate')}")
    status, _, body = http(f"{base}/.well-known/jwks.json", "GET", None, {})
    check(status == 200 and json.loads(body)["keys"][0]["kid"] == "e2e-gateway",
          "oauth: the gateway publishes its signing key", body[:200].decode(errors="replace"))

    target = f"{base}/servers/notes/mcp"
    env = {**os.environ, "MCP_EXPECTED_ISSUER": as_issuer}
    runners = {
        "TypeScript SDK": [node, str(root / "tests/e2e/auth/ts_cc_client.mjs")],
        "Python SDK": [python, str(root / "tests/e2e/auth/py_cc_client.py")],
    }
    for name, cmd in runners.items():
        try:
            out = subprocess.run(cmd + [target, client[0], client[1]], capture_output=True, text=True, timeout=90, env=env)
            result = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {}
            detail = (out.stdout + out.stderr)[-2000:]
        except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as e:
            result, detail = {}, repr(e)
        check("whoami" in result.get("tools", []) and result.get("sub_seen") == client[0],
              f"oauth: {name} client credentials -> discovery, token, tools, and notes sees sub={client[0]}", detail)

    seen = re.findall(r"auth-seen iss=(\S+) sub=(\S+)", notes_log.read_text(errors="replace"))
    foreign = [s for s in seen if s[0] != base]
    check(not foreign and (base, client[0]) in seen,
          "oauth: notes received only gateway-minted tokens, never a caller's", f"seen {sorted(set(seen))}")
