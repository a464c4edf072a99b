// Forms marked data-unsaved-guard keep what is typed in them only when they are sent (the
// hand-off's note, say): leaving the page with text in one asks first, with the browser's own
// question. Sending the form is not leaving it. The visit page keeps drafts instead (drafts.js).
(function () {
  "use strict";
  var forms = Array.prototype.slice.call(document.querySelectorAll("form[data-unsaved-guard]"));
  if (!forms.length) return;
  var sending = null;

  function typed(form) {
    return Array.prototype.some.call(form.querySelectorAll("textarea"), function (box) {
      return box.value.trim() !== "";
    });
  }

  forms.forEach(function (form) {
    form.addEventListener("submit", function () { sending = form; });
  });
  // Back to this page from the history: nothing is being sent any more.
  window.addEventListener("pageshow", function () { sending = null; });
  window.addEventListener("beforeunload", function (event) {
    if (!forms.some(function (form) { return form !== sending && typed(form); })) return;
    event.preventDefault();
    event.returnValue = "";
  });
})();
