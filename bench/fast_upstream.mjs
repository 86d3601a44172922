// A fast MCP upstream for benchmarks: Streamable HTTP on one or more
// loopback ports, answering in well under a millisecond of its own time, so
// what a benchmark measures is the gateway.
//
// It speaks both eras, like the SDKs' dual-era servers: legacy requests
// need the session `initialize` minted; a request whose `_meta` names the
// 2026-07-28 revision is answered without a session (`server/discover`
// lists both eras), so a modern client is relayed in the modern era.
//
//   node bench/fast_upstream.mjs --ports 4001,4002 [--tools 20] [--delay-ms 0]
//
// Each port is a separate server with its own sessions. Tools: `echo`
// (returns arguments.text) plus `tool-1..N` for list benchmarks. --delay-ms
// delays every tools/list answer (fan-out benchmarks: the gateway must track
// the slowest upstream, not the sum). GET /stats returns request counts by
// JSON-RPC method (`modern tools/call` for a modern request), so a benchmark
// can check one upstream request per call in each era.
import http from "node:http";
import { randomUUID } from "node:crypto";

const MODERN = "2026-07-28";
const PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const ports = String(args.ports ?? "4001").split(",").map(Number);
const toolCount = Number(args.tools ?? 20);
const delayMs = Number(args["delay-ms"] ?? 0);

const tools = [
  { name: "echo", description: "Echoes text", inputSchema: { type: "object", properties: { text: { type: "string" } } } },
  ...Array.from({ length: toolCount }, (_, i) => ({
    name: `tool-${i + 1}`,
    description: `Benchmark tool ${i + 1}`,
    inputSchema: { type: "object", properties: { x: { type: "number" } } },
  })),
];

function serve(port) {
  const sessions = new Set();
  const stats = {};
  const server = http.createServer((req, res) => {
    if (req.method === "GET" && req.url === "/stats") {
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(JSON.stringify(stats));
    }
    const sid = req.headers["mcp-session-id"];
    if (req.method === "DELETE") {
      sessions.delete(sid);
      res.writeHead(200);
      return res.end();
    }
    if (req.method !== "POST") {
      res.writeHead(405, { allow: "POST, DELETE" });
      return res.end();
    }
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      let msg;
      try {
        msg = JSON.parse(Buffer.concat(chunks));
      } catch {
        res.writeHead(400, { "content-type": "application/json" });
        return res.end('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}');
      }
      const modern = msg.params?._meta?.[PROTOCOL_VERSION_KEY] === MODERN;
      const key = `${modern ? "modern " : ""}${msg.method ?? "response"}`;
      stats[key] = (stats[key] ?? 0) + 1;
      const reply = (result, headers = {}) => {
        if (modern) result = { resultType: "complete", ...result };
        res.writeHead(200, { "content-type": "application/json", ...headers });
        res.end(JSON.stringify({ jsonrpc: "2.0", id: msg.id, result }));
      };
      if (modern && req.headers["mcp-protocol-version"] !== MODERN) {
        res.writeHead(400, { "content-type": "application/json" });
        return res.end(`{"jsonrpc":"2.0","id":null,"error":{"code":-32020,"message":"MCP-Protocol-Version header mismatch"}}`);
      }
      if (msg.method === "server/discover") {
        return reply({
          supportedVersions: ["2025-06-18", "2025-11-25", MODERN],
          capabilities: { tools: {} },
          _meta: { "io.modelcontextprotocol/serverInfo": { name: `fast-${port}`, version: "1" } },
        });
      }
      if (msg.method === "initialize") {
        const id = randomUUID();
        sessions.add(id);
        return reply(
          { protocolVersion: msg.params?.protocolVersion ?? "2025-06-18", capabilities: { tools: {} }, serverInfo: { name: `fast-${port}`, version: "1" } },
          { "mcp-session-id": id },
        );
      }
      if (!modern && !sessions.has(sid)) {
        res.writeHead(404, { "content-type": "application/json" });
        return res.end(`{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}`);
      }
      if (msg.id === undefined) {
        res.writeHead(202);
        return res.end();
      }
      switch (msg.method) {
        case "tools/list":
          if (delayMs > 0) return setTimeout(() => reply({ tools }), delayMs);
          return reply({ tools });
        case "tools/call":
          return reply({ content: [{ type: "text", text: String(msg.params?.arguments?.text ?? "") }] });
        case "ping":
          return reply({});
        default:
          res.writeHead(200, { "content-type": "application/json" });
          return res.end(JSON.stringify({ jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: `Method not found: ${msg.method}` } }));
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(port, "127.0.0.1", () => console.error(`fast upstream on http://127.0.0.1:${port}/mcp`));
}

ports.forEach(serve);
