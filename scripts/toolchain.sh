#!/usr/bin/env bash
# Installs everything the build, the dev server and the tests need, pinned, into
# $MCP_EDGE_CACHE (default ~/.cache/mcp-edge). Safe to rerun: each step is
# skipped when its result is already there.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

step() { printf '==> %s\n' "$*" >&2; }

step "rustup targets"
installed="$(rustup target list --installed)"
for t in wasm32-unknown-unknown wasm32-wasip2; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done

have_version() { [ -x "$1" ] && "$1" --version 2>/dev/null | grep -q "$2"; }

if ! have_version "$CARGO_TOOLS/bin/worker-build" "$WORKER_BUILD_VERSION"; then
  step "cargo install worker-build $WORKER_BUILD_VERSION (a few minutes, once)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --root "$CARGO_TOOLS"
fi
if ! have_version "$CARGO_TOOLS/bin/wasm-bindgen" "$WASM_BINDGEN_VERSION"; then
  step "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --root "$CARGO_TOOLS" --force
fi

# npm packages: wrangler, Node 22, binaryen, the MCP SDK and server-everything,
# playwright-core and mcp-remote, at the versions in package-lock.json.
# `npm ci`: it installs exactly the locked tree into a clean node_modules and
# never writes package-lock.json; it fails if the lockfile is out of sync with
# package.json, which is the check we want. The lockfile lists every
# platform's optional packages (workerd, esbuild, sharp, fsevents), so it
# stays in sync on any machine. Skipped while the stamp (a copy of the
# lockfile it installed) matches, since `npm ci` deletes and refills
# node_modules every time it runs.
stamp="node_modules/.mcp-edge-lock"
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  step "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi

# Python: the official MCP SDK (client for the e2e tests, and the second demo server).
req="tests/e2e/requirements.txt"
if [ ! -x "$PYTHON" ] || ! cmp -s "$req" "$VENV/.requirements"; then
  step "python venv + pip install -r $req"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$VENV/.requirements"
fi
# Chromium for the browser tests: Playwright (playwright-core, which never
# downloads a browser) drives Debian's build at /usr/bin/chromium. Installing
# it needs root; without root this step only says so, and the browser tests
# are to fail on the missing browser rather than skip.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    step "skipped: /usr/bin/chromium is missing and installing it needs root and apt-get" \
      "(as root: apt-get install chromium fonts-liberation); the browser tests will fail without it"
  else
    step "apt-get install chromium (for the browser tests)"
    # Recommends left out (a desktop's worth of packages) but for the fonts
    # pages are drawn with. The package lists are refreshed only when the
    # install fails without them (a fresh image may have none, or stale ones).
    apt_install() {
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        chromium fonts-liberation >/dev/null
    }
    apt_install || { apt-get update -q >/dev/null && apt_install; }
  fi
fi
step "toolchain ready"
