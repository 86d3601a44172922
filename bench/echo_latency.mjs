#!/usr/bin/env node
// echo_latency.mjs — latency of MCP `tools/call` (an echo tool) through the mcp-edge gateway
// versus directly to the upstream, measured in the same run and interleaved so that machine
// drift (CPU frequency, noisy neighbours, GC) affects every target equally.
//
// Usage:
//   node bench/echo_latency.mjs --target 'NAME|URL|TOOL|ARGS_JSON|EXPECTED_TEXT' [--target ...]
//        [--modern-target ...] [--n 300] [--warmup 30] [--concurrency 1] [--json out.json]
//
//   --target       Fields are separated by '|' (URLs and JSON may contain '=', so '=' is not used).
//                  The line is split on the first four '|'; everything after the fourth '|' is the
//                  expected text, so only the expected text may itself contain '|'.
//                  ARGS_JSON is the tools/call `arguments` object; EXPECTED_TEXT must equal the
//                  result's first content item's text, otherwise the request counts as an error.
//                  TOOL `tools/list` measures tools/list instead; EXPECTED_TEXT is the tool count.
//   --modern-target  The same fields, spoken in the 2026-07-28 era: no session, no handshake;
//                  every request carries the revision and the client's capabilities in
//                  `params._meta` and the routing headers (MCP-Protocol-Version, Mcp-Method,
//                  Mcp-Name), and its result must say `resultType: "complete"`.
//   --n            measured requests per worker and target (default 300), sent in phases: in a
//                  phase every worker sends --burst requests to one target, and the phase ends when
//                  all are answered; targets take turns phase by phase, the first rotating each
//                  round, so each target is measured under exactly C concurrent requests.
//   --burst        requests per worker in a phase (default 4).
//   --warmup       unmeasured requests per worker and target before measuring (default 30).
//   --concurrency  C independent workers (default 1), each with its own MCP session per target.
//                  Each target then gets about n*C samples (n rounded up to a whole number of bursts). Throughput is also reported (see below).
//   --json         also write the results table as JSON to this file.
//
// Example:
//   node bench/echo_latency.mjs --n 300 \
//     --target 'direct|http://127.0.0.1:3001/mcp|echo|{"message":"hi"}|Echo: hi' \
//     --target 'gateway|http://127.0.0.1:8787/mcp|everything__echo|{"message":"hi"}|Echo: hi' \
//     --target 'gateway-per-server|http://127.0.0.1:8787/servers/everything/mcp|echo|{"message":"hi"}|Echo: hi'
//
// Each legacy session: initialize -> notifications/initialized (expects 202) -> measured tools/call ->
// HTTP DELETE at the end. Responses may be JSON or SSE (text/event-stream); both are handled.
// Latency = time from issuing the request until its whole body has been received (keep-alive
// sockets, so connection setup is paid during warmup). Failed requests are never latency samples.
// Throughput (C > 1): per target, its ok requests / the wall time of its phases, i.e.
// requests/second that target sustained under C-way load.
// Exits non-zero if any request takes over 30 s, if a session cannot be set up, or if a target's
// errors exceed 1% of its requests.  Dependencies: Node's built-ins only (Node >= 18).

import http from 'node:http';
import https from 'node:https';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const REQUEST_TIMEOUT_MS = 30_000;
const MAX_ERROR_RATE = 0.01;
const PROTOCOL_VERSION = '2025-06-18';
// The stateless revision (docs/specification/2026-07-28/basic/index.mdx: the `_meta` envelope).
const MODERN = '2026-07-28';
const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': MODERN,
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1' },
};

function die(msg, code = 2) {
  process.stderr.write(`echo_latency: ${msg}\n`);
  process.exit(code);
}

function parseCli(argv) {
  const opts = { targets: [], n: 300, warmup: 30, concurrency: 1, burst: 4, json: null };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const val = argv[i + 1];
    if (val === undefined && flag !== '--help') die(`missing value for ${flag}`);
    switch (flag) {
      case '--target':
      case '--modern-target': {
        const parts = val.split('|');
        if (parts.length < 5) die(`--target needs NAME|URL|TOOL|ARGS_JSON|EXPECTED_TEXT, got: ${val}`);
        const [name, url, tool, argsJson] = parts;
        let args;
        try { args = JSON.parse(argsJson); } catch (e) { die(`bad ARGS_JSON for ${name}: ${e.message}`); }
        let u;
        try { u = new URL(url); } catch { die(`bad URL for ${name}: ${url}`); }
        const modern = flag === '--modern-target';
        opts.targets.push({ name, url: u, tool, args, expected: parts.slice(4).join('|'), modern });
        break;
      }
      case '--n': case '--warmup': case '--concurrency': case '--burst': {
        const v = Number(val);
        if (!Number.isInteger(v) || v < (flag === '--warmup' ? 0 : 1)) die(`bad ${flag}: ${val}`);
        opts[flag.slice(2)] = v;
        break;
      }
      case '--json': opts.json = val; break;
      case '--help': process.stdout.write('see the header comment of bench/echo_latency.mjs\n'); process.exit(0);
      default: die(`unknown argument: ${flag}`);
    }
    i++;
  }
  if (opts.targets.length === 0) die('at least one --target is required');
  if (new Set(opts.targets.map((t) => t.name)).size !== opts.targets.length) die('target names must be unique');
  return opts;
}

class TimeoutError extends Error {}

const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: Infinity }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: Infinity }),
};

// One HTTP exchange; resolves once the whole body is in. `ms` = request start -> body end.
function send(url, method, headers, body) {
  return new Promise((resolve, reject) => {
    const lib = url.protocol === 'https:' ? https : http;
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const hdrs = { Accept: 'application/json, text/event-stream', ...headers };
    if (payload) { hdrs['Content-Type'] = 'application/json'; hdrs['Content-Length'] = payload.length; }
    const t0 = performance.now();
    const req = lib.request(url, { method, headers: hdrs, agent: agents[url.protocol] }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const ms = performance.now() - t0;
        clearTimeout(timer);
        resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8'), ms });
      });
      res.on('error', (e) => { clearTimeout(timer); reject(e); });
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new TimeoutError(`${method} ${url.href} took over ${REQUEST_TIMEOUT_MS / 1000} s`));
    }, REQUEST_TIMEOUT_MS);
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    req.end(payload);
  });
}

// Extract the JSON-RPC response with the given id from a JSON or SSE body.
function rpcResponse(res, id) {
  const ct = String(res.headers['content-type'] || '');
  if (ct.includes('text/event-stream')) {
    for (const event of res.text.split(/\r?\n\r?\n/)) {
      const data = event.split(/\r?\n/).filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, '')).join('\n');
      if (!data) continue;
      const msg = JSON.parse(data);
      if (msg.id === id && ('result' in msg || 'error' in msg)) return msg;
    }
    throw new Error(`no JSON-RPC response with id ${id} in SSE body`);
  }
  if (!ct.includes('application/json')) throw new Error(`unexpected content-type "${ct}" (HTTP ${res.status})`);
  const msg = JSON.parse(res.text);
  const found = Array.isArray(msg) ? msg.find((m) => m.id === id) : msg;
  if (!found || found.id !== id) throw new Error(`no JSON-RPC response with id ${id} in JSON body`);
  return found;
}

class Session {
  constructor(target) { this.t = target; this.nextId = 1; this.headers = {}; }

  async open() {
    if (this.t.modern) {
      // Nothing to open: every modern request stands alone.
      this.headers['MCP-Protocol-Version'] = MODERN;
      return;
    }
    const id = this.nextId++;
    const res = await send(this.t.url, 'POST', {}, {
      jsonrpc: '2.0', id, method: 'initialize',
      params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'bench', version: '1' } },
    });
    if (res.status !== 200) throw new Error(`initialize: HTTP ${res.status}: ${res.text.slice(0, 200)}`);
    const msg = rpcResponse(res, id);
    if (msg.error) throw new Error(`initialize: ${JSON.stringify(msg.error)}`);
    const sid = res.headers['mcp-session-id'];
    if (sid) this.headers['Mcp-Session-Id'] = sid;
    this.headers['MCP-Protocol-Version'] = msg.result.protocolVersion;
    const note = await send(this.t.url, 'POST', this.headers, { jsonrpc: '2.0', method: 'notifications/initialized' });
    if (note.status !== 202) throw new Error(`notifications/initialized: expected 202, got ${note.status}`);
  }

  // Returns { ms } on success; throws on failure (TimeoutError is fatal to the run).
  // TOOL "tools/list" measures a list instead: EXPECTED_TEXT is then the tool count.
  async call() {
    const id = this.nextId++;
    const list = this.t.tool === 'tools/list';
    const body = list
      ? { jsonrpc: '2.0', id, method: 'tools/list', params: {} }
      : { jsonrpc: '2.0', id, method: 'tools/call', params: { name: this.t.tool, arguments: this.t.args } };
    let headers = this.headers;
    if (this.t.modern) {
      body.params._meta = MODERN_META;
      headers = { ...headers, 'Mcp-Method': body.method };
      if (!list) headers['Mcp-Name'] = this.t.tool;
    }
    const res = await send(this.t.url, 'POST', headers, body);
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${res.text.slice(0, 200)}`);
    const msg = rpcResponse(res, id);
    if (msg.error) throw new Error(`JSON-RPC error ${JSON.stringify(msg.error)}`);
    if (this.t.modern && msg.result?.resultType !== 'complete') {
      throw new Error(`expected resultType "complete", got ${JSON.stringify(msg.result).slice(0, 200)}`);
    }
    if (list) {
      const count = String(msg.result?.tools?.length);
      if (count !== this.t.expected) throw new Error(`expected ${this.t.expected} tools, got ${count}`);
      return res.ms;
    }
    const text = msg.result?.content?.[0]?.text;
    if (msg.result?.isError || text !== this.t.expected) {
      throw new Error(`expected ${JSON.stringify(this.t.expected)}, got ${JSON.stringify(msg.result).slice(0, 200)}`);
    }
    return res.ms;
  }

  async close() {
    if (!this.headers['Mcp-Session-Id']) return;
    try {
      const res = await send(this.t.url, 'DELETE', this.headers);
      if (res.status >= 300 && res.status !== 405) {
        process.stderr.write(`warning: DELETE session on ${this.t.name}: HTTP ${res.status}\n`);
      }
    } catch (e) {
      process.stderr.write(`warning: DELETE session on ${this.t.name}: ${e.message}\n`);
    }
  }
}

// One phase: every worker sends `burst` requests to target `i`, one after
// another, and the phase ends when all are answered. Targets take turns
// phase by phase (the first target rotating each round), so each target is
// measured under exactly C concurrent requests while drift still hits every
// target alike. (Workers that cycled through all targets on their own put
// most of the C requests on whichever process was slowest, so a process
// serving several targets was measured under several times the load of the
// floor.)
async function phase(i, opts, stats, sessions, measured) {
  const st = stats[i];
  const t0 = performance.now();
  await Promise.all(sessions.map(async (s) => {
    for (let b = 0; b < opts.burst; b++) {
      const c0 = performance.now();
      try {
        const ms = await s[i].call();
        if (measured) { st.samples.push(ms); st.ok++; }
      } catch (e) {
        if (e instanceof TimeoutError) die(`timeout: ${e.message}`, 3);
        if (measured) st.errors++;
        else st.warmupErrors++;
        if (st.errorMsgs.length < 3) st.errorMsgs.push(`${e.message} (after ${(performance.now() - c0).toFixed(0)} ms)`);
      }
    }
  }));
  if (measured) st.wallMs += performance.now() - t0;
}

async function rounds(opts, stats, sessions, measured) {
  const T = opts.targets.length;
  const count = Math.ceil((measured ? opts.n : opts.warmup) / opts.burst);
  for (let r = 0; r < count; r++) {
    for (let k = 0; k < T; k++) await phase((r + k) % T, opts, stats, sessions, measured);
  }
}

function pct(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

async function main() {
  const opts = parseCli(process.argv.slice(2));
  const C = opts.concurrency;
  const stats = opts.targets.map(() => ({
    samples: [], errors: 0, warmupErrors: 0, errorMsgs: [], ok: 0, wallMs: 0,
  }));

  const sessions = [];
  for (let w = 0; w < C; w++) {
    sessions.push(await Promise.all(opts.targets.map(async (t) => {
      const s = new Session(t);
      try { await s.open(); } catch (e) { die(`cannot open session on ${t.name} (${t.url.href}): ${e.message}`); }
      return s;
    })));
  }

  await rounds(opts, stats, sessions, false);
  const wall0 = performance.now();
  await rounds(opts, stats, sessions, true);
  const wallMs = performance.now() - wall0;
  await Promise.all(sessions.flat().map((s) => s.close()));

  const rows = opts.targets.map((t, i) => {
    const st = stats[i];
    const sorted = [...st.samples].sort((a, b) => a - b);
    const mean = sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : NaN;
    const rps = st.wallMs > 0 ? st.ok / (st.wallMs / 1000) : NaN;
    return {
      target: t.name, url: t.url.href, tool: t.tool, samples: sorted.length, errors: st.errors,
      p50_ms: pct(sorted, 50), p90_ms: pct(sorted, 90), p99_ms: pct(sorted, 99), mean_ms: mean, rps,
    };
  });
  for (const r of rows) r.p50_ratio = r.p50_ms / rows[0].p50_ms;

  const f3 = (x) => (Number.isFinite(x) ? x.toFixed(3) : '-');
  const head = ['target', 'samples', 'errors', 'p50', 'p90', 'p99', 'mean', 'p50/first'];
  if (C > 1) head.push('req/s');
  const table = rows.map((r) => {
    const cells = [r.target, String(r.samples), String(r.errors), f3(r.p50_ms), f3(r.p90_ms), f3(r.p99_ms),
      f3(r.mean_ms), f3(r.p50_ratio)];
    if (C > 1) cells.push(r.rps.toFixed(1));
    return cells;
  });
  const widths = head.map((h, c) => Math.max(h.length, ...table.map((row) => row[c].length)));
  const line = (cells) => cells.map((v, c) => (c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join('  ');
  const totalReqs = rows.reduce((a, r) => a + r.samples + r.errors, 0);
  console.log(`node ${process.version}  n=${opts.n} warmup=${opts.warmup} concurrency=${C}  ` +
    `wall=${(wallMs / 1000).toFixed(2)} s  overall=${(totalReqs / (wallMs / 1000)).toFixed(1)} req/s  (latencies in ms)`);
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of table) console.log(line(row));

  let failed = false;
  stats.forEach((st, i) => {
    const name = opts.targets[i].name;
    if (st.errorMsgs.length) {
      console.error(`${name}: ${st.errors} errors (+${st.warmupErrors} in warmup), e.g.:\n  ${st.errorMsgs.join('\n  ')}`);
    }
    const attempted = st.samples.length + st.errors;
    if (st.errors > MAX_ERROR_RATE * attempted) {
      console.error(`FAIL: ${name}: ${st.errors}/${attempted} requests failed (> ${MAX_ERROR_RATE * 100}%)`);
      failed = true;
    }
  });

  if (opts.json) {
    const out = { node: process.version, n: opts.n, warmup: opts.warmup, concurrency: C, wall_ms: wallMs, targets: rows };
    writeFileSync(opts.json, JSON.stringify(out, null, 2) + '\n');
  }
  process.exit(failed ? 1 : 0);
}

main().catch((e) => die(e.stack || String(e)));
