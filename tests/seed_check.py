#!/usr/bin/env python3
"""`make seed` / scripts/seed.py on a copy of kv-seed/: into Spin's SQLite
file and into wrangler's local KV, what it reports, that only changes are
written, that a folder with a broken document writes nothing, and --prune.

Usage: seed_check.py
"""
from __future__ import annotations

import json
import pathlib
import shutil
import sqlite3
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
FAILED: list[str] = []


def check(ok: bool, what: str, detail: str = "") -> None:
    print(f"{'ok' if ok else 'FAIL'}: seed: {what}{'' if ok else ' -- ' + detail[-600:]}", flush=True)
    if not ok:
        FAILED.append(what)


def seed(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "seed.py"), *args],
                          cwd=ROOT, capture_output=True, text=True)


def rows(db: pathlib.Path) -> dict[str, str]:
    with sqlite3.connect(db) as c:
        return {k: v.decode() for k, v in c.execute(
            "SELECT key, value FROM spin_key_value WHERE store = 'default'")}


def main() -> int:
    work = pathlib.Path(tempfile.mkdtemp(prefix="mcp-edge-seed-"))
    try:
        folder = work / "config"
        shutil.copytree(ROOT / "kv-seed", folder)
        db = work / "spin.db"
        first = seed(str(folder), "--spin-sqlite", str(db))
        check(first.returncode == 0 and "6 added, 0 changed" in first.stdout and len(rows(db)) == 6,
              "a folder is checked and loaded into Spin's store, every key reported", first.stdout + first.stderr)
        again = seed(str(folder), "--spin-sqlite", str(db))
        check("0 added, 0 changed, 6 unchanged" in again.stdout, "a second run writes nothing", again.stdout)

        policy = json.loads((folder / "policy.json").read_text())
        policy["limits"][0]["requests"] = 7
        (folder / "policy.json").write_text(json.dumps(policy, indent=4))
        changed = seed(str(folder), "--spin-sqlite", str(db))
        stored = json.loads(rows(db)["policy"])
        check("changed  policy" in changed.stdout and "0 added, 1 changed" in changed.stdout
              and stored["limits"][0]["requests"] == 7, "a changed document is reported and written", changed.stdout)

        before = rows(db)
        (folder / "servers" / "broken.json").write_text(json.dumps({"endpoints": [{"region": "us", "url": "ftp://x"}]}))
        policy["limits"][0]["requests"] = 9
        (folder / "policy.json").write_text(json.dumps(policy))
        broken = seed(str(folder), "--spin-sqlite", str(db))
        check(broken.returncode == 1 and "servers/broken.json: servers/broken: endpoints[0]" in broken.stderr
              and "nothing was written" in broken.stderr and rows(db) == before,
              "a folder with a document the gateway would refuse writes nothing, naming file, path and reason",
              broken.stdout + broken.stderr)
        (folder / "servers" / "broken.json").unlink()

        (folder / "groups" / "dev.json").unlink()
        kept = seed(str(folder), "--spin-sqlite", str(db))
        pruned = seed(str(folder), "--spin-sqlite", str(db), "--prune")
        check("kept      groups/dev" in kept.stdout and "removed  groups/dev" in pruned.stdout
              and "groups/dev" not in rows(db), "a key the folder lost is kept, and removed with --prune",
              kept.stdout + pruned.stdout)

        # An API key's record is added, but never rewritten (a revocation
        # made through the admin API stays), and the policy never pruned.
        record = folder / "auth" / "apikeys" / ("ab" * 32 + ".json")
        record.parent.mkdir(parents=True)
        record.write_text(json.dumps({"subject": "bot"}))
        seed(str(folder), "--spin-sqlite", str(db))
        with sqlite3.connect(db) as c:
            c.execute("UPDATE spin_key_value SET value = ? WHERE key = ?",
                      (json.dumps({"subject": "bot", "revoked": True}).encode(), f"auth/apikeys/{'ab' * 32}"))
        (folder / "policy.json").unlink()
        kept = seed(str(folder), "--spin-sqlite", str(db), "--prune")
        stored = rows(db)
        check(json.loads(stored[f"auth/apikeys/{'ab' * 32}"]).get("revoked") is True and "policy" in stored
              and "only added" in kept.stdout,
              "an API key's record is never rewritten (a revocation stays), the policy never pruned",
              kept.stdout + kept.stderr)
        record.unlink()
        empty = work / "empty"
        empty.mkdir()
        refused = seed(str(empty), "--spin-sqlite", str(db), "--prune")
        check(refused.returncode == 1 and rows(db) == stored, "--prune with an empty folder is refused",
              refused.stdout + refused.stderr)

        local = seed(str(folder), "--workers-local", "--persist-to", str(work / "wrangler"))
        relocal = seed(str(folder), "--workers-local", "--persist-to", str(work / "wrangler"))
        check(local.returncode == 0 and "4 added" in local.stdout and "4 unchanged" in relocal.stdout,
              "the same folder into wrangler's local KV, then nothing left to write", local.stdout + local.stderr
              + relocal.stdout + relocal.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"seed check: {len(FAILED)} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
