// Print buttons: <button type="button" data-print hidden>. They print the page, and are shown
// only where this script runs (a button that does nothing is worse than none). A static file
// rather than an onclick attribute: the Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  document.querySelectorAll("button[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
    button.hidden = false;
  });
})();
