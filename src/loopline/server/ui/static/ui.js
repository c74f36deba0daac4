// Loopline UI: metric charts (uPlot) fed by /ui/api/metric, which downsamples on the server.
// A chart draws one metric of one or more runs (figure[data-runs]: [{id, label, color}]). Each
// loads when it scrolls into view; dragging zooms and asks the server again for the visible range
// only (exact once it holds few enough points); double-click resets. Smoothing (an exponential
// moving average of the points drawn) is computed here, so moving the slider asks the server nothing.
// The chart's data: [x, run 1 raw, run 1 smoothed, run 2 raw, …] (window.looplineCharts[key].data).
"use strict";

window.looplineCharts = {};
window.looplineSmooth = ema;

// Exponential moving average with the start-up bias removed (as TensorBoard draws it): a weight of
// 0 returns the points, 0.99 a nearly flat line. Gaps (null) and absent points (undefined) stay.
function ema(ys, weight) {
  if (!weight) return ys.slice();
  const out = new Array(ys.length);
  let last = 0, n = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (y === null || y === undefined || !Number.isFinite(y)) { out[i] = y; continue; }
    last = last * weight + (1 - weight) * y;
    n += 1;
    out[i] = last / (1 - Math.pow(weight, n));
  }
  return out;
}

(function () {
  const BUCKETS = 500;

  function control(name) { return document.querySelector("[data-chart-" + name + "]"); }
  function xAxis() { const s = control("x"); return s ? s.value : "step"; }
  function weight() { const s = control("smoothing"); return s ? Number(s.value) : 0; }

  async function fetchPoints(runId, key, range) {
    const params = new URLSearchParams({ run_id: runId, key: key, x: xAxis(), buckets: BUCKETS });
    if (range) { params.set("min", range[0]); params.set("max", range[1]); }
    const answer = await fetch("/ui/api/metric?" + params.toString());
    if (answer.status === 404) return null;  // this run did not log the metric: no line
    if (!answer.ok) throw new Error((await answer.json()).message || answer.statusText);
    return answer.json();
  }

  // One x for every run: the union of their xs; a run without a point at some x has undefined
  // there (uPlot draws across it), while a logged NaN stays null (a gap).
  function align(bodies) {
    const present = bodies.filter((b) => b);
    if (present.length === 1 && bodies.length === 1) return [present[0].x, present[0].y];
    const xs = Array.from(new Set(present.flatMap((b) => b.x))).sort((a, b) => a - b);
    const at = new Map(xs.map((x, i) => [x, i]));
    const columns = bodies.map((b) => {
      const col = new Array(xs.length).fill(undefined);
      if (b) b.x.forEach((x, i) => { col[at.get(x)] = b.y[i]; });
      return col;
    });
    return [xs, ...columns];
  }

  function withSmoothing(raw) {
    const w = weight(), data = [raw[0]];
    for (let i = 1; i < raw.length; i++) data.push(raw[i], ema(raw[i], w));
    return data;
  }

  function note(fig, bodies) {
    const present = bodies.filter((b) => b);
    const shown = present.reduce((n, b) => n + b.x.length, 0);
    const total = present.reduce((n, b) => n + b.total, 0);
    const exact = present.every((b) => b.exact);
    fig.querySelector(".chart-note").textContent = exact
      ? "(" + total.toLocaleString() + " points)"
      : "(" + shown.toLocaleString() + " of " + total.toLocaleString() + " points: min and max per bucket)";
    fig.dataset.points = String(shown);
    fig.dataset.total = String(total);
    fig.dataset.exact = String(exact);
  }

  function faint(color) { return color + "55"; }

  async function load(fig, runs, range) {
    return Promise.all(runs.map((r) => fetchPoints(r.id, fig.dataset.key, range)));
  }

  async function draw(fig) {
    const holder = fig.querySelector(".plot");
    const key = fig.dataset.key;
    const runs = JSON.parse(fig.dataset.runs);
    const old = window.looplineCharts[key];
    if (old) old.destroy();
    holder.textContent = "";
    let bodies;
    try {
      bodies = await load(fig, runs, null);
    } catch (e) {
      holder.textContent = "Could not load the points: " + e.message;
      return;
    }
    const time = xAxis() === "time";
    const series = [{ label: time ? "time" : "step" }];
    for (const r of runs) {
      series.push({ label: r.label + " (raw)", stroke: faint(r.color), width: 1, spanGaps: false });
      series.push({ label: r.label, stroke: r.color, width: 1.5, spanGaps: false });
    }
    let raw = align(bodies);
    let zooming = false;
    const plot = new uPlot({
      width: Math.max(300, holder.clientWidth || 480),
      height: 240,
      scales: { x: { time: time } },
      series: series,
      legend: { show: runs.length === 1 },
      axes: [{}, { size: 60 }],
      cursor: { drag: { x: true, y: false } },
      hooks: {
        setSelect: [async (u) => {
          if (u.select.width < 2) return;
          const lo = u.posToVal(u.select.left, "x"), hi = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({ left: 0, width: 0 }, false);
          const zoomed = await load(fig, runs, [lo, hi]);
          zooming = true;
          raw = align(zoomed);
          u.setData(withSmoothing(raw), false);
          u.setScale("x", { min: lo, max: hi });
          zooming = false;
          note(fig, zoomed);
          fig.dataset.zoomed = "true";
        }],
      },
    }, withSmoothing(raw), holder);
    plot.over.addEventListener("dblclick", async () => {
      if (zooming) return;
      const all = await load(fig, runs, null);
      raw = align(all);
      plot.setData(withSmoothing(raw), true);
      note(fig, all);
      delete fig.dataset.zoomed;
    });
    plot.looplineResmooth = () => plot.setData(withSmoothing(raw), false);
    window.looplineCharts[key] = plot;
    note(fig, bodies);
    fig.dataset.loaded = "true";
  }

  function start() {
    const figures = document.querySelectorAll("figure.chart[data-key]");
    if (!figures.length || typeof uPlot === "undefined") return;
    const seen = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (entry.isIntersecting) { seen.unobserve(entry.target); draw(entry.target); }
      }
    }, { rootMargin: "200px" });
    figures.forEach((fig) => seen.observe(fig));
    const select = control("x");
    if (select) select.addEventListener("change", () => {
      figures.forEach((fig) => { if (fig.dataset.loaded) draw(fig); });
    });
    const smoothing = control("smoothing");
    if (smoothing) smoothing.addEventListener("input", () => {
      document.getElementById("smoothing-value").textContent = smoothing.value;
      Object.values(window.looplineCharts).forEach((plot) => plot.looplineResmooth());
    });
  }

  document.addEventListener("DOMContentLoaded", start);
})();

// Small series the page carries whole (a monitor's drift share per run): figure.series-chart with
// data-series = {x, time, series: [{label, y, color, dash}]}; window.looplineCharts[data-name].
(function () {
  function draw(fig) {
    const spec = JSON.parse(fig.dataset.series);
    const holder = fig.querySelector(".plot");
    const series = [{ label: spec.time ? "time" : "x" }];
    for (const s of spec.series) {
      series.push({ label: s.label, stroke: s.color, width: 1.5, dash: s.dash ? [6, 4] : undefined,
                    points: { show: !s.dash } });
    }
    const plot = new uPlot({
      width: Math.max(300, holder.clientWidth || 640),
      height: 240,
      scales: { x: { time: !!spec.time }, y: { range: (u, lo, hi) => [Math.min(0, lo), Math.max(1, hi)] } },
      series: series,
      axes: [{}, { size: 50 }],
    }, [spec.x, ...spec.series.map((s) => s.y)], holder);
    window.looplineCharts[fig.dataset.name] = plot;
    fig.dataset.loaded = "true";
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (typeof uPlot === "undefined") return;
    document.querySelectorAll("figure.series-chart[data-series]").forEach(draw);
  });
})();

// A deployment's traffic (figure.traffic-chart, data-src = /ui/api/deployment-traffic?name=…): requests
// per minute, error rate and p99 latency per minute of the last hour, fetched again every 5 s and
// redrawn in place (window.looplineCharts["deployment-traffic"]; its last answer: window.looplineTraffic).
(function () {
  const REFRESH_MS = 5000;

  function columns(body) {
    return [body.x, body.requests_per_min, body.error_rate.map((r) => (r === null ? null : 100 * r)), body.p99_ms];
  }

  async function fetchTraffic(fig) {
    const answer = await fetch(fig.dataset.src, { headers: { Accept: "application/json" } });
    if (!answer.ok) throw new Error("traffic: HTTP " + answer.status);
    const body = await answer.json();
    window.looplineTraffic = body;
    return body;
  }

  async function start(fig) {
    const holder = fig.querySelector(".plot");
    const plot = new uPlot({
      width: Math.max(300, holder.clientWidth || 640),
      height: 240,
      scales: { x: { time: true }, rpm: { range: (u, lo, hi) => [0, Math.max(1, hi)] },
                pct: { range: [0, 100] }, ms: { range: (u, lo, hi) => [0, Math.max(1, hi)] } },
      series: [
        { label: "time" },
        { label: "requests/min", scale: "rpm", stroke: "#0072b2", width: 1.5 },
        { label: "errors %", scale: "pct", stroke: "#d55e00", width: 1.5 },
        { label: "p99 ms", scale: "ms", stroke: "#009e73", width: 1.5, dash: [6, 4] },
      ],
      axes: [{}, { scale: "rpm", size: 50 }, { scale: "ms", side: 1, size: 50, grid: { show: false } }],
    }, columns(await fetchTraffic(fig)), holder);
    window.looplineCharts["deployment-traffic"] = plot;
    fig.dataset.loaded = "true";
    setInterval(async () => {
      try {
        plot.setData(columns(await fetchTraffic(fig)));
      } catch (e) {
        console.warn(e);  // a missed refresh: the next one tries again
      }
    }, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (typeof uPlot === "undefined") return;
    document.querySelectorAll("figure.traffic-chart[data-src]").forEach(start);
  });
})();

// Forms that post JSON to the REST API (hx-ext="loopline-json"): the fields as a JSON object
// (a field marked data-json="int" as a number), the CSRF header htmx already adds from <body>.
// Their answer is JSON, not HTML: a form.approve shows the outcome, or the server's refusal.
(function () {
  if (typeof htmx === "undefined") return;
  htmx.defineExtension("loopline-json", {
    onEvent: function (name, evt) {
      if (name === "htmx:configRequest") evt.detail.headers["Content-Type"] = "application/json";
    },
    encodeParameters: function (xhr, parameters, elt) {
      xhr.overrideMimeType("text/json");
      const ints = new Set(Array.from(elt.querySelectorAll("[data-json='int']"), (e) => e.name));
      const body = {};
      for (const [k, v] of parameters.entries()) body[k] = ints.has(k) ? Number(v) : v;
      return JSON.stringify(body);
    },
  });

  document.addEventListener("htmx:afterRequest", (evt) => {
    const form = evt.detail.elt;
    if (!form.matches || !form.matches("form.approve")) return;
    const out = form.querySelector(".approve-result");
    const xhr = evt.detail.xhr;
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (e) { body = {}; }
    if (xhr.status === 200 && body.rollout) {
      out.textContent = "Approved: rollout " + body.rollout.id + " is now " + body.rollout.state.replace("_", " ") + ".";
      out.classList.remove("error");
      form.dataset.outcome = "approved";
      form.querySelectorAll("input, button").forEach((e) => { e.disabled = true; });
      const table = document.getElementById("loop-rollouts");  // the rollouts as they are now
      if (table) htmx.ajax("GET", window.location.pathname, { target: table, select: "#loop-rollouts", swap: "outerHTML" });
    } else {
      out.textContent = (body.message || xhr.statusText || "The server did not answer.") + (xhr.status ? " (" + xhr.status + ")" : "");
      out.classList.add("error");
      form.dataset.outcome = "refused";
    }
  });
})();

// The workspace selector, fetched into the header once the page is shown: the choice is a cookie the UI's own
// requests carry (a browser cannot send the Loopline-Workspace header on a page load); the other
// workspace's objects differ, so the UI opens at its start page there.
document.addEventListener("change", function (event) {
  const select = event.target.closest("[data-workspace-select]");
  if (!select) return;
  document.cookie = "loopline_workspace=" + encodeURIComponent(select.value) + "; path=/; SameSite=Lax";
  window.location.assign("/ui/");
});

document.addEventListener("DOMContentLoaded", async function () {
  const menu = document.querySelector("[data-workspace-menu]");
  if (!menu) return;
  const answer = await fetch("/ui/workspace-menu");
  if (answer.ok) menu.innerHTML = await answer.text();
});
