#!/usr/bin/env python3
"""The development secrets `make dev` uses, made once and kept in
build/dev-secrets.json (never committed; delete it for new ones):

  - a signing key (EC P-256 private JWK) for UPSTREAM_SIGNING_KEY, so minted
    upstream credentials and /.well-known/jwks.json work out of the box;
  - two API keys: `demo-user` (team demo) and `demo-admin` (roles mcp-admin
    and approver: the admin API and the approvals inbox).

Usage: dev_secrets.py SECRETS.json KV-BULK.json ENV-FILE
Writes the API keys' records (hashed, as the gateway stores them) to
KV-BULK.json for `wrangler kv bulk put`, and the signing key as a dotenv
file for `wrangler dev --env-file` (never on a command line, which every
local user can read); both secret files are created readable by their
owner only.
"""
import base64
import hashlib
import json
import os
import pathlib
import secrets
import sys

from cryptography.hazmat.primitives.asymmetric import ec


def signing_key() -> dict:
    key = ec.generate_private_key(ec.SECP256R1())
    n = key.private_numbers()

    def b64(i: int) -> str:
        return base64.urlsafe_b64encode(i.to_bytes(32, "big")).rstrip(b"=").decode()

    return {"kty": "EC", "crv": "P-256", "kid": "mcp-edge-dev", "x": b64(n.public_numbers.x),
            "y": b64(n.public_numbers.y), "d": b64(n.private_value)}


def private(path: pathlib.Path, text: str) -> None:
    """Writes `text` to a file only its owner may read, from its creation on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    path, bulk, env = (pathlib.Path(a) for a in sys.argv[1:])
    if path.exists():
        made = json.loads(path.read_text())
    else:
        made = {"signing_key": signing_key(),
                "user_key": "mk_demo_user_" + secrets.token_urlsafe(24),
                "admin_key": "mk_demo_admin_" + secrets.token_urlsafe(24)}
        private(path, json.dumps(made, indent=1))
    # dotenv: single quotes keep the JSON as it is.
    private(env, f"UPSTREAM_SIGNING_KEY='{json.dumps(made['signing_key'])}'\n")
    records = [(made["user_key"], {"subject": "demo-user", "teams": ["demo"], "scopes": ["mcp:tools"]}),
               (made["admin_key"], {"subject": "demo-admin", "roles": ["mcp-admin", "approver"],
                                    "scopes": ["mcp:tools"]})]
    bulk.write_text(json.dumps([{"key": f"auth/apikeys/{hashlib.sha256(k.encode()).hexdigest()}",
                                 "value": json.dumps(r)} for k, r in records]))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
