// The gateway, as the playground speaks to it: the REST endpoints
// (/registry, /approvals, /v1/...) and MCP on /mcp and /servers/{id}/mcp in
// the 2026-07-28 era (stateless: every request carries its own _meta and
// the Mcp-Method / Mcp-Name headers). The credential lives only in `auth`,
// in this module's memory: never in storage, never in a URL.

export const MODERN = "2026-07-28";
const CLIENT = { name: "mcp-edge-playground", version: "1" };

/** The signed-in credential: {header, value, label} or null. */
export const auth = { current: null };

export function authHeaders() {
  const a = auth.current;
  return a ? { [a.header]: a.value } : {};
}

/** An error the gateway answered, with its HTTP status and JSON-RPC error. */
export class ApiError extends Error {
  constructor(status, message, error) {
    super(message);
    this.status = status;
    this.error = error || null;
  }
}

/** A JSON GET/POST to a REST endpoint of the gateway. */
export async function rest(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json", ...authHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!r.ok) {
    const e = json && (json.error || json);
    const msg = (e && (e.message || e.error_description || e.error)) || `${r.status} ${r.statusText}`;
    throw new ApiError(r.status, String(msg), json && json.error);
  }
  return json;
}

let nextId = 1;

/**
 * One MCP request. `onProgress(params)` sees notifications/progress of a
 * streamed answer. Returns {message, trace}: the JSON-RPC response and the
 * gateway's trace summary (asked for with `mcp-edge-trace: summary`).
 */
export async function rpc(endpoint, method, params = {}, { onProgress, progressToken, signal } = {}) {
  const id = nextId++;
  const meta = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": CLIENT,
  };
  if (progressToken !== undefined) meta.progressToken = progressToken;
  const headers = {
    "Content-Type": "application/json",
    Accept: "application/json, text/event-stream",
    "MCP-Protocol-Version": MODERN,
    "Mcp-Method": method,
    "mcp-edge-trace": "summary",
    ...authHeaders(),
  };
  const nameKey = method === "resources/read" ? "uri" : (method === "tools/call" || method === "prompts/get") ? "name" : null;
  if (nameKey && typeof params[nameKey] === "string") headers["Mcp-Name"] = params[nameKey];
  const body = JSON.stringify({ jsonrpc: "2.0", id, method, params: { ...params, _meta: meta } });
  const r = await fetch(endpoint, { method: "POST", headers, body, signal });
  let trace = parseTrace(r.headers.get("mcp-edge-trace-summary"));
  let message = null;
  if ((r.headers.get("content-type") || "").startsWith("text/event-stream")) {
    for await (const ev of events(r.body)) {
      if (ev.type === "mcp-edge-trace") { trace = parseTrace(ev.data); continue; }
      if (ev.type !== "message" || !ev.data) continue;
      let m;
      try { m = JSON.parse(ev.data); } catch { continue; }
      if (m.id === id && ("result" in m || "error" in m)) message = m;
      else if (m.method === "notifications/progress" && onProgress) onProgress(m.params || {});
    }
  } else {
    const text = await r.text();
    try { message = JSON.parse(text); } catch { message = null; }
    if (!message) throw new ApiError(r.status, text.slice(0, 300) || `${r.status} ${r.statusText}`);
  }
  if (!message) throw new ApiError(r.status, `the answer to ${method} ended without a response`);
  return { status: r.status, message, trace };
}

/** The result of an MCP request, or an ApiError carrying its JSON-RPC error. */
export async function call(endpoint, method, params, opts) {
  const { status, message, trace } = await rpc(endpoint, method, params, opts);
  if (message.error) {
    const e = new ApiError(status, message.error.message || "error", message.error);
    e.trace = trace;
    throw e;
  }
  return { result: message.result, trace };
}

function parseTrace(text) {
  if (!text) return null;
  try { return JSON.parse(text); } catch { return null; }
}

/**
 * Server-sent events of a response body: {type, data}. Linear in the
 * body: each decoded chunk is searched for line ends once, and the pieces
 * of a line that runs across chunks are kept in a list, joined once when
 * it ends (never re-copied per chunk).
 */
export async function* events(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let pieces = [];
  let type = "message";
  let data = [];
  function* line(text) {
    const l = text.replace(/\r$/, "");
    if (l === "") {
      if (data.length) yield { type, data: data.join("\n") };
      type = "message";
      data = [];
    } else if (l.startsWith("data:")) {
      data.push(l.slice(5).replace(/^ /, ""));
    } else if (l.startsWith("event:")) {
      type = l.slice(6).trim() || "message";
    }
  }
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const chunk = decoder.decode(value, { stream: true });
    let start = 0;
    let nl;
    while ((nl = chunk.indexOf("\n", start)) >= 0) {
      pieces.push(chunk.slice(start, nl));
      yield* line(pieces.join(""));
      pieces = [];
      start = nl + 1;
    }
    if (start < chunk.length) pieces.push(chunk.slice(start));
  }
  if (pieces.length) yield* line(pieces.join(""));
  if (data.length) yield { type, data: data.join("\n") };
}

/** Every page of a list method (tools/list, prompts/list, resources/list). */
export async function listAll(endpoint, method, key) {
  const out = [];
  let cursor;
  for (let page = 0; page < 50; page++) {
    const { result } = await call(endpoint, method, cursor ? { cursor } : {});
    out.push(...(result[key] || []));
    cursor = result.nextCursor;
    if (!cursor) break;
  }
  return out;
}
