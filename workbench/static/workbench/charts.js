"use strict";
// Draws each <canvas data-chart="ID"> from the JSON in <script type="application/json" id="ID">
// (Django's json_script: data, never code, so the Content-Security-Policy allows it) with the
// project's own copy of Chart.js. Charts inside a part of the page that refreshes itself
// (mailer/static/mailer/admin.js) are drawn again after each refresh.
(function () {
  if (window.workbenchCharts) return;
  window.workbenchCharts = true;

  const PALETTE = ["#3d7ea6", "#e0893c", "#5aa36b", "#c0504d", "#8064a2", "#4bacc6", "#9b9b9b"];

  function colours() {
    const style = getComputedStyle(document.documentElement);
    const read = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
    return {text: read("--body-fg", "#333"), grid: read("--hairline-color", "#e5e5e5")};
  }

  function draw(canvas) {
    if (canvas.dataset.drawn) return;
    const source = document.getElementById(canvas.dataset.chart);
    if (!source || typeof Chart === "undefined") return;
    const spec = JSON.parse(source.textContent);
    const {text, grid} = colours();
    const round = spec.kind === "doughnut";
    const across = spec.kind === "hbar";
    const datasets = spec.series.map((series, i) => ({
      label: series.label,
      data: series.data,
      backgroundColor: round ? spec.labels.map((_, j) => PALETTE[j % PALETTE.length])
        : PALETTE[i % PALETTE.length] + (spec.kind === "line" ? "33" : ""),
      borderColor: round ? "transparent" : PALETTE[i % PALETTE.length],
      borderWidth: spec.kind === "line" ? 2 : 0,
      pointRadius: spec.labels.length > 60 ? 0 : 2,
      tension: 0.25,
      fill: spec.kind === "line" && spec.stacked,
    }));
    const unit = spec.unit || "";
    // Long labels (links, dates) are shortened on the axis; the table has them whole.
    const shorten = (label) => String(label).length > 32 ? String(label).slice(0, 31) + "…" : label;
    const axis = (stacked) => ({
      stacked: stacked,
      ticks: {color: text, maxRotation: 0, autoSkip: true, autoSkipPadding: 14, maxTicksLimit: 8,
              callback: function (value) { return shorten(this.getLabelForValue(value)); }},
      grid: {color: grid},
    });
    const valueAxis = {
      stacked: spec.stacked, beginAtZero: true, grid: {color: grid},
      ticks: {color: text, callback: (value) => value + unit},
    };
    const options = {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      indexAxis: across ? "y" : "x",
      plugins: {
        legend: {display: spec.series.length > 1 || round, labels: {color: text}},
        tooltip: {callbacks: {label: (item) => `${item.dataset.label}: ${item.formattedValue}${unit}`}},
      },
    };
    if (!round) {
      options.scales = across ? {x: valueAxis, y: axis(spec.stacked)} : {x: axis(spec.stacked), y: valueAxis};
    }
    canvas.dataset.drawn = "1";
    new Chart(canvas, {type: round ? "doughnut" : across ? "bar" : spec.kind, data: {labels: spec.short_labels || spec.labels, datasets}, options});
  }

  function drawAll(root) { (root || document).querySelectorAll("canvas[data-chart]").forEach(draw); }
  document.addEventListener("DOMContentLoaded", () => drawAll());
  document.addEventListener("mailer:refreshed", (event) => drawAll(event.detail));
  // Dark mode switched: colours change, so the charts are drawn again.
  new MutationObserver(() => {
    document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
      const chart = typeof Chart !== "undefined" && Chart.getChart(canvas);
      if (chart) chart.destroy();
      delete canvas.dataset.drawn;
    });
    drawAll();
  }).observe(document.documentElement, {attributes: true, attributeFilter: ["data-theme"]});
})();
