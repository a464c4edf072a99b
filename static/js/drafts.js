// Drafts of the visit page's forms (visits/services/drafts.py is the server half).
//
// A moment after typing stops, each form marked data-draft sends its fields to the server
// (form-encoded, with the CSRF token), which keeps them for this person and this visit and
// puts them back in their boxes when the page is shown again. So pressing another form's
// button, reloading, or the screen lock ending the session never loses what was typed:
// before any form on the page is sent, every other form's unsaved text is kept first. A save
// that fails (offline, or the session ended while the screen was locked) is tried again.
// Leaving the page while some text is not kept yet asks first.
(function () {
  "use strict";
  var page = document.querySelector("[data-drafts-url]");
  if (!page) return;
  var URL_ = page.getAttribute("data-drafts-url");
  // A failed save is tried again after RETRY_MS; while the screen is locked (the form is out
  // of the document) it is looked at every LOCKED_MS, so it goes as soon as the page is back.
  var DELAY_MS = 700, RETRY_MS = 3000, LOCKED_MS = 500;
  // Fields that are not part of what a form records.
  var SKIP = {csrfmiddlewaretoken: true, next: true, visit: true};
  var forms = Array.prototype.slice.call(page.querySelectorAll("form[data-draft]"));
  var kept = new Map(), timers = new Map(), flying = new Map();
  var sending = null;

  function fields(form) {
    var body = new URLSearchParams();
    new FormData(form).forEach(function (value, name) {
      if (!SKIP[name] && typeof value === "string") body.append(name, value);
    });
    return body.toString();
  }

  function dirty(form) { return fields(form) !== kept.get(form); }

  function mark(form, state) { form.setAttribute("data-draft-state", state); }

  function token() {
    var input = document.querySelector('input[name="csrfmiddlewaretoken"]');
    return input ? input.value : "";
  }

  // Resolves once the form's fields as they are now are kept (or could not be).
  function save(form, keepalive) {
    window.clearTimeout(timers.get(form));
    timers.delete(form);
    var before = flying.get(form) || Promise.resolve();
    var done = before.then(function () {
      var now = fields(form);
      if (now === kept.get(form)) { mark(form, "saved"); return; }
      if (!document.contains(form)) { later(form, LOCKED_MS); return; }
      mark(form, "saving");
      return fetch(URL_, {
        method: "POST",
        credentials: "same-origin",
        keepalive: !!keepalive,
        headers: {
          "X-CSRFToken": token(),
          "Accept": "application/json",
          "Content-Type": "application/x-www-form-urlencoded"
        },
        body: "form=" + encodeURIComponent(form.getAttribute("data-draft")) + "&" + now
      })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (answer) {
          if (answer && answer.saved) {
            kept.set(form, now);
            mark(form, dirty(form) ? "typing" : "saved");
          } else {
            failed(form);
          }
        }, function () { failed(form); });
    });
    flying.set(form, done);
    done.then(function () { if (flying.get(form) === done) flying.delete(form); });
    return done;
  }

  function failed(form) {
    mark(form, "not-saved");
    later(form, RETRY_MS);
  }

  function later(form, ms) {
    window.clearTimeout(timers.get(form));
    timers.set(form, window.setTimeout(function () { save(form); }, ms));
  }

  function changed(event) {
    var form = event.target.form;
    if (!form || forms.indexOf(form) < 0 || form === sending) return;
    mark(form, "typing");
    later(form, DELAY_MS);
  }

  forms.forEach(function (form) {
    kept.set(form, fields(form));  // what the page was shown with is kept already
    mark(form, "saved");
  });
  page.addEventListener("input", changed);
  page.addEventListener("change", changed);

  // Before any form of the page is sent, the others' text is kept (and this form's own
  // pending draft is settled, so it cannot come back after the form is saved).
  page.addEventListener("submit", function (event) {
    var form = event.target;
    if (form === sending) return;
    var waits = forms.filter(function (f) { return f !== form && dirty(f); }).map(function (f) { return save(f); });
    if (timers.has(form)) { window.clearTimeout(timers.get(form)); timers.delete(form); }
    if (flying.has(form)) waits.push(flying.get(form));
    sending = form;
    if (!waits.length) return;
    event.preventDefault();
    var submitter = event.submitter;
    Promise.all(waits).then(send, send);
    // In a task of its own: while this submit event is still being dispatched (the promises
    // may already be settled), the browser ignores another submission of the same form.
    function send() {
      window.setTimeout(function () {
        if (submitter && submitter.form === form) form.requestSubmit(submitter);
        else form.requestSubmit();
      }, 0);
    }
  });

  // Going back to this page from the history: nothing is being sent any more.
  window.addEventListener("pageshow", function () { sending = null; });

  window.addEventListener("beforeunload", function (event) {
    var unkept = forms.some(function (f) { return f !== sending && document.contains(f) && dirty(f); });
    if (!unkept) return;
    forms.forEach(function (f) { if (f !== sending && dirty(f)) save(f, true); });
    event.preventDefault();
    event.returnValue = "";
  });

  // The tab is hidden (another app, the tablet sleeping): keep everything now.
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) forms.forEach(function (f) { if (dirty(f)) save(f, true); });
  });
})();
