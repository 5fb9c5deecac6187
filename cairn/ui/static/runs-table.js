// The runs table, enhanced: the selection shows its size, and "Compare selected" opens
// /compare?runs=ID,ID (without this script the form sends runs=ID&runs=ID).
"use strict";

(function () {
  const form = document.getElementById("compare-form");
  const table = document.getElementById("runs");
  if (!form || !table) return;
  const button = document.getElementById("compare-button");
  const count = document.getElementById("selected-count");

  function selected() {
    return Array.from(table.querySelectorAll("input[name=runs]:checked")).map((box) => box.value);
  }

  function update() {
    const ids = selected();
    count.textContent = ids.length ? ids.length + " selected" : "";
    button.disabled = ids.length < 2;
    button.title = ids.length < 2 ? "select two or more runs" : "";
  }

  table.addEventListener("change", update);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const ids = selected();
    if (ids.length < 2) return;
    window.location.href = "/compare?runs=" + ids.map(encodeURIComponent).join(",");
  });
  update();
})();
