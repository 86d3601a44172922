#!/usr/bin/env node
// End-to-end scenario runner on the official TypeScript SDK v2 client
// (`@modelcontextprotocol/client`), pinned to MCP 2026-07-28: no fallback to
// the initialize handshake, so every request it makes is a modern one.
//
// Usage:  node tests/e2e/clients/ts2_client.mjs SCENARIO_JSON_FILE
//
// Reads the same scenario JSON as ts_client.mjs and py_client.py, and checks
// "expect_tools", "absent_tools", "calls" and "progress" (the fields a
// stateless client exercises), plus that no Mcp-Session-Id is ever issued.
// Output: `ok: ...` / `FAIL: ...` lines and a `summary:` line; exit 0 when
// every check passed, 1 otherwise, 2 on a usage error.

import { readFileSync } from "node:fs";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

const file = process.argv[2];
if (!file) {
  console.error("usage: ts2_client.mjs SCENARIO_JSON_FILE");
  process.exit(2);
}
const scenario = JSON.parse(readFileSync(file, "utf8"));
const label = scenario.name ?? file;
let passed = 0;
let failed = 0;
function check(ok, what, detail = "") {
  if (ok) {
    passed++;
    console.log(`ok: [${label}] ${what}`);
  } else {
    failed++;
    console.log(`FAIL: [${label}] ${what}${detail ? ` -- ${detail}` : ""}`);
  }
  return ok;
}

// Every response the SDK sees, to hold the gateway to "no session".
let sessionSeen = null;
const watching = async (input, init) => {
  const response = await fetch(input, init);
  const sid = response.headers.get("mcp-session-id");
  if (sid) sessionSeen = sid;
  return response;
};

const text = (result) => (result.content ?? []).find((c) => c.type === "text")?.text ?? "";

async function run() {
  const transport = new StreamableHTTPClientTransport(new URL(scenario.url), {
    requestInit: { headers: scenario.headers ?? {} },
    fetch: watching,
  });
  const client = new Client(
    { name: "mcp-edge-e2e-ts2", version: "1.0.0" },
    { versionNegotiation: { mode: { pin: "2026-07-28" } } },
  );
  await client.connect(transport);
  check(true, "connected, pinned to 2026-07-28 (server/discover answered)");

  const names = [];
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : {});
    names.push(...page.tools.map((t) => t.name));
    cursor = page.nextCursor;
  } while (cursor);
  for (const t of scenario.expect_tools ?? []) check(names.includes(t), `tools/list contains ${t}`);
  for (const t of scenario.absent_tools ?? []) check(!names.includes(t), `tools/list does not contain ${t}`);

  for (const call of scenario.calls ?? []) {
    const result = await client.callTool({ name: call.tool, arguments: call.arguments ?? {} });
    const got = text(result);
    const ok = call.expect_contains ? got.includes(call.expect_text) : got === call.expect_text;
    check(ok && !result.isError, `call ${call.tool} -> ${JSON.stringify(call.expect_text)}`, JSON.stringify(result));
  }

  if (scenario.progress) {
    const p = scenario.progress;
    const seen = [];
    const started = Date.now();
    const result = await client.callTool(
      { name: p.tool, arguments: p.arguments ?? {} },
      { onprogress: () => seen.push(Date.now()) },
    );
    const finished = Date.now();
    check(!result.isError, `progress call ${p.tool} succeeds`, JSON.stringify(result));
    check(seen.length >= p.min_notifications, `progress: ${seen.length} >= ${p.min_notifications} notifications`);
    const lead = seen.length ? finished - seen[0] : 0;
    check(lead >= (p.min_lead_ms ?? 0), `progress: the first arrived ${lead} ms before the result (streamed)`,
      `started ${started}`);
  }

  check(sessionSeen === null, "stateless: no Mcp-Session-Id issued", `got ${sessionSeen}`);
  await client.close();
}

const deadline = setTimeout(() => {
  check(false, "finished within the deadline");
  console.log(`summary: [${label}] FAIL: ${passed} passed, ${failed} failed`);
  process.exit(1);
}, scenario.timeout_ms ?? 60000);

try {
  await run();
} catch (e) {
  check(false, "scenario ran without error", e?.stack ?? String(e));
}
clearTimeout(deadline);
console.log(`summary: [${label}] ${failed ? "FAIL" : "ok"}: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
