#!/usr/bin/env python3
"""`make bench`: what mcp-edge costs, measured beside the floor, on both builds.

Writes bench/RESULTS.md (and bench/out/*.json) with the machine, the versions,
the date, and every figure beside its target. Benchmarks print numbers; this
script never fails on a timing, only when something could not be measured.

What runs, all on loopback:
  * a fast MCP upstream (bench/fast_upstream.mjs, JSON answers, well under a
    millisecond of its own time), one port per target so request counts are
    per target;
  * the floor: a pass-through proxy on the same runtime (bench/floor-worker on
    workerd, bench/floor-spin on the Spin host);
  * the gateway: the Workers build on `wrangler dev` (workerd), the Spin
    component on tests/spin-host (Wasmtime);
  * bench/echo_latency.mjs drives `tools/call` at concurrency 1, 8 and 32,
    (gateways without a policy, with a policy and three limits on three
    subjects, three on one subject, and one),
    interleaving direct / floor / gateway so drift cancels out, for legacy
    clients (a session each) and modern ones (2026-07-28: no session, the
    fast upstream relayed in the modern era); on the Spin host it also counts
    the key-value operations of a steady-state call; the same driver
    measures `tools/list` fan-out over 1, 5, 10 and 20 upstreams that each
    answer after 20 ms;
  * `cargo bench --bench core` for the core's own CPU and the scale series.

Usage: bench/run.py [--quick] [--no-build]
"""
from __future__ import annotations

import argparse
import datetime
import gzip
import json
import os
import pathlib
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(1, str(ROOT / "bench"))
import run as e2e  # noqa: E402  (process helpers shared with the e2e suite)

BENCH = ROOT / "bench"
OUT = BENCH / "out"
SPIN_HOST = ROOT / "tests" / "spin-host" / "target" / "release" / "spin-host"
GATEWAY_WASM = ROOT / "target" / "wasm32-wasip2" / "spin" / "mcp_edge.wasm"
FLOOR_WASM = BENCH / "floor-spin" / "target" / "wasm32-wasip2" / "release" / "floor_spin.wasm"
FANOUT_DELAY_MS = 20
FANOUT_TOOLS = 5


def sh(cmd: list[str], cwd: pathlib.Path = ROOT, **kw) -> subprocess.CompletedProcess:
    print("$", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=cwd, check=True, **kw)


SPIN_NAMED = ROOT / "target" / "wasm32-wasip2" / "spin-names" / "mcp_edge.wasm"


def build() -> None:
    sh(["bash", "scripts/build-worker.sh"])
    sh(["cargo", "build", "--target", "wasm32-wasip2", "--profile", "spin", "--features", "spin"])
    # The same component with its names, for the per-crate size breakdown.
    sh(["cargo", "build", "--target", "wasm32-wasip2", "--profile", "spin-names", "--features", "spin"])
    sh(["cargo", "build", "--release", "--manifest-path", "tests/spin-host/Cargo.toml"])
    sh(["cargo", "build", "--target", "wasm32-wasip2", "--release"], cwd=BENCH / "floor-spin")


def entry(port: int, era: str | None = None) -> dict:
    # Open to anonymous use: the driver measures the pipeline, not a credential.
    spec = {"endpoints": [{"region": "us", "url": f"http://127.0.0.1:{port}/mcp"}], "timeout_ms": 10000,
            "anonymous": True}
    if era:
        spec["era"] = era
    return spec


# The governed gateway's policy: 20 rules and three limits that cover every
# call (never reached), so each call pays policy evaluation and three counter
# checks (Durable Objects on workerd, atomic increments on Spin).
GOVERNANCE_POLICY = {
    "rules": [{"name": f"team-{i}", "effect": "allow", "subjects": {"teams": [f"team-{i}"]},
               "servers": [f"other-{i}-*"]} for i in range(18)]
    + [{"name": "bench", "effect": "allow", "subjects": {"anonymous": True}, "servers": ["fast"]},
       {"name": "no-drops", "effect": "deny", "subjects": {"everyone": True}, "tools": ["drop_*"]}],
    "limits": [
        {"name": "per-caller", "per": "principal", "requests": 1_000_000_000, "window_secs": 60},
        {"name": "per-server", "per": "server", "requests": 1_000_000_000, "window_secs": 1},
        {"name": "per-tool", "per": "tool", "tools": ["echo"], "daily": 1_000_000_000},
    ],
}


class Runtime:
    """Starts gateways and floors on one runtime."""

    def __init__(self, name: str, procs: e2e.Processes, work: pathlib.Path):
        self.name, self.procs, self.work = name, procs, work
        self.count = 0
        # Base URL -> process group of the runtime serving it (wrangler and
        # its workerd, or one Spin host), for cpu_ms().
        self.groups: dict[str, int] = {}

    def cpu_ms(self, base: str) -> float:
        """CPU time (user + system) the runtime serving `base` has used so far."""
        return group_cpu_ms(self.groups[base])

    def _label(self, what: str) -> str:
        self.count += 1
        return f"{self.name}-{what}-{self.count}"

    def gateway(self, registry: dict[str, dict], policy: dict | None = None, vars: dict | None = None) -> str:
        label = self._label("gateway")
        bulk = self.work / f"{label}.json"
        kv = [{"key": f"servers/{k}", "value": json.dumps(v)} for k, v in registry.items()]
        if policy is not None:
            kv.append({"key": "policy", "value": json.dumps(policy)})
        bulk.write_text(json.dumps(kv))
        port = e2e.free_port()
        if self.name == "workerd":
            state = self.work / label
            sh([e2e.NODE22, e2e.WRANGLER, "kv", "bulk", "put", str(bulk), "--binding", "REGISTRY", "--local",
                "--persist-to", str(state)], stdout=subprocess.DEVNULL)
            cmd = [e2e.NODE22, e2e.WRANGLER, "dev", "--ip", "127.0.0.1", "--port", str(port), "--persist-to",
                   str(state), "--show-interactive-dev-session=false"]
            cmd += [a for k, v in (vars or {}).items() for a in ("--var", f"{k}:{v}")]
            log = self.procs.start(label, cmd, env={"MCP_EDGE_SKIP_BUILD": "1", "WRANGLER_SEND_METRICS": "false"})
        else:
            cmd = [str(SPIN_HOST), "--component", str(GATEWAY_WASM), "--listen", f"127.0.0.1:{port}",
                   "--kv-seed", str(bulk), "--kv-store", "sessions", "--var", "default_region=us"]
            cmd += [a for k, v in (vars or {}).items() for a in ("--var", f"{k.lower()}={v}")]
            log = self.procs.start(label, cmd)
        base = f"http://127.0.0.1:{port}"
        self.groups[base] = self.procs.procs[-1][1].pid
        e2e.wait_http(f"{base}/healthz", label, self.procs, log, timeout=120)
        return base

    def floor(self, upstream_port: int) -> str:
        label = self._label("floor")
        port = e2e.free_port()
        upstream = f"http://127.0.0.1:{upstream_port}"
        if self.name == "workerd":
            cmd = [e2e.NODE22, e2e.WRANGLER, "dev", "--ip", "127.0.0.1", "--port", str(port), "--persist-to",
                   str(self.work / label), "--var", f"UPSTREAM:{upstream}", "--show-interactive-dev-session=false"]
            log = self.procs.start(label, cmd, env={"WRANGLER_SEND_METRICS": "false"}, cwd=BENCH / "floor-worker")
        else:
            cmd = [str(SPIN_HOST), "--component", str(FLOOR_WASM), "--listen", f"127.0.0.1:{port}",
                   "--var", f"upstream={upstream}"]
            log = self.procs.start(label, cmd)
        base = f"http://127.0.0.1:{port}"
        self.groups[base] = self.procs.procs[-1][1].pid
        e2e.wait_http(f"{base}/mcp", label, self.procs, log, timeout=120)
        return base


MODERN = " (modern)"


def group_cpu_ms(pgid: int) -> float:
    """CPU time (ms) of every live thread of every process in a process group
    (each runtime is started in a group of its own: e2e.Processes), from
    `/proc/*/task/*/schedstat` (nanoseconds; `stat`'s ticks are 10 ms).
    Threads that ended are not counted: the runtimes keep theirs."""
    total = 0
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            for task in (stat.parent / "task").glob("*/schedstat"):
                total += int(task.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e6


def drive(targets: list[tuple[str, str, str, str]], c: int, n: int, out: pathlib.Path, warmup: int = 20) -> dict:
    """Runs the load driver; targets are (name, url, tool, expected). A name
    ending in MODERN is driven as a 2026-07-28 client."""
    cmd = ["node", str(BENCH / "echo_latency.mjs"), "--n", str(n), "--warmup", str(warmup),
           "--concurrency", str(c), "--json", str(out)]
    for name, url, tool, expected in targets:
        args = "{}" if tool == "tools/list" else '{"text":"hi"}'
        flag = "--modern-target" if name.endswith(MODERN) else "--target"
        cmd += [flag, f"{name}|{url}|{tool}|{args}|{expected}"]
    sh(cmd)
    return {row["target"]: row for row in json.loads(out.read_text())["targets"]}


def stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as r:
        return json.loads(r.read())


def kv_ops(base: str) -> dict:
    """Key-value operations per store the Spin host has served so far."""
    with urllib.request.urlopen(f"{base}/.spin-host/kv-ops", timeout=5) as r:
        return json.loads(r.read())


def store_ops(rt: Runtime, gateway: str, targets: list[tuple[str, str, str, str]]) -> dict:
    """Key-value operations per steady-state call on the Spin host, for each
    target driven alone at c=1: the difference between a run of 10 calls and
    one of 110 (sessions are opened and caches filled in both), over 100."""
    per_call = {}
    for target in targets:
        counts = []
        for n in (10, 110):
            before = kv_ops(gateway)
            drive([target], 1, n, OUT / f"kvops-{rt.name}.json", warmup=0)
            after = kv_ops(gateway)
            counts.append({k: after[k] - before.get(k, 0) for k in after})
        per_call[target[0]] = {k: (counts[1][k] - counts[0].get(k, 0)) / 100 for k in counts[1]}
    return per_call


def latency(rt: Runtime, quick: bool) -> list[dict]:
    """tools/call at c = 1, 8, 32: direct, floor, gateway /mcp and /servers/fast/mcp for legacy and
    modern clients, and /mcp of a second gateway under GOVERNANCE_POLICY (what policy and limit
    checks add)."""
    direct, floor_up, gw_up, gov_up, one_up, single_up, otel_up = (e2e.free_port() for _ in range(7))
    rt.procs.start(f"{rt.name}-fast", ["node", str(BENCH / "fast_upstream.mjs"), "--ports",
                                       f"{direct},{floor_up},{gw_up},{gov_up},{one_up},{single_up},{otel_up}"])
    sink = e2e.free_port()
    rt.procs.start(f"{rt.name}-otlp-sink", ["node", str(BENCH / "otlp_sink.mjs"), "--port", str(sink)])
    e2e.wait_http(f"http://127.0.0.1:{sink}/stats", f"{rt.name}-otlp-sink", rt.procs,
                  rt.work / f"{rt.name}-otlp-sink.log", 30)
    for p in (direct, floor_up, gw_up, gov_up, one_up, single_up, otel_up):
        e2e.wait_http(f"http://127.0.0.1:{p}/stats", f"{rt.name}-fast", rt.procs, rt.work / f"{rt.name}-fast.log", 30)
    floor = rt.floor(floor_up)
    # The fast upstream speaks both eras, and its entry says so: modern
    # clients are relayed without a session from the first request, on Spin
    # too, where nothing learned outlives a request (README, "How the
    # gateway learns an upstream's era").
    gateway = rt.gateway({"fast": entry(gw_up, era="dual")})
    governed = rt.gateway({"fast": entry(gov_up)}, GOVERNANCE_POLICY)
    one_subject = rt.gateway({"fast": entry(one_up)}, ONE_SUBJECT_POLICY)
    single = rt.gateway({"fast": entry(single_up)}, ONE_LIMIT_POLICY)
    governed_targets = [("gateway /mcp, policy + 3 limits", f"{governed}/mcp", "fast__echo", "hi"),
                        ("gateway /mcp, policy + 3 limits on one subject", f"{one_subject}/mcp", "fast__echo", "hi"),
                        ("gateway /mcp, policy + 1 limit", f"{single}/mcp", "fast__echo", "hi")]
    # The same as `gateway`, exporting every request's telemetry to the sink.
    exporting = rt.gateway({"fast": entry(otel_up, era="dual")},
                           vars={"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink}"})
    export_target = ("gateway /mcp, OTLP export on", f"{exporting}/mcp", "fast__echo", "hi")
    # One call through each gateway first: the first call to a server fills
    # its tool catalog (one tools/list), which is not the steady state.
    # A modern client's first request also learns the upstream's era
    # (one server/discover per isolate and endpoint).
    gateway_targets = [
        ("gateway /mcp", f"{gateway}/mcp", "fast__echo", "hi"),
        ("gateway /servers/fast/mcp", f"{gateway}/servers/fast/mcp", "echo", "hi"),
        ("gateway /mcp" + MODERN, f"{gateway}/mcp", "fast__echo", "hi"),
        ("gateway /servers/fast/mcp" + MODERN, f"{gateway}/servers/fast/mcp", "echo", "hi"),
    ]
    drive(gateway_targets + governed_targets + [export_target],
          1, 1, OUT / f"latency-{rt.name}-first.json", warmup=0)
    ops = store_ops(rt, gateway, gateway_targets) if rt.name == "spin" else None
    rows = []
    for c in (1, 8, 32):
        n = {1: 300, 8: 60, 32: 20}[c] // (5 if quick else 1)
        before = stats(gw_up)
        result = drive([
            ("direct", f"http://127.0.0.1:{direct}/mcp", "echo", "hi"),
            ("direct" + MODERN, f"http://127.0.0.1:{direct}/mcp", "echo", "hi"),
            ("floor", f"{floor}/mcp", "echo", "hi"),
            *gateway_targets,
            *governed_targets,
            export_target,
        ], c, n, OUT / f"latency-{rt.name}-c{c}.json")
        after = stats(gw_up)
        burst = 4  # echo_latency.mjs's default: requests go in whole bursts
        sent = (-(-n // burst) + -(-20 // burst)) * burst * c  # per gateway target, warmup included
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        wall_ms = json.loads((OUT / f"latency-{rt.name}-c{c}.json").read_text())["wall_ms"]
        with urllib.request.urlopen(f"http://127.0.0.1:{sink}/stats", timeout=5) as r:
            exported = json.loads(r.read())
        rows.append({"runtime": rt.name, "c": c, "result": result, "upstream": delta, "gateway_calls": sent,
                     "store_ops": ops, "wall_ms": wall_ms, "otlp_posts": exported})
    rows[0]["cpu_ms"] = cpu_per_call(rt, {"floor": (floor, ("floor", f"{floor}/mcp", "echo", "hi")),
                                         "gateway": (gateway, gateway_targets[0])}, 60 if quick else 300)
    return rows


def cpu_per_call(rt: Runtime, targets: dict[str, tuple[str, tuple]], n: int, rounds: int = 3) -> dict:
    """CPU time per call (ms) of the processes serving each target, at c=1:
    each target driven alone, in turns, for `rounds` rounds; the median. Work,
    as apart from waiting: everything the runtime's processes did meanwhile
    counts (its own request handling, timers), over about the same wall time
    for every target."""
    per_call: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, (base, target) in targets.items():
            before = rt.cpu_ms(base)
            drive([target], 1, n, OUT / f"cpu-{rt.name}.json", warmup=0)
            per_call[name].append((rt.cpu_ms(base) - before) / n)
    return {name: sorted(v)[len(v) // 2] for name, v in per_call.items()}


def fanout(rt: Runtime, quick: bool) -> list[dict]:
    """tools/list over N upstreams that each answer after 20 ms."""
    ports = [e2e.free_port() for _ in range(20)]
    rt.procs.start(f"{rt.name}-slow", ["node", str(BENCH / "fast_upstream.mjs"), "--ports", ",".join(map(str, ports)),
                                       "--tools", str(FANOUT_TOOLS), "--delay-ms", str(FANOUT_DELAY_MS)])
    e2e.wait_http(f"http://127.0.0.1:{ports[-1]}/stats", f"{rt.name}-slow", rt.procs, rt.work / f"{rt.name}-slow.log", 30)
    # The floor in front of one slow upstream is the slowest upstream as seen
    # through this runtime: what the gateway's fan-out should track.
    floor = rt.floor(ports[0])
    rows = []
    for count in (1, 5, 10, 20):
        gateway = rt.gateway({f"up{i}": entry(p) for i, p in enumerate(ports[:count])})
        expected = str(count * (FANOUT_TOOLS + 1))
        result = drive([
            ("floor, 1 upstream", f"{floor}/mcp", "tools/list", str(FANOUT_TOOLS + 1)),
            (f"gateway, {count} upstreams", f"{gateway}/mcp", "tools/list", expected),
        ], 1, 10 if quick else 40, OUT / f"fanout-{rt.name}-{count}.json", warmup=5)
        rows.append({"runtime": rt.name, "upstreams": count, "result": result[f"gateway, {count} upstreams"],
                     "floor": result["floor, 1 upstream"]})
    return rows


def cold_start(work: pathlib.Path, quick: bool) -> dict:
    """workerd cold start: a fresh `wrangler dev` of the gateway, the time of
    the first `tools/list` once its port accepts connections (the worker's
    script and wasm loaded and instantiated on the way), then the median of
    five more (warm). Median over several starts."""
    firsts, warms = [], []
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}}).encode()
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream",
               "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list"}
    for i in range(2 if quick else 5):
        procs = e2e.Processes(work)
        try:
            rt = Runtime("workerd", procs, work)
            label = rt._label("cold")
            state = work / label
            port = e2e.free_port()
            cmd = [e2e.NODE22, e2e.WRANGLER, "dev", "--ip", "127.0.0.1", "--port", str(port), "--persist-to",
                   str(state), "--show-interactive-dev-session=false"]
            log = procs.start(label, cmd, env={"MCP_EDGE_SKIP_BUILD": "1", "WRANGLER_SEND_METRICS": "false"})
            deadline = time.time() + 120
            while True:
                if not procs.alive(label) or time.time() > deadline:
                    raise SystemExit(f"{label} did not start; log:\n{e2e.tail(log)}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.02)
            def timed() -> float:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/mcp", data=body, headers=headers)
                t0 = time.perf_counter()
                try:
                    with urllib.request.urlopen(req, timeout=60) as r:
                        r.read()
                except urllib.error.HTTPError as e:
                    e.read()  # no registry, no key: a 401 from the gateway's code is as good
                return (time.perf_counter() - t0) * 1000
            firsts.append(timed())
            warms.append(sorted(timed() for _ in range(5))[2])
        finally:
            procs.stop_all()
    mid = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    return {"first_ms": mid(firsts), "warm_ms": mid(warms), "firsts": firsts}


def core() -> list[dict]:
    out = subprocess.run(["cargo", "bench", "--bench", "core"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    print(out)
    return [json.loads(line[6:]) for line in out.splitlines() if line.startswith("BENCH ")]


def sizes() -> dict:
    def gz(p: pathlib.Path) -> int:
        return len(gzip.compress(p.read_bytes(), 9))
    wasm, js = ROOT / "build" / "index_bg.wasm", ROOT / "build" / "index.js"
    import sizes as by_crate  # bench/sizes.py
    symbols = ROOT / "build" / "index_bg.symbols"
    crates = {"workers": by_crate.sizes(str(wasm), str(symbols) if symbols.exists() else None)[0]}
    if SPIN_NAMED.exists():
        crates["spin"] = by_crate.sizes(str(SPIN_NAMED))[0]
    # The playground as a browser fetches it: each file gzipped on its own.
    playground = sorted((ROOT / "web" / "playground").iterdir())
    return {"workers_wasm": wasm.stat().st_size, "workers_wasm_gz": gz(wasm), "workers_js_gz": gz(js),
            "spin_wasm": GATEWAY_WASM.stat().st_size, "spin_wasm_gz": gz(GATEWAY_WASM), "crates": crates,
            "playground_gz": sum(gz(p) for p in playground), "playground_files": len(playground)}


def version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT).stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        return "?"


def machine() -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu}, {os.cpu_count()} cores", "os": platform.platform(),
        "rustc": version(["rustc", "--version"]), "node": version(["node", "--version"]),
        "wrangler": version([e2e.NODE22, e2e.WRANGLER, "--version"]),
        "wasmtime": re.search(r'name = "wasmtime"\nversion = "([^"]+)"',
                              (ROOT / "tests/spin-host/Cargo.lock").read_text()).group(1),
    }


# The same rules, with three limits on one subject (the caller): a rate, a
# daily quota and a rate on one tool, which share one home (one Durable
# Object round trip on workerd).
ONE_SUBJECT_POLICY = {
    "rules": GOVERNANCE_POLICY["rules"],
    "limits": [
        {"name": "per-minute", "per": "principal", "requests": 1_000_000_000, "window_secs": 60},
        {"name": "per-day", "per": "principal", "daily": 1_000_000_000},
        {"name": "echo-rate", "per": "principal", "tools": ["echo"], "requests": 1_000_000_000, "window_secs": 1},
    ],
}

# One limit: what one counter round trip costs, measured beside the others.
ONE_LIMIT_POLICY = {"rules": GOVERNANCE_POLICY["rules"], "limits": GOVERNANCE_POLICY["limits"][:1]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.no_build:
        build()
    results = {"machine": machine(), "sizes": sizes(), "core": core(), "latency": [], "fanout": []}
    work = pathlib.Path(tempfile.mkdtemp(prefix="mcp-edge-bench-"))
    results["cold_start"] = cold_start(work, args.quick)
    for name in ("workerd", "spin"):
        procs = e2e.Processes(work)
        try:
            rt = Runtime(name, procs, work)
            results["latency"] += latency(rt, args.quick)
            results["fanout"] += fanout(rt, args.quick)
        finally:
            procs.stop_all()
    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    from report import render  # noqa: E402  (bench/report.py)
    (BENCH / "RESULTS.md").write_text(render(results, quick=args.quick))
    print((BENCH / "RESULTS.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
