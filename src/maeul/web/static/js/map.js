/* The console's live map: an offline basemap from the city's own roads, entity layers
   painted on one canvas (one path per layer, so 10,000 points take a few milliseconds),
   popups with latest values and a history chart, a search for keyboard users, and a refresh
   every 15 s of the area in view. The points come in the compact form of /web/points.json:
   per layer [lon, lat, id, status number, name when it is not the id's tail].
   Entity data is inserted as text, never as HTML. */
(function () {
  'use strict';
  var cfg = JSON.parse(document.getElementById('map-config').textContent);
  var T = cfg.labels;
  var COLORS = { signals: '#6a1b9a', traffic: '#1565c0', parking: '#2e7d32', air: '#ef6c00',
                 complaints: '#ad1457', alerts: '#c62828' };
  var REFRESH_MS = 15000;
  var lang = document.documentElement.lang || 'ko';
  var el = document.getElementById('map');
  var statusEl = document.getElementById('map-status');
  var detail = document.getElementById('detail');
  var loading = false;
  var map = null;

  function bboxParam() {
    var b = map.getBounds().pad(0.5);
    var clamp = function (v, lo, hi) { return Math.max(lo, Math.min(hi, v)); };
    return [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -90, 90),
            clamp(b.getEast(), -180, 180), clamp(b.getNorth(), -90, 90)]
      .map(function (v) { return v.toFixed(5); }).join(',');
  }

  function fetchLayers(whole) {
    // the whole map is the exact URL the page preloads; later loads ask for the area in view
    var url = whole ? cfg.layersUrl : cfg.layersUrl + '&bbox=' + bboxParam();
    return fetch(url, { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); });
  }

  // both requests leave before Leaflet builds the map (the page's head preloads them too)
  var layersReq = fetchLayers(true);
  var basemapReq = fetch('/web/basemap.geojson', { credentials: 'same-origin' })
    .then(function (r) { return r.ok ? r.json() : { features: [] }; })
    .catch(function () { return { features: [] }; });

  map = L.map(el, { preferCanvas: true, worldCopyJump: true });
  map.attributionControl.setPrefix('Leaflet');
  map.setView([37.5665, 126.978], 11);
  var renderer = L.canvas({ padding: 0.3 });
  map.createPane('points').style.zIndex = 450;  // above the roads, below popups
  var basemap = null;
  var features = new Map();  // id -> { latlng, name, layer }, for Find
  var data = {};  // layer -> [[lon, lat, id, status, name?], ...]
  var BAD = 2, R = 5, R_BAD = 7;  // the status number of 'bad' in the compact form

  function enabled() {
    var on = {};
    document.querySelectorAll('input[name="layer"]:checked')
      .forEach(function (c) { on[c.value] = true; });
    return on;
  }

  // One canvas over the view, redrawn after each move or zoom; clicks are matched to the
  // nearest point by the map (the canvas itself takes no pointer events).
  var Points = L.Layer.extend({
    onAdd: function (m) {
      this._c = L.DomUtil.create('canvas', 'leaflet-zoom-hide', m.getPane('points'));
      this._c.style.pointerEvents = 'none';
      this._xy = {};
      m.on('moveend zoomend resize viewreset', this.redraw, this);
      this.redraw();
    },
    onRemove: function (m) {
      L.DomUtil.remove(this._c);
      m.off('moveend zoomend resize viewreset', this.redraw, this);
    },
    redraw: function () {
      // one paint per frame however many events asked for it (a zoom sends three)
      if (this._frame) { return; }
      var self = this;
      this._frame = L.Util.requestAnimFrame(function () { self.flush(); });
    },
    flush: function () {
      if (this._frame) { L.Util.cancelAnimFrame(this._frame); this._frame = null; }
      if (!this._map) { return; }
      var m = this._map, c = this._c, size = m.getSize();
      var dpr = window.devicePixelRatio || 1;
      var topLeft = m.containerPointToLayerPoint([0, 0]);
      L.DomUtil.setPosition(c, topLeft);
      c.width = Math.round(size.x * dpr); c.height = Math.round(size.y * dpr);
      c.style.width = size.x + 'px'; c.style.height = size.y + 'px';
      var ctx = c.getContext('2d');
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      var on = enabled(), xy = this._xy = {};
      var zoom = m.getZoom(), origin = m.getPixelOrigin();
      // projected pixel -> container pixel
      var dx = -origin.x - topLeft.x, dy = -origin.y - topLeft.y;
      var bad = [];
      cfg.layers.forEach(function (l) {
        var pts = data[l.key];
        if (!pts || !on[l.key]) { return; }
        var xs = new Float32Array(pts.length), ys = new Float32Array(pts.length);
        xy[l.key] = [xs, ys];
        ctx.beginPath();
        for (var i = 0; i < pts.length; i++) {
          var p = m.project([pts[i][1], pts[i][0]], zoom);
          var x = xs[i] = p.x + dx, y = ys[i] = p.y + dy;
          if (x < -R_BAD || y < -R_BAD || x > size.x + R_BAD || y > size.y + R_BAD) { continue; }
          if (pts[i][3] === BAD) { bad.push(x, y, l.key); continue; }
          ctx.moveTo(x + R, y); ctx.arc(x, y, R, 0, 2 * Math.PI);
        }
        ctx.globalAlpha = 0.9; ctx.fillStyle = COLORS[l.key] || '#333'; ctx.fill();
      });
      // an outline only where it says something (bad), drawn on top
      ctx.lineWidth = 3; ctx.strokeStyle = '#1a1a1a';
      for (var j = 0; j < bad.length; j += 3) {
        ctx.beginPath(); ctx.arc(bad[j], bad[j + 1], R_BAD, 0, 2 * Math.PI);
        ctx.globalAlpha = 0.9; ctx.fillStyle = COLORS[bad[j + 2]] || '#333'; ctx.fill();
        ctx.globalAlpha = 1; ctx.stroke();
      }
    },
    hit: function (pt) {
      // the nearest drawn point within its radius (+2 px)
      if (this._frame) { this.flush(); }
      var best = null, bestD = Infinity, xy = this._xy;
      cfg.layers.forEach(function (l) {
        var a = xy[l.key];
        if (!a) { return; }
        for (var i = 0; i < a[0].length; i++) {
          var ex = a[0][i] - pt.x, ey = a[1][i] - pt.y, d = ex * ex + ey * ey;
          var r = (data[l.key][i][3] === BAD ? R_BAD : R) + 2;
          if (d <= r * r && d <= bestD) { bestD = d; best = data[l.key][i]; }
        }
      });
      return best;
    }
  });
  var points = new Points().addTo(map);

  function fmtTime(s) {
    var d = new Date(s);
    return isNaN(d) ? String(s) : d.toLocaleString(lang);
  }

  function fmtValue(v) {
    if (v === null || v === undefined) { return '–'; }
    if (typeof v === 'object') { return JSON.stringify(v); }
    return String(v);
  }

  function node(tag, text, cls) {
    var n = document.createElement(tag);
    if (text !== undefined && text !== null) { n.textContent = text; }
    if (cls) { n.className = cls; }
    return n;
  }

  var POPUP_ROWS = 5;  // the popup stays small; the section under the map lists everything

  function entityView(e, compact) {
    // compact (the popup): a few short values and the newest observation time; the
    // section under the map lists every attribute with its own time
    var box = node('div', null, 'entity');
    box.appendChild(node('h3', e.type.join(', ')));
    box.appendChild(node('p', e.id, 'help'));
    var rows = compact ? e.attrs.filter(function (a) {
      return a.value === null || typeof a.value !== 'object';
    }).slice(0, POPUP_ROWS) : e.attrs;
    var cols = compact ? [T.attr, T.value] : [T.attr, T.value, T.observed];
    var table = node('table');
    var head = node('tr');
    cols.forEach(function (h) {
      var th = node('th', h); th.setAttribute('scope', 'col'); head.appendChild(th);
    });
    var thead = node('thead'); thead.appendChild(head); table.appendChild(thead);
    var tbody = node('tbody');
    var newest = '';
    rows.forEach(function (a) {
      var tr = node('tr');
      var th = node('th', a.name); th.setAttribute('scope', 'row'); tr.appendChild(th);
      var text = fmtValue(a.value) + (a.unitCode ? ' ' + a.unitCode : '');
      if (compact && text.length > 40) { text = text.slice(0, 39) + '…'; }
      tr.appendChild(node('td', text));
      if (!compact) { tr.appendChild(node('td', a.observedAt ? fmtTime(a.observedAt) : '')); }
      if (a.observedAt && a.observedAt > newest) { newest = a.observedAt; }
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    var wrap = node('div', null, 'table-wrap');
    wrap.appendChild(table);
    box.appendChild(wrap);
    if (compact && newest) { box.appendChild(node('p', T.observed + ': ' + fmtTime(newest), 'help')); }
    if (rows.length < e.attrs.length) {
      box.appendChild(node('p', T.more.replace('{n}', e.attrs.length - rows.length), 'help'));
    }
    if (e.hidden > 0) {
      var msg = T.hidden.replace('{n}', e.hidden);
      if (e.hiddenPurposes.length) { msg += ' ' + T.needs.replace('{purposes}', e.hiddenPurposes.join(', ')); }
      box.appendChild(node('p', msg, 'help'));
    }
    var names = Object.keys(e.history || {});
    if (compact && names.length) {
      var label = node('label', T.history);
      var sel = node('select');
      var id = 'hist-' + Math.random().toString(36).slice(2);
      sel.id = id; label.setAttribute('for', id);
      names.forEach(function (n) { var o = node('option', n); o.value = n; sel.appendChild(o); });
      var chart = node('div', null, 'chart');
      chart.setAttribute('role', 'img');
      var draw = function () {
        chart.setAttribute('aria-label', T.history + ': ' + sel.value);
        window.maeulChart(chart, { series: e.history[sel.value], label: sel.value }, 280, 120);
      };
      sel.addEventListener('change', draw);
      box.appendChild(label); box.appendChild(sel); box.appendChild(chart);
      charts().then(draw).catch(function () {});
    }
    return box;
  }

  function openEntity(id, latlng) {
    // the popup opens once its content is known, so panning makes room for all of it
    detail.textContent = T.loading;
    fetch('/web/entity/' + encodeURIComponent(id), { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (e) {
        L.popup({ maxWidth: 360, autoPanPadding: [20, 20] })
          .setLatLng(latlng).setContent(entityView(e, true)).openOn(map);
        detail.textContent = '';
        detail.appendChild(entityView(e, false));
      })
      .catch(function () { detail.textContent = T.notfound; });
  }

  function load(fc) {
    data = fc.layers || {};
    features.clear();
    var n = 0;
    Object.keys(data).forEach(function (k) {
      data[k].forEach(function (p) {
        features.set(p[2], { latlng: L.latLng(p[1], p[0]),
                             name: p.length > 4 ? p[4] : String(p[2]).split(':').pop(),
                             layer: k });
      });
      n += data[k].length;
    });
    Object.keys(fc.counts).forEach(function (k) {
      var c = document.querySelector('[data-count="' + k + '"]');
      if (c) { c.textContent = fc.counts[k]; }
    });
    statusEl.textContent = n ? '' : T.none;
    el.setAttribute('data-features', String(n));
  }

  function draw(fc) {
    load(fc);
    points.redraw();
  }

  var chartsReq = null;
  function charts() {
    // uPlot is needed only once a popup shows a history: not on the map's first paint
    function script(src) {
      return new Promise(function (ok, fail) {
        var s = document.createElement('script');
        s.src = src; s.onload = ok; s.onerror = fail;
        document.body.appendChild(s);
      });
    }
    if (!chartsReq) {
      chartsReq = script('/static/uplot/uPlot.iife.min.js')
        .then(function () { return script('/static/js/charts.js'); });
    }
    return chartsReq;
  }

  function refresh() {
    if (loading || document.hidden) { return; }
    loading = true;
    fetchLayers(false).then(draw).catch(function () {}).then(function () { loading = false; });
  }

  Promise.all([basemapReq, layersReq]).then(function (res) {
    var roads = res[0], fc = res[1];
    if (window.performance && performance.mark) { performance.mark('maeul-map-data'); }
    if (roads.features && roads.features.length) {
      basemap = L.geoJSON(roads, { renderer: renderer, interactive: false,
        style: { color: '#7b808a', weight: 2, opacity: 0.8 } }).addTo(map);
    }
    load(fc);
    // the basemap says where the city is (its signal twin's network first); the view is
    // set before the points are painted, so they are painted once
    var home = roads.bbox;
    var bounds = home ? L.latLngBounds([home[1], home[0]], [home[3], home[2]]) : null;
    if (!bounds || !bounds.isValid()) {
      var pts = [];
      features.forEach(function (v) { pts.push(v.latlng); });
      bounds = pts.length ? L.latLngBounds(pts) : null;
    }
    if (bounds && bounds.isValid()) { map.fitBounds(bounds, { padding: [20, 20], animate: false }); }
    points.flush();
    el.setAttribute('data-ready', '1');
    if (window.performance && performance.mark) { performance.mark('maeul-map-ready'); }
    map.on('moveend', function () { setTimeout(refresh, 200); });
    map.on('click', function (ev) {
      var p = points.hit(ev.containerPoint);
      if (p) { openEntity(p[2], L.latLng(p[1], p[0])); }
    });
    map.on('mousemove', function (ev) {
      el.style.cursor = points.hit(ev.containerPoint) ? 'pointer' : '';
    });
    setInterval(refresh, REFRESH_MS);
  }).catch(function () {
    statusEl.textContent = T.notfound;
    el.setAttribute('data-ready', 'error');
  });

  document.querySelectorAll('input[name="layer"]').forEach(function (c) {
    c.addEventListener('change', function () { points.redraw(); });
  });
  document.getElementById('basemap-toggle').addEventListener('change', function (ev) {
    if (!basemap) { return; }
    if (ev.target.checked) { basemap.addTo(map); basemap.bringToBack(); } else { map.removeLayer(basemap); }
  });

  var results = document.getElementById('find-results');
  document.getElementById('find').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var q = document.getElementById('find-q').value.trim().toLowerCase();
    results.textContent = '';
    if (!q) { return; }
    var shown = 0;
    features.forEach(function (v, id) {
      if (shown >= 20) { return; }
      if (id.toLowerCase().indexOf(q) < 0 && String(v.name).toLowerCase().indexOf(q) < 0) { return; }
      shown += 1;
      var li = node('li');
      var b = node('button', v.name + ' (' + id + ')');
      b.type = 'button';
      b.addEventListener('click', function () {
        var ll = v.latlng;
        map.setView(ll, Math.max(map.getZoom(), 15));
        openEntity(id, ll);
      });
      li.appendChild(b);
      results.appendChild(li);
    });
    if (!shown) { results.appendChild(node('li', T.none)); }
  });
})();
