// Code to copy for the selected tool: the Python and TypeScript MCP SDKs,
// curl, the OpenAI SDK against the agent API, and the configuration JSON of
// Claude Desktop, Cursor and VS Code. Each works as pasted. The credential
// is read from the environment (MCP_EDGE_API_KEY) unless the user asks to
// include it, so a key is not put on screen or in a clipboard by default.
//
// A tool name and arguments are a server's and a user's words: every
// literal is written in printable ASCII only (escapes for the rest), so a
// control or bidirectional character cannot make a pasted snippet run or
// read otherwise than it shows.

const ENV = "MCP_EDGE_API_KEY";

/**
 * The snippets: [{id, label, lang, text}]. `ctx` is {base, tool, args,
 * model, auth: {header, value}, include}.
 */
export function snippets(ctx) {
  const mcp = `${ctx.base}/mcp`;
  const isBearer = ctx.auth.header.toLowerCase() === "authorization";
  const header = isBearer ? "Authorization" : "X-API-Key";
  // The header's value as it must be sent, and the secret alone.
  const secret = isBearer ? ctx.auth.value.replace(/^Bearer\s+/i, "") : ctx.auth.value;
  const literal = (prefix) => `${prefix}${secret}`;
  const prefix = isBearer ? "Bearer " : "";
  const args = ctx.args || {};
  const argsJson = asciiJson(args);
  const py = pyString;
  const pyKey = ctx.include ? py(secret) : `os.environ["${ENV}"]`;
  const jsKey = ctx.include ? asciiJson(secret) : `process.env.${ENV}`;
  const shKey = ctx.include ? shellQuote(secret) : `"$${ENV}"`;
  const out = [];

  out.push({ id: "python", label: "Python SDK", lang: "python", text:
`# pip install "mcp>=2"
import asyncio, json, os
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

async def main():
    headers = {${py(header)}: ${isBearer ? `"Bearer " + ${pyKey}` : pyKey}}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0)) as http:
        async with Client(streamable_http_client(${py(mcp)}, http_client=http), mode="legacy") as client:
            result = await client.call_tool(${py(ctx.tool)}, json.loads(${py(argsJson)}))
            print(result.model_dump_json(by_alias=True, exclude_none=True, indent=2))

asyncio.run(main())
` });

  out.push({ id: "typescript", label: "TypeScript SDK", lang: "javascript", text:
`// npm install @modelcontextprotocol/sdk   (save as call.mjs, run: node call.mjs)
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const transport = new StreamableHTTPClientTransport(new URL(${asciiJson(mcp)}), {
  requestInit: { headers: { ${asciiJson(header)}: ${isBearer ? `"Bearer " + ${jsKey}` : jsKey} } },
});
const client = new Client({ name: "my-app", version: "1.0.0" });
await client.connect(transport);
const result = await client.callTool({ name: ${asciiJson(ctx.tool)}, arguments: ${argsJson} });
console.log(JSON.stringify(result, null, 2));
await client.close();
` });

  const body = asciiJson({
    jsonrpc: "2.0", id: 1, method: "tools/call",
    params: {
      name: ctx.tool, arguments: args,
      _meta: {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": { name: "curl", version: "1" },
      },
    },
  });
  out.push({ id: "curl", label: "curl (bash, zsh)", lang: "shell", text:
`curl -sS ${shellQuote(mcp)} \\
  -H "Content-Type: application/json" \\
  -H "Accept: application/json, text/event-stream" \\
  -H "MCP-Protocol-Version: 2026-07-28" \\
  -H "Mcp-Method: tools/call" \\
  -H ${shellQuote(`Mcp-Name: ${ctx.tool}`)} \\
  -H "${header}: ${prefix}"${shKey} \\
  -d ${shellQuote(body)}
` });

  if (ctx.model) {
    const ask = `Call the tool ${ctx.tool} with the arguments ${argsJson} and tell me what it answered.`;
    out.push({ id: "openai", label: "OpenAI SDK (agent API)", lang: "python", text:
`# pip install openai   (the gateway's agent API runs the model's tool calls)
import os
from openai import OpenAI

client = OpenAI(base_url=${py(`${ctx.base}/v1`)}, api_key=${pyKey})
reply = client.chat.completions.create(
    model=${py(ctx.model)},
    messages=[{"role": "user", "content": ${py(ask)}}],
)
print(reply.choices[0].message.content)
` });
  }

  const value = ctx.include ? literal(prefix) : null;
  out.push({ id: "claude", label: "Claude Desktop", lang: "json", text: asciiJson({
    mcpServers: {
      "mcp-edge": {
        command: "npx",
        args: ["-y", "mcp-remote", mcp, "--header", `${header}:\${MCP_EDGE_HEADER}`],
        env: { MCP_EDGE_HEADER: value ?? `${prefix}<your ${isBearer ? "token" : "API key"}>` },
      },
    },
  }, 2) + "\n" });
  out.push({ id: "cursor", label: "Cursor", lang: "json", text: asciiJson({
    mcpServers: { "mcp-edge": { url: mcp, headers: { [header]: value ?? `${prefix}\${env:${ENV}}` } } },
  }, 2) + "\n" });
  const vscode = {
    servers: { "mcp-edge": { type: "http", url: mcp, headers: { [header]: value ?? `${prefix}\${input:mcp-edge-key}` } } },
  };
  if (!ctx.include) {
    vscode.inputs = [{ type: "promptString", id: "mcp-edge-key", description: `mcp-edge ${isBearer ? "token" : "API key"}`, password: true }];
  }
  out.push({ id: "vscode", label: "VS Code", lang: "json", text: asciiJson(vscode, 2) + "\n" });
  return out;
}

/**
 * `v` as JSON in printable ASCII: every other character as a \uXXXX
 * escape (UTF-16 units, as JSON and JavaScript read them).
 */
export function asciiJson(v, indent) {
  return JSON.stringify(v, null, indent).replace(/[^\x20-\x7e\n]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** `s` as a Python string literal in printable ASCII (\U past the BMP). */
export function pyString(s) {
  let out = '"';
  for (const ch of String(s)) {
    const cp = ch.codePointAt(0);
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (cp >= 0x20 && cp < 0x7f) out += ch;
    else if (cp <= 0xffff) out += `\\u${cp.toString(16).padStart(4, "0")}`;
    else out += `\\U${cp.toString(16).padStart(8, "0")}`;
  }
  return `${out}"`;
}

/**
 * `s` as one shell word: single-quoted when it is printable ASCII, else
 * bash's $'...' with every other byte (UTF-8) as \xNN, so nothing a
 * terminal would act on or show otherwise is pasted.
 */
export function shellQuote(s) {
  const text = String(s);
  if (/^[\x20-\x7e]*$/.test(text)) return `'${text.replace(/'/g, "'\\''")}'`;
  let out = "$'";
  for (const b of new TextEncoder().encode(text)) {
    const c = String.fromCharCode(b);
    out += b >= 0x20 && b < 0x7f && c !== "'" && c !== "\\" ? c : `\\x${b.toString(16).padStart(2, "0")}`;
  }
  return `${out}'`;
}
