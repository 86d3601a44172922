#!/usr/bin/env python3
"""Loads a configuration folder (such as kv-seed/) into the gateway's store,
checked first with the gateway's own parsers, and reports what changed.

The folder holds one JSON document per key: servers/{id}.json,
models/{name}.json, groups/{name}.json, auth/issuers/{name}.json, policy.json (see
kv-seed/README.md). Every document is checked by `mcp-edge-seed` (the
gateway's parsers, built from this repository): if any fails, nothing is
written. Then the store is read, compared document by document (as JSON,
so formatting does not count) and only what differs is written.

Targets (one):
  --workers-local         wrangler dev's local KV (--persist-to DIR: its state
                          directory, default .wrangler/state)
  --workers-remote        the REGISTRY namespace of the deployed Worker
                          (wrangler's login; KV takes up to a minute to
                          reach every location)
  --spin-sqlite FILE      Spin's SQLite key-value file (default store
                          `default`; `spin up` keeps it in
                          .spin/sqlite_key_value.db); also drops the
                          gateway's cached snapshot so the change is seen
                          on the next request
  --bulk-out FILE         just write the checked documents as a
                          `wrangler kv bulk put` list (or the Spin test
                          host's --kv-seed file)

Keys in the store under servers/, models/, groups/ or auth/issuers/ that the folder
does not hold are reported; --prune deletes them (refused for an empty
folder). The policy is never deleted (no policy means governance off), and
API keys' records (auth/apikeys/) are only ever added: never rewritten (a
revocation made through the admin API stays) nor pruned. --dry-run reports
without writing.

Changes made here bypass the admin API's version history: the admin API
records such a document as "found in KV" before its next change, so it can
be rolled back to.

Usage: seed.py [DIR] --workers-local [--persist-to DIR] [--prune] [--dry-run]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import sqlite3
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
# What --prune may delete. Never the policy (no policy means governance
# off) and never API keys (revoked ones included).
PRUNABLE = ("servers/", "models/", "groups/", "auth/issuers/")
APIKEYS = "auth/apikeys/"
SPIN_TABLE = """CREATE TABLE IF NOT EXISTS spin_key_value (
    store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (store, key))"""


def managed(key: str) -> bool:
    """Keys the folder speaks for (read from the store and compared)."""
    return key == "policy" or key.startswith(PRUNABLE)


def checked(folder: pathlib.Path) -> dict[str, str]:
    """The folder's documents, checked by the gateway's parsers (exits on a bad one)."""
    run = subprocess.run(["cargo", "run", "--quiet", "--bin", "mcp-edge-seed", "--", str(folder.resolve())],
                         cwd=ROOT, capture_output=True, text=True)
    if run.returncode != 0:
        sys.stderr.write(run.stderr)
        print(f"seed: {folder} has documents the gateway would refuse; nothing was written", file=sys.stderr)
        sys.exit(1)
    return {item["key"]: item["value"] for item in json.loads(run.stdout)}


class Workers:
    """wrangler kv on the REGISTRY binding, local or remote."""

    def __init__(self, remote: bool, persist_to: str | None):
        env = os.environ
        self.node = env.get("NODE22", "node")
        self.wrangler = env.get("WRANGLER", "wrangler")
        self.where = ["--remote"] if remote else ["--local"] + (["--persist-to", persist_to] if persist_to else [])

    def _run(self, *args: str) -> str:
        cmd = [self.node, self.wrangler, "kv", *args, "--binding", "REGISTRY", *self.where]
        run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                             env={**os.environ, "WRANGLER_SEND_METRICS": "false"})
        if run.returncode != 0:
            raise SystemExit(f"seed: {' '.join(cmd[1:])} failed:\n{run.stdout}\n{run.stderr}")
        return run.stdout

    @staticmethod
    def _json(text: str):
        starts = [i for i in (text.find("["), text.find("{")) if i >= 0]
        return json.loads(text[min(starts):]) if starts else None

    def read(self, keys: list[str]) -> dict[str, str]:
        listed = [k["name"] for k in self._json(self._run("key", "list")) or []]
        wanted = sorted({*keys, *(k for k in listed if managed(k))})
        if not wanted:
            return {}
        found: dict[str, str] = {}
        # The API reads at most 100 keys a call.
        for i in range(0, len(wanted), 100):
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                json.dump(wanted[i:i + 100], f)
            try:
                got = self._json(self._run("bulk", "get", f.name)) or {}
            finally:
                os.unlink(f.name)
            for k, v in got.items():
                # Local answers wrap each value ({"value": ...}), remote
                # ones give it as is.
                value = v.get("value") if isinstance(v, dict) else v
                if value is not None:
                    found[k] = value
        return found

    def write(self, puts: dict[str, str], deletes: list[str]) -> None:
        for command, payload in (("put", [{"key": k, "value": v} for k, v in puts.items()]), ("delete", deletes)):
            if payload:
                with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                    json.dump(payload, f)
                try:
                    self._run("bulk", command, f.name)
                finally:
                    os.unlink(f.name)


class SpinSqlite:
    """Spin's SQLite key-value file: store `default`, and the gateway's
    cached snapshot in store `sessions`."""

    def __init__(self, path: str):
        pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.execute(SPIN_TABLE)

    def read(self, keys: list[str]) -> dict[str, str]:
        rows = self.db.execute("SELECT key, value FROM spin_key_value WHERE store = 'default'").fetchall()
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in rows if managed(k) or k in keys}

    def write(self, puts: dict[str, str], deletes: list[str]) -> None:
        with self.db:
            for k, v in puts.items():
                self.db.execute("INSERT INTO spin_key_value (store, key, value) VALUES ('default', ?, ?) "
                                "ON CONFLICT (store, key) DO UPDATE SET value = excluded.value", (k, v.encode()))
            for k in deletes:
                self.db.execute("DELETE FROM spin_key_value WHERE store = 'default' AND key = ?", (k,))
            # The registry snapshot instances share: without it the next
            # request reads the store again.
            self.db.execute("DELETE FROM spin_key_value WHERE store = 'sessions' AND key = 'cache/snapshot'")


def same(a: str, b: str) -> bool:
    try:
        return json.loads(a) == json.loads(b)
    except ValueError:
        return a == b


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", default=str(ROOT / "kv-seed"))
    target = ap.add_mutually_exclusive_group(required=True)
    target.add_argument("--workers-local", action="store_true")
    target.add_argument("--workers-remote", action="store_true")
    target.add_argument("--spin-sqlite", metavar="FILE")
    target.add_argument("--bulk-out", metavar="FILE")
    ap.add_argument("--persist-to", metavar="DIR", help="wrangler's local state directory (--workers-local)")
    ap.add_argument("--prune", action="store_true", help="delete managed keys the folder does not hold")
    ap.add_argument("--dry-run", action="store_true", help="report, write nothing")
    args = ap.parse_args()

    desired = checked(pathlib.Path(args.folder))
    if args.prune and not desired:
        print("seed: --prune with an empty folder would delete every server and issuer; refused", file=sys.stderr)
        return 1
    print(f"seed: {len(desired)} documents in {args.folder} pass the gateway's checks")
    if args.bulk_out:
        pathlib.Path(args.bulk_out).write_text(json.dumps([{"key": k, "value": v} for k, v in desired.items()]))
        print(f"seed: written to {args.bulk_out}")
        return 0
    store = SpinSqlite(args.spin_sqlite) if args.spin_sqlite else Workers(args.workers_remote, args.persist_to)
    current = store.read(list(desired))
    added = {k: v for k, v in desired.items() if k not in current}
    changed = {k: v for k, v in desired.items() if k in current and not same(current[k], v)}
    # An API key's record is only ever added: rewriting one could undo a
    # revocation made through the admin API.
    held = sorted(k for k in changed if k.startswith(APIKEYS))
    for k in held:
        del changed[k]
    stale = sorted(k for k in current if k.startswith(PRUNABLE) and k not in desired)
    for k in sorted(added):
        print(f"  added    {k}")
    for k in sorted(changed):
        print(f"  changed  {k}")
    for k in held:
        print(f"  kept     {k} (differs, but API keys' records are only added, never rewritten)")
    for k in stale:
        print(f"  {'removed ' if args.prune else 'kept     '} {k} (not in the folder{'' if args.prune else '; --prune removes it'})")
    unchanged = len(desired) - len(added) - len(changed) - len(held)
    print(f"seed: {len(added)} added, {len(changed)} changed, {unchanged} unchanged, "
          f"{len(stale)} {'removed' if args.prune else 'only in the store'}{' (dry run: nothing written)' if args.dry_run else ''}")
    if not args.dry_run:
        store.write({**added, **changed}, stale if args.prune else [])
    return 0


if __name__ == "__main__":
    sys.exit(main())
