// The search box, enhanced: while typing, the query is checked by the documented search
// route (POST /api/v1/search/...), and a mistake is shown inline with a caret under its
// position; a good query shows how many rows it finds (runs) before it is submitted.
"use strict";

(function () {
  const form = document.querySelector("form.search");
  if (!form) return;
  const input = form.querySelector("input[name=q]");
  const box = document.getElementById("query-error");
  const hint = document.getElementById("query-hint");
  const scope = form.dataset.scope;
  let timer = null;
  let sequence = 0;

  function show(error, query) {
    if (!error) {
      box.hidden = true;
      input.removeAttribute("aria-invalid");
      return;
    }
    const details = error.details || {};
    let message = (error.message || "").split("\n")[0].replace(/^query: /, "");
    let caret = "";
    if (typeof details.position === "number") {
      message = message.replace(/ at position \d+$/, "");
      caret = " ".repeat(Math.min(details.position, query.length)) + "^";
    }
    box.querySelector(".query-error-message").textContent = message;
    box.querySelector(".query-error-caret").textContent = caret ? query + "\n" + caret : "";
    box.hidden = false;
    input.setAttribute("aria-invalid", "true");
  }

  function scopeBody(query) {
    const body = { query: query };
    const holder = document.getElementById("runs-table");
    const where = holder ? holder.dataset : {};
    if (where.experiment) body.experiment_ids = [where.experiment];
    if (where.project) body.project_ids = [where.project];
    return body;
  }

  async function check() {
    const query = input.value;
    const mine = ++sequence;
    let result;
    if (scope === "runs") {
      result = await window.cairn.post("/search/runs/count", scopeBody(query));
    } else {
      result = await window.cairn.post("/search/" + scope, Object.assign(scopeBody(query), { limit: 1 }));
    }
    if (mine !== sequence) return; // a newer check is under way
    if (result.ok) {
      show(null, query);
      hint.textContent = scope === "runs" ? result.body.count + " runs match" : "";
    } else if (result.body && result.body.error) {
      show(result.body.error, query);
      hint.textContent = "";
    }
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(check, 250);
  });
})();
