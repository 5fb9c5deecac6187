// Chart helpers shared by the run and compare pages: series from the documented chart route
// (GET /api/v1/runs/{id}/metrics/chart, downsampled on the server), smoothing, and plotly
// figures in the page's calm style. Text that users wrote (metric keys, run names) reaches
// plotly escaped (plotly reads a little HTML in its labels); the DOM gets it as textContent.
"use strict";

window.cairnCharts = (function () {
  const api = () => document.body.dataset.api || "/api/v1";
  const COLORS = ["#2f6f68", "#c2410c", "#1d4ed8", "#a21caf", "#4d7c0f", "#b45309",
    "#0e7490", "#be123c", "#4338ca", "#57534e"];
  const POINTS = 2000;

  // For plotly's labels: it turns a few tags (<b>, <a href>, <br>) into SVG; escaped text
  // shows as written.
  function esc(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;");
  }

  // JSON as Cairn writes it: metric values may be the bare tokens NaN, Infinity and
  // -Infinity, which JSON.parse refuses; outside strings they become null.
  function parseLenient(text) {
    let out = "";
    let i = 0;
    let inString = false;
    while (i < text.length) {
      const c = text[i];
      if (inString) {
        out += c;
        if (c === "\\") { out += text[i + 1] || ""; i += 2; continue; }
        if (c === "\"") inString = false;
        i += 1;
        continue;
      }
      if (c === "\"") { inString = true; out += c; i += 1; continue; }
      const rest = text.slice(i, i + 9);
      if (rest.startsWith("NaN")) { out += "null"; i += 3; continue; }
      if (rest.startsWith("-Infinity")) { out += "null"; i += 9; continue; }
      if (rest.startsWith("Infinity")) { out += "null"; i += 8; continue; }
      out += c;
      i += 1;
    }
    return JSON.parse(out);
  }

  async function getJSON(path) {
    const response = await fetch(api() + path, { credentials: "same-origin", headers: { accept: "application/json" } });
    if (!response.ok) throw new Error(`${path}: ${response.status}`);
    return parseLenient(await response.text());
  }

  // One series of a run, ready to draw: x as asked ("step", "time" as dates, "relative"
  // seconds since `start`), y with null where the value is NaN or infinite.
  async function series(runId, key, x, start) {
    const axis = x === "step" ? "step" : "time";
    const q = new URLSearchParams({ key, points: String(POINTS), x: axis });
    const body = await getJSON(`/runs/${encodeURIComponent(runId)}/metrics/chart?${q}`);
    let xs;
    if (x === "step") xs = body.steps;
    else if (x === "time") xs = body.timestamps.map((t) => new Date(t));
    else xs = body.timestamps.map((t) => (t - start) / 1000);
    return { key, xs, ys: body.values, steps: body.steps, total: body.total, nonfinite: body.nonfinite };
  }

  // Exponential moving average, debiased (as TensorBoard draws it); gaps stay gaps.
  function smooth(ys, weight) {
    if (!weight) return ys;
    let last = 0;
    let n = 0;
    return ys.map((y) => {
      if (y === null || !Number.isFinite(y)) return null;
      last = last * weight + (1 - weight) * y;
      n += 1;
      return last / (1 - Math.pow(weight, n));
    });
  }

  // Plotly traces of series: one line each (two when smoothed: the raw line faint).
  function lineTraces(list, opts) {
    const traces = [];
    list.forEach((s, i) => {
      const color = opts.colors ? opts.colors[i] : COLORS[i % COLORS.length];
      const name = esc(s.label || s.key);
      if (opts.smoothing) {
        traces.push({ x: s.xs, y: s.ys, type: "scatter", mode: "lines", name, showlegend: false,
          hoverinfo: "skip", line: { color, width: 1 }, opacity: 0.25, connectgaps: false });
      }
      traces.push({
        x: s.xs, y: smooth(s.ys, opts.smoothing), type: "scatter",
        mode: s.xs.length < 3 ? "lines+markers" : "lines", name,
        line: { color, width: 1.6 }, connectgaps: false,
        hovertemplate: `${name}<br>%{x}: %{y:.6g}<extra></extra>`,
      });
    });
    return traces;
  }

  function layout(opts) {
    const xTitle = { step: "step", time: "wall time", relative: "seconds since start" }[opts.x] || "";
    return {
      margin: { l: 56, r: 16, t: 12, b: 44 },
      paper_bgcolor: "#fff", plot_bgcolor: "#fff",
      font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12, color: "#1f2933" },
      xaxis: { title: { text: opts.xTitle || xTitle }, type: opts.x === "time" ? "date" : "linear",
        gridcolor: "#eef0f3", zeroline: false },
      yaxis: { type: opts.log ? "log" : "linear", gridcolor: "#eef0f3", zeroline: false,
        title: { text: opts.yTitle || "" } },
      showlegend: opts.legend !== false,
      legend: { orientation: "h", y: -0.22 },
      hovermode: "closest",
    };
  }

  const CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["sendDataToCloud"] };

  // plotly.js is loaded after the page scripts (so that their fetches start first): its
  // script has run by DOMContentLoaded, which fires after every deferred script.
  const ready = new Promise((resolve) => {
    const check = () => { if (window.Plotly) resolve(); };
    check();
    document.addEventListener("DOMContentLoaded", check);
    window.addEventListener("load", check);
  });

  async function draw(div, traces, lay) {
    await ready;
    return window.Plotly.react(div, traces, lay, CONFIG);
  }

  // A few words under a chart on what it cannot show as a line.
  function nonfiniteNote(list) {
    let count = 0;
    let total = 0;
    let shown = 0;
    list.forEach((s) => { count += s.nonfinite.length; total += s.total; shown += s.xs.length; });
    const parts = [];
    if (shown < total) parts.push(`${shown.toLocaleString()} of ${total.toLocaleString()} points drawn (min and max per bucket)`);
    if (count) parts.push(`NaN or infinite values are gaps (${count} shown)`);
    return parts.join("; ");
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "className") node.className = v; else node.setAttribute(k, v);
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  return { ready, COLORS, esc, parseLenient, getJSON, series, smooth, lineTraces, layout, draw, nonfiniteNote, el, CONFIG };
})();
