// The run page: metric charts (x axis, log scale, smoothing, one chart per metric or several
// on one), attributes drawn as lines and heatmaps, artifact previews (bounded reads), and,
// while the run is running, polling for new points every few seconds until it ends.
"use strict";

(function () {
  const C = window.cairnCharts;
  const dataNode = document.getElementById("run-data");
  if (!C || !dataNode) return;
  // plotly.js (4.8 MB) is parsed after this script: the charts' points are fetched while
  // it is, and drawing waits for it.
  const ready = C.ready;
  const data = JSON.parse(dataNode.textContent);
  const runId = data.run;
  const POLL_MS = 3000; // the issue asks for >= 2 s
  const PREVIEW_BYTES = 64 * 1024;
  const PREVIEW_IMAGE_BYTES = 20 * 1024 * 1024;
  const PREVIEW_ROWS = 200;
  const API = document.body.dataset.api || "/api/v1";

  const controls = {
    x: document.getElementById("chart-x"),
    log: document.getElementById("chart-log"),
    smooth: document.getElementById("chart-smooth"),
    smoothValue: document.getElementById("chart-smooth-value"),
    layout: document.getElementById("chart-layout"),
    keys: document.getElementById("chart-keys"),
  };
  const charts = document.getElementById("charts");
  const cache = new Map(); // key -> {x axis, series}
  let latest = data.metrics; // key -> {step, timestamp, value}
  let drawing = Promise.resolve();

  function checkedKeys() {
    return Array.from(controls.keys.querySelectorAll("input[type=checkbox]"))
      .filter((box) => box.checked).map((box) => box.value);
  }

  function options() {
    return { x: controls.x.value, log: controls.log.checked, smoothing: Number(controls.smooth.value) };
  }

  async function seriesOf(key, x, fresh) {
    const known = cache.get(key);
    if (known && known.x === x && !fresh) return known.series;
    const s = await C.series(runId, key, x, data.start);
    cache.set(key, { x, series: s });
    return s;
  }

  function card(title, together) {
    const figure = C.el("figure", { className: "chart-card" });
    if (!together) figure.appendChild(C.el("figcaption", { className: "mono" }, title));
    const plot = C.el("div", { className: "plot metric-chart" });
    plot.dataset.key = title;
    figure.appendChild(plot);
    const note = C.el("p", { className: "note" });
    figure.appendChild(note);
    charts.appendChild(figure);
    return { plot, note };
  }

  // Draw what the controls say. `fresh`: keys whose points changed (live update).
  async function redraw(fresh) {
    const opts = options();
    const keys = checkedKeys();
    const list = await Promise.all(keys.map((k) => seriesOf(k, opts.x, fresh && fresh.has(k))));
    await ready;
    const together = controls.layout.value === "together";
    charts.classList.toggle("together", together);
    charts.replaceChildren();
    if (!list.length) return;
    if (together) {
      const { plot, note } = card("", true);
      await C.draw(plot, C.lineTraces(list, opts), C.layout(opts));
      note.textContent = C.nonfiniteNote(list);
    } else {
      for (const s of list) {
        const { plot, note } = card(s.key, false);
        await C.draw(plot, C.lineTraces([s], opts), { ...C.layout(opts), showlegend: false });
        note.textContent = C.nonfiniteNote([s]);
      }
    }
    charts.dataset.drawn = String(Date.now());
  }

  function schedule(fresh) {
    drawing = drawing.then(() => redraw(fresh)).catch((error) => {
      charts.replaceChildren(C.el("p", { className: "error-text" }, `The charts could not load: ${error.message}`));
    });
    return drawing;
  }

  if (controls.x) {
    controls.x.addEventListener("change", () => schedule());
    controls.log.addEventListener("change", () => schedule());
    controls.layout.addEventListener("change", () => schedule());
    controls.keys.addEventListener("change", () => schedule());
    controls.smooth.addEventListener("input", () => {
      controls.smoothValue.textContent = controls.smooth.value;
      schedule();
    });
    if (Object.keys(latest).length) schedule();
  }

  // -- attributes as charts ------------------------------------------------------------
  ready.then(() => document.querySelectorAll(".attr-chart").forEach((div) => {
    const chart = data.attributes[Number(div.dataset.index)];
    const lay = { ...C.layout({ x: "step", xTitle: "index" }), showlegend: false };
    if (chart.kind === "line") {
      const xs = chart.values.map((_, i) => i);
      C.draw(div, [{ x: xs, y: chart.values, type: "scatter", mode: "lines", line: { color: C.COLORS[0] } }], lay);
    } else {
      lay.xaxis.title.text = "column";
      lay.yaxis.title.text = "row";
      lay.yaxis.autorange = "reversed";
      C.draw(div, [{ z: chart.values, type: "heatmap", colorscale: "Viridis" }], lay);
    }
  }));

  // -- live update -----------------------------------------------------------------------
  function setStatus(status, info) {
    const badge = document.getElementById("run-status");
    badge.textContent = status;
    badge.className = `status status-${status}`;
    document.getElementById("overview-status").textContent = status;
    if (info && info.end_time) {
      document.getElementById("overview-ended").textContent =
        new Date(info.end_time).toISOString().replace("T", " ").slice(0, 19) + " UTC";
      const seconds = (info.end_time - info.start_time) / 1000;
      document.getElementById("overview-duration").textContent =
        seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${String(Math.floor(seconds % 60)).padStart(2, "0")} s`;
    }
  }

  function showLatest(key, point) {
    const table = document.getElementById("latest-metrics");
    table.hidden = false;
    let row = Array.from(table.tBodies[0].rows).find((r) => r.dataset.key === key);
    if (!row) {
      row = document.createElement("tr");
      row.dataset.key = key;
      row.appendChild(C.el("th", { scope: "row" }, key));
      row.appendChild(C.el("td", { className: "num value" }));
      row.appendChild(C.el("td", { className: "num step" }));
      row.appendChild(C.el("td", { className: "time" }));
      table.tBodies[0].appendChild(row);
      const label = C.el("label");
      const box = C.el("input", { type: "checkbox", value: key });
      box.checked = checkedKeys().length < 12;
      label.append(box, " ", C.el("span", {}, key));
      controls.keys.appendChild(label);
      controls.keys.hidden = false;
      document.getElementById("chart-controls").hidden = false;
      document.getElementById("no-metrics").hidden = true;
    }
    row.querySelector(".value").textContent = point.value === null ? "NaN or ±inf" : Number(point.value).toPrecision(6).replace(/\.?0+$/, "");
    row.querySelector(".step").textContent = String(point.step);
    row.querySelector(".time").textContent = new Date(point.timestamp).toISOString().replace("T", " ").slice(0, 19);
  }

  async function poll() {
    let info;
    let now;
    try {
      [info, now] = await Promise.all([
        C.getJSON(`/runs/${encodeURIComponent(runId)}`),
        C.getJSON(`/runs/${encodeURIComponent(runId)}/metrics`),
      ]);
    } catch (error) {
      setTimeout(poll, POLL_MS * 2); // the server may be restarting: try again, slower
      return;
    }
    const fresh = new Set();
    Object.entries(now).forEach(([key, point]) => {
      const before = latest[key];
      if (!before || before.step !== point.step || before.timestamp !== point.timestamp) {
        fresh.add(key);
        showLatest(key, point);
      }
    });
    latest = now;
    if (fresh.size) await schedule(fresh);
    const running = info.status === "running";
    setStatus(info.status, info);
    if (running) {
      setTimeout(poll, POLL_MS);
    } else {
      const live = document.getElementById("live");
      if (live) live.remove();
      document.body.dataset.polling = "stopped";
    }
  }

  if (data.live) {
    document.body.dataset.polling = "on";
    setTimeout(poll, POLL_MS);
  }

  // -- artifact previews -------------------------------------------------------------------
  const box = document.getElementById("preview");

  // The first `limit` bytes of an object, then the download is cancelled.
  async function head(digest, limit) {
    const response = await fetch(`${API}/objects/${digest}`, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`status ${response.status}`);
    const reader = response.body.getReader();
    const parts = [];
    let size = 0;
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      size += value.length;
    }
    await reader.cancel();
    const bytes = new Uint8Array(Math.min(size, limit));
    let at = 0;
    for (const part of parts) {
      const piece = part.subarray(0, Math.min(part.length, bytes.length - at));
      bytes.set(piece, at);
      at += piece.length;
      if (at >= bytes.length) break;
    }
    return bytes;
  }

  function csvRows(text, separator) {
    // Quoted fields with "" inside; enough for a preview (the download has the rest).
    const rows = [];
    let row = [];
    let field = "";
    let quoted = false;
    for (let i = 0; i < text.length && rows.length < PREVIEW_ROWS; i++) {
      const c = text[i];
      if (quoted) {
        if (c === "\"" && text[i + 1] === "\"") { field += "\""; i++; } else if (c === "\"") quoted = false; else field += c;
      } else if (c === "\"") quoted = true;
      else if (c === separator) { row.push(field); field = ""; }
      else if (c === "\n") { row.push(field.replace(/\r$/, "")); rows.push(row); row = []; field = ""; }
      else field += c;
    }
    if ((field || row.length) && rows.length < PREVIEW_ROWS) { row.push(field); rows.push(row); }
    return rows;
  }

  async function preview(button) {
    const { digest, name, kind } = button.dataset;
    const size = Number(button.dataset.size);
    const body = document.getElementById("preview-body");
    const note = document.getElementById("preview-note");
    document.getElementById("preview-name").textContent = name;
    note.textContent = "";
    body.replaceChildren();
    box.hidden = false;
    box.dataset.kind = kind;
    if (kind === "image") {
      if (size > PREVIEW_IMAGE_BYTES) {
        note.textContent = "too large to preview: download it";
        return;
      }
      const img = C.el("img", { alt: name, src: `${API}/objects/${digest}` });
      body.appendChild(img);
      return;
    }
    const bytes = await head(digest, PREVIEW_BYTES);
    const cut = size > bytes.length;
    const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
    if (cut) note.textContent = `the first ${bytes.length.toLocaleString()} of ${size.toLocaleString()} bytes`;
    if (kind === "json" && !cut) {
      try {
        body.appendChild(C.el("pre", { className: "json" }, JSON.stringify(C.parseLenient(text), null, 2)));
        return;
      } catch (error) {
        note.textContent = "not valid JSON: shown as text";
      }
    }
    if (kind === "csv") {
      const rows = csvRows(text, name.toLowerCase().endsWith(".tsv") ? "\t" : ",");
      const scroll = C.el("div", { className: "scroll" });
      const table = C.el("table", { className: "data csv-preview" });
      rows.forEach((cells, i) => {
        const tr = document.createElement("tr");
        cells.forEach((cell) => tr.appendChild(C.el(i === 0 ? "th" : "td", {}, cell)));
        table.appendChild(tr);
      });
      scroll.appendChild(table);
      body.appendChild(scroll);
      if (rows.length >= PREVIEW_ROWS) note.textContent = `the first ${PREVIEW_ROWS} rows`;
      return;
    }
    body.appendChild(C.el("pre", { className: "text-preview" }, text));
  }

  document.querySelectorAll("button.preview").forEach((button) => {
    button.addEventListener("click", () => {
      preview(button).catch((error) => {
        document.getElementById("preview-note").textContent = `could not preview: ${error.message}`;
      });
    });
  });
  const close = document.getElementById("preview-close");
  if (close) close.addEventListener("click", () => { box.hidden = true; });
})();
