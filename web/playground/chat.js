// Chat: a conversation with a model of the agent API
// (/v1/chat/completions, streamed). The gateway runs the model's tool calls
// itself; its stream says when each starts and finishes
// (`mcp_edge.event`), and each is shown as it runs.

import { authHeaders, events, rest } from "./api.js";
import { fill, h } from "./render.js";

const history = [];

export async function loadModels(select) {
  let models = [];
  try {
    models = ((await rest("/v1/models")).data || []).map((m) => m.id);
  } catch { /* none: the form says so */ }
  fill(select, models.length ? models.map((m) => h("option", { value: m }, m)) : h("option", { value: "" }, "(no model open to you)"));
}

export function initChat(form, transcript, select, input) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text || !select.value) return;
    input.value = "";
    history.push({ role: "user", content: text });
    transcript.append(h("li", { class: "msg user" }, h("span", { class: "who" }, "You"), h("p", {}, text)));
    const reply = h("p", {});
    const calls = h("ul", { class: "calls" });
    const item = h("li", { class: "msg assistant", "aria-busy": "true" }, h("span", { class: "who" }, select.value), calls, reply);
    transcript.append(item);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const shown = new Map();
    try {
      const r = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream", ...authHeaders() },
        body: JSON.stringify({ model: select.value, messages: history, stream: true }),
      });
      if (!r.ok || !(r.headers.get("content-type") || "").startsWith("text/event-stream")) {
        const body = await r.text();
        let msg = body;
        try { const j = JSON.parse(body); msg = (j.error && j.error.message) || body; } catch { /* text */ }
        throw new Error(`${r.status}: ${msg}`);
      }
      let answer = "";
      for await (const ev of events(r.body)) {
        if (ev.data === "[DONE]") break;
        let chunk;
        try { chunk = JSON.parse(ev.data); } catch { continue; }
        if (chunk.error) throw new Error(chunk.error.message || "the run failed");
        const e = chunk.mcp_edge;
        if (e && e.event === "tool_call.started") {
          const li = h("li", { class: "call running", "data-call": e.name },
            h("span", { class: "badge" }, "tool call"), " ", h("code", {}, e.name), " ",
            h("code", { class: "args" }, e.arguments || ""), h("span", { class: "state" }, " running…"));
          shown.set(e.id, li);
          calls.append(li);
        } else if (e && e.event === "tool_call.finished") {
          const li = shown.get(e.id);
          if (li) {
            li.classList.remove("running");
            li.querySelector(".state").textContent = e.is_error ? " failed" : " done";
            if (e.approval) li.append(h("span", { class: "hint" }, " (waited for an approval)"));
          }
        }
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        if (delta && typeof delta.content === "string") {
          // One text node per delta: redrawing the whole answer each time
          // is quadratic in a stream of tiny deltas.
          answer += delta.content;
          reply.append(delta.content);
        }
      }
      history.push({ role: "assistant", content: answer });
    } catch (e) {
      history.pop();
      item.append(h("p", { class: "error", role: "alert" }, String(e.message || e)));
    } finally {
      item.removeAttribute("aria-busy");
      button.disabled = false;
    }
  });
}
