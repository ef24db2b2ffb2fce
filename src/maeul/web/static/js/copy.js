/* The copy button beside a report number: shown only when scripts run. */
(function () {
  'use strict';
  var btn = document.getElementById('copy-rid');
  if (!btn) { return; }
  var statusEl = document.getElementById('copy-status');
  btn.hidden = false;
  function done() { statusEl.textContent = btn.getAttribute('data-done'); }
  function fallback(text) {
    // older browsers and pages not on https: copy through a selected, hidden field
    var area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.className = 'sr-only';
    document.body.appendChild(area);
    area.select();
    try { document.execCommand('copy'); done(); } finally { document.body.removeChild(area); }
  }
  btn.addEventListener('click', function () {
    var text = btn.getAttribute('data-copy');
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallback(text); });
    } else {
      fallback(text);
    }
  });
}());
