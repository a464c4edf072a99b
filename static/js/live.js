// Live snapshots over a websocket, with a polling fallback. The server sends whole snapshots
// tagged with a version; anything not newer than what is shown is ignored.
// The screen lock (lock.js) stops and restarts it through window.Threshold.live; when the
// session has ended it shows the lock rather than reloading (which would lose what was typed).
(function () {
  "use strict";
  var root = document.querySelector("[data-live]");
  if (!root) return;
  var status = document.getElementById("live-status");
  var version = parseInt(root.getAttribute("data-version") || "-1", 10);
  var socket = null;
  var attempts = 0;
  var pollTimer = null;
  var reconnectTimer = null;
  var stopped = false;
  var SYNC_MS = 15000, POLL_MS = 4000, MAX_BACKOFF_MS = 30000;

  function setStatus(text, offline) {
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("offline", !!offline);
  }

  function apply(msg) {
    if (!msg || msg.type !== "snapshot" || typeof msg.version !== "number") return;
    if (msg.version <= version) return;
    var focused = document.activeElement && document.activeElement.getAttribute("data-focus-key");
    version = msg.version;
    root.innerHTML = msg.html;
    root.setAttribute("data-version", String(version));
    if (focused) {
      var again = root.querySelector('[data-focus-key="' + focused + '"]');
      if (again) again.focus();
    }
    tickWaits();
  }

  // The session ended (signed out, idle, elsewhere): the lock if this page has one.
  function sessionEnded() {
    var lock = window.Threshold && window.Threshold.lock;
    if (lock) lock.sessionEnded();
    else if (!stopped) window.location.reload();
  }

  function poll() {
    // Marked as background: polling is not the person being there, so it never keeps the
    // session alive (clinic/idle.py).
    fetch(root.getAttribute("data-poll"), {
      credentials: "same-origin",
      headers: {"Accept": "application/json", "X-Threshold-Background": "1"}
    })
      .then(function (r) {
        if (stopped) return null;
        if (r.redirected || r.status === 401 || r.status === 403) { sessionEnded(); return null; }
        if (r.status === 404) { window.location.reload(); return null; }
        return r.ok ? r.json() : null;
      })
      .then(apply)
      .catch(function () {});
  }

  function startPolling() {
    if (pollTimer) return;
    poll();
    pollTimer = window.setInterval(poll, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer) window.clearInterval(pollTimer);
    pollTimer = null;
  }

  function sync() {
    if (stopped) return;
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({type: "sync", version: version}));
    }
  }

  function connect() {
    reconnectTimer = null;
    if (stopped) return;
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    try {
      socket = new WebSocket(scheme + window.location.host + root.getAttribute("data-ws"));
    } catch (e) {
      // Refused outright (e.g. a blocked port or policy): poll meanwhile, as after a close.
      setStatus(status ? status.getAttribute("data-offline-text") : "", true);
      startPolling();
      scheduleReconnect();
      return;
    }
    socket.onopen = function () {
      stopPolling();
      setStatus(status ? status.getAttribute("data-live-text") : "", false);
    };
    socket.onmessage = function (event) {
      attempts = 0;
      try { apply(JSON.parse(event.data)); } catch (e) { /* ignore a bad frame */ }
    };
    socket.onclose = function (event) {
      socket = null;
      if (stopped) return;
      if (event.code === 4401) { sessionEnded(); return; }
      if (event.code === 4403) { window.location.reload(); return; }
      setStatus(status ? status.getAttribute("data-offline-text") : "", true);
      startPolling();
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    var delay = Math.min(MAX_BACKOFF_MS, 1000 * Math.pow(2, attempts)) * (0.5 + Math.random() / 2);
    attempts += 1;
    reconnectTimer = window.setTimeout(connect, delay);
  }

  function tickWaits() {
    var now = Date.now();
    root.querySelectorAll(".wait[data-since]").forEach(function (el) {
      var minutes = Math.max(0, Math.floor((now - Date.parse(el.getAttribute("data-since"))) / 60000));
      el.textContent = minutes < 60 ? minutes + " min"
        : Math.floor(minutes / 60) + " h " + String(minutes % 60).padStart(2, "0");
      var warn = el.getAttribute("data-warn");
      if (warn) el.classList.toggle("long", minutes >= parseInt(warn, 10));
    });
  }

  function stop() {
    stopped = true;
    stopPolling();
    if (reconnectTimer) window.clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (socket) {
      // Its handlers go first: a late close event must not touch the socket of a restart.
      var closing = socket;
      socket = null;
      closing.onopen = closing.onmessage = closing.onclose = null;
      closing.close();
    }
  }

  function start() {
    if (!stopped) return;
    stopped = false;
    attempts = 0;
    if ("WebSocket" in window) connect(); else startPolling();
  }

  window.Threshold = window.Threshold || {};
  window.Threshold.live = {stop: stop, start: start};

  window.setInterval(sync, SYNC_MS);
  window.setInterval(tickWaits, 20000);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) sync(); });
  if (!("WebSocket" in window)) { startPolling(); return; }
  connect();
})();
