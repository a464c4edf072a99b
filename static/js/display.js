// The waiting-room TV (templates/queues/display.html), on top of live.js, which replaces the
// contents of #display with each new snapshot. After every replacement this
//  - fits the waiting codes: the largest of four sizes (static/css/display.css) that shows
//    them all, and with the smallest, pages that turn every few seconds when they still do not
//    fit, each page saying "Page 1 of 3";
//  - plays a short chime when the site wants one and a call newer than any shown so far
//    appears: never on the first load, never for an undone call coming back to the top.
//    Whether the site wants one comes with every snapshot (data-chime), so turning it on or
//    off where the site is edited reaches a TV that is already showing, without a reload.
// Browsers refuse to play sound until someone has touched the page, so while the site wants a
// chime there is a "Tap to turn sound on" button, shown for as long as sound cannot play.
(function () {
  "use strict";
  var root = document.getElementById("display");
  if (!root) return;
  var SIZES = ["", "size-2", "size-3", "size-4"];
  var PAGE_MS = 8000;
  var page = 0;
  var pageTimer = null;

  function waitingList() {
    return root.querySelector(".waiting-codes ul");
  }

  function overflows(list) {
    return list.scrollHeight > list.clientHeight + 1;
  }

  // The codes in one long flow, cut into pages of whole rows that each fit the list's height:
  // [first, end) of each page. A page starts at a row, so its codes wrap there as they do in
  // the long flow (longer codes later on make fuller rows, so pages differ in size). As few
  // pages as fit, and the rows shared out evenly between them, so the last page is never a
  // lone row or two while the others are full.
  function rowsOf(list) {
    var items = list.children;
    var rows = [];
    var first = 0;
    for (var j = 1; j <= items.length; j++) {
      if (j === items.length || items[j].offsetTop !== items[first].offsetTop) {
        rows.push({first: first, end: j, top: items[first].offsetTop,
                   bottom: items[j - 1].offsetTop + items[j - 1].offsetHeight});
        first = j;
      }
    }
    return rows;
  }

  function fits(rows, from, to, height) {
    return rows[to - 1].bottom - rows[from].top <= height;
  }

  function pagesOf(list) {
    var height = list.clientHeight;
    var rows = rowsOf(list);
    // The fewest pages: each as many rows as fit, in turn.
    var greedy = [];
    var from = 0;
    for (var r = 1; r <= rows.length; r++) {
      if (r === rows.length || !fits(rows, from, r + 1, height)) {
        greedy.push([from, r]);
        from = r;
      }
    }
    // The same number of pages, the rows shared out evenly; the greedy cut if a page would not
    // fit (rows of different heights).
    var count = greedy.length;
    var even = [];
    from = 0;
    for (var p = 0; p < count; p++) {
      var to = from + Math.floor(rows.length / count) + (p < rows.length % count ? 1 : 0);
      if (!fits(rows, from, to, height)) {
        even = greedy;
        break;
      }
      even.push([from, to]);
      from = to;
    }
    return even.map(function (page) {
      return [rows[page[0]].first, rows[page[1] - 1].end];
    });
  }

  function showPage(list, pages) {
    var items = list.children;
    page = page % pages.length;
    var shown = pages[page];
    for (var i = 0; i < items.length; i++) {
      items[i].hidden = i < shown[0] || i >= shown[1];
    }
    var label = root.querySelector(".page-of");
    if (label) {
      label.textContent = pages.length > 1 ? root.getAttribute("data-page-text")
        .replace("%(page)s", String(page + 1)).replace("%(pages)s", String(pages.length)) : "";
    }
  }

  // Pages turn on a clock of their own: snapshots come every few seconds in a busy clinic, and
  // restarting the clock with each one would keep the first page up for good.
  var paged = null;

  function turn() {
    if (!paged) return;
    page += 1;
    showPage(paged.list, paged.pages);
  }

  function fit() {
    paged = null;
    var list = waitingList();
    if (list) {
      for (var k = 0; k < list.children.length; k++) list.children[k].hidden = false;
      var size = 0;
      list.className = SIZES[0];
      while (overflows(list) && size < SIZES.length - 1) {
        size += 1;
        list.className = SIZES[size];
      }
      var pages = overflows(list) ? pagesOf(list) : [[0, list.children.length]];
      showPage(list, pages);
      if (pages.length > 1) paged = {list: list, pages: pages};
    }
    if (paged && !pageTimer) pageTimer = window.setInterval(turn, PAGE_MS);
    if (!paged && pageTimer) {
      window.clearInterval(pageTimer);
      pageTimer = null;
    }
  }

  // --- the chime ------------------------------------------------------------------------------
  var soundButton = document.getElementById("sound-on");
  var audio = null;
  var latestCall = calledAt();

  function calledAt() {
    var current = root.querySelector("[data-called-at]");
    return current ? parseInt(current.getAttribute("data-called-at"), 10) || 0 : 0;
  }

  function soundPlays() {
    return audio !== null && audio.state === "running";
  }

  function wanted() {
    var current = root.querySelector("[data-chime]");
    return current !== null && current.getAttribute("data-chime") === "on";
  }

  function showSoundButton() {
    if (soundButton) soundButton.hidden = !wanted() || soundPlays();
  }

  // Two soft notes, made here: no file to fetch.
  function chime() {
    if (!wanted() || !soundPlays()) return;
    var start = audio.currentTime + 0.05;
    [[659.25, 0], [523.25, 0.45]].forEach(function (note) {
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.type = "sine";
      osc.frequency.value = note[0];
      gain.gain.setValueAtTime(0.0001, start + note[1]);
      gain.gain.exponentialRampToValueAtTime(0.3, start + note[1] + 0.03);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + note[1] + 0.9);
      osc.connect(gain).connect(audio.destination);
      osc.start(start + note[1]);
      osc.stop(start + note[1] + 1);
    });
  }

  function turnSoundOn() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    if (audio === null) {
      audio = new Context();
      audio.addEventListener("statechange", showSoundButton);
    }
    audio.resume().then(function () {
      showSoundButton();
      chime(); // so whoever tapped hears what the room will hear
    }, showSoundButton);
  }

  function newCall() {
    var at = calledAt();
    if (at <= latestCall) return;
    latestCall = at;
    chime();
  }

  if (soundButton) {
    soundButton.addEventListener("click", turnSoundOn);
    showSoundButton();
  }
  new MutationObserver(function () {
    fit();
    showSoundButton();
    newCall();
  }).observe(root, {childList: true});
  fit();
  window.addEventListener("resize", fit);
})();
