// Cairn's shared page script: small progressive touches; every page works without it.
"use strict";

window.cairn = (function () {
  const api = () => document.body.dataset.api || "/api/v1";

  // POST JSON to a documented /api/v1 route; resolves to {ok, status, body}.
  async function post(path, body) {
    const response = await fetch(api() + path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { ok: response.ok, status: response.status, body: data };
  }

  return { api, post };
})();
