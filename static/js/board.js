// The board: a row's buttons post, and the board comes back after a redirect with focus at the
// top of the page, a dozen tabs from where the worker was. So the pressed button is remembered
// (by its data-focus-key: an arrival's id and an action, nothing about the person) and focused
// again; if that button is gone, the same row's first control; if the row is gone, nothing.
(function () {
  "use strict";
  var KEY = "threshold.board.focus";
  var FRESH_MS = 30000;  // a remembered button older than this belongs to another visit
  var actions = document.getElementById("row-actions");
  if (!actions) return;

  actions.addEventListener("submit", function (event) {
    var pressed = event.submitter;
    var key = pressed && pressed.getAttribute("data-focus-key");
    if (!key) return;
    var row = pressed.closest("tr[data-arrival]");
    try {
      window.sessionStorage.setItem(KEY, JSON.stringify({
        key: key, arrival: row ? row.getAttribute("data-arrival") : "", at: Date.now()
      }));
    } catch (e) { /* storage refused: focus starts at the top, as without this script */ }
  });

  function remembered() {
    try {
      var saved = JSON.parse(window.sessionStorage.getItem(KEY) || "null");
      window.sessionStorage.removeItem(KEY);
      return saved && Date.now() - saved.at < FRESH_MS ? saved : null;
    } catch (e) {
      return null;
    }
  }

  var saved = remembered();
  if (!saved) return;
  var again = document.querySelector('[data-focus-key="' + saved.key + '"]');
  if (!again && /^\d+$/.test(saved.arrival)) {
    var row = document.querySelector('tr[data-arrival="' + saved.arrival + '"]');
    again = row && (row.querySelector(".actions [data-focus-key]") || row.querySelector("a"));
  }
  if (again) again.focus();
})();
