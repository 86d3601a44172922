// The playground: signs in, then switches between its three views
// (Explore and try, Chat, Approvals). Everything it shows comes from the
// gateway it is served by, as the signed-in caller.

import { auth } from "./api.js";
import { showServers } from "./explore.js";
import { initChat, loadModels } from "./chat.js";
import { showInbox } from "./approvals.js";
import { finishOAuth, startOAuth, withKey } from "./signin.js";

const $ = (id) => document.getElementById(id);

function show(view) {
  for (const b of $("views").querySelectorAll("button")) {
    if (b.dataset.view === view) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  for (const id of ["explore", "chat", "approvals"]) $(id).hidden = id !== view;
  if (view === "approvals") showInbox($("inbox"), $("approvals-status"));
  if (view === "chat") loadModels($("chat-model"));
}

function signedIn() {
  $("signin").hidden = true;
  $("views").hidden = false;
  $("signout").hidden = false;
  $("who").textContent = `Signed in with ${auth.current.label}`;
  show("explore");
  showServers($("servers"), $("detail"));
  $("main").focus();
}

function signedOut() {
  // Nothing else holds the credential: a reload starts from nothing too.
  auth.current = null;
  location.reload();
}

async function main() {
  $("key-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("signin-error").textContent = "";
    try {
      await withKey($("api-key").value.trim());
      $("api-key").value = "";
      signedIn();
    } catch (e) {
      $("signin-error").textContent = e.message;
    }
  });
  $("oauth").addEventListener("click", async () => {
    $("signin-error").textContent = "";
    try {
      await startOAuth($("oauth-client").value.trim());
    } catch (e) {
      $("signin-error").textContent = `OAuth sign-in failed: ${e.message}`;
    }
  });
  $("signout").addEventListener("click", signedOut);
  for (const b of $("views").querySelectorAll("button")) b.addEventListener("click", () => show(b.dataset.view));
  $("approvals-refresh").addEventListener("click", () => showInbox($("inbox"), $("approvals-status")));
  initChat($("chat-form"), $("transcript"), $("chat-model"), $("chat-message"));
  try {
    if (await finishOAuth()) signedIn();
  } catch (e) {
    $("signin-error").textContent = `OAuth sign-in failed: ${e.message}`;
  }
}

main();
