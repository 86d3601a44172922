#!/usr/bin/env python3
"""The playground end to end: starts `make dev` (scripts/dev.sh, the
existing build) on the chosen runtime with a state of its own, then drives
the page in headless Chromium (tests/playground/browser.mjs, Playwright)
as the demo user and the demo approver.

Usage: run.py [--runtime workers|spin] [--shots DIR]
  --shots DIR   also writes a screenshot of each view there (docs/playground
                holds the committed ones: `run.py --shots docs/playground`)

Needs ports 8787 and 3001-3005 free, Debian's chromium (/usr/bin/chromium,
or $CHROMIUM) and playwright-core (scripts/toolchain.sh installs both).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
BASE = "http://127.0.0.1:8787"


def up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status < 500
    except urllib.error.HTTPError as e:
        return e.code < 500
    except OSError:
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runtime", choices=["workers", "spin"], default="workers")
    ap.add_argument("--shots", metavar="DIR")
    args = ap.parse_args()
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not shutil.which(chromium):
        print(f"FAIL: playground {args.runtime}: no Chromium at {chromium}: scripts/toolchain.sh installs Debian's "
              "chromium (as root); set CHROMIUM to another build")
        return 1
    node = os.environ.get("NODE", "node")
    # The page's modules on their own first (no browser, no gateway).
    quiet = ["--disable-warning=MODULE_TYPELESS_PACKAGE_JSON"]
    if subprocess.run([node, *quiet, str(ROOT / "tests" / "playground" / "units.mjs")], cwd=ROOT).returncode != 0:
        return 1
    state = tempfile.mkdtemp(prefix="mcp-edge-playground-state-")
    env = {**os.environ, "MCP_EDGE_SKIP_BUILD": "1", "MCP_EDGE_DEV_STATE": state, "MCP_EDGE_RUNTIME": args.runtime}
    log_path = ROOT / "build" / f"playground-{args.runtime}.log"
    log = open(log_path, "w")
    dev = subprocess.Popen(["bash", "scripts/dev.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True)
    rc = 1
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and dev.poll() is None:
            if all(up(u) for u in (f"{BASE}/healthz", "http://127.0.0.1:3001/mcp", "http://127.0.0.1:3002/mcp",
                                   "http://127.0.0.1:3004/jwks", "http://127.0.0.1:3005/v1/models")):
                break
            time.sleep(1)
        else:
            print(f"FAIL: playground {args.runtime}: make dev did not come up")
            print(log_path.read_text()[-3000:])
            return 1
        secrets = json.loads((ROOT / "build" / "dev-secrets.json").read_text())
        cmd = [node, str(ROOT / "tests" / "playground" / "browser.mjs"),
               "--base", BASE, "--user-key", secrets["user_key"], "--admin-key", secrets["admin_key"],
               "--python", os.environ.get("PYTHON", sys.executable), "--label", f"playground {args.runtime}"]
        if args.shots:
            cmd += ["--shots", str(pathlib.Path(args.shots).resolve())]
        rc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "CHROMIUM": chromium}, timeout=600).returncode
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        try:
            dev.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(state, ignore_errors=True)
    if rc != 0:
        print(log_path.read_text()[-3000:])
    return rc


if __name__ == "__main__":
    sys.exit(main())
