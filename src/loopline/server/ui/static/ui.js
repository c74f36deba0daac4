// Loopline UI: metric charts (uPlot) fed by /ui/api/metric, which downsamples on the server.
// Each chart loads when it scrolls into view; dragging zooms and asks the server again for the
// visible range only (exact once it holds few enough points); double-click resets.
"use strict";

window.looplineCharts = {};

(function () {
  const BUCKETS = 500;

  function xAxis() {
    const select = document.querySelector("[data-chart-x]");
    return select ? select.value : "step";
  }

  async function fetchPoints(fig, range) {
    const params = new URLSearchParams({ run_id: fig.dataset.runId, key: fig.dataset.key, x: xAxis(), buckets: BUCKETS });
    if (range) { params.set("min", range[0]); params.set("max", range[1]); }
    const answer = await fetch("/ui/api/metric?" + params.toString());
    if (!answer.ok) throw new Error((await answer.json()).message || answer.statusText);
    return answer.json();
  }

  function note(fig, body) {
    const shown = body.x.length.toLocaleString();
    const total = body.total.toLocaleString();
    fig.querySelector(".chart-note").textContent = body.exact
      ? "(" + total + " points)" : "(" + shown + " of " + total + " points: min and max per bucket)";
    fig.dataset.points = String(body.x.length);
    fig.dataset.total = String(body.total);
    fig.dataset.exact = String(body.exact);
  }

  async function draw(fig) {
    const holder = fig.querySelector(".plot");
    const old = window.looplineCharts[fig.dataset.key];
    if (old) old.destroy();
    holder.textContent = "";
    let body;
    try {
      body = await fetchPoints(fig, null);
    } catch (e) {
      holder.textContent = "Could not load the points: " + e.message;
      return;
    }
    const time = xAxis() === "time";
    let zooming = false;
    const plot = new uPlot({
      width: Math.max(300, holder.clientWidth || 480),
      height: 240,
      scales: { x: { time: time } },
      series: [{ label: time ? "time" : "step" }, { label: fig.dataset.key, stroke: "#0b5cad", width: 1.5, spanGaps: false }],
      axes: [{}, { size: 60 }],
      cursor: { drag: { x: true, y: false } },
      hooks: {
        setSelect: [async (u) => {
          if (u.select.width < 2) return;
          const lo = u.posToVal(u.select.left, "x"), hi = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({ left: 0, width: 0 }, false);
          const zoomed = await fetchPoints(fig, [lo, hi]);
          zooming = true;
          u.setData([zoomed.x, zoomed.y], false);
          u.setScale("x", { min: lo, max: hi });
          zooming = false;
          note(fig, zoomed);
          fig.dataset.zoomed = "true";
        }],
      },
    }, [body.x, body.y], holder);
    plot.over.addEventListener("dblclick", async () => {
      if (zooming) return;
      const all = await fetchPoints(fig, null);
      plot.setData([all.x, all.y], true);
      note(fig, all);
      delete fig.dataset.zoomed;
    });
    window.looplineCharts[fig.dataset.key] = plot;
    note(fig, body);
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
    const select = document.querySelector("[data-chart-x]");
    if (select) select.addEventListener("change", () => {
      figures.forEach((fig) => { if (fig.dataset.loaded) draw(fig); });
    });
  }

  document.addEventListener("DOMContentLoaded", start);
})();
