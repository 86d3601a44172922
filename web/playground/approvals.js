// Approve: the inbox (GET /approvals), each pending call with its
// arguments in full (GET /approvals/{id}), approved or rejected with
// POST /approvals/{id}. The arguments are shown as the text the upstream
// will get, indented but never parsed, cut or rounded, with invisible and
// reordering characters spelled out; the buttons work only once they are
// shown.

import { rest } from "./api.js";
import { fill, h, indentJson, visible } from "./render.js";

export async function showInbox(list, status) {
  fill(status, "Loading the inbox…");
  let inbox;
  try {
    inbox = await rest("/approvals");
  } catch (e) {
    fill(status, `Could not load the inbox: ${e.message}`);
    fill(list);
    return;
  }
  const items = inbox.approvals || [];
  fill(status, items.length ? `${items.length} pending` : "Nothing is waiting for a decision.");
  fill(list, items.map((a) => item(a, list, status)));
}

function item(a, list, status) {
  const args = h("div", { class: "args" }, h("p", { class: "hint" }, "Loading the arguments…"));
  const state = h("p", { role: "status" });
  const decide = (decision) => async () => {
    if (!shown) return;
    for (const b of li.querySelectorAll("button")) b.disabled = true;
    try {
      const r = await rest(`/approvals/${encodeURIComponent(a.id)}`, { method: "POST", body: { decision } });
      fill(state, `${decision === "approve" ? "Approved" : "Rejected"}${r && r.status ? ` (${r.status})` : ""}.`);
    } catch (e) {
      fill(state, `Could not ${decision}: ${e.message}`);
      for (const b of li.querySelectorAll("button")) b.disabled = false;
    }
  };
  // Names as they are, invisible characters spelled out (render.visible).
  const [server, tool, requester] = [a.server, a.tool, a.requester].map(visible);
  const when = a.expires_ms ? new Date(a.expires_ms).toLocaleTimeString() : "?";
  const li = h("li", { class: "approval", "data-approval": a.id, "aria-label": `${server} ${tool} by ${requester}` },
    h("h3", {}, h("code", {}, `${server} / ${tool}`)),
    h("p", { class: "meta" }, `Requested by ${requester} · expires ${when}${a.yours ? " · your call" : ""}`),
    args,
    a.you_may_decide
      ? h("div", { class: "actions" },
        h("button", { type: "button", class: "approve", disabled: true, onclick: decide("approve") }, `Approve ${tool}`),
        h("button", { type: "button", class: "reject", disabled: true, onclick: decide("reject") }, `Reject ${tool}`))
      : h("p", { class: "hint" }, "You may not decide this call."),
    state);
  let shown = false;
  rest(`/approvals/${encodeURIComponent(a.id)}`).then((r) => {
    const text = typeof r.arguments === "string" ? r.arguments : JSON.stringify(r.arguments);
    fill(args, h("p", { class: "meta" }, "Arguments, in full:"), h("pre", { class: "text args-text" }, indentJson(visible(text, true))));
    shown = true;
    for (const b of li.querySelectorAll(".actions button")) b.disabled = false;
  }).catch((e) => fill(args, h("p", { class: "error" }, `Could not read the arguments, so this call cannot be decided here: ${e.message}`)));
  return li;
}
