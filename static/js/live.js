// Live snapshots over a websocket, with a polling fallback. Everything is tagged with a version
// and anything not newer than what is shown is ignored. A board's socket sends a whole snapshot
// on connect and after a sync, and otherwise a patch from the version shown to the next: the
// sections and headings that changed, and for each table that changed its order and its new or
// changed rows (keyed by arrival). A patch that does not start from the version shown asks for a
// sync, which brings a snapshot. Either way the focused control keeps its focus and the place the
// worker is looking at keeps its place on the screen.
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
    if (!msg || typeof msg.version !== "number" || msg.version <= version) return;
    if (msg.type === "snapshot") {
      keepPlace(function () { root.innerHTML = msg.html; return true; });
    } else if (msg.type !== "patch") {
      return;
    } else if (msg.from !== version || !keepPlace(function () { return patch(msg); })) {
      sync(); // a gap (or a screen not as the server thinks): a snapshot comes back
      return;
    }
    version = msg.version;
    root.setAttribute("data-version", String(version));
    tickWaits();
  }

  // --- patches -------------------------------------------------------------------------------

  var SECTIONS = ["waiting", "in_progress", "finished"];

  function own(object, key) {
    return Object.prototype.hasOwnProperty.call(object || {}, key);
  }

  function section(name) {
    return root.querySelector('[data-section="' + name + '"]');
  }

  function parse(html) {
    var holder = document.createElement("template");
    holder.innerHTML = html;
    return holder.content.firstElementChild;
  }

  function placeSection(name, html) {
    var old = section(name);
    var fresh = html === null ? null : parse(html);
    if (old && fresh) old.replaceWith(fresh);
    else if (old) old.remove();
    else if (fresh) {
      var next = null; // the next section shown, if any
      for (var i = SECTIONS.indexOf(name) + 1; i < SECTIONS.length && !next; i++) {
        next = section(SECTIONS[i]);
      }
      root.insertBefore(fresh, next);
    }
  }

  // Rows that did not change stay the same elements: only what is new, changed or in a new
  // place is touched. False when the screen does not hold what the patch starts from.
  function patch(msg) {
    var rows = {};
    root.querySelectorAll("tr[data-arrival]").forEach(function (tr) {
      rows[tr.getAttribute("data-arrival")] = tr;
    });
    SECTIONS.forEach(function (name) {
      if (own(msg.sections, name)) placeSection(name, msg.sections[name]);
      var place = own(msg.headings, name) && section(name);
      var heading = place && place.querySelector("h2");
      if (heading) heading.replaceWith(parse(msg.headings[name]));
    });
    return SECTIONS.every(function (name) {
      return !own(msg.tables, name) || placeRows(name, msg.tables[name], rows);
    });
  }

  function placeRows(name, table, rows) {
    var place = section(name);
    var body = place && place.querySelector("tbody");
    if (!body) return table.order.length === 0;
    Object.keys(table.rows || {}).forEach(function (id) {
      var fresh = parse(table.rows[id]);
      if (rows[id] && rows[id].parentNode === body) rows[id].replaceWith(fresh);
      rows[id] = fresh;
    });
    for (var i = 0; i < table.order.length; i++) {
      var row = rows[String(table.order[i])];
      if (!row) return false;
      if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
    }
    while (body.children.length > table.order.length) body.lastElementChild.remove();
    return true;
  }

  // --- the worker's place --------------------------------------------------------------------

  // Runs `change` and puts back the focus (on the control with the same data-focus-key) and
  // the scroll: the focused control, else the first row in view, stays where it was on the
  // screen; without either, the window keeps its scroll position. Returns what `change` did.
  function keepPlace(change) {
    var active = document.activeElement;
    var focusKey = active && root.contains(active) ? active.getAttribute("data-focus-key") : null;
    var x = window.scrollX, y = window.scrollY;
    var anchor = focusKey ? '[data-focus-key="' + focusKey + '"]' : rowInView();
    var before = anchor && root.querySelector(anchor).getBoundingClientRect().top;
    var done = change();
    var again = focusKey && root.querySelector(anchor);
    if (again && document.activeElement !== again) again.focus({preventScroll: true});
    var now = anchor && root.querySelector(anchor);
    window.scrollTo(x, y);
    if (now) window.scrollBy(0, now.getBoundingClientRect().top - before);
    return done;
  }

  // The first row at least partly in view, as a selector; none when the page is not scrolled.
  function rowInView() {
    if (window.scrollY <= 0) return null;
    var rows = root.querySelectorAll("tr[data-arrival]");
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].getBoundingClientRect().bottom > 0) {
        return 'tr[data-arrival="' + rows[i].getAttribute("data-arrival") + '"]';
      }
    }
    return null;
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
  // The server hands out a built board for up to 20 s (queues/board.py, BUILT_SECONDS): its
  // wait labels are brought to this moment at once, then every 20 s.
  tickWaits();
  window.setInterval(tickWaits, 20000);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) sync(); });
  if (!("WebSocket" in window)) { startPolling(); return; }
  connect();
})();
