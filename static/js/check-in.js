// Check-in: known people appear as the name is typed; choosing one checks them in as
// themselves instead of registering them again. Without this script the form still works.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var form = document.getElementById("check-in-form");
  if (!form) return;
  var nameInput = form.querySelector('input[name="name"]');
  var personInput = form.querySelector('input[name="person"]');
  var matches = document.getElementById("matches");
  var selected = document.getElementById("selected-person");
  var selectedText = document.getElementById("selected-text");
  var button = document.getElementById("check-in-button") || form.querySelector("button.big");
  // After a namesake was pointed out, tapping a person checks them in straight away.
  var askNew = form.hasAttribute("data-ask-new");
  var timer = null, lastQuery = null, chosenName = null;

  function search() {
    var q = nameInput.value.trim();
    if (q === lastQuery) return;
    lastQuery = q;
    // A POST: a name must never travel in a URL (server logs, history). It changes nothing.
    // Form-encoded, not FormData: the server takes no multipart body but a scanned consent's.
    var body = new URLSearchParams();
    body.append("csrfmiddlewaretoken", form.querySelector('input[name="csrfmiddlewaretoken"]').value);
    body.append("name", q);
    fetch(nameInput.getAttribute("data-search-url"), {method: "POST", body: body, credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) { if (nameInput.value.trim() === q) matches.innerHTML = html; })
      .catch(function () {});
  }

  function clearChoice() {
    personInput.value = "";
    chosenName = null;
    selected.hidden = true;
    matches.querySelectorAll(".match").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
  }

  nameInput.addEventListener("input", function () {
    if (chosenName !== null && nameInput.value !== chosenName) clearChoice();
    window.clearTimeout(timer);
    timer = window.setTimeout(search, 150);
  });

  matches.addEventListener("click", function (event) {
    var match = event.target.closest(".match");
    if (!match || askNew) return;
    event.preventDefault();
    personInput.value = match.getAttribute("data-person");
    chosenName = match.getAttribute("data-name");
    nameInput.value = chosenName;
    matches.querySelectorAll(".match").forEach(function (b) { b.setAttribute("aria-pressed", String(b === match)); });
    var helps = match.getAttribute("data-what-helps");
    var greeting = match.getAttribute("data-returning") ? "data-welcome" : "data-first";
    selectedText.textContent = selected.getAttribute(greeting) + " " + chosenName +
      (helps ? " — " + selected.getAttribute("data-helps") + " " + helps : "");
    selected.hidden = false;
    button.focus();
  });

  document.getElementById("clear-person").addEventListener("click", function () {
    clearChoice();
    nameInput.focus();
  });

  form.addEventListener("submit", function (event) {
    // "Find" (Enter in a field submits with it) shows the page again with the people found.
    if (event.submitter && event.submitter.name === "find") return;
    // The nonce already makes a second tap harmless; this just shows the tap was taken.
    window.setTimeout(function () { button.disabled = true; }, 0);
  });
})();
