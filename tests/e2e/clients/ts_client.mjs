#!/usr/bin/env node
// End-to-end scenario runner for mcp-edge, driven by the official MCP
// TypeScript SDK (`@modelcontextprotocol/sdk` 1.x: `Client` +
// `StreamableHTTPClientTransport`, the legacy session-based Streamable HTTP).
//
// Usage:  node tests/e2e/clients/ts_client.mjs SCENARIO_JSON_FILE
//
// Scenario JSON (all fields except "url" are optional):
//   {
//     "name": "aggregate",                          // label for output
//     "url": "http://127.0.0.1:8787/mcp",
//     "headers": {"Authorization": "Bearer ..."},   // sent on every request
//     "expect_tools": ["everything__echo"],         // must be in tools/list
//     "absent_tools": ["echo"],                     // must not be in tools/list
//     "calls": [{"tool": "everything__echo", "arguments": {"message": "hi"},
//                "expect_text": "Echo: hi", "expect_contains": false}],
//     "progress": {"tool": "notes__slow_count", "arguments": {...},
//                  "min_notifications": 3, "min_lead_ms": 600},
//     "approvals": [{"tool": "notes__purge", "arguments": {...},
//                    "answer": "decline" | "accept", "expect_text": "...",
//                    "then": {a call as in "calls"}}],   // client declares
//                    // elicitation and answers the gateway's question; declined
//                    // calls must be tool errors, accepted ones succeed; with
//                    // "expect": "pending" (a call approvers decide) the client
//                    // must never be asked and the call is a tool error naming
//                    // a pending approval, however eagerly it would accept
//     "asks": {"elicit": {"name": "..."}, "sample": "...", "roots": [{"uri": "..."}]},
//                                                   // the client declares elicitation,
//                                                   // sampling and roots and answers an
//                                                   // upstream's questions with these;
//                                                   // "calls" then check what came back
//     "subscribe": {"uri": "...", "start": "tool"},   // subscribe, call `start` (it makes the
//                                                   // server send updates), wait for an update
//                                                   // of the URI, call `start` again, unsubscribe
//     "expect_tools_changed": true,                 // a tools/list_changed arrived
//     "settle_ms": 1000,                            // wait after connecting (the SDK's GET
//                                                   // stream opens in the background)
//     "delete_session": true,
//     "timeout_ms": 60000                           // whole-run deadline
//   }
//
// `$NONCE` anywhere in the scenario is replaced by a token fresh for this run.
//
// Output: one `ok: ...` / `FAIL: ...` line per check, `warn: ...` lines for
// transport errors the SDK swallows, and a final `summary:` line.
// Exit status: 0 all checks passed, 1 any check failed (or an exception or the
// deadline hit), 2 usage / scenario-file errors.
//
// Set MCP_E2E_DEBUG=1 to log every HTTP exchange the SDK makes (method,
// request headers, status, content type) to stderr.
//
// Runs on plain Node >= 20 (global fetch, performance); imports resolve from
// the repo's node_modules, so no build step.

import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
    CreateMessageRequestSchema,
    ElicitRequestSchema,
    ListRootsRequestSchema,
    ResourceUpdatedNotificationSchema,
    ToolListChangedNotificationSchema
} from '@modelcontextprotocol/sdk/types.js';

const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_LIST_PAGES = 100; // guards against a server that never stops paginating
const DEBUG = Boolean(process.env.MCP_E2E_DEBUG);

// ---------------------------------------------------------------- reporting

let passed = 0;
let failed = 0;
let label = 'scenario';

function ok(msg) {
    passed++;
    console.log(`ok: ${msg}`);
}

function fail(msg) {
    failed++;
    console.log(`FAIL: ${msg}`);
}

function check(cond, msg, detail) {
    if (cond) ok(msg);
    else fail(detail ? `${msg} (${detail})` : msg);
    return cond;
}

function errText(e) {
    if (!(e instanceof Error)) return String(e);
    // fetch() failures hide the useful part (ECONNREFUSED, ...) in `cause`.
    const cause = e.cause ? ` (cause: ${e.cause.code ?? e.cause.message ?? e.cause})` : '';
    return `${e.name}: ${e.message}${cause}`;
}

function finish() {
    console.log(`summary: ${label}: ${passed} passed, ${failed} failed`);
    process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

function usage(msg) {
    console.error(`usage: node ts_client.mjs SCENARIO_JSON_FILE\nerror: ${msg}`);
    process.exit(2);
}

// Anything that escapes the structured flow still ends the run with a FAIL.
process.on('unhandledRejection', e => {
    fail(`unhandled rejection: ${errText(e)}`);
    finish();
});
process.on('uncaughtException', e => {
    fail(`uncaught exception: ${errText(e)}`);
    finish();
});

// ---------------------------------------------------------------- scenario

function loadScenario(path) {
    let s;
    try {
        s = JSON.parse(readFileSync(path, 'utf8').replaceAll('$NONCE', `ts${randomBytes(4).toString('hex')}`));
    } catch (e) {
        usage(`cannot read scenario ${path}: ${errText(e)}`);
    }
    const isStrList = v => v === undefined || (Array.isArray(v) && v.every(x => typeof x === 'string'));
    if (!s || typeof s !== 'object' || Array.isArray(s)) usage('scenario must be a JSON object');
    if (typeof s.url !== 'string') usage('scenario.url (string) is required');
    try {
        new URL(s.url);
    } catch {
        usage(`scenario.url is not a URL: ${s.url}`);
    }
    if (s.headers !== undefined && (typeof s.headers !== 'object' || Array.isArray(s.headers))) {
        usage('scenario.headers must be an object');
    }
    if (!isStrList(s.expect_tools)) usage('scenario.expect_tools must be a list of strings');
    if (!isStrList(s.absent_tools)) usage('scenario.absent_tools must be a list of strings');
    if (s.calls !== undefined && !(Array.isArray(s.calls) && s.calls.every(c => typeof c?.tool === 'string'))) {
        usage('scenario.calls must be a list of {"tool": ...} objects');
    }
    if (
        s.approvals !== undefined &&
        !(Array.isArray(s.approvals) && s.approvals.every(a => typeof a?.tool === 'string' && ['accept', 'decline'].includes(a?.answer)))
    ) {
        usage('scenario.approvals must be a list of {"tool": ..., "answer": "accept" | "decline"} objects');
    }
    if (s.progress !== undefined && typeof s.progress?.tool !== 'string') {
        usage('scenario.progress.tool (string) is required when progress is given');
    }
    return s;
}

// ---------------------------------------------------------------- HTTP trace

// Wraps fetch so every exchange the SDK makes is visible: always recorded (the
// DELETE check reads it), printed to stderr only with MCP_E2E_DEBUG.
const httpLog = [];
async function tracingFetch(url, init = {}) {
    const method = init.method ?? 'GET';
    const headers = Object.fromEntries(new Headers(init.headers ?? {}).entries());
    const entry = { method, headers, status: undefined };
    httpLog.push(entry);
    if (DEBUG) console.error(`http> ${method} ${url} ${JSON.stringify(headers)}${init.body ? ` body=${init.body}` : ''}`);
    try {
        const res = await fetch(url, init);
        entry.status = res.status;
        if (DEBUG) console.error(`http< ${method} ${res.status} ${res.headers.get('content-type') ?? '-'} session=${res.headers.get('mcp-session-id') ?? '-'}`);
        return res;
    } catch (e) {
        entry.error = errText(e);
        if (DEBUG) console.error(`http< ${method} error ${entry.error}`);
        throw e;
    }
}

// ---------------------------------------------------------------- checks

/** tools/list, following nextCursor until the server stops paginating. */
async function listAllTools(client, reqOpts) {
    const names = [];
    const seenCursors = new Set();
    let cursor;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
        const res = await client.listTools(cursor ? { cursor } : undefined, reqOpts);
        names.push(...res.tools.map(t => t.name));
        cursor = res.nextCursor;
        if (!cursor) return { names, pages: page + 1 };
        if (seenCursors.has(cursor)) throw new Error(`tools/list repeated cursor ${JSON.stringify(cursor)}`);
        seenCursors.add(cursor);
    }
    throw new Error(`tools/list still paginating after ${MAX_LIST_PAGES} pages`);
}

function firstText(result) {
    return (result?.content ?? []).find(c => c?.type === 'text')?.text;
}

async function checkTools(client, s, reqOpts) {
    let listed;
    try {
        listed = await listAllTools(client, reqOpts);
    } catch (e) {
        fail(`tools/list: ${errText(e)}`);
        return;
    }
    const { names, pages } = listed;
    ok(`tools/list returned ${names.length} tools in ${pages} page(s)`);
    const dupes = [...new Set(names.filter((n, i) => names.indexOf(n) !== i))];
    check(dupes.length === 0, 'tool names are unique', `duplicates: ${dupes.join(', ')}`);
    const have = new Set(names);
    for (const t of s.expect_tools ?? []) {
        check(have.has(t), `tool listed: ${t}`, `listed: ${names.join(', ')}`);
    }
    for (const t of s.absent_tools ?? []) {
        check(!have.has(t), `tool absent: ${t}`);
    }
}

async function checkCall(client, c, reqOpts) {
    const what = `call ${c.tool}`;
    let result;
    try {
        result = await client.callTool({ name: c.tool, arguments: c.arguments ?? {} }, undefined, reqOpts);
    } catch (e) {
        fail(`${what}: ${errText(e)}`);
        return;
    }
    // "contains" looks through every text item, "equals" at the first.
    const text = c.expect_contains
        ? (result?.content ?? []).filter(x => x?.type === 'text').map(x => x.text).join('\n')
        : firstText(result);
    if (!check(!result.isError, `${what}: isError falsy`, `isError=true, text=${JSON.stringify(text)}`)) return;
    if (c.expect_text === undefined) return;
    const good = c.expect_contains ? typeof text === 'string' && text.includes(c.expect_text) : text === c.expect_text;
    check(
        good,
        `${what}: text ${c.expect_contains ? 'contains' : 'equals'} ${JSON.stringify(c.expect_text)}`,
        `got ${JSON.stringify(text)}`
    );
}

// What the elicitation handler answers, and the questions it was asked.
const elicit = { answer: 'decline', asked: [], modes: [] };

async function checkApproval(client, a, reqOpts) {
    const what = `approval ${a.tool} (${a.answer})`;
    elicit.answer = a.answer;
    elicit.asked = [];
    elicit.modes = [];
    let result;
    try {
        result = await client.callTool({ name: a.tool, arguments: a.arguments ?? {} }, undefined, reqOpts);
    } catch (e) {
        fail(`${what}: ${errText(e)}`);
        return;
    }
    const text = firstText(result);
    const short = a.tool.split('__').pop();
    if (a.expect === 'pending') {
        // A URL question (the client declared URL elicitation) only sends the
        // user to the approval; a form question would let them decide.
        check(!elicit.modes.includes('form'), `${what}: the requester is not asked to decide`, `asked ${JSON.stringify(elicit.asked)} in modes ${JSON.stringify(elicit.modes)}`);
        check(result.isError === true && typeof text === 'string' && text.includes('approver') && text.includes('pending'),
            `${what}: a tool error names the pending approval for an approver`, `isError=${result.isError}, text=${JSON.stringify(text)}`);
    } else {
        check(elicit.asked.length === 1 && elicit.asked[0].includes(short), `${what}: asked once through elicitation`, `asked ${JSON.stringify(elicit.asked)}`);
    }
    if (a.expect === 'pending') {
        // nothing ran; the `then` call below proves it
    } else if (a.answer === 'accept') {
        check(!result.isError, `${what}: the call ran`, `isError=true, text=${JSON.stringify(text)}`);
        if (a.expect_text !== undefined) check(text === a.expect_text, `${what}: text equals ${JSON.stringify(a.expect_text)}`, `got ${JSON.stringify(text)}`);
    } else {
        check(result.isError === true && typeof text === 'string' && text.includes('declined'), `${what}: a tool error says it was declined`, `isError=${result.isError}, text=${JSON.stringify(text)}`);
    }
    if (a.then) await checkCall(client, a.then, reqOpts);
}

async function checkProgress(client, p, reqOpts) {
    const what = `progress ${p.tool}`;
    const minN = p.min_notifications ?? 1;
    const minLead = p.min_lead_ms ?? 0;
    const arrivals = []; // performance.now() of each notifications/progress
    const t0 = performance.now();
    let result, resultAt;
    try {
        // With onprogress the SDK puts _meta.progressToken on the request and
        // routes matching notifications/progress here.
        result = await client.callTool({ name: p.tool, arguments: p.arguments ?? {} }, undefined, {
            ...reqOpts,
            onprogress: prog => {
                arrivals.push(performance.now());
                if (DEBUG) console.error(`progress +${Math.round(performance.now() - t0)}ms ${JSON.stringify(prog)}`);
            }
        });
        resultAt = performance.now();
    } catch (e) {
        fail(`${what}: ${errText(e)} (after ${arrivals.length} notifications)`);
        return;
    }
    check(!result.isError, `${what}: isError falsy`, `text=${JSON.stringify(firstText(result))}`);
    check(arrivals.length >= minN, `${what}: ${arrivals.length} notifications (>= ${minN})`, `only ${arrivals.length}`);
    if (arrivals.length === 0) {
        fail(`${what}: no notification to measure lead time from`);
        return;
    }
    // If the gateway buffered the SSE stream, the notifications would arrive
    // together with the result and the lead would be ~0.
    const lead = Math.round(resultAt - arrivals[0]);
    const offsets = arrivals.map(t => Math.round(t - t0)).join(',');
    check(lead >= minLead, `${what}: first notification ${lead}ms before result (>= ${minLead}ms)`, `arrival offsets ms: ${offsets}, result: ${Math.round(resultAt - t0)}`);
}

// A resource subscription: subscribe, start the server's updates with a
// tool, wait for one `notifications/resources/updated` for the URI (on the
// gateway's merged GET stream), stop them, unsubscribe.
async function checkSubscribe(client, sub, updates, reqOpts) {
    const what = `subscription to ${sub.uri}`;
    try {
        await client.subscribeResource({ uri: sub.uri }, reqOpts);
        ok(`${what}: subscribed`);
        await client.callTool({ name: sub.start, arguments: {} }, undefined, reqOpts);
        const seen = await Promise.race([
            updates.next(sub.uri),
            new Promise(r => setTimeout(() => r(false), sub.wait_ms ?? 15000))
        ]);
        check(seen, `${what}: notifications/resources/updated arrived`, `none within ${sub.wait_ms ?? 15000} ms`);
        await client.callTool({ name: sub.start, arguments: {} }, undefined, reqOpts);
        await client.unsubscribeResource({ uri: sub.uri }, reqOpts);
        ok(`${what}: unsubscribed`);
    } catch (e) {
        fail(`${what}: ${errText(e)}`);
    }
}

async function checkDeleteSession(transport, s) {
    const sessionId = transport.sessionId;
    const version = transport.protocolVersion;
    if (!check(Boolean(sessionId), 'session id issued at initialize', 'no Mcp-Session-Id')) return;
    const before = httpLog.length;
    try {
        await transport.terminateSession(); // HTTP DELETE with Mcp-Session-Id
    } catch (e) {
        fail(`DELETE session: ${errText(e)}`);
        return;
    }
    const del = httpLog.slice(before).find(x => x.method === 'DELETE');
    // terminateSession() also accepts 405 (server does not allow termination),
    // but then the session would live on; report the real status.
    check(del?.status >= 200 && del?.status < 300, `DELETE session -> HTTP ${del?.status ?? 'not sent'}`);

    // Reuse the ended session with a raw request: the spec says 404.
    let status;
    try {
        const res = await fetch(s.url, {
            method: 'POST',
            headers: {
                ...(s.headers ?? {}), // e.g. auth, so the answer is about the session, not a 401
                'Mcp-Session-Id': sessionId,
                'MCP-Protocol-Version': version ?? '2025-03-26',
                Accept: 'application/json, text/event-stream',
                'Content-Type': 'application/json'
            },
            body: JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'tools/list' }),
            signal: AbortSignal.timeout(10_000)
        });
        status = res.status;
        await res.body?.cancel();
    } catch (e) {
        fail(`POST with ended session: ${errText(e)}`);
        return;
    }
    check(status === 404, 'POST with ended session -> HTTP 404', `got HTTP ${status}`);
}

// ---------------------------------------------------------------- main

async function main() {
    if (process.argv.length !== 3) usage('expected exactly one argument');
    const s = loadScenario(process.argv[2]);
    label = s.name ?? process.argv[2];
    const deadline = s.timeout_ms ?? DEFAULT_TIMEOUT_MS;

    // Never hang: whatever is pending when the deadline hits is a failure.
    setTimeout(() => {
        fail(`overall timeout after ${deadline}ms`);
        finish();
    }, deadline).unref();

    console.log(`# ${label}: ${s.url}`);
    // Per-request timeout below the deadline, so a stuck request gets its own
    // FAIL line and the remaining checks still run.
    const reqOpts = { timeout: Math.max(1000, Math.min(30_000, deadline - 5000)) };

    const transport = new StreamableHTTPClientTransport(new URL(s.url), {
        requestInit: s.headers ? { headers: s.headers } : undefined,
        fetch: tracingFetch
    });
    // Errors on the background GET stream (and SSE reconnects) never reject a
    // request; surface them without failing the run.
    let terminated = false;
    transport.onerror = e => {
        if (!terminated) console.log(`warn: transport error: ${errText(e)}`);
    };
    // Declare elicitation only when the scenario answers questions.
    let capabilities = s.approvals?.length ? { elicitation: {} } : {};
    if (s.asks) capabilities = { elicitation: {}, sampling: {}, roots: { listChanged: true } };
    const client = new Client({ name: 'mcp-edge-e2e-ts', version: '0.1.0' }, { capabilities });
    if (s.asks) {
        // An upstream's own questions, relayed by the gateway (issue 12).
        client.setRequestHandler(ElicitRequestSchema, () => ({ action: 'accept', content: s.asks.elicit }));
        client.setRequestHandler(CreateMessageRequestSchema, () => ({
            role: 'assistant', model: 'e2e-model', content: { type: 'text', text: s.asks.sample }
        }));
        client.setRequestHandler(ListRootsRequestSchema, () => ({ roots: s.asks.roots }));
    } else if (s.approvals?.length) {
        client.setRequestHandler(ElicitRequestSchema, req => {
            elicit.asked.push(req.params.message ?? '');
            elicit.modes.push(req.params.mode ?? 'form');
            return elicit.answer === 'accept' ? { action: 'accept', content: {} } : { action: elicit.answer };
        });
    }

    // Server-to-client notifications heard on the session (issue 12).
    const updates = { uris: [], waiting: [], next(uri) {
        if (this.uris.includes(uri)) return Promise.resolve(true);
        return new Promise(r => this.waiting.push([uri, r]));
    } };
    let toolsChanged = 0;
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, n => {
        updates.uris.push(n.params.uri);
        for (const [uri, r] of updates.waiting) if (uri === n.params.uri) r(true);
    });
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => { toolsChanged += 1; });

    try {
        await client.connect(transport, reqOpts);
    } catch (e) {
        fail(`initialize: ${errText(e)}`);
        return;
    }
    ok(`initialize (protocol ${transport.protocolVersion}, session ${transport.sessionId ?? 'none'}, server ${client.getServerVersion()?.name ?? '?'})`);

    // Give the SDK's background GET stream time to open first.
    if (s.settle_ms) await new Promise(r => setTimeout(r, s.settle_ms));
    await checkTools(client, s, reqOpts);
    for (const c of s.calls ?? []) await checkCall(client, c, reqOpts);
    for (const a of s.approvals ?? []) await checkApproval(client, a, reqOpts);
    if (s.progress) await checkProgress(client, s.progress, reqOpts);
    if (s.subscribe) await checkSubscribe(client, s.subscribe, updates, reqOpts);
    if (s.expect_tools_changed) {
        check(toolsChanged > 0, 'notifications/tools/list_changed arrived', 'none');
    }
    if (s.delete_session) {
        terminated = true; // the server may drop the GET stream; the SDK then retries and errors
        await checkDeleteSession(transport, s);
    }

    terminated = true;
    await client.close().catch(() => {});
}

main()
    .catch(e => fail(`unexpected error: ${errText(e)}`))
    .finally(finish);
