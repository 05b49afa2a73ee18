/* Report charts (ECharts) and Gantt views (frappe-gantt). Tooltips render on the canvas
   (renderMode "richText"): HTML tooltips would need inline style attributes, which the
   Content-Security-Policy refuses. The data of each chart is a
   <script type="application/json"> block named by the element's data-fw-chart / data-fw-gantt
   attribute; nothing here is inline in the page (strict CSP). Exact decimals arrive as text
   and become numbers for drawing only. */
(function () {
  "use strict";

  var locale = document.documentElement.lang || "zh-CN";
  var chinese = locale.indexOf("zh") === 0;
  var charts = [];

  function readJson(id) {
    var block = document.getElementById(id);
    if (!block) return null;
    try { return JSON.parse(block.textContent); } catch (error) { return null; }
  }

  function toNumber(value) {
    return value === null || value === undefined || value === "" ? null : Number(value);
  }

  function formatter(format) {
    return function (value) {
      if (value === null || value === undefined || isNaN(value)) return "—";
      var digits = format === "money" ? { minimumFractionDigits: 2, maximumFractionDigits: 2 }
                                      : { maximumFractionDigits: 2 };
      var text = Number(value).toLocaleString(locale, digits);
      return format === "percent" ? text + "%" : text;
    };
  }

  function pieOption(data) {
    var series = data.series[0];
    return {
      // richText: drawn on the canvas; the HTML tooltip's style attributes break the CSP.
      tooltip: { trigger: "item", renderMode: "richText", valueFormatter: formatter(series.format) },
      legend: { bottom: 0, type: "scroll" },
      series: [{
        type: "pie", name: series.name, radius: ["35%", "65%"], center: ["50%", "45%"],
        label: { formatter: "{b}: {d}%", overflow: "break", width: 110 }, labelLayout: { hideOverlap: true },
        data: data.categories.map(function (name, i) { return { name: name, value: toNumber(series.data[i]) }; })
      }]
    };
  }

  function axisOption(data) {
    // Series of different formats (amounts and work days) get a second value axis, so the
    // smaller one is not flattened against the other's scale.
    var first = data.series.length ? (data.series[0].format || "number") : "number";
    var twoAxes = !data.horizontal && !data.stacked &&
      data.series.some(function (s) { return (s.format || "number") !== first; });
    var secondFormat = twoAxes ? data.series.filter(function (s) { return (s.format || "number") !== first; })[0].format : null;
    var categoryAxis = { type: "category", data: data.categories, name: data.x_label,
                         axisLabel: { interval: 0, hideOverlap: true } };
    var valueAxis = { type: "value", axisLabel: { formatter: formatter(first) } };
    var yAxis = data.horizontal ? categoryAxis : valueAxis;
    if (twoAxes) yAxis = [valueAxis, { type: "value", splitLine: { show: false }, axisLabel: { formatter: formatter(secondFormat) } }];
    return {
      tooltip: { trigger: "axis", renderMode: "richText" },
      legend: { top: 0, type: "scroll" },
      grid: { left: 8, right: 16, top: 36, bottom: 8, containLabel: true },
      xAxis: data.horizontal ? valueAxis : categoryAxis,
      yAxis: yAxis,
      series: data.series.map(function (series) {
        return {
          type: data.type === "line" ? "line" : "bar", name: series.name,
          stack: data.stacked ? "total" : undefined,
          yAxisIndex: twoAxes && (series.format || "number") !== first ? 1 : 0,
          tooltip: { valueFormatter: formatter(series.format) },
          data: series.data.map(toNumber)
        };
      })
    };
  }

  function drawChart(element) {
    var data = readJson(element.getAttribute("data-fw-chart"));
    if (!data || !data.series || !window.echarts) return;
    var chart = window.echarts.init(element, null, { renderer: "canvas", locale: chinese ? "ZH" : "EN" });
    chart.setOption(data.type === "pie" ? pieOption(data) : axisOption(data));
    charts.push(chart);
    element.setAttribute("data-fw-drawn", "1");
  }

  function escapeHtml(text) {
    // frappe-gantt writes task names with innerHTML: a name must never become markup.
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function drawGantt(element) {
    var data = readJson(element.getAttribute("data-fw-gantt"));
    if (!data || !window.Gantt) return;
    if (!data.tasks.length) { element.textContent = element.getAttribute("data-fw-empty"); return; }
    var actual = element.getAttribute("data-fw-actual") || "Actual";
    var tasks = data.tasks.map(function (task) {
      return {
        id: task.id, start: task.start, end: task.end, progress: task.progress,
        name: escapeHtml(task.actual ? "↳ " + actual : task.name),
        dependencies: task.dependencies || "", custom_class: task.custom_class
      };
    });
    new window.Gantt(element, tasks, {
      view_mode: tasks.length && spanDays(tasks) > 120 ? "Month" : "Week",
      language: chinese ? "zh" : "en", readonly: true, popup_on: "hover",
      bar_height: 20, padding: 14, scroll_to: "start", infinite_padding: false
    });
    element.setAttribute("data-fw-drawn", "1");
  }

  function spanDays(tasks) {
    var starts = tasks.map(function (t) { return Date.parse(t.start); });
    var ends = tasks.map(function (t) { return Date.parse(t.end); });
    return (Math.max.apply(null, ends) - Math.min.apply(null, starts)) / 86400000;
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-fw-chart]").forEach(drawChart);
    document.querySelectorAll("[data-fw-gantt]").forEach(drawGantt);
  });
  window.addEventListener("resize", function () {
    charts.forEach(function (chart) { chart.resize(); });
  });
})();
