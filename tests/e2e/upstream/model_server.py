#!/usr/bin/env python3
"""A scripted model provider for the agent API: deterministic, no model.

It speaks both wires the gateway does:
  * OpenAI Chat Completions: POST /v1/chat/completions (Authorization: Bearer);
  * Anthropic Messages:      POST /v1/messages (x-api-key, anthropic-version).

What it answers depends only on the conversation it is sent, by the model id
the gateway asks for:
  * `scripted`: asks for `everything__get-sum` (a=2, b=3), then, with its
    result, for `notes__echo` (text "agent says hi"), then answers with both
    results: "get-sum: <result> | echo: <result>";
  * `scripted-purge`: asks for `notes__purge` (tag "agent-e2e") until the
    conversation holds a purge result that is not an error, then answers
    "purge: <result>".
A tool the model was not offered is never asked for: the script asks only
for tools in the request's `tools`, and says so if one is missing.

GET /offered lists, per model call, the model id and the tool names it was
offered, and the request headers' names and the values of those that
carry credentials (the checks prove the caller's key never arrives);
POST /reset forgets them. With `--key K` a request without K (as Bearer or
x-api-key) is refused 401.

Usage: model_server.py --port N [--key K]
"""
from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEEN: list[dict] = []
LOCK = threading.Lock()


def tool_results(messages: list[dict]) -> dict[str, list[dict]]:
    """Tool results by tool name, from either wire, normalised to OpenAI's."""
    names: dict[str, str] = {}
    out: dict[str, list[dict]] = {}
    for m in messages:
        content = m.get("content")
        if m.get("role") == "assistant":
            for c in m.get("tool_calls") or []:
                names[c["id"]] = c["function"]["name"]
            if isinstance(content, list):
                for b in content:
                    if b.get("type") == "tool_use":
                        names[b["id"]] = b["name"]
        if m.get("role") == "tool":
            name = names.get(m.get("tool_call_id"), "")
            out.setdefault(name, []).append({"text": m.get("content") or ""})
        if m.get("role") == "user" and isinstance(content, list):
            for b in content:
                if b.get("type") == "tool_result":
                    text = b.get("content")
                    if isinstance(text, list):
                        text = "".join(p.get("text", "") for p in text)
                    out.setdefault(names.get(b.get("tool_use_id"), ""), []).append({"text": text or ""})
    return out


def decide(model: str, messages: list[dict], offered: list[str]) -> tuple[str | None, tuple[str, dict] | None]:
    """The script: (answer text, None) or (None, (tool, arguments))."""
    results = tool_results(messages)

    def ask(tool: str, args: dict):
        if tool not in offered:
            return f"I was not offered {tool}.", None
        return None, (tool, args)

    if model == "scripted-purge":
        done = [r for r in results.get("notes__purge", []) if not r["text"].startswith("Error")
                and "approval" not in r["text"].lower()]
        if not done:
            return ask("notes__purge", {"tag": "agent-e2e"})
        return f"purge: {done[-1]['text']}", None
    if "everything__get-sum" not in results:
        return ask("everything__get-sum", {"a": 2, "b": 3})
    if "notes__echo" not in results:
        return ask("notes__echo", {"text": "agent says hi"})
    return f"get-sum: {results['everything__get-sum'][-1]['text']} | echo: {results['notes__echo'][-1]['text']}", None


class Handler(BaseHTTPRequestHandler):
    key: str | None = None

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path == "/offered":
            with LOCK:
                return self._send(200, {"calls": SEEN})
        self._send(404, {"error": {"message": "not found"}})

    def _body(self) -> bytes:
        """The request body, framed by Content-Length or chunked (as the
        Spin host's outbound HTTP sends it)."""
        if "chunked" not in (self.headers.get("Transfer-Encoding") or "").lower():
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))
        out = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline().strip():
                    pass  # trailers
                return out
            out += self.rfile.read(size)
            self.rfile.readline()

    def do_POST(self):  # noqa: N802
        raw = self._body()
        if self.path == "/reset":
            with LOCK:
                SEEN.clear()
            return self._send(200, {})
        anthropic = self.path == "/v1/messages"
        if self.path not in ("/v1/chat/completions", "/v1/messages"):
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        presented = self.headers.get("x-api-key") if anthropic else \
            (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        try:
            req = json.loads(raw)
        except ValueError:
            return self._send(400, {"error": {"message": "not JSON"}})
        tools = req.get("tools") or []
        offered = [t["name"] if anthropic else t["function"]["name"] for t in tools]
        credential_headers = {k.lower(): v for k, v in self.headers.items()
                              if k.lower() in ("authorization", "x-api-key", "cookie", "mcp-session-id")}
        with LOCK:
            SEEN.append({"model": req.get("model"), "wire": "anthropic" if anthropic else "openai",
                         "offered": offered, "credentials": credential_headers,
                         "headers": sorted(k.lower() for k in self.headers.keys())})
        if self.key is not None and presented != self.key:
            return self._send(401, {"error": {"message": "wrong or missing provider key"}})
        messages = req.get("messages") or []
        text, call = decide(req.get("model", ""), messages, offered)
        step = sum(1 for m in messages if m.get("role") in ("tool", "assistant")) + 1
        usage_in, usage_out = 10 * len(messages), 5
        if anthropic:
            content = [{"type": "text", "text": text}] if text else \
                [{"type": "tool_use", "id": f"toolu_{step}", "name": call[0], "input": call[1]}]
            return self._send(200, {
                "id": f"msg_{step}", "type": "message", "role": "assistant", "model": req.get("model"),
                "content": content, "stop_reason": "end_turn" if text else "tool_use",
                "usage": {"input_tokens": usage_in, "output_tokens": usage_out}})
        message = {"role": "assistant", "content": text}
        if call:
            message["tool_calls"] = [{"id": f"call_{step}", "type": "function",
                                      "function": {"name": call[0], "arguments": json.dumps(call[1])}}]
        self._send(200, {
            "id": f"chatcmpl-scripted-{step}", "object": "chat.completion", "model": req.get("model"),
            "choices": [{"index": 0, "message": message, "finish_reason": "stop" if text else "tool_calls"}],
            "usage": {"prompt_tokens": usage_in, "completion_tokens": usage_out,
                      "total_tokens": usage_in + usage_out}})

    def log_message(self, *_):
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--key", help="the provider key requests must carry")
    args = ap.parse_args()
    Handler.key = args.key
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"scripted model server on http://{args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
