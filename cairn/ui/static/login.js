// The login form: POST /api/v1/auth/login with cookie: true (the server sets its HttpOnly
// token cookie), then on to the page asked for (a path on this server).
"use strict";

(function () {
  const form = document.getElementById("login-form");
  if (!form) return;
  const error = document.getElementById("login-error");
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    error.hidden = true;
    const result = await window.cairn.post("/auth/login", {
      username: form.elements.username.value,
      password: form.elements.password.value,
      cookie: true,
    });
    if (result.ok) {
      window.location.href = form.dataset.next || "/";
      return;
    }
    const body = result.body && result.body.error;
    error.textContent = body ? body.message : "could not log in (status " + result.status + ")";
    error.hidden = false;
  });
})();
