// A form from a tool's inputSchema (JSON Schema): strings, numbers,
// integers, booleans, enums, arrays, nested objects, required fields,
// defaults, descriptions as help. Values that do not parse are sent as
// typed, so the gateway's own validation answers and its message is shown
// at the field its JSON pointer names (`error.data.path`). A shape the
// form cannot draw (anyOf, oneOf, no type) is a JSON text field.

import { h } from "./render.js";

const MAX_DEPTH = 8;
/** At most this many fields are drawn; past it, a JSON text field. */
const MAX_FIELDS = 300;
let uid = 0;

/**
 * Builds the form. Returns {element, read, showError, clearErrors}:
 * read() gives the arguments object, showError(path, message) puts a
 * message at the field `path` names (or its nearest drawn ancestor).
 */
export function buildForm(schema) {
  const fields = new Map(); // JSON pointer -> {input, error}
  const root = schema && typeof schema === "object" ? schema : {};
  // Every editor drawn takes one from the budget, and a `$ref` being
  // expanded is not expanded again beneath itself: a small recursive
  // schema from a hostile server cannot make the form grow exponentially.
  const ctx = { root, fields, budget: MAX_FIELDS, refs: [] };
  const top = objectEditor(root, "", ctx, 0, true);
  const formError = h("p", { class: "error", role: "alert" });
  fields.set("/", { input: null, error: formError });
  const element = h("div", { class: "schema-form" }, top.el, formError);
  return {
    element,
    read: () => top.read().value ?? {},
    showError(path, message) {
      let p = path || "/";
      while (!fields.has(p)) p = p.lastIndexOf("/") > 0 ? p.slice(0, p.lastIndexOf("/")) : "/";
      const f = fields.get(p);
      f.error.textContent = message;
      if (f.input) {
        f.input.setAttribute("aria-invalid", "true");
        f.input.focus();
      }
    },
    clearErrors() {
      for (const f of fields.values()) {
        f.error.textContent = "";
        if (f.input) f.input.removeAttribute("aria-invalid");
      }
    },
  };
}

/**
 * `schema` with local `$ref`s followed (#/$defs/x, #/definitions/x), and
 * the refs followed; null when one of them is already being expanded.
 */
function resolve(schema, ctx) {
  const followed = [];
  let s = schema;
  while (s && typeof s === "object" && typeof s.$ref === "string" && followed.length <= MAX_DEPTH) {
    if (ctx.refs.includes(s.$ref) || followed.includes(s.$ref)) return null;
    followed.push(s.$ref);
    const m = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(s.$ref);
    s = (m && ctx.root[m[1]] && ctx.root[m[1]][m[2]]) || {};
  }
  return { schema: s && typeof s === "object" ? s : {}, followed };
}

function typeOf(schema) {
  if (Array.isArray(schema.enum)) return "enum";
  const t = Array.isArray(schema.type) ? schema.type.find((x) => x !== "null") : schema.type;
  if (t) return t;
  if (schema.properties) return "object";
  return "json";
}

function editor(raw, path, ctx, depth, required, name) {
  const resolved = resolve(raw, ctx);
  const schema = resolved ? resolved.schema : {};
  const type = !resolved || depth > MAX_DEPTH || --ctx.budget < 0 ? "json" : typeOf(schema);
  if (type !== "object" && type !== "array") return scalarEditor(schema, type, path, ctx.fields, required, name);
  ctx.refs.push(...resolved.followed);
  try {
    return type === "object" ? objectEditor(schema, path, ctx, depth, required, name)
      : arrayEditor(schema, path, ctx, depth, required, name);
  } finally {
    ctx.refs.length -= resolved.followed.length;
  }
}

function label(name, schema, required, id) {
  return h("label", { for: id }, name, required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : "",
    schema.title && schema.title !== name ? h("span", { class: "hint" }, ` (${schema.title})`) : "");
}

function help(schema, id) {
  return schema.description ? h("p", { class: "help", id }, schema.description) : null;
}

function scalarEditor(schema, type, path, fields, required, name) {
  const id = `f${++uid}`;
  const helpId = schema.description ? `${id}-help` : undefined;
  const errId = `${id}-err`;
  const error = h("p", { class: "field-error", id: errId, role: "alert", "data-path": path });
  const common = { id, name: path, "aria-describedby": [helpId, errId].filter(Boolean).join(" "), "aria-required": required ? "true" : undefined };
  let input;
  let read;
  if (type === "enum") {
    input = h("select", common, required ? null : h("option", { value: "" }, "(not set)"),
      schema.enum.map((v, i) => h("option", { value: String(i), selected: schema.default !== undefined && JSON.stringify(v) === JSON.stringify(schema.default) }, JSON.stringify(v))));
    read = () => (input.value === "" ? { set: false } : { set: true, value: schema.enum[Number(input.value)] });
  } else if (type === "boolean") {
    if (required || schema.default !== undefined) {
      input = h("input", { ...common, type: "checkbox", checked: schema.default === true });
      read = () => ({ set: true, value: input.checked });
    } else {
      input = h("select", common, h("option", { value: "" }, "(not set)"), h("option", { value: "true" }, "true"), h("option", { value: "false" }, "false"));
      read = () => (input.value === "" ? { set: false } : { set: true, value: input.value === "true" });
    }
  } else if (type === "number" || type === "integer") {
    input = h("input", { ...common, type: "text", inputmode: type === "integer" ? "numeric" : "decimal", value: schema.default ?? "" });
    read = () => {
      const v = input.value.trim();
      if (v === "") return { set: false };
      const n = Number(v);
      // Sent as typed when it is no number: the gateway says what is wrong.
      return { set: true, value: Number.isFinite(n) ? n : input.value };
    };
  } else if (type === "string") {
    const long = (schema.maxLength ?? 0) > 200 || /text|content|body|message|prompt/i.test(name || "");
    input = long ? h("textarea", { ...common, rows: 3 }, schema.default ?? "")
      : h("input", { ...common, type: "text", value: schema.default ?? "" });
    read = () => (input.value === "" && !required ? { set: false } : { set: true, value: input.value });
  } else {
    input = h("textarea", { ...common, rows: 3, class: "code", placeholder: "JSON" },
      schema.default !== undefined ? JSON.stringify(schema.default) : "");
    read = () => {
      const v = input.value.trim();
      if (v === "") return { set: false };
      try { return { set: true, value: JSON.parse(v) }; } catch { return { set: true, value: input.value }; }
    };
  }
  fields.set(path || "/", { input, error });
  const row = type === "boolean" && input.type === "checkbox"
    ? h("div", { class: "field check" }, input, label(name, schema, required, id), help(schema, helpId), error)
    : h("div", { class: "field" }, label(name, schema, required, id), input, help(schema, helpId), error);
  return { el: row, read };
}

function objectEditor(schema, path, ctx, depth, required, name) {
  const fields = ctx.fields;
  const props = schema.properties && typeof schema.properties === "object" ? schema.properties : {};
  const req = new Set(Array.isArray(schema.required) ? schema.required : []);
  const children = Object.entries(props).map(([k, s]) => {
    const p = `${path}/${k.replace(/~/g, "~0").replace(/\//g, "~1")}`;
    return [k, editor(s, p, ctx, depth + 1, req.has(k), k)];
  });
  const body = children.map(([, e]) => e.el);
  if (!children.length) body.push(h("p", { class: "hint" }, "No arguments."));
  const read = () => {
    const out = {};
    let any = false;
    for (const [k, e] of children) {
      const r = e.read();
      // Defined, not assigned: a property named __proto__ is an argument too.
      if (r.set) { Object.defineProperty(out, k, { value: r.value, enumerable: true, writable: true, configurable: true }); any = true; }
    }
    return any || required || depth === 0 ? { set: true, value: out } : { set: false };
  };
  if (depth === 0) return { el: h("div", { class: "fields" }, body), read };
  const error = h("p", { class: "field-error", role: "alert", "data-path": path });
  const legend = h("legend", {}, name, required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : "");
  const el = h("fieldset", { class: "nested" }, legend, schema.description ? h("p", { class: "help" }, schema.description) : null, body, error);
  fields.set(path, { input: null, error });
  return { el, read };
}

function arrayEditor(schema, path, ctx, depth, required, name) {
  const fields = ctx.fields;
  const items = [];
  const list = h("ol", { class: "items" });
  const error = h("p", { class: "field-error", role: "alert", "data-path": path });
  fields.set(path, { input: null, error });
  const add = (value) => {
    const i = items.length;
    const e = editor(schema.items || {}, `${path}/${i}`, ctx, depth + 1, true, `${name}[${i}]`);
    const li = h("li", {}, e.el);
    const entry = { e, li };
    li.append(h("button", { type: "button", class: "small", onclick: () => {
      items.splice(items.indexOf(entry), 1);
      li.remove();
    } }, `Remove ${name}[${i}]`));
    items.push(entry);
    list.append(li);
    if (value !== undefined) setValue(e, value);
  };
  const addButton = h("button", { type: "button", class: "small", onclick: () => add() }, `Add ${name} item`);
  if (Array.isArray(schema.default)) schema.default.forEach((v) => add(v));
  const el = h("fieldset", { class: "nested" },
    h("legend", {}, name, required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : ""),
    schema.description ? h("p", { class: "help" }, schema.description) : null, list, addButton, error);
  const read = () => {
    if (!items.length && !required) return { set: false };
    return { set: true, value: items.map(({ e }) => e.read()).filter((r) => r.set).map((r) => r.value) };
  };
  return { el, read };
}

/** Puts a default item's value into a scalar editor (best effort). */
function setValue(e, value) {
  const input = e.el.querySelector("input, textarea, select");
  if (!input) return;
  if (input.type === "checkbox") input.checked = value === true;
  else if (typeof value !== "object") input.value = String(value);
}
