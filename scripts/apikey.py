#!/usr/bin/env python3
"""Creates a service-account API key for mcp-edge.

Prints the key once (give it to the service; it is not stored anywhere) and
the KV entry to load: `auth/apikeys/{sha256 of the key}` holding the principal.

Usage: apikey.py --subject ci-bot [--team platform] [--role deployer] [--scope mcp:tools] > entry.json
       wrangler kv bulk put entry.json --binding REGISTRY      (add --local for wrangler dev)
"""
import argparse
import hashlib
import json
import secrets
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subject", required=True)
    ap.add_argument("--team", action="append", default=[])
    ap.add_argument("--role", action="append", default=[])
    ap.add_argument("--scope", action="append", default=[])
    args = ap.parse_args()
    key = "mk_" + secrets.token_urlsafe(32)
    record = {"subject": args.subject, "teams": args.team, "roles": args.role, "scopes": args.scope}
    entry = [{"key": f"auth/apikeys/{hashlib.sha256(key.encode()).hexdigest()}", "value": json.dumps(record)}]
    print(f"API key for {args.subject} (shown once): {key}", file=sys.stderr)
    json.dump(entry, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
