/* CaliFusion dashboard behaviour, loaded as a file: the Content-Security-Policy allows no
   inline script. Charts are drawn with uPlot from JSON in a data-chart-data attribute that the
   server renders (and htmx re-renders while a job trains); the charts themselves live outside
   the swapped region, so they are updated in place instead of being redrawn from scratch. */
(function () {
  "use strict";

  var charts = new Map(); // chart element -> uPlot instance
  var lastCard = null; // the board card whose button was pressed last

  function sourceData(id) {
    var el = document.getElementById(id);
    if (!el || !el.dataset.chartData) return null;
    try { return JSON.parse(el.dataset.chartData); } catch (e) { return null; }
  }

  function percent(v) { return v == null ? "—" : (v * 100).toFixed(1) + "%"; }
  function plain(v) { return v == null ? "—" : (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(4)); }
  function chartWidth(el) { return Math.max(240, Math.floor(el.getBoundingClientRect().width)); }

  function options(el, series) {
    var isPercent = el.dataset.percent === "true";
    var isTime = el.dataset.time === "true";
    var xAxis = { label: el.dataset.xLabel };
    if (!isTime) { xAxis.incrs = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]; }
    var yAxis = { size: 60 };
    var step = el.dataset.step === "true";
    if (el.dataset.integer === "true") { yAxis.incrs = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]; }
    if (isPercent) { yAxis.values = function (u, vals) { return vals.map(function (v) { return Math.round(v * 100) + "%"; }); }; }
    return {
      width: chartWidth(el),
      height: 240,
      scales: { x: { time: isTime }, y: isPercent ? { range: [0, 1] } : {} },
      axes: [xAxis, yAxis],
      cursor: { drag: { x: false, y: false } },
      series: [{ label: el.dataset.xLabel, value: isTime ? "{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}" : function (u, v) { return v == null ? "—" : v; } }].concat(
        series.map(function (s) {
          return {
            label: s.label, stroke: s.color, width: 2, spanGaps: true,
            paths: step ? uPlot.paths.stepped({ align: 1 }) : undefined,
            points: { show: true, size: 6, fill: s.color },
            value: function (u, v) { return isPercent ? percent(v) : plain(v); }
          };
        })
      )
    };
  }

  function renderChart(el) {
    if (typeof uPlot === "undefined") return;
    var src = sourceData(el.dataset.chartSource);
    if (!src) return;
    var series = JSON.parse(el.dataset.series);
    var data = [src[el.dataset.x] || []].concat(series.map(function (s) { return src[s.key] || []; }));
    var hasPoints = data.slice(1).some(function (col) { return col.some(function (v) { return v !== null; }); });
    var empty = el.parentElement.querySelector(".chart-empty");
    if (empty) empty.hidden = hasPoints;
    el.classList.toggle("is-empty", !hasPoints);
    var chart = charts.get(el);
    if (chart) { chart.setData(data); return; }
    chart = new uPlot(options(el, series), data, el);
    charts.set(el, chart);
    if (typeof ResizeObserver !== "undefined") {
      new ResizeObserver(function () { chart.setSize({ width: chartWidth(el), height: 240 }); }).observe(el);
    }
  }

  function renderCharts() { document.querySelectorAll("[data-chart-source]").forEach(renderChart); }

  function focusIn(root) {
    var target = root && root.querySelector ? root.querySelector("[data-focus]") : null;
    if (target) { target.focus(); return true; }
    return false;
  }

  function flash(message) {
    var bar = document.getElementById("flash");
    if (!bar) return;
    bar.textContent = message;
    bar.hidden = false;
  }

  function isPoll(elt) {
    var trigger = elt && elt.getAttribute ? elt.getAttribute("hx-trigger") || "" : "";
    return trigger.indexOf("every") === 0;
  }

  document.addEventListener("DOMContentLoaded", function () {
    renderCharts();
    focusIn(document);
    var bar = document.getElementById("flash");
    if (bar) { bar.addEventListener("click", function () { bar.hidden = true; }); }
  });

  document.addEventListener("htmx:beforeRequest", function (evt) {
    var card = evt.detail.elt.closest ? evt.detail.elt.closest(".card") : null;
    if (!isPoll(evt.detail.elt)) { lastCard = card ? card.id : null; }
  });

  document.addEventListener("htmx:afterSettle", function (evt) {
    renderCharts();
    if (isPoll(evt.detail.elt)) return;
    if (!focusIn(evt.detail.elt) && lastCard) {
      var link = document.querySelector("#" + lastCard + " h3 a");
      if (link) link.focus();
    }
    lastCard = null;
  });

  document.addEventListener("htmx:afterRequest", function (evt) {
    if (evt.detail.successful && !isPoll(evt.detail.elt)) {
      var bar = document.getElementById("flash");
      if (bar) bar.hidden = true;
    }
  });

  document.addEventListener("htmx:responseError", function (evt) {
    var text = (evt.detail.xhr && evt.detail.xhr.responseText) || "The request failed.";
    flash(text.slice(0, 500));
  });

  document.addEventListener("htmx:sendError", function () {
    flash("Cannot reach the dashboard: is `califusion ui` still running?");
  });

  // Plain (non-htmx) forms that ask before doing something that cannot be undone.
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (form.hasAttribute("hx-post")) return; // htmx asks with hx-confirm
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { evt.preventDefault(); return; }
    // A payment is sent once: its button is disabled as soon as the form goes (the server
    // refuses a second payment anyway).
    form.querySelectorAll("button[data-once]").forEach(function (button) {
      window.setTimeout(function () { button.disabled = true; button.setAttribute("aria-busy", "true"); }, 0);
    });
  });
})();
