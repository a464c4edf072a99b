// Live snapshots over a websocket, with a polling fallback. The server sends whole snapshots
// tagged with a version; anything not newer than what is shown is ignored.
(function () {
  "use strict";
  var root = document.querySelector("[data-live]");
  if (!root) return;
  var status = document.getElementById("live-status");
  var version = parseInt(root.getAttribute("data-version") || "-1", 10);
  var socket = null;
  var attempts = 0;
  var pollTimer = null;
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

  function poll() {
    fetch(root.getAttribute("data-poll"), {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) {
        if (r.redirected || r.status === 403 || r.status === 404) { window.location.reload(); return null; }
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
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({type: "sync", version: version}));
    }
  }

  function connect() {
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
      if (event.code === 4403) { window.location.reload(); return; }
      setStatus(status ? status.getAttribute("data-offline-text") : "", true);
      startPolling();
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    var delay = Math.min(MAX_BACKOFF_MS, 1000 * Math.pow(2, attempts)) * (0.5 + Math.random() / 2);
    attempts += 1;
    window.setTimeout(connect, delay);
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

  window.setInterval(sync, SYNC_MS);
  window.setInterval(tickWaits, 20000);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) sync(); });
  if (!("WebSocket" in window)) { startPolling(); return; }
  connect();
})();
