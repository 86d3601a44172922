// Drawing: the one element builder every view uses, and the renderers of a
// tool's result (by content type), of JSON (a collapsible tree) and of the
// gateway's trace summary. Everything a server or the gateway says is set
// as text (textContent), never parsed as HTML: a malicious upstream's
// answer is shown, not run.

/** An element: h("p", {class: "x", onclick: f}, "text", child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces `el`'s children. */
export function fill(el, ...children) {
  el.replaceChildren();
  for (const c of children.flat()) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** At most this many JSON nodes are drawn; a larger value is cut. */
const MAX_NODES = 2000;
const MAX_DEPTH = 40;

/** A collapsible JSON tree (<details> per object and array). */
export function jsonTree(value, label = "JSON") {
  const budget = { left: MAX_NODES };
  return h("div", { class: "json" }, node(label, value, 0, budget, true));
}

function node(key, value, depth, budget, open) {
  if (budget.left-- <= 0) return h("div", { class: "more" }, "… (cut)");
  const isObj = value !== null && typeof value === "object";
  if (!isObj) {
    return h("div", { class: "leaf" },
      h("span", { class: "key" }, `${key}: `),
      h("span", { class: `val ${value === null ? "null" : typeof value}` }, JSON.stringify(value)));
  }
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  const summary = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`;
  const d = h("details", { open: open || depth < 2 }, h("summary", {}, h("span", { class: "key" }, `${key} `), summary));
  if (depth >= MAX_DEPTH) {
    d.append(h("div", { class: "more" }, "… (too deep)"));
    return d;
  }
  for (const [k, v] of entries) {
    if (budget.left <= 0) {
      d.append(h("div", { class: "more" }, "… (cut)"));
      break;
    }
    d.append(node(k, v, depth + 1, budget, false));
  }
  return d;
}

// Characters that draw nothing or reorder what follows (controls, format
// characters such as U+202E and the zero-width ones, line and paragraph
// separators, lone surrogates): text from a server or a caller that holds
// one could read as something else than it is.
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

/**
 * `s` with every invisible or reordering character written as `\uXXXX`,
 * so what an approver reads is what runs. Inside JSON strings that is the
 * same value (JSON's own escape); a literal `\u` a caller wrote stays as it
 * is (a character past U+FFFF is written as its two UTF-16 escapes, as
 * JSON has it). `json`: tab, line feed and carriage return are kept, being JSON's
 * whitespace between tokens (inside a JSON string they cannot appear raw).
 */
export function visible(s, json = false) {
  return String(s).replace(INVISIBLE, (c) => (json && (c === "\t" || c === "\n" || c === "\r")
    ? c : [...Array(c.length).keys()].map((i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, "0")}`).join("")));
}

/** Nesting deeper than this is not indented further. */
const MAX_INDENT = 16;
/** Text longer than this is shown as it came, not indented. */
const MAX_INDENTED = 256 * 1024;

/**
 * JSON text indented as it is written: numbers, strings and key order
 * untouched (never parsed: a large integer stays exact), everything kept.
 * One pass over the text; the output is at most a small multiple of the
 * input (indentation stops at MAX_INDENT levels, and text over
 * MAX_INDENTED is not indented at all), so deeply nested arguments cannot
 * stall the page.
 */
export function indentJson(text) {
  if (String(text).length > MAX_INDENTED) return String(text);
  const out = [];
  let depth = 0;
  let inString = false;
  let escaped = false;
  const newline = () => out.push("\n", "  ".repeat(Math.min(depth, MAX_INDENT)));
  for (const c of String(text)) {
    if (inString) {
      out.push(c);
      if (escaped) escaped = false;
      else if (c === "\\") escaped = true;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === " " || c === "\n" || c === "\r" || c === "\t") continue;
    if (c === '"') { inString = true; out.push(c); }
    else if (c === "{" || c === "[") { depth++; out.push(c); newline(); }
    else if (c === "}" || c === "]") { depth = Math.max(0, depth - 1); newline(); out.push(c); }
    else if (c === ",") { out.push(c); newline(); }
    else if (c === ":") out.push(": ");
    else out.push(c);
  }
  return out.join("");
}

const IMAGE = /^image\/(png|jpeg|gif|webp)$/;

/** A tool's result, drawn by content type. */
export function result(res) {
  const out = h("div", { class: "result" + (res.isError ? " is-error" : "") });
  if (res.isError) out.append(h("p", { class: "error", role: "alert" }, "The tool reported an error."));
  for (const c of res.content || []) out.append(content(c));
  if (res.structuredContent !== undefined) out.append(jsonTree(res.structuredContent, "structuredContent"));
  if (!(res.content || []).length && res.structuredContent === undefined) out.append(h("p", { class: "hint" }, "(empty result)"));
  return out;
}

/** One content block (text, image, audio, embedded resource, resource link). */
export function content(c) {
  switch (c && c.type) {
    case "text":
      return h("pre", { class: "text" }, c.text ?? "");
    case "image":
      if (IMAGE.test(c.mimeType || "") && typeof c.data === "string") {
        return h("figure", {}, h("img", { src: `data:${c.mimeType};base64,${c.data}`, alt: `image result (${c.mimeType})` }),
          h("figcaption", {}, c.mimeType));
      }
      return h("p", { class: "hint" }, `image of type ${c.mimeType || "?"} (not shown)`);
    case "audio":
      return h("p", { class: "hint" }, `audio (${c.mimeType || "?"}, ${Math.floor(((c.data || "").length * 3) / 4)} bytes)`);
    case "resource": {
      const r = c.resource || {};
      return h("div", { class: "resource" },
        h("p", { class: "meta" }, "embedded resource ", h("code", {}, r.uri || "?"), r.mimeType ? ` (${r.mimeType})` : ""),
        typeof r.text === "string" ? h("pre", { class: "text" }, r.text)
          : h("p", { class: "hint" }, `binary, ${Math.floor(((r.blob || "").length * 3) / 4)} bytes`));
    }
    case "resource_link":
      // Shown as text: a link a server names could be any scheme.
      return h("p", { class: "resource" }, "resource link ", h("code", {}, c.uri || "?"),
        c.name ? ` ${c.name}` : "", c.description ? ` — ${c.description}` : "");
    default:
      return jsonTree(c, "content");
  }
}

/** The gateway's trace summary: one line per phase, nested by depth. */
export function trace(t) {
  if (!t || !Array.isArray(t.spans)) return h("p", { class: "hint" }, "No trace summary in this answer.");
  const list = h("ol", { class: "trace" });
  for (const s of t.spans) {
    const attrs = Object.entries(s.attrs || {}).map(([k, v]) => `${k}=${v}`).join(" ");
    list.append(h("li", { style: undefined, "data-depth": Math.min(8, s.depth | 0) },
      h("span", { class: "span-name" }, s.name), ` ${Number(s.ms).toFixed(1)} ms`,
      attrs ? h("span", { class: "attrs" }, ` ${attrs}`) : ""));
  }
  return h("details", { class: "trace-box", open: true },
    h("summary", {}, `Trace ${t.trace_id || ""} (${t.spans.length} spans${t.omitted ? `, ${t.omitted} more` : ""})`), list);
}
