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

  // Enter in a field checks in, as the big button does. Left to the browser, Enter would press
  // the form's first submit button: a person found as typed, or the hidden "Find". After the
  // namesake question Enter asks it again: only a tap adds someone new with the same name.
  form.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.isComposing) return;
    var field = event.target;
    if (field.tagName !== "INPUT" || /^(button|submit|reset|image|file)$/.test(field.type)) return;
    event.preventDefault();
    if (askNew) form.requestSubmit();
    else form.requestSubmit(button);
  });

  // Escape closes what the form opened: "More details", the namesake question, the people
  // found as typed (the name stays as typed).
  function closeDetails(target) {
    var details = target.closest && target.closest("details[open]");
    if (!details) return false;
    details.open = false;
    details.querySelector("summary").focus();
    return true;
  }

  function closeQuestion() {
    var errors = document.getElementById("form-errors");
    if (errors) errors.remove();
    matches.innerHTML = "";
    askNew = false;
    form.removeAttribute("data-ask-new");
    button.removeAttribute("name");
    button.textContent = button.getAttribute("data-plain-label");
    button.className = "primary big";
    nameInput.focus();
  }

  form.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || event.isComposing) return;
    if (closeDetails(event.target)) {
      event.preventDefault();
    } else if (askNew) {
      event.preventDefault();
      closeQuestion();
    } else if (matches.textContent.trim() && personInput.value === "") {
      event.preventDefault();
      window.clearTimeout(timer);
      lastQuery = nameInput.value.trim();  // shown again once the name changes
      matches.innerHTML = "";
      nameInput.focus();
    }
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

  // A phone's on-screen keyboard (and a pinch zoom) shrinks only the visual viewport, so a
  // button stuck to the bottom of the page would sit behind it: lift it to where it can be seen.
  var viewport = window.visualViewport;
  var submitBar = form.querySelector(".check-in-submit");
  if (viewport && submitBar) {
    var lift = function () {
      var layoutHeight = document.documentElement.clientHeight;
      var hidden = layoutHeight - viewport.height - viewport.offsetTop;
      submitBar.style.bottom = Math.max(0, Math.round(hidden)) + "px";
    };
    viewport.addEventListener("resize", lift);
    viewport.addEventListener("scroll", lift);
  }

  form.addEventListener("submit", function (event) {
    // "Find" (Enter in a field submits with it) shows the page again with the people found.
    if (event.submitter && event.submitter.name === "find") return;
    // The nonce already makes a second tap harmless; this just shows the tap was taken.
    window.setTimeout(function () { button.disabled = true; }, 0);
  });
})();
