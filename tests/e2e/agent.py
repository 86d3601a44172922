"""The agent API end to end: the official `openai` Python SDK against
`/v1/chat/completions`, the gateway running the model's tool loop against a
scripted model server (tests/e2e/upstream/model_server.py, both wires) and
the real MCP servers.

  - the answer holds get-sum's and echo's results, run through the gateway;
  - the model is offered only the caller's tools (a denied one never), and
    the provider gets its own key, never the caller's;
  - the trace has the agent, model and tool spans;
  - streaming delivers the chunks and the tool events;
  - a destructive tool ends the loop with the approval link, and runs once
    approved;
  - the same loop over the Anthropic Messages wire;
  - GET /v1/models, and a model the caller may not use is a 404.
"""
from __future__ import annotations

import json
import time
import urllib.request

# The provider key both scripted models name (a secret of the gateway's).
MODEL_KEY = "sk-scripted-e2e-7b2f"
SECRET = "SCRIPTED_MODEL_KEY"
# Denied to the e2e caller by the policy: the scripted model must never see it.
DENY_RULE = {"name": "agent-no-env", "effect": "deny", "subjects": {"service_accounts": ["e2e-client"]},
             "tools": ["get-env"]}
MODELS_RULE = {"name": "agent-models", "effect": "allow", "subjects": {"teams": ["qa"]},
               "models": ["scripted*", "claude-*"]}
TRACE = "4bf92f3577b34da6a3ce929d0e0e4737"


def kv_entries(model_port: int) -> list[dict]:
    """Three models on the scripted server: two OpenAI-wire scripts and the
    first again over the Anthropic wire, plus one nobody may use."""
    base = f"http://127.0.0.1:{model_port}"

    def model(provider: str, model_id: str, url: str) -> dict:
        return {"provider": provider, "model": model_id, "secret": SECRET, "max_tools": 128,
                "endpoints": [{"region": "us", "url": url}], "description": f"{model_id} over {provider}"}

    entries = {
        "scripted": model("openai", "scripted", f"{base}/v1"),
        "scripted-purge": model("openai", "scripted-purge", f"{base}/v1"),
        "claude-scripted": model("anthropic", "scripted", base),
        "locked": model("openai", "scripted", f"{base}/v1"),
    }
    return [{"key": f"models/{k}", "value": json.dumps(v)} for k, v in entries.items()]


def _offered(model_port: int) -> list[dict]:
    with urllib.request.urlopen(f"http://127.0.0.1:{model_port}/offered", timeout=10) as r:
        return json.loads(r.read())["calls"]


def _reset(model_port: int) -> None:
    req = urllib.request.Request(f"http://127.0.0.1:{model_port}/reset", data=b"{}", method="POST")
    urllib.request.urlopen(req, timeout=10).read()


def _spans(receiver, trace: str, want: set[str], wait_s: float = 15.0) -> list[str]:
    deadline = time.monotonic() + wait_s
    while True:
        names = [s.get("name", "") for s in receiver.spans(trace)]
        if want <= set(names) or time.monotonic() > deadline:
            return names
        time.sleep(0.1)


def _purged(http, response_of, base: str, api_key: str, open_session) -> str:
    url = f"{base}/mcp"
    headers = open_session(http, url, api_key, "agent-purged")
    body = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "notes__purged", "arguments": {"tag": "agent-e2e"}}}
    result = response_of(*http(url, "POST", json.dumps(body).encode(), headers)).get("result", {})
    return (result.get("content") or [{}])[0].get("text", "?")


def run(check, http, response_of, base: str, api_key: str, approver_key: str, model_port: int,
        receiver, open_session) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{base}/v1", api_key=api_key, max_retries=0, timeout=60)
    ask = [{"role": "user", "content": "Add 2 and 3, then echo something."}]
    _reset(model_port)

    # The loop: get-sum, then echo, then the answer with both.
    try:
        r = client.chat.completions.create(
            model="scripted", messages=ask, extra_headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"})
        answer = r.choices[0].message.content or ""
        ext = (r.model_extra or {}).get("mcp_edge", {})
    except openai.OpenAIError as e:
        answer, ext = f"{type(e).__name__}: {e}", {}
    check("The sum of 2 and 3 is 5" in answer and "agent says hi" in answer
          and [c.get("name") for c in ext.get("tool_calls", [])] == ["everything__get-sum", "notes__echo"],
          "agent: the openai SDK's answer holds get-sum's and echo's results, run through the gateway",
          f"{answer!r} {ext}")

    calls = _offered(model_port)
    offered = set(calls[0]["offered"]) if calls else set()
    check(len(calls) == 3 and {"everything__get-sum", "notes__echo"} <= offered
          and not any(name.endswith("__get-env") for c in calls for name in c["offered"]),
          "agent: the model is offered the caller's tools, never one the policy denies it (get-env)",
          f"{len(calls)} calls, offered {sorted(offered)}")
    sent = [c["credentials"] for c in calls]
    check(all(s.get("authorization") == f"Bearer {MODEL_KEY}" for s in sent)
          and not any(api_key in json.dumps(s) for s in sent),
          "agent: the provider gets its own key from the model's secret, never the caller's", json.dumps(sent))

    names = _spans(receiver, TRACE, {"invoke_agent scripted", "chat scripted",
                                     "execute_tool everything__get-sum", "execute_tool notes__echo"})
    check({"invoke_agent scripted", "chat scripted", "execute_tool everything__get-sum",
           "execute_tool notes__echo"} <= set(names) and names.count("chat scripted") == 3,
          "agent: the trace has the agent span, a span per model call and per tool call", str(names))

    # Streaming: the tool events, then the answer in chunks.
    try:
        chunks = list(client.chat.completions.create(model="scripted", messages=ask, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        events = [((c.model_extra or {}).get("mcp_edge") or {}).get("event") for c in chunks]
        events = [e for e in events if e]
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    except openai.OpenAIError as e:
        chunks, text, events, finish = [], f"{type(e).__name__}: {e}", [], []
    check(text == answer and len(chunks) > 3 and finish == ["stop"]
          and events == ["tool_call.started", "tool_call.finished"] * 2,
          "agent: streaming delivers the answer in chunks and an event per tool call started and finished",
          f"{len(chunks)} chunks, {text!r}, events {events}, finish {finish}")

    # The Anthropic wire: the same script, the same tools, the same answer.
    _reset(model_port)
    try:
        r = client.chat.completions.create(model="claude-scripted", messages=ask)
        claude = r.choices[0].message.content or ""
    except openai.OpenAIError as e:
        claude = f"{type(e).__name__}: {e}"
    calls = _offered(model_port)
    check(claude == answer and calls and all(c["wire"] == "anthropic" and
                                             c["credentials"].get("x-api-key") == MODEL_KEY for c in calls),
          "agent: the same loop over the Anthropic Messages wire", f"{claude!r} {calls[:1]}")

    # A destructive tool: the loop ends with the approval link; approved, it runs once.
    purge_ask = [{"role": "user", "content": "Purge the agent-e2e notes."}]
    try:
        r = client.chat.completions.create(model="scripted-purge", messages=purge_ask)
        first = r.choices[0].message.content or ""
        approvals = ((r.model_extra or {}).get("mcp_edge") or {}).get("approvals", [])
    except openai.OpenAIError as e:
        first, approvals = f"{type(e).__name__}: {e}", []
    url = approvals[0].get("url", "") if approvals else ""
    ran_before = _purged(http, response_of, base, api_key, open_session)
    check("/approvals/" in url and url in first and ran_before == "0",
          "agent: a destructive tool ends the loop with the approval's link, not run",
          f"{first!r} {approvals} ran {ran_before}")
    decide = json.dumps({"decision": "approve"}).encode()
    status, _, body = http(url or f"{base}/approvals/none", "POST", decide,
                           {"Content-Type": "application/json", "X-API-Key": approver_key})
    try:
        r = client.chat.completions.create(model="scripted-purge", messages=purge_ask + [
            {"role": "assistant", "content": first}, {"role": "user", "content": "It is approved; go on."}])
        second = r.choices[0].message.content or ""
    except openai.OpenAIError as e:
        second = f"{type(e).__name__}: {e}"
    ran_after = _purged(http, response_of, base, api_key, open_session)
    check(status == 200 and second == "purge: purged agent-e2e" and ran_after == "1",
          "agent: once an approver approves, the next request runs the call, once",
          f"approve {status} {body[:200]!r}; {second!r}; ran {ran_after}")

    # The models the caller may use; one it may not is unknown.
    try:
        ids = sorted(m.id for m in client.models.list())
        one = client.models.retrieve("scripted").id
    except openai.OpenAIError as e:
        ids, one = [f"{type(e).__name__}: {e}"], ""
    check(ids == ["claude-scripted", "scripted", "scripted-purge"] and one == "scripted",
          "agent: GET /v1/models lists the models the caller may use, /v1/models/{name} one", f"{ids} {one!r}")
    try:
        client.chat.completions.create(model="locked", messages=ask)
        refused = "answered"
    except openai.NotFoundError as e:
        refused = str(e)
    except openai.OpenAIError as e:
        refused = f"{type(e).__name__}: {e}"
    check("no model 'locked'" in refused, "agent: a model the policy does not allow is a 404", refused)
    # What the agent requests exported holds neither key.
    exported = b"".join(body for _, body in receiver.everything())
    check(MODEL_KEY.encode() not in exported and api_key.encode() not in exported,
          "agent: no export holds the provider's key or the caller's", f"{len(exported)} bytes exported")

