// The screen lock for shared screens (clinic/idle.py is the server half).
//
// After the person's idle time without a key, pointer or touch, at "Lock screen", or when the
// server says the session has ended, everything the page shows leaves the document: it is
// kept in this script's memory only (never in storage), the lock panel takes its place, live
// updates stop and the session ends on the server. The same person's password (and code,
// where needed) signs them in again and puts the page back exactly as it was: what was typed,
// where it was scrolled to, where the focus was. Nothing a worker typed is lost.
//
// While the person is active the page tells the server (the activity ping), never more often
// than PING_MS and always before the server would let the session go. Tabs of one browser
// share activity and locks through localStorage: timestamps only, nothing about anyone.
(function () {
  "use strict";
  var config = document.getElementById("screen-lock");
  if (!config || !config.content) return;
  var IDLE_MS = parseInt(config.getAttribute("data-idle-seconds"), 10) * 1000;
  if (!(IDLE_MS > 0)) IDLE_MS = 5 * 60 * 1000;
  var PING_MS = Math.min(60000, Math.max(1000, IDLE_MS / 5));
  var ACTIVITY_KEY = "threshold:activity", SIGNAL_KEY = "threshold:lock", ENDING_KEY = "threshold:ending";
  // How long an unlock waits, at most, for another tab's "end the session" to be answered.
  var ENDING_WAIT_MS = 10000;
  var ACTIVITY_EVENTS = ["pointerdown", "pointermove", "keydown", "wheel", "touchstart", "input"];

  // The server counted this page's own request from about when it was asked for.
  var loaded = Math.round(window.performance && performance.timeOrigin ? performance.timeOrigin : Date.now());
  var lastActivity = loaded, lastExtended = loaded, lastShared = 0;
  var locked = false, kept = null, saved = null, panel = null, busy = false, pingTimer = null;
  // Requests still on their way with the session the lock ends (the last ping, the lock's
  // own): settled before an unlock is sent (see `settled`).
  var pinging = Promise.resolve(), ending = Promise.resolve();

  function attr(name) { return config.getAttribute("data-" + name); }
  function live() { return window.Threshold && window.Threshold.live; }

  function storageGet(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return null; }
  }
  function storageSet(key, value) {
    try { window.localStorage.setItem(key, value); } catch (e) { /* storage off: this tab alone */ }
  }
  function storageRemove(key) {
    try { window.localStorage.removeItem(key); } catch (e) { /* storage off: this tab alone */ }
  }

  function latestActivity() {
    return Math.max(lastActivity, parseInt(storageGet(ACTIVITY_KEY) || "0", 10) || 0);
  }

  function cookieToken() {
    var prefix = attr("csrf-cookie") + "=";
    var cookies = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < cookies.length; i++) {
      if (cookies[i].indexOf(prefix) === 0) return decodeURIComponent(cookies[i].slice(prefix.length));
    }
    return "";
  }

  // The cookie is current even after another tab signed in again; the page's own token is
  // the fallback where the cookie cannot be read.
  function csrfToken() {
    var input = (kept || document).querySelector('input[name="csrfmiddlewaretoken"]');
    return cookieToken() || (input ? input.value : "");
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {"X-CSRFToken": csrfToken(), "Accept": "application/json"},
      body: body || null
    });
  }

  // --- activity ---------------------------------------------------------------------------

  function onActivity() {
    if (locked) return;
    var now = Date.now();
    if (now - lastActivity < 200) return;  // pointer moves come in bursts
    // A tablet waking from sleep: its first touch unlocks nothing, it locks.
    if (now - latestActivity() >= IDLE_MS) { lock({endSession: true}); return; }
    lastActivity = now;
    if (now - lastShared >= 1000) {
      lastShared = now;
      storageSet(ACTIVITY_KEY, String(now));
    }
    extendSoon();
  }

  // Ping once PING_MS has passed since the last extension, so every bit of activity reaches
  // the server well before the session it keeps alive would have expired.
  function extendSoon() {
    if (pingTimer) return;
    pingTimer = window.setTimeout(ping, Math.max(0, lastExtended + PING_MS - Date.now()));
  }

  function ping() {
    pingTimer = null;
    if (locked) return;
    lastExtended = Date.now();
    pinging = post(attr("activity-url"))
      .then(function (r) { if (r.status === 401 || r.status === 403) sessionEnded(); })
      .catch(function () { /* offline: the next activity tries again */ });
  }

  function check() {
    if (!locked && Date.now() - latestActivity() >= IDLE_MS) lock({endSession: true});
  }

  // --- lock and unlock --------------------------------------------------------------------

  function lock(options) {
    if (locked) return;
    locked = true;
    if (pingTimer) window.clearTimeout(pingTimer);
    pingTimer = null;
    if (live()) live().stop();
    saved = {x: window.scrollX, y: window.scrollY, title: document.title, focus: document.activeElement};
    kept = document.createDocumentFragment();
    while (document.body.firstChild) kept.appendChild(document.body.firstChild);
    document.title = attr("title");
    panel = config.content.firstElementChild.cloneNode(true);
    document.body.appendChild(panel);
    wire(panel);
    panel.querySelector('input[name="password"]').focus();
    if (options && options.endSession) {
      // Reloading the page, or opening another, then finds no session either. Until the
      // server has answered, other tabs know not to unlock (`settled`).
      var at = String(Date.now());
      storageSet(ENDING_KEY, at);
      ending = Promise.all([pinging, post(attr("lock-url")).catch(function () { /* it expires on its own soon */ })])
        .then(function () { if (storageGet(ENDING_KEY) === at) storageRemove(ENDING_KEY); });
      signal("locked");
    }
  }

  // Resolves once no request that carries the ended session is still on its way, from this
  // tab or (as far as localStorage tells) another. Otherwise an unlock could reach the server
  // first: the old session's late "lock" would end the new one, or the answer to it would
  // take the new session's cookie away, and the screen would lock again at once.
  // Never longer than ENDING_WAIT_MS: a request that hangs (or a tab closed while its lock
  // was on its way) holds nobody out.
  function settled() {
    var started = Date.now();
    return new Promise(function (resolve) {
      ending.then(resolve);
      window.setTimeout(resolve, ENDING_WAIT_MS);
    }).then(function () {
      return new Promise(function (resolve) {
        (function look() {
          var now = Date.now(), since = parseInt(storageGet(ENDING_KEY) || "0", 10) || 0;
          if (!since || now - since > ENDING_WAIT_MS || now - started > ENDING_WAIT_MS) resolve();
          else window.setTimeout(look, 100);
        })();
      });
    });
  }

  function sessionEnded() {
    lock({endSession: false});
  }

  function wire(panel) {
    var form = panel.querySelector("form");
    form.querySelector(".lock-error").setAttribute("role", "alert");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      unlock(form);
    });
    // Someone else takes over the screen: this page's content is let go.
    panel.querySelector("[data-lock-switch]").addEventListener("click", function () { kept = null; });
  }

  function unlock(form) {
    if (busy) return;
    busy = true;
    var button = form.querySelector('button[type="submit"]');
    var password = form.querySelector('input[name="password"]');
    var codeField = form.querySelector(".lock-code");
    var code = codeField.querySelector("input");
    var error = form.querySelector(".lock-error");
    var sent;
    button.disabled = true;
    var body = new URLSearchParams(new FormData(form));
    // Form-encoded, not multipart: the server takes no multipart body from anyone not signed
    // in (clinic/edge.py), and a locked screen's session has ended.
    settled()
      .then(function () { sent = Date.now(); return post(attr("unlock-url"), body); })
      .then(function (r) {
        return r.json().then(
          function (data) { return {status: r.status, data: data || {}}; },
          function () { return {status: r.status, data: {}}; }
        );
      })
      .then(function (answer) {
        busy = false;
        button.disabled = false;
        if (answer.status === 200 && answer.data.ok) { restore(answer.data.csrf, sent); return; }
        error.textContent = answer.data.error || attr(answer.status === 429 ? "throttled" : "stale");
        if (answer.data.second_factor) {
          // The password was right: keep it, ask for the code.
          codeField.hidden = false;
          code.value = "";
          code.focus();
        } else {
          password.value = "";
          password.focus();
        }
      }, function () {
        busy = false;
        button.disabled = false;
        error.textContent = attr("offline");
      });
  }

  function restore(token, since) {
    if (!kept) { window.location.reload(); return; }  // let go of while locked
    if (token) {
      kept.querySelectorAll('input[name="csrfmiddlewaretoken"]').forEach(function (input) { input.value = token; });
    }
    panel.parentNode.removeChild(panel);
    panel = null;
    document.body.appendChild(kept);
    kept = null;
    document.title = saved.title;
    window.scrollTo(saved.x, saved.y);
    if (saved.focus && saved.focus !== document.body && document.contains(saved.focus)) {
      saved.focus.focus({preventScroll: true});
    }
    saved = null;
    locked = false;
    lastActivity = lastExtended = since;
    storageSet(ACTIVITY_KEY, String(since));
    if (live()) live().start();
    signal("unlocked");
  }

  // --- other tabs of this browser ---------------------------------------------------------

  function signal(what) {
    storageSet(SIGNAL_KEY, JSON.stringify({what: what, at: Date.now()}));
  }

  // Another tab was unlocked: if this browser is signed in again as the same person, this
  // tab opens too (nothing is shown that a reload would not show).
  function resume() {
    var token = cookieToken();
    if (!token || !kept) return;
    var sent = Date.now();
    post(attr("activity-url"))
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (locked && kept && data && data.user === attr("username")) restore(cookieToken(), sent);
      })
      .catch(function () { /* stays locked */ });
  }

  window.addEventListener("storage", function (event) {
    if (event.key !== SIGNAL_KEY || !event.newValue) return;
    var message;
    try { message = JSON.parse(event.newValue); } catch (e) { return; }
    // The tab that locked has ended the session already.
    if (message.what === "locked") lock({endSession: false});
    else if (message.what === "unlocked" && locked) resume();
  });

  // Leaving a locked page lets go of its content, whatever the browser keeps of the page.
  window.addEventListener("pagehide", function () { if (locked) kept = null; });

  ACTIVITY_EVENTS.forEach(function (type) {
    document.addEventListener(type, onActivity, {capture: true, passive: true});
  });
  document.addEventListener("visibilitychange", function () { if (!document.hidden) check(); });
  window.setInterval(check, 1000);
  if (loaded > (parseInt(storageGet(ACTIVITY_KEY) || "0", 10) || 0)) storageSet(ACTIVITY_KEY, String(loaded));

  var lockButton = document.querySelector("[data-lock-now]");
  if (lockButton) {
    lockButton.hidden = false;
    lockButton.addEventListener("click", function () { lock({endSession: true}); });
  }

  window.Threshold = window.Threshold || {};
  window.Threshold.lock = {sessionEnded: sessionEnded};
  check();
})();
