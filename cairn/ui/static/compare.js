// The compare page: only-differences toggle, overlaid metric curves (one line per run, from
// the chart route), parallel coordinates of hyperparameters against a metric (drawn as SVG
// lines: plotly's parcoords needs WebGL, which not every browser offers), and a scatter of
// any two fields. Run names reach plotly escaped, the DOM as textContent.
"use strict";

(function () {
  const C = window.cairnCharts;
  const dataNode = document.getElementById("compare-data");
  if (!C || !dataNode) return;
  const data = JSON.parse(dataNode.textContent);
  const runs = data.runs;
  const colors = runs.map((_, i) => C.COLORS[i % C.COLORS.length]);
  const ready = C.ready;
  const $ = (id) => document.getElementById(id);

  document.querySelectorAll(".swatch").forEach((swatch) => {
    swatch.style.background = colors[Number(swatch.dataset.runIndex)];
  });
  const only = $("only-differences");
  only.addEventListener("change", () => {
    $("compare-table-box").classList.toggle("hide-same", only.checked);
  });
  const fail = (where) => (error) => {
    where.replaceChildren(C.el("p", { className: "error-text" }, `Could not draw: ${error.message}`));
  };

  // -- overlaid curves ---------------------------------------------------------------------
  const curve = {
    key: $("curve-key"), x: $("curve-x"), log: $("curve-log"), smooth: $("curve-smooth"),
    smoothValue: $("curve-smooth-value"), plot: $("curve-plot"), note: $("curve-note"),
  };
  const cache = new Map();

  async function drawCurves() {
    const key = curve.key.value;
    const x = curve.x.value;
    const list = await Promise.all(runs.map(async (run) => {
      const id = `${run.id}\n${key}\n${x}`;
      if (!cache.has(id)) cache.set(id, C.series(run.id, key, x, run.start));
      const s = await cache.get(id);
      return { ...s, label: run.name };
    }));
    const present = list.filter((s) => s.xs.length);
    const opts = { x, log: curve.log.checked, smoothing: Number(curve.smooth.value), yTitle: C.esc(key),
      colors: list.map((_, i) => colors[i]).filter((_, i) => list[i].xs.length) };
    await ready;
    await C.draw(curve.plot, C.lineTraces(present, opts), C.layout(opts));
    const missing = list.length - present.length;
    curve.note.textContent = [C.nonfiniteNote(present), missing ? `${missing} of the runs have no ${key}` : ""]
      .filter(Boolean).join("; ");
    curve.plot.dataset.drawn = key;
  }

  if (curve.plot) {
    const redraw = () => drawCurves().catch(fail(curve.plot));
    [curve.key, curve.x, curve.log].forEach((control) => control.addEventListener("change", redraw));
    curve.smooth.addEventListener("input", () => { curve.smoothValue.textContent = curve.smooth.value; redraw(); });
    redraw();
  }

  // -- fields: numbers as they are, anything else as categories ------------------------------
  const fieldNames = Object.keys(data.fields);
  function label(name) {
    const [kind, ...rest] = name.split(":");
    return `${{ hp: "hyperparameter", metric: "metric", attr: "attribute", run: "run" }[kind] || kind} ${rest.join(":")}`;
  }
  function numeric(values) {
    return values.every((v) => v === null || typeof v === "number");
  }
  // An axis for a field: positions in [0, 1] per run (null where missing) and tick labels.
  function axis(values) {
    if (numeric(values)) {
      const present = values.filter((v) => v !== null);
      const lo = Math.min(...present);
      const hi = Math.max(...present);
      const span = hi - lo || 1;
      const pos = values.map((v) => (v === null ? null : (hi === lo ? 0.5 : (v - lo) / span)));
      return { pos, low: present.length ? String(+lo.toPrecision(4)) : "", high: present.length ? String(+hi.toPrecision(4)) : "" };
    }
    const levels = Array.from(new Set(values.filter((v) => v !== null).map(String))).sort();
    const pos = values.map((v) => (v === null ? null : (levels.length === 1 ? 0.5 : levels.indexOf(String(v)) / (levels.length - 1))));
    return { pos, low: levels[0] || "", high: levels.length > 1 ? levels[levels.length - 1] : "" };
  }
  // Viridis at t in [0, 1], a few stops interpolated.
  const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  function viridis(t) {
    const at = Math.max(0, Math.min(1, t)) * (STOPS.length - 1);
    const i = Math.min(STOPS.length - 2, Math.floor(at));
    const f = at - i;
    const c = STOPS[i].map((v, k) => Math.round(v + (STOPS[i + 1][k] - v) * f));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }

  // -- parallel coordinates ------------------------------------------------------------------
  const parallel = { metric: $("parallel-metric"), plot: $("parallel-plot") };

  async function drawParallel() {
    const names = data.hyperparameters.map((k) => `hp:${k}`);
    const metric = parallel.metric.value;
    if (metric) names.push(`metric:${metric}`);
    const axes = names.map((n) => axis(data.fields[n]));
    const colorBy = metric ? axis(data.fields[`metric:${metric}`]).pos : runs.map(() => null);
    const dims = names.map((_, i) => i);
    const traces = runs.map((run, r) => ({
      x: dims, y: axes.map((a) => a.pos[r]), type: "scatter", mode: "lines+markers",
      name: C.esc(run.name), connectgaps: false,
      line: { color: colorBy[r] === null ? "#9aa5b1" : viridis(colorBy[r]), width: 2 },
      marker: { size: 5 },
      hovertemplate: `${C.esc(run.name)}<extra></extra>`,
    }));
    const annotations = [];
    names.forEach((n, i) => {
      annotations.push({ x: i, y: 1.08, text: C.esc(label(n)), showarrow: false, yanchor: "bottom", font: { size: 11 } });
      annotations.push({ x: i, y: 1.0, text: C.esc(axes[i].high), showarrow: false, yanchor: "bottom", font: { size: 10, color: "#616e7c" } });
      annotations.push({ x: i, y: 0.0, text: C.esc(axes[i].low), showarrow: false, yanchor: "top", font: { size: 10, color: "#616e7c" } });
    });
    const shapes = dims.map((i) => ({ type: "line", x0: i, x1: i, y0: 0, y1: 1, line: { color: "#c5ccd3", width: 1 } }));
    const lay = {
      ...C.layout({ x: "step" }), showlegend: false, annotations, shapes,
      margin: { l: 30, r: 30, t: 60, b: 30 },
      xaxis: { visible: false, range: [-0.3, Math.max(1, dims.length - 1) + 0.3] },
      yaxis: { visible: false, range: [-0.12, 1.12] },
    };
    await ready;
    await C.draw(parallel.plot, traces, lay);
    parallel.plot.dataset.drawn = metric;
  }

  if (parallel.plot) {
    parallel.metric.addEventListener("change", () => drawParallel().catch(fail(parallel.plot)));
    drawParallel().catch(fail(parallel.plot));
  }

  // -- scatter of two fields -----------------------------------------------------------------
  const scatter = { x: $("scatter-x"), y: $("scatter-y"), plot: $("scatter-plot") };

  function fill(select, wanted) {
    fieldNames.forEach((n) => {
      const option = C.el("option", { value: n }, label(n));
      select.appendChild(option);
    });
    if (wanted && fieldNames.includes(wanted)) select.value = wanted;
  }

  async function drawScatter() {
    const xs = data.fields[scatter.x.value] || [];
    const ys = data.fields[scatter.y.value] || [];
    const trace = {
      x: xs, y: ys, type: "scatter", mode: "markers+text",
      text: runs.map((r) => C.esc(r.name)), textposition: "top center", textfont: { size: 10, color: "#616e7c" },
      marker: { size: 10, color: colors },
      hovertemplate: "%{text}<br>%{x}, %{y}<extra></extra>",
    };
    const lay = C.layout({ x: "step", xTitle: C.esc(label(scatter.x.value)), yTitle: C.esc(label(scatter.y.value)) });
    lay.showlegend = false;
    lay.xaxis.type = numeric(xs) ? "linear" : "category";
    lay.yaxis.type = numeric(ys) ? "linear" : "category";
    await ready;
    await C.draw(scatter.plot, [trace], lay);
    scatter.plot.dataset.drawn = `${scatter.x.value}|${scatter.y.value}`;
  }

  if (fieldNames.length) {
    const firstHp = data.hyperparameters.length ? `hp:${data.hyperparameters[0]}` : fieldNames[0];
    const firstMetric = data.metrics.length ? `metric:${data.metrics[0]}` : fieldNames[fieldNames.length - 1];
    fill(scatter.x, firstHp);
    fill(scatter.y, firstMetric);
    [scatter.x, scatter.y].forEach((s) => s.addEventListener("change", () => drawScatter().catch(fail(scatter.plot))));
    drawScatter().catch(fail(scatter.plot));
  }
})();
