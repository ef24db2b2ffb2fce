/* The console's live map: an offline basemap from the city's own roads, entity layers as
   canvas circle markers (fast with 10,000 points), popups with latest values and a history
   chart, a search for keyboard users, and a refresh every 15 s of the area in view.
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

  var map = L.map(el, { preferCanvas: true, worldCopyJump: true });
  map.attributionControl.setPrefix('Leaflet');
  map.setView([37.5665, 126.978], 11);
  var renderer = L.canvas({ padding: 0.3 });
  var groups = {};
  cfg.layers.forEach(function (l) { groups[l.key] = L.layerGroup().addTo(map); });
  var basemap = null;
  var features = new Map();
  var loading = false;

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
      setTimeout(draw, 0);
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

  function enabledLayers() {
    return Array.prototype.map.call(
      document.querySelectorAll('input[name="layer"]:checked'), function (c) { return c.value; });
  }

  function draw(fc) {
    Object.keys(groups).forEach(function (k) { groups[k].clearLayers(); });
    features.clear();
    fc.features.forEach(function (f) {
      var c = f.geometry.coordinates, p = f.properties;
      var bad = p.status === 'bad';
      // an outline only where it says something: stroking 10,000 circles costs paint time
      var m = L.circleMarker([c[1], c[0]], {
        renderer: renderer, radius: bad ? 7 : 5, weight: 3, stroke: bad,
        color: '#1a1a1a', fillColor: COLORS[p.layer] || '#333', fillOpacity: 0.9
      });
      m.on('click', function () { openEntity(f.id, m.getLatLng()); });
      groups[p.layer].addLayer(m);
      features.set(f.id, { marker: m, name: p.name, layer: p.layer });
    });
    Object.keys(fc.counts).forEach(function (k) {
      var n = document.querySelector('[data-count="' + k + '"]');
      if (n) { n.textContent = fc.counts[k]; }
    });
    statusEl.textContent = fc.features.length ? '' : T.none;
    el.setAttribute('data-features', String(fc.features.length));
  }

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

  function refresh() {
    if (loading || document.hidden) { return; }
    loading = true;
    fetchLayers(false).then(draw).catch(function () {}).then(function () { loading = false; });
  }

  var basemapReq = fetch('/web/basemap.geojson', { credentials: 'same-origin' })
    .then(function (r) { return r.ok ? r.json() : { features: [] }; })
    .catch(function () { return { features: [] }; });

  Promise.all([basemapReq, fetchLayers(true)]).then(function (res) {
    var roads = res[0], fc = res[1];
    if (window.performance && performance.mark) { performance.mark('maeul-map-data'); }
    if (roads.features && roads.features.length) {
      basemap = L.geoJSON(roads, { renderer: renderer, interactive: false,
        style: { color: '#7b808a', weight: 2, opacity: 0.8 } }).addTo(map);
    }
    draw(fc);
    // the basemap says where the city is (its signal twin's network first)
    var home = roads.bbox;
    var bounds = home ? L.latLngBounds([home[1], home[0]], [home[3], home[2]]) : null;
    if (!bounds || !bounds.isValid()) {
      var pts = [];
      features.forEach(function (v) { pts.push(v.marker.getLatLng()); });
      bounds = pts.length ? L.latLngBounds(pts) : null;
    }
    if (bounds && bounds.isValid()) { map.fitBounds(bounds, { padding: [20, 20] }); }
    el.setAttribute('data-ready', '1');
    if (window.performance && performance.mark) { performance.mark('maeul-map-ready'); }
    map.on('moveend', function () { setTimeout(refresh, 200); });
    setInterval(refresh, REFRESH_MS);
  }).catch(function () {
    statusEl.textContent = T.notfound;
    el.setAttribute('data-ready', 'error');
  });

  document.querySelectorAll('input[name="layer"]').forEach(function (c) {
    c.addEventListener('change', function () {
      if (c.checked) { map.addLayer(groups[c.value]); } else { map.removeLayer(groups[c.value]); }
    });
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
        var ll = v.marker.getLatLng();
        map.setView(ll, Math.max(map.getZoom(), 15));
        openEntity(id, ll);
      });
      li.appendChild(b);
      results.appendChild(li);
    });
    if (!shown) { results.appendChild(node('li', T.none)); }
  });
})();
