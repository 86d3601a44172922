// The playground in a real browser: Debian's Chromium driven by Playwright
// (playwright-core), against a running `make dev` gateway (Workers or the
// Spin host, tests/playground/run.py starts either). Each check prints
// `ok: ...` or `FAIL: ...`; the exit status is 1 when any failed.
//
//   node tests/playground/browser.mjs --base URL --user-key K --admin-key K
//        [--shots DIR] [--python PATH] [--label workers]
//
// What it checks, as a user would see it: the page's security headers; a
// refused key; signing in with OAuth (code + PKCE, at the demo
// authorization server's sign-in page) and calling as that account;
// signing in with the demo API key; the servers grouped; the
// policy's denied tool absent; everything__get-sum's form and result, with
// the trace summary; a bad value's message at its field (from the
// gateway's validation); a long-running tool's progress; every snippet,
// copied through the clipboard and then run (Python SDK, TypeScript SDK,
// curl, the OpenAI SDK, and the Claude Desktop, Cursor and VS Code
// configurations as those clients read them); a chat with the scripted
// model running a tool; a held call approved by an approver from the
// inbox; labels on every control; text contrast (WCAG AA) on every
// view; the keyboard alone from sign-in to a result; the narrow layout.
// With --shots, a screenshot of each view.

import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const opts = {};
for (let i = 2; i < process.argv.length; i += 2) opts[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
const BASE = opts.base;
const LABEL = opts.label || "playground";
const PYTHON = opts.python || "python3";
if (!BASE || !opts["user-key"] || !opts["admin-key"]) {
  console.error("usage: browser.mjs --base URL --user-key K --admin-key K [--shots DIR] [--python PATH]");
  process.exit(2);
}

const failed = [];
function check(ok, what, detail = "") {
  console.log(`${ok ? "ok" : "FAIL"}: ${LABEL}: ${what}${ok ? "" : ` -- ${String(detail).slice(0, 600)}`}`);
  if (!ok) failed.push(what);
}
async function attempt(what, fn) {
  try {
    await fn();
  } catch (e) {
    check(false, what, e.stack || e.message || e);
  }
}

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
const page = await context.newPage();
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(e.message));
// The browser logs every refused request (the refused key's 401 among
// them) as a console error; those are the gateway's answers, not errors of
// the page's own code.
page.on("console", (m) => {
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) pageErrors.push(m.text());
});
const shots = opts.shots;
if (shots) mkdirSync(shots, { recursive: true });
/** A screenshot of the window, `focus` (a selector) scrolled to its middle. */
async function shot(name, focus) {
  if (!shots) return;
  if (focus) {
    await page.locator(focus).first().evaluate((e) => e.scrollIntoView({ block: "center" }));
  }
  await page.screenshot({ path: path.join(shots, `${name}.png`) });
}
const work = mkdtempSync(path.join(tmpdir(), "mcp-edge-playground-"));

async function signIn(key) {
  await page.goto(`${BASE}/playground`);
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.getByText("Signed in with an API key").waitFor({ timeout: 15000 });
}

async function openServer(id) {
  await page.locator(`button[data-server="${id}"]`).click();
  await page.locator(`#detail h3:text-is("${id}")`).waitFor();
  await page.locator("#detail ul.tools").waitFor({ timeout: 20000 });
}

async function openTool(name) {
  await page.locator(`button[data-tool="${name}"]`).click();
  await page.getByRole("heading", { name: `Try ${name}` }).waitFor();
}

try {
  await attempt("the page is served with its security headers, at /playground/", async () => {
    const r = await page.goto(`${BASE}/playground`);
    const h = r.headers();
    const csp = h["content-security-policy"] || "";
    check(r.status() === 200 && page.url() === `${BASE}/playground/` && csp.includes("script-src 'self'")
      && csp.includes("frame-ancestors 'none'") && h["x-frame-options"] === "DENY" && h["referrer-policy"] === "no-referrer",
    "the page is served with its security headers, at /playground/", `${r.status()} ${page.url()} ${JSON.stringify(h)}`);
  });
  await shot("signin");

  await attempt("a key the gateway does not know is refused at sign-in", async () => {
    await page.getByLabel("API key").fill("mk_not_a_key");
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    const msg = page.locator("#signin-error");
    await msg.getByText("refused").waitFor({ timeout: 10000 });
    check(await page.locator("#views").isHidden(), "a key the gateway does not know is refused at sign-in");
  });

  await attempt("signing in with OAuth (code + PKCE) against the demo authorization server", async () => {
    await page.goto(`${BASE}/playground`);
    await page.locator("summary", { hasText: "OAuth options" }).click();
    await page.locator("#oauth-client").fill("mcp-edge-playground");
    await page.getByRole("button", { name: "Sign in with OAuth" }).click();
    await page.waitForURL(/^http:\/\/127\.0\.0\.1:3004\/interaction\//, { timeout: 15000 });
    await page.locator('input[name="login"]').fill("oauth-alice");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("Signed in with OAuth").waitFor({ timeout: 15000 });
    const url = page.url();
    const stored = await page.evaluate(() => JSON.stringify([{ ...localStorage }, { ...sessionStorage }]));
    check(url === `${BASE}/playground/` && stored === "[{},{}]",
      "the OAuth sign-in comes back to a clean URL and leaves nothing in storage", `${url} ${stored}`);
    await openServer("notes");
    await openTool("notes__whoami");
    await page.getByRole("button", { name: "Call", exact: true }).click();
    await page.locator(".result pre.text").first().waitFor({ timeout: 20000 });
    const who = await page.locator(".result").innerText();
    check(who.includes("oauth-alice"), "signed in with OAuth, calls go as the account that signed in (notes__whoami)", who);
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.locator("#key-form").waitFor();
  });

  await attempt("signing in with the demo API key shows the servers grouped by server group", async () => {
    await signIn(opts["user-key"]);
    await page.getByRole("heading", { name: "Group dev" }).waitFor({ timeout: 15000 });
    const servers = await page.locator("button[data-server]").evaluateAll((els) => els.map((e) => e.dataset.server));
    check(servers.includes("everything") && servers.includes("notes"),
      "signing in with the demo API key shows the servers grouped by server group", servers.join(","));
  });

  await attempt("the denied tool is absent, the allowed ones listed with their annotations", async () => {
    await openServer("everything");
    const tools = await page.locator("button[data-tool]").evaluateAll((els) => els.map((e) => e.dataset.tool));
    check(tools.includes("everything__get-sum") && tools.includes("everything__echo")
      && !tools.includes("everything__gzip-file-as-resource") && !tools.includes("everything__get-env"),
    "the policy's denied tool (gzip-file-as-resource) and the hidden get-env are absent; get-sum and echo are listed",
    tools.join(","));
    const prompts = await page.locator("ul.prompts li").count();
    const resources = await page.locator("ul.resources li").count();
    check(prompts > 0 && resources > 0, "everything's prompts and resources are listed", `${prompts} ${resources}`);
  });
  await attempt("a destructive tool is marked", async () => {
    await openServer("notes");
    const purge = page.locator("ul.tools li", { has: page.locator('button[data-tool="notes__purge"]') });
    check(await purge.locator(".badge.danger").count() === 1, "notes' purge (destructiveHint) is marked destructive",
      await purge.innerText());
  });
  await shot("explore");

  await attempt("the get-sum form calls the tool and shows the result and the trace", async () => {
    await openServer("everything");
    await openTool("everything__get-sum");
    await page.locator('input[name="/a"]').fill("2");
    await page.locator('input[name="/b"]').fill("3");
    await page.getByRole("button", { name: "Call", exact: true }).click();
    await page.locator(".result pre.text").getByText("The sum of 2 and 3 is 5.").waitFor({ timeout: 20000 });
    const trace = await page.locator("ol.trace li .span-name").allInnerTexts();
    check(trace.includes("authenticate") && trace.includes("policy") && trace.length >= 4,
      "everything__get-sum's form calls the tool; the result and the gateway's trace summary are shown", trace.join(","));
  });
  await shot("try", ".try .out");

  await attempt("a bad value shows the gateway's validation message at its field", async () => {
    await page.locator('input[name="/a"]').fill("two");
    await page.getByRole("button", { name: "Call", exact: true }).click();
    const err = page.locator('.field-error[data-path="/a"]');
    await err.filter({ hasText: /\S/ }).waitFor({ timeout: 15000 });
    const text = await err.innerText();
    const invalid = await page.locator('input[name="/a"]').getAttribute("aria-invalid");
    const other = await page.locator('.field-error[data-path="/b"]').innerText();
    check(/Invalid arguments/.test(text) && /number/.test(text) && invalid === "true" && other === "",
      "a bad value for a shows the gateway's validation message at field a, and only there", `${text} | ${invalid} | ${other}`);
  });
  await shot("validation", '.field-error[data-path="/a"]');

  await attempt("a long-running tool shows its progress while it runs", async () => {
    await openTool("everything__trigger-long-running-operation");
    await page.locator('input[name="/duration"]').fill("3");
    await page.locator('input[name="/steps"]').fill("3");
    await page.getByRole("button", { name: "Call", exact: true }).click();
    const progress = page.locator(".progress span").filter({ hasText: /^Progress 1\/3/ });
    await progress.waitFor({ timeout: 15000 });
    const during = await page.locator(".result").count();
    const bar = await page.locator(".progress progress").getAttribute("value");
    await shot("progress", ".progress");
    await page.locator(".result pre.text").getByText("Long running operation completed").waitFor({ timeout: 20000 });
    check(during === 0 && Number(bar) >= 1, "a long-running tool shows its progress while it runs, then its result",
      `result while running: ${during}, bar ${bar}`);
  });

  await attempt("every snippet, copied, runs and works", async () => {
    await openTool("everything__echo");
    const text = `hello from the ${LABEL} playground's snippets`;
    await page.locator('[name="/message"]').fill(text);
    await page.getByRole("button", { name: "Call", exact: true }).click();
    await page.locator(".result pre.text").getByText(`Echo: ${text}`).waitFor({ timeout: 20000 });
    await shot("copy", ".snippets");
    for (const include of [false, true]) {
      const box = page.getByLabel("Include my credential in the snippets");
      if ((await box.isChecked()) !== include) await box.click();
      const ids = await page.locator("[data-snippet]").evaluateAll((els) => els.map((e) => e.dataset.snippet));
      check(["python", "typescript", "curl", "openai", "claude", "cursor", "vscode"].every((i) => ids.includes(i)),
        `the snippets are offered (${include ? "with" : "without"} the credential)`, ids.join(","));
      for (const id of ids) {
        await page.locator(`#tab-${id}`).click();
        await page.locator(`button[data-copy="${id}"]`).click();
        const copied = await page.evaluate(() => navigator.clipboard.readText());
        const shown = await page.locator(`[data-snippet="${id}"]`).innerText();
        const hasKey = copied.includes(opts["user-key"]);
        check(copied.trim() === shown.trim() && hasKey === include,
          `the ${id} snippet is copied as shown, ${include ? "with" : "without"} the credential`, copied.slice(0, 200));
        const out = await run(id, copied, include);
        const expect = id === "openai" ? /The sum of 2 and 3 is 5/ : new RegExp(`Echo: ${text}`);
        check(expect.test(out), `the ${id} snippet (${include ? "with" : "without"} the credential) works as pasted`, out);
      }
    }
  });

  await attempt("a chat with the scripted model runs a tool, shown as it runs", async () => {
    await page.getByRole("button", { name: "Chat" }).click();
    await page.locator("#chat-model option[value=demo]").waitFor({ state: "attached", timeout: 10000 });
    await page.locator("#chat-message").fill("What is 2 plus 3?");
    await page.getByRole("button", { name: "Send" }).click();
    const call = page.locator('.call[data-call="everything__get-sum"]');
    await call.waitFor({ timeout: 30000 });
    await page.locator(".msg.assistant p").filter({ hasText: "The sum of 2 and 3 is 5" }).waitFor({ timeout: 30000 });
    const state = await call.locator(".state").innerText();
    check(state.includes("done"), "a chat with the scripted model runs get-sum through the gateway, shown as it runs", state);
  });
  await shot("chat");

  await attempt("a held call is approved by an approver from the inbox", async () => {
    await page.getByRole("button", { name: "Explore" }).click();
    await openServer("notes");
    await openTool("notes__purge");
    const tag = `playground-${LABEL}-${Date.now()}`;
    await page.locator('[name="/tag"]').fill(tag);
    await page.getByRole("button", { name: "Call", exact: true }).click();
    await page.locator(".result.is-error").waitFor({ timeout: 20000 });
    const held = await page.locator(".result").innerText();
    check(/approv/i.test(held), "notes__purge is held for an approver (the result names the approval)", held);
    await page.getByRole("button", { name: "Sign out" }).click();
    await signIn(opts["admin-key"]);
    await page.getByRole("button", { name: "Approvals" }).click();
    const item = page.locator("li.approval").filter({ hasText: tag });
    await item.waitFor({ timeout: 15000 });
    // The arguments in full, as the upstream will get them.
    await item.locator(".args-text").filter({ hasText: `"tag": "${tag}"` }).waitFor({ timeout: 15000 });
    await shot("approvals");
    await item.getByRole("button", { name: "Approve purge" }).click();
    await item.getByText("Approved").waitFor({ timeout: 15000 });
    // The requester's same call now runs (an approved call is used once).
    const again = await mcpCall(opts["user-key"], "notes__purge", { tag });
    check(!again.isError && JSON.stringify(again).includes(tag),
      "the approver approves it from the inbox, and the requester's call then runs", JSON.stringify(again));
  });

  await attempt("every control has a label", async () => {
    for (const view of ["Explore", "Chat", "Approvals"]) {
      await page.getByRole("button", { name: view, exact: true }).click();
      const unlabeled = await page.evaluate(() => [...document.querySelectorAll("input, select, textarea, button")]
        .filter((e) => e.offsetParent !== null)
        .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !(e.textContent || "").trim())
        .map((e) => e.outerHTML.slice(0, 80)));
      check(unlabeled.length === 0, `every visible control of ${view} has a label`, unlabeled.join(" | "));
      const low = await page.evaluate(lowContrast);
      check(low.length === 0, `all visible text of ${view} meets WCAG AA contrast (4.5:1, 3:1 when large)`, low.join(" | "));
    }
  });

  await attempt("the keyboard alone signs in, picks a tool, fills its form and calls it", async () => {
    // A second tab of the same browser: nothing but key presses, from a
    // fresh load (the first tab's sign-in lives in its memory only).
    const kb = await context.newPage();
    try {
      await kb.goto(`${BASE}/playground`);
      await kb.locator("#api-key").waitFor();
      const low = await kb.evaluate(lowContrast);
      check(low.length === 0, "all visible text of Sign in meets WCAG AA contrast (4.5:1, 3:1 when large)", low.join(" | "));
      await tabTo(kb, "#api-key");
      await kb.keyboard.type(opts["user-key"]);
      await kb.keyboard.press("Enter");
      await kb.getByText("Signed in with an API key").waitFor({ timeout: 15000 });
      await tabTo(kb, 'button[data-server="everything"]');
      await kb.keyboard.press("Enter");
      await tabTo(kb, 'button[data-tool="everything__get-sum"]', 20000);
      await kb.keyboard.press("Enter");
      await tabTo(kb, 'input[name="/a"]');
      await kb.keyboard.type("4");
      await tabTo(kb, 'input[name="/b"]');
      await kb.keyboard.type("5");
      await kb.keyboard.press("Enter");
      const result = kb.locator(".result pre.text").first();
      await result.waitFor({ timeout: 20000 });
      const text = await result.innerText();
      check(text.includes("The sum of 4 and 5 is 9."),
        "the keyboard alone signs in, picks a tool, fills its form and calls it", text);
      // The control that has the focus shows it (the :focus-visible ring).
      await tabTo(kb, 'input[name="/a"]');
      const ring = await kb.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
      check(ring !== "none", "the focused control shows a focus ring", ring);
    } finally {
      await kb.close();
    }
  });

  await attempt("the page works on a narrow screen", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole("button", { name: "Explore" }).click();
    await openServer("everything");
    await openTool("everything__get-sum");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 1, "on a 390 px wide screen nothing scrolls sideways", `${overflow}px too wide`);
    await shot("narrow");
  });

  check(pageErrors.length === 0, "no script errors on the page", pageErrors.join(" | "));
} finally {
  await browser.close();
  rmSync(work, { recursive: true, force: true });
}

/**
 * Presses Tab until `selector` has the focus; fails after `within` ms or
 * 400 presses (the control is then out of the keyboard's reach).
 */
async function tabTo(p, selector, within = 10000) {
  const end = Date.now() + within;
  for (let i = 0; i < 400 && Date.now() < end; i++) {
    if (await p.evaluate((sel) => document.activeElement?.matches(sel) ?? false, selector)) return;
    await p.keyboard.press("Tab");
    // A list still loading has nothing to reach yet.
    if (i % 60 === 59) await p.waitForTimeout(250);
  }
  throw new Error(`Tab never reached ${selector}`);
}

/**
 * Runs in the page: every visible element with text of its own whose
 * colour against its backdrop (the backgrounds beneath it, blended) falls
 * short of WCAG 2's AA ratio: 4.5:1, or 3:1 for large text (24 px, or
 * 18.66 px bold). Disabled controls are exempt, as WCAG has them.
 */
function lowContrast() {
  const rgba = (c) => (c.match(/[\d.]+/g) || [0, 0, 0, 0]).map(Number).concat([1]).slice(0, 4);
  const lin = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  const lum = ([r, g, b]) => 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  const over = ([r, g, b, a], [R, G, B]) => [r * a + R * (1 - a), g * a + G * (1 - a), b * a + B * (1 - a), 1];
  const backdrop = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    return layers.reduceRight((below, layer) => over(layer, below), [255, 255, 255, 1]);
  };
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || el.closest("[disabled], .sr-only, .skip") || !el.getClientRects().length) continue;
    const st = getComputedStyle(el);
    if (st.visibility === "hidden") continue;
    const bg = backdrop(el);
    const fg = over(rgba(st.color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(st.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(st.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) out.push(`${el.tagName.toLowerCase()}.${el.className} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}:1`);
  }
  return out;
}

/** A tool call as the SDK makes it (TypeScript SDK v1). */
async function mcpCall(key, name, args) {
  const client = new Client({ name: "playground-test", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${BASE}/mcp`), {
    requestInit: { headers: { "X-API-Key": key } },
  }));
  try {
    return await client.callTool({ name, arguments: args });
  } finally {
    await client.close();
  }
}

/** Runs a copied snippet as its reader would, and returns what it printed. */
async function run(id, text, include) {
  const env = { ...process.env, MCP_EDGE_API_KEY: include ? "" : opts["user-key"] };
  const sh = (cmd, args, extra = {}) => {
    try {
      return execFileSync(cmd, args, { env, cwd: ROOT, timeout: 90000, encoding: "utf8", ...extra });
    } catch (e) {
      return `exit ${e.status}: ${e.stdout || ""} ${e.stderr || ""}`;
    }
  };
  switch (id) {
    case "python":
    case "openai": {
      // Not `openai.py`: a script of that name would import itself.
      const file = path.join(work, `snippet_${id}.py`);
      writeFileSync(file, text);
      return sh(PYTHON, [file]);
    }
    case "typescript": {
      // Beside the project's node_modules, where `npm install` would put it.
      const file = path.join(ROOT, "build", `playground-snippet-${process.pid}.mjs`);
      writeFileSync(file, text);
      try { return sh(process.execPath, [file]); } finally { rmSync(file, { force: true }); }
    }
    case "curl":
      return sh("bash", ["-c", text]);
    case "claude": {
      // Claude Desktop starts the command with the config's env.
      const server = JSON.parse(text).mcpServers["mcp-edge"];
      const serverEnv = { ...process.env, ...server.env, PATH: `${path.join(ROOT, "node_modules", ".bin")}:${process.env.PATH}` };
      if (!include) serverEnv.MCP_EDGE_HEADER = opts["user-key"];
      const client = new Client({ name: "claude-desktop-config", version: "1" });
      await client.connect(new StdioClientTransport({ command: server.command, args: server.args, env: serverEnv, cwd: ROOT, stderr: "ignore" }));
      try { return JSON.stringify(await client.callTool({ name: "everything__echo", arguments: { message: `hello from the ${LABEL} playground's snippets` } })); }
      finally { await client.close(); }
    }
    case "cursor":
    case "vscode": {
      const doc = JSON.parse(text);
      const server = id === "cursor" ? doc.mcpServers["mcp-edge"] : doc.servers["mcp-edge"];
      if (id === "vscode" && server.type !== "http") return `type ${server.type}`;
      // The client's substitutions: Cursor's ${env:NAME}, VS Code's ${input:id} (a prompt).
      const headers = Object.fromEntries(Object.entries(server.headers).map(([k, v]) => [k,
        v.replace(/\$\{env:([A-Z_]+)\}/g, (_, n) => env[n] || "").replace(/\$\{input:[^}]+\}/g, opts["user-key"])]));
      const client = new Client({ name: `${id}-config`, version: "1" });
      await client.connect(new StreamableHTTPClientTransport(new URL(server.url), { requestInit: { headers } }));
      try { return JSON.stringify(await client.callTool({ name: "everything__echo", arguments: { message: `hello from the ${LABEL} playground's snippets` } })); }
      finally { await client.close(); }
    }
    default:
      return `no runner for ${id}`;
  }
}

console.log(`${LABEL}: ${failed.length} failed`);
process.exit(failed.length ? 1 : 0);
