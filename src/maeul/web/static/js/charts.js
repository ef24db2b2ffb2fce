/* History charts with uPlot: every element with data-chart="ID" draws the JSON in #ID
   ({"series": [[isoTime, value], ...], "target": number|null, "label", "targetLabel", "unit"}).
   maeulChart(el, data) is also used by the map's popups. */
(function () {
  'use strict';

  function columns(points, target) {
    var xs = [], ys = [], ts = [];
    points.forEach(function (p) {
      var t = Date.parse(p[0]);
      if (isNaN(t)) { return; }
      xs.push(t / 1000);
      ys.push(typeof p[1] === 'number' ? p[1] : null);
      ts.push(typeof target === 'number' ? target : null);
    });
    return typeof target === 'number' ? [xs, ys, ts] : [xs, ys];
  }

  function maeulChart(el, data, width, height) {
    if (typeof uPlot === 'undefined' || !data || !data.series || data.series.length === 0) {
      return null;
    }
    var cols = columns(data.series, data.target);
    if (cols[0].length === 0) { return null; }
    var series = [{}, {
      label: (data.label || '') + (data.unit ? ' (' + data.unit + ')' : ''),
      stroke: '#0b4f8a', width: 2, points: { show: cols[0].length < 40 }
    }];
    if (cols.length === 3) {
      series.push({ label: data.targetLabel || 'target', stroke: '#a3161a', width: 2, dash: [6, 4],
                    points: { show: cols[0].length < 3 } });
    }
    el.textContent = '';
    var w = width || Math.max(240, Math.min(el.clientWidth || 320, 900));
    var x0 = Math.min.apply(null, cols[0]), x1 = Math.max.apply(null, cols[0]);
    // one moment only (a single reading): show the hour around it, not an arbitrary span
    var xScale = x1 - x0 < 60 ? { time: true, range: [x0 - 3600, x1 + 3600] } : { time: true };
    return new uPlot({
      width: w, height: height || 180, series: series, scales: { x: xScale },
      legend: { show: !height || height >= 150 },
      axes: [{ stroke: '#1a1a1a' }, { stroke: '#1a1a1a' }],
      cursor: { drag: { x: false, y: false } }
    }, cols, el);
  }

  window.maeulChart = maeulChart;
  document.querySelectorAll('[data-chart]').forEach(function (el) {
    var src = document.getElementById(el.getAttribute('data-chart'));
    if (!src) { return; }
    try {
      maeulChart(el, JSON.parse(src.textContent));
    } catch (e) {
      el.textContent = '';
    }
  });
})();
