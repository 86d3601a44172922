#!/usr/bin/env python3
"""The official MCP conformance suite against the gateway, on a real runtime.

What runs:
  * tests/conformance/fixture_server.py, the project's own dual-era upstream
    implementing every tool, prompt and resource the suite's server scenarios
    use (Python `mcp` SDK);
  * @modelcontextprotocol/conformance (pinned in package.json), `server
    --requirements 2025-11-25` and `--requirements 2026-07-28`, first directly
    against the fixture, then through the gateway's `/servers/conf/mcp` and
    `/mcp` (with NAMES_ON_MCP=on_collision, so a caller who sees one server
    sees its own names);
  * the gateway's real build on its real host, started once for all four
    gateway runs: `wrangler dev` (workerd) or the Spin host (Wasmtime).

The rule: every scenario that passes directly passes through both endpoints,
except the ones tests/conformance/expected.json lists with the reason (the
README repeats them). Within a scenario that passes, every check that
succeeds directly succeeds through the gateway too (a skipped check or a
warning would hide a gap), except the checks expected.json lists under
"checks". A listed scenario or check that passes is reported too, so the
lists only shrink.

Usage: tests/conformance/run.py [--target workers|spin] [--no-build] [--keep]
Exit status 0 only when the rule holds.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import identity  # noqa: E402  tests/e2e/identity.py: the gateway's signing key
import run as e2e  # noqa: E402  tests/e2e/run.py: processes, ports, starting the runtimes

SUITE = ROOT / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
REQUIREMENTS = ["2025-11-25", "2026-07-28"]
RESULT = re.compile(r"^([✓✗]) ([\w/.-]+): (\d+) passed, (\d+) failed")


def scored(requirements: str) -> set[str]:
    """The server scenarios `requirements` scores (the suite's own list)."""
    out = subprocess.run([e2e.NODE22, str(SUITE), "list", "--requirements", requirements],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    section = out.split("Server scenarios", 1)[1].split("Client scenarios", 1)[0]
    return set(re.findall(r"^\s*- ([\w/.-]+)", section, re.M))


def run_suite(url: str, requirements: str, out: pathlib.Path) -> dict[str, bool]:
    """Scenario -> passed, for the scored server scenarios of `requirements`."""
    cmd = [e2e.NODE22, str(SUITE), "server", "--url", url, "--requirements", requirements,
           "-o", str(out)]
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    (out / "stdout.txt").parent.mkdir(parents=True, exist_ok=True)
    (out / "stdout.txt").write_text(done.stdout + done.stderr)
    results: dict[str, bool] = {}
    wanted = scored(requirements)
    for line in done.stdout.splitlines():
        m = RESULT.match(line.strip())
        if m and m.group(2) in wanted and m.group(2) not in results:
            results[m.group(2)] = m.group(1) == "✓" and m.group(4) == "0"
    print(f"  {requirements} {url}: {sum(results.values())}/{len(results)} scenarios passed "
          f"({time.monotonic() - started:.1f} s)", flush=True)
    if not results:
        print(done.stdout[-3000:], done.stderr[-3000:])
    return results


def failing_checks(out: pathlib.Path, scenario: str) -> str:
    """The failed checks of one scenario, from the suite's own record."""
    lines = []
    for checks in out.glob(f"server-{scenario}-*/checks.json"):
        for c in json.loads(checks.read_text()):
            if c.get("status") == "FAILURE":
                lines.append(f"{c.get('id')}: {c.get('errorMessage') or c.get('description')}")
    return "; ".join(lines)[:600]


def check_statuses(out: pathlib.Path) -> dict[str, str]:
    """`scenario/check` -> status, from the suite's own record."""
    statuses = {}
    for checks in out.glob("server-*/checks.json"):
        scenario = re.match(r"server-(.+)-\d{4}-\d\d-\d\dT", checks.parent.name)
        if scenario:
            for c in json.loads(checks.read_text()):
                statuses[f"{scenario.group(1)}/{c.get('id')}"] = c.get("status", "?")
    return statuses


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", choices=["workers", "spin"], default="workers")
    ap.add_argument("--no-build", action="store_true", help="use the existing build")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, results)")
    args = ap.parse_args()

    expected = json.loads((HERE / "expected.json").read_text())
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="mcp-edge-conformance-"))
    procs = e2e.Processes(workdir)
    problems: list[str] = []
    try:
        fx_port, gw_port = e2e.free_port(), e2e.free_port()
        base = f"http://127.0.0.1:{gw_port}"
        fx_url = f"http://127.0.0.1:{fx_port}/mcp"
        fx_log = procs.start("fixture", [e2e.PYTHON, str(HERE / "fixture_server.py"), "--port", str(fx_port)])
        e2e.wait_http(fx_url, "fixture", procs, fx_log, 60)
        server = {"description": "the conformance fixture", "group": "dev", "anonymous": True,
                  "endpoints": [{"region": "us", "url": fx_url}], "timeout_ms": 20000}
        kv = [{"key": "servers/conf", "value": json.dumps(server)}]
        vars = {"PUBLIC_URL": base, "UPSTREAM_SIGNING_KEY": json.dumps(identity.signing_key()),
                "NAMES_ON_MCP": "on_collision", "SESSIONS_PER_MINUTE": "100000"}
        start = e2e.start_workers if args.target == "workers" else e2e.start_spin
        # `--no-build` reuses the e2e run's build, when there is one.
        built = (ROOT / "build" / "index.js") if args.target == "workers" else e2e.COMPONENT
        gw_log = start(procs, workdir, kv, vars, gw_port, build=not (args.no_build and built.exists()))
        print(f"# conformance on {args.target}: gateway {base}, fixture {fx_url}", flush=True)
        targets = {"direct": fx_url, "per-server": f"{base}/servers/conf/mcp", "aggregated": f"{base}/mcp"}
        for req in REQUIREMENTS:
            runs = {name: run_suite(url, req, workdir / req / name) for name, url in targets.items()}
            direct = runs.pop("direct")
            if len(direct) != len(scored(req)) or not all(direct.values()):
                problems.append(f"{req}: the fixture itself fails "
                                f"{sorted(s for s, ok in direct.items() if not ok) or 'to run'}")
            for endpoint, results in runs.items():
                allowed = expected.get(req, {}).get(endpoint, {})
                for scenario, ok in sorted(direct.items()):
                    if not ok:
                        continue
                    through = results.get(scenario, False)
                    if not through and scenario not in allowed:
                        why = failing_checks(workdir / req / endpoint, scenario)
                        problems.append(f"{req} {endpoint}: {scenario} passes directly, fails through the gateway: {why}")
                    elif through and scenario in allowed:
                        problems.append(f"{req} {endpoint}: {scenario} now passes; take it off expected.json and the README")
                    elif not through:
                        print(f"    listed: {req} {endpoint} {scenario}: {allowed[scenario]}")
                # Within the scenarios that pass, no check may do worse than
                # directly: a check that succeeds there and is skipped, a
                # warning or missing through the gateway hides a gap.
                listed = expected.get("checks", {}).get(req, {}).get(endpoint, {})
                mine, theirs = check_statuses(workdir / req / "direct"), check_statuses(workdir / req / endpoint)
                for check, status in sorted(mine.items()):
                    scenario = check.split("/", 1)[0]
                    if status != "SUCCESS" or not results.get(scenario) or scenario in allowed:
                        continue
                    got = theirs.get(check, "missing")
                    if got != "SUCCESS" and check not in listed:
                        problems.append(f"{req} {endpoint}: check {check} succeeds directly, is {got} through the gateway")
                    elif got == "SUCCESS" and check in listed:
                        problems.append(f"{req} {endpoint}: check {check} now succeeds; take it off expected.json and the README")
                    elif got != "SUCCESS":
                        print(f"    listed: {req} {endpoint} {check} ({got}): {listed[check]}")
        if problems:
            print(f"\n--- gateway log (tail) ---\n{e2e.tail(gw_log, 60)}")
    finally:
        procs.stop_all()
        if args.keep or problems:
            print(f"logs and results kept in {workdir}")
        else:
            subprocess.run(["rm", "-rf", str(workdir)])
    print(f"\nconformance {args.target}: {len(problems)} problem(s)")
    for p in problems:
        print(f"  FAILED: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
