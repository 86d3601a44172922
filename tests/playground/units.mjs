// The playground's modules on their own, in Node (no browser): what a
// hostile server's input must not do to them. Prints ok/FAIL lines; exit 1
// when any failed. Run by tests/playground/run.py before the browser.
//
// - snippets: a tool name and arguments with quotes, control, bidi and
//   non-ASCII characters come out as printable-ASCII literals that read
//   back exactly (bash, Python, JSON);
// - the SSE reader is linear: a 16 MiB event in 16 KiB chunks is read in
//   well under a second (quadratic copying took 5 s);
// - the form builder is bounded: a 400-byte recursive schema (k^8 editors
//   unbounded) and a 2000-property one draw a bounded number of elements;
// - the approvals view's indentation keeps the arguments' text exactly,
//   spells out invisible and reordering characters, and stays bounded on
//   deeply nested arguments;
// - an argument named __proto__ is sent.

import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../web/playground");
const load = (name) => import(pathToFileURL(path.join(WEB, name)).href);
const failed = [];
function check(ok, what, detail = "") {
  console.log(`${ok ? "ok" : "FAIL"}: playground units: ${what}${ok ? "" : ` -- ${String(detail).slice(0, 300)}`}`);
  if (!ok) failed.push(what);
}

// A DOM just big enough for the form builder: counts elements.
let elements = 0;
class El {
  constructor(tag) { this.tag = tag; this.children = []; }
  setAttribute(k, v) { if (k === "value") this.value = v; }
  removeAttribute() {}
  addEventListener() {}
  append(...c) { this.children.push(...c); }
  replaceChildren() { this.children = []; }
  querySelector() { return null; }
  set textContent(_) {}
}
globalThis.Node = El;
globalThis.document = { createElement: (t) => { elements++; return new El(t); }, createTextNode: () => new El("#text") };

const { shellQuote, pyString, asciiJson, snippets } = await load("snippets.js");
const nasty = "a'b\x03\n\u202Eé🌧\\\"$(id)`x`\x7f";
const printable = (s) => /^[\x20-\x7e\n]*$/.test(s);
check(execFileSync("bash", ["-c", `printf %s ${shellQuote(nasty)}`]).toString() === nasty && printable(shellQuote(nasty)),
  "a shell word reads back exactly and is printable ASCII");
const python = process.env.PYTHON || "python3";
check(execFileSync(python, ["-c", `import sys; sys.stdout.buffer.write(${pyString(nasty)}.encode("utf-8", "surrogatepass"))`]).toString() === nasty
  && printable(pyString(nasty)), "a Python string literal reads back exactly and is printable ASCII");
check(JSON.parse(asciiJson({ k: nasty })).k === nasty && printable(asciiJson({ k: nasty }, 2)),
  "JSON reads back exactly and is printable ASCII");
const all = snippets({ base: "http://127.0.0.1:8787", tool: "t\u202E\x03x", args: { m: nasty }, model: "demo",
  auth: { header: "X-API-Key", value: "k" }, include: false });
check(all.length === 7 && all.every((s) => printable(s.text)), "every snippet of a hostile tool name is printable ASCII",
  all.map((s) => s.id).join(","));

const { events } = await load("api.js");
const big = `data: ${"x".repeat(16 * 1024 * 1024)}\n\n`;
const body = new ReadableStream({
  start(c) {
    const enc = new TextEncoder();
    for (let i = 0; i < big.length; i += 16384) c.enqueue(enc.encode(big.slice(i, i + 16384)));
    c.close();
  },
});
let t = Date.now();
let got = 0;
for await (const e of events(body)) got += e.data.length;
const ms = Date.now() - t;
check(got === 16 * 1024 * 1024 && ms < 1500, "a 16 MiB event is read in one linear pass", `${got} bytes in ${ms} ms`);

const { buildForm } = await load("form.js");
const props = {};
for (let i = 0; i < 6; i++) props[`p${i}`] = { $ref: "#/$defs/a" };
elements = 0;
t = Date.now();
buildForm({ type: "object", $defs: { a: { type: "object", properties: props } }, properties: props });
check(elements < 5000, "a small recursive schema draws a bounded form", `${elements} elements in ${Date.now() - t} ms`);
elements = 0;
buildForm({ type: "object", properties: Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`f${i}`, { type: "object", properties: { a: { type: "string" } } }])) });
check(elements < 20000, "a 2000-property schema draws a bounded form", `${elements} elements`);

const { indentJson, visible } = await load("render.js");
const raw = '{"n": 12345678901234567890, "s": "a, b: [c] {d} \\" e", "l": [1, {"x": null}]}';
const squeeze = (s) => s.replace(/\s+/g, "");
check(squeeze(indentJson(raw)) === squeeze(raw) && indentJson(raw).includes("12345678901234567890")
  && indentJson(raw).includes('"a, b: [c] {d} \\" e"'),
  "the approvals view's indentation keeps the arguments' text exactly", indentJson(raw));

// A held call's name and arguments as an approver reads them.
const hidden = '{"cmd": "ls \u202Etxt.exe\u200B",\r\n\t"x\u2028": 1}';
const shownArgs = indentJson(visible(hidden, true));
check(!/[\u202E\u200B\u2028]/.test(shownArgs) && shownArgs.includes("\\u202e") && shownArgs.includes("\\u200b")
  && JSON.stringify(JSON.parse(shownArgs)) === JSON.stringify(JSON.parse(hidden)),
  "invisible and reordering characters are spelled out, the same JSON value", shownArgs);
check(visible("read_file\u202E") === "read_file\\u202e" && visible("é🌧 ok\n") === "é🌧 ok\\u000a"
  && visible("a\u{E0001}") === "a\\udb40\\udc01",
  "a tool name's reordering character is spelled out, other text kept", visible("read_file\u202E"));
// 1 MiB of arguments nested 120 deep (the gateway's JSON parser allows 128).
let deep = "";
while (deep.length < 1024 * 1024) deep += "[".repeat(120) + "1" + "]".repeat(120) + ",";
deep = `[${deep.slice(0, -1)}]`;
t = Date.now();
const drawn = indentJson(deep);
check(drawn.length < 8 * deep.length && squeeze(drawn) === squeeze(deep),
  "deeply nested arguments indent to a bounded size, text kept", `${deep.length} -> ${drawn.length} in ${Date.now() - t} ms`);
const medium = `[${Array.from({ length: 400 }, () => "[".repeat(100) + "1" + "]".repeat(100)).join(",")}]`;
const mdrawn = indentJson(medium);
check(mdrawn.length < 40 * medium.length && squeeze(mdrawn) === squeeze(medium),
  "indentation stops deepening past 16 levels", `${medium.length} -> ${mdrawn.length}`);

// The form: an argument named __proto__ is sent like any other.
// (JSON.parse: in an object literal, __proto__ would set the prototype.)
const protoForm = buildForm(JSON.parse('{"type": "object", "properties": {"__proto__": {"type": "string", "default": "x"}, "a": {"type": "string", "default": "y"}}}'));
check(JSON.stringify(protoForm.read()) === '{"__proto__":"x","a":"y"}',
  "an argument named __proto__ is sent like any other", JSON.stringify(protoForm.read()));

console.log(`playground units: ${failed.length} failed`);
process.exit(failed.length ? 1 : 0);
