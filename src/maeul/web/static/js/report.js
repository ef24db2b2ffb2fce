/* Report a problem: pick the place on an offline map (the city's own roads, like the
   console's basemap). A click or tap marks the spot; keyboard users pan with the arrow keys
   and mark the centre. The place travels in the form's hidden lat/long fields, so the form
   works without this script (the address field stays). */
(function () {
  'use strict';
  var box = document.getElementById('pick');
  var el = document.getElementById('pick-map');
  if (!box || !el || typeof L === 'undefined') { return; }
  var T = JSON.parse(document.getElementById('pick-config').textContent);
  var lat = document.getElementById('lat');
  var lon = document.getElementById('long');
  var statusEl = document.getElementById('pick-status');
  box.hidden = false;

  var map = L.map(el, { preferCanvas: true, worldCopyJump: true });
  map.attributionControl.setPrefix('Leaflet');
  map.setView([37.5665, 126.978], 12);
  var renderer = L.canvas({ padding: 0.3 });
  var mark = null;

  function show() {
    if (lat.value && lon.value) {
      statusEl.textContent = T.chosen.replace('{lat}', Number(lat.value).toFixed(5))
        .replace('{lon}', Number(lon.value).toFixed(5));
    } else {
      statusEl.textContent = T.none;
    }
  }

  function place(latlng) {
    var p = latlng.wrap();
    lat.value = p.lat.toFixed(6);
    lon.value = p.lng.toFixed(6);
    if (mark) { mark.setLatLng(p); } else {
      mark = L.circleMarker(p, { renderer: renderer, radius: 11, weight: 4, color: '#a3161a',
                                 fillColor: '#ffbf47', fillOpacity: 0.9, interactive: false })
        .addTo(map);
    }
    show();
  }

  map.on('click', function (ev) { place(ev.latlng); });
  document.getElementById('pick-centre').addEventListener('click', function () {
    place(map.getCenter());
  });
  document.getElementById('pick-clear').addEventListener('click', function () {
    lat.value = ''; lon.value = '';
    if (mark) { map.removeLayer(mark); mark = null; }
    show();
  });

  function fitPoints(fc) {
    var pts = (fc.features || []).map(function (f) {
      return [f.geometry.coordinates[1], f.geometry.coordinates[0]];
    });
    if (pts.length) { map.fitBounds(L.latLngBounds(pts), { padding: [20, 20], maxZoom: 16 }); }
  }

  function ready() {
    if (lat.value && lon.value) {
      var p = L.latLng(Number(lat.value), Number(lon.value));
      place(p);
      map.setView(p, Math.max(map.getZoom(), 15));
    }
    el.setAttribute('data-ready', '1');
  }

  fetch('/web/basemap.geojson', { credentials: 'same-origin' })
    .then(function (r) { return r.ok ? r.json() : { type: 'FeatureCollection', features: [] }; })
    .then(function (roads) {
      if (roads.features && roads.features.length) {
        L.geoJSON(roads, { renderer: renderer, interactive: false,
                           style: { color: '#7a8794', weight: 2 } }).addTo(map);
      }
      var b = roads.bbox;
      if (b && b.length === 4) {
        map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { padding: [10, 10] });
        return null;
      }
      // no road geometry: open where the city's public sensors are
      return fetch('/web/layers.geojson?layers=signals,traffic,parking,air',
                   { credentials: 'same-origin' })
        .then(function (r) { return r.ok ? r.json() : { features: [] }; })
        .then(fitPoints);
    })
    .catch(function () { /* the map still works on its default view */ })
    .then(ready);
  show();
}());
