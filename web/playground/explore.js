// Explore and try: the servers this caller may use (/registry), grouped by
// server group; a server's tools (with their annotations), prompts and
// resources; a tool's form, its call with progress, result and trace, and
// the snippets that make the same call.

import { ApiError, call, rest } from "./api.js";
import { buildForm } from "./form.js";
import { fill, h, jsonTree, result, trace, content, visible } from "./render.js";
import { snippets } from "./snippets.js";
import { auth } from "./api.js";

const state = { models: [] };

export async function showServers(pane, detail) {
  fill(pane, h("p", { class: "hint", role: "status" }, "Loading servers…"));
  let reg;
  try {
    reg = await rest("/registry");
  } catch (e) {
    fill(pane, h("p", { class: "error", role: "alert" }, `Could not load /registry: ${e.message}`));
    return;
  }
  try {
    state.models = ((await rest("/v1/models")).data || []).map((m) => m.id);
  } catch { state.models = []; }
  const groups = new Map();
  for (const s of reg.servers || []) {
    const g = s.group || "(no group)";
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g).push(s);
  }
  const sections = [...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([g, servers]) =>
    h("section", { class: "group", "aria-label": `Group ${g}` }, h("h3", {}, `Group ${g}`),
      h("ul", { class: "server-list" }, servers.map((s) => h("li", {},
        h("button", { type: "button", class: "server", "data-server": s.id, onclick: (ev) => {
          for (const b of pane.querySelectorAll("button.server")) b.removeAttribute("aria-current");
          ev.currentTarget.setAttribute("aria-current", "true");
          showServer(detail, s);
        } }, h("strong", {}, s.id), h("span", { class: "count" }, s.tools === null ? " (unavailable)" : ` ${s.tools} tools`)),
        s.description ? h("p", { class: "help" }, s.description) : null)))));
  fill(pane, h("h3", { class: "sr-only" }, "Servers"), sections.length ? sections : h("p", {}, "No servers are open to you."));
}

async function showServer(detail, s) {
  fill(detail, h("h3", {}, s.id), h("p", { class: "hint", role: "status" }, "Loading…"));
  const endpoint = `/servers/${encodeURIComponent(s.id)}/mcp`;
  const [info, prompts, resources] = await Promise.all([
    rest(`/registry/${encodeURIComponent(s.id)}`).catch((e) => ({ error: e.message })),
    call(endpoint, "prompts/list", {}).then((r) => r.result.prompts || []).catch(() => []),
    call(endpoint, "resources/list", {}).then((r) => r.result.resources || []).catch(() => []),
  ]);
  // Schemas come from tools/list on the server's own endpoint; names on
  // /mcp and annotations from /registry/{id}.
  const listed = await call(endpoint, "tools/list", {}).then((r) => r.result.tools || []).catch(() => []);
  const schemas = new Map(listed.map((t) => [t.name, t]));
  const tools = (info.tools || []).map((t) => ({ ...schemas.get(t.name), ...t }));
  const panel = h("div", { class: "try", id: "try" });
  fill(detail,
    h("h3", {}, s.id),
    s.description ? h("p", {}, s.description) : null,
    h("p", { class: "meta" }, "Endpoint ", h("code", {}, s.endpoint || endpoint), s.regions ? ` · regions ${s.regions.join(", ")}` : ""),
    info.error ? h("p", { class: "error" }, info.error) : null,
    h("h4", {}, `Tools (${tools.length})`),
    h("ul", { class: "tools" }, tools.map((t) => h("li", {},
      h("button", { type: "button", class: "tool", "data-tool": t.on_mcp || t.name, onclick: () => showTool(panel, t) },
        visible(t.on_mcp || t.name)),
      badges(t.annotations),
      t.description ? h("p", { class: "help" }, t.description) : null))),
    h("h4", {}, `Prompts (${prompts.length})`),
    prompts.length ? h("ul", { class: "prompts" }, prompts.map((p) => h("li", {}, h("code", {}, p.name),
      p.description ? ` — ${p.description}` : "",
      (p.arguments || []).length ? h("p", { class: "help" }, "Arguments: ", p.arguments.map((a) => `${a.name}${a.required ? " *" : ""}`).join(", ")) : null)))
      : h("p", { class: "hint" }, "None."),
    h("h4", {}, `Resources (${resources.length})`),
    resources.length ? h("ul", { class: "resources" }, resources.slice(0, 50).map((r) => resourceItem(endpoint, r)))
      : h("p", { class: "hint" }, "None."),
    panel);
}

function resourceItem(endpoint, r) {
  const out = h("div", {});
  return h("li", {}, h("code", {}, r.uri), r.name ? ` ${r.name}` : "", r.mimeType ? ` (${r.mimeType})` : "",
    h("button", { type: "button", class: "small", onclick: async () => {
      fill(out, h("p", { class: "hint" }, "Reading…"));
      try {
        const { result: res } = await call(endpoint, "resources/read", { uri: r.uri });
        fill(out, (res.contents || []).map((c) => content({ type: "resource", resource: c })));
      } catch (e) {
        fill(out, h("p", { class: "error" }, e.message));
      }
    } }, `Read ${r.name || r.uri}`), out);
}

/** Annotation badges; a destructive tool is marked as such. */
function badges(a) {
  if (!a) return null;
  const out = [];
  if (a.destructiveHint === true) out.push(h("span", { class: "badge danger" }, "destructive"));
  if (a.readOnlyHint === true) out.push(h("span", { class: "badge" }, "read-only"));
  if (a.idempotentHint === true) out.push(h("span", { class: "badge" }, "idempotent"));
  if (a.openWorldHint === true) out.push(h("span", { class: "badge" }, "open world"));
  return out.length ? h("span", { class: "badges" }, out) : null;
}

let progressSeq = 0;

function showTool(panel, t) {
  const name = t.on_mcp || t.name;
  const form = buildForm(t.inputSchema || { type: "object" });
  const progress = h("div", { class: "progress", role: "status", "aria-live": "polite" });
  const out = h("div", { class: "out", "aria-live": "polite" });
  const traceBox = h("div", {});
  const include = h("input", { type: "checkbox", id: "include-key" });
  const snippetBox = h("div", { class: "snippets" });
  const drawSnippets = () => drawSnippetTabs(snippetBox, {
    base: location.origin, tool: name, args: safeRead(form), model: state.models[0],
    auth: auth.current, include: include.checked,
  });
  include.addEventListener("change", drawSnippets);
  const submit = h("button", { type: "submit" }, "Call");
  const el = h("form", { "aria-label": `Try ${visible(name)}`, onsubmit: async (ev) => {
    ev.preventDefault();
    form.clearErrors();
    fill(out);
    fill(traceBox);
    fill(progress);
    submit.disabled = true;
    const token = `pg-${++progressSeq}`;
    const bar = h("progress", { max: 1, value: 0, "aria-label": "Progress" });
    const text = h("span", {}, "Calling…");
    fill(progress, bar, text);
    try {
      const { result: res, trace: t } = await call("/mcp", "tools/call", { name, arguments: form.read() }, {
        progressToken: token,
        onProgress: (p) => {
          if (typeof p.total === "number" && p.total > 0) { bar.max = p.total; bar.value = p.progress; }
          else bar.removeAttribute("value");
          text.textContent = `Progress ${p.progress}${typeof p.total === "number" ? `/${p.total}` : ""}${p.message ? `: ${p.message}` : ""}`;
        },
      });
      fill(progress, h("span", {}, text.textContent.startsWith("Progress") ? `Done (${text.textContent})` : "Done"));
      fill(out, h("h5", {}, "Result"), result(res));
      fill(traceBox, trace(t));
    } catch (e) {
      fill(progress);
      const where = e.error && e.error.data && typeof e.error.data.path === "string" ? e.error.data.path : null;
      if (where) form.showError(where, e.message);
      fill(out, h("p", { class: "error", role: "alert" }, e instanceof ApiError ? `${e.status}: ${e.message}` : String(e)));
      if (e.trace) fill(traceBox, trace(e.trace));
    } finally {
      submit.disabled = false;
      drawSnippets();
    }
  } }, h("h4", {}, `Try ${visible(name)}`), t.description ? h("p", { class: "help" }, t.description) : null,
    badges(t.annotations), form.element, submit);
  fill(panel, el, progress, out, traceBox,
    h("h4", {}, "Copy"),
    h("div", { class: "field check" }, include, h("label", { for: "include-key" }, "Include my credential in the snippets")),
    snippetBox,
    h("details", {}, h("summary", {}, "inputSchema"), jsonTree(t.inputSchema || {}, "inputSchema")));
  drawSnippets();
  panel.scrollIntoView({ block: "start" });
}

function safeRead(form) {
  try { return form.read(); } catch { return {}; }
}

function drawSnippetTabs(box, ctx) {
  const list = snippets(ctx);
  const tabs = h("div", { role: "tablist", "aria-label": "Snippets" });
  const panels = [];
  list.forEach((s, i) => {
    const tab = h("button", { type: "button", role: "tab", id: `tab-${s.id}`, "aria-controls": `snippet-${s.id}`,
      "aria-selected": i === 0 ? "true" : "false", tabindex: i === 0 ? "0" : "-1" }, s.label);
    const pre = h("pre", { class: "code", "data-snippet": s.id }, s.text);
    const copy = h("button", { type: "button", class: "small", "data-copy": s.id, onclick: async () => {
      try {
        await navigator.clipboard.writeText(s.text);
        copy.textContent = `Copied ${s.label}`;
      } catch {
        copy.textContent = "Copy failed: select the text";
      }
    } }, `Copy ${s.label}`);
    const panel = h("div", { role: "tabpanel", id: `snippet-${s.id}`, "aria-labelledby": `tab-${s.id}`, hidden: i !== 0 }, copy, pre);
    tab.addEventListener("click", () => select(i));
    tab.addEventListener("keydown", (ev) => {
      if (ev.key === "ArrowRight") select((i + 1) % list.length, true);
      if (ev.key === "ArrowLeft") select((i - 1 + list.length) % list.length, true);
    });
    tabs.append(tab);
    panels.push([tab, panel]);
  });
  function select(i, focus) {
    panels.forEach(([t, p], j) => {
      t.setAttribute("aria-selected", j === i ? "true" : "false");
      t.tabIndex = j === i ? 0 : -1;
      p.hidden = j !== i;
    });
    if (focus) panels[i][0].focus();
  }
  fill(box, tabs, panels.map(([, p]) => p));
}
