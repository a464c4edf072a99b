// The header's links on a phone: folded behind a "Menu" button, so the page starts with its
// own content and every link (Log out and Lock screen too) is one tap away, in a list, rather
// than off the edge of a row that scrolls sideways. Wider screens show the links as they are
// and never see the button (threshold.css). Without this script the row scrolls sideways.
//
// The button says whether the list is open (aria-expanded); Escape closes it and gives the
// focus back to the button; a tap or a focus outside the header closes it too. Listening on
// the document, not on the button, keeps working when the screen lock takes the page out of
// the document and puts it back.
(function () {
  "use strict";
  var header = document.querySelector("header.top");
  var button = header && header.querySelector(".menu-toggle");
  var nav = button && document.getElementById(button.getAttribute("aria-controls"));
  if (!nav) return;

  function setOpen(open) {
    button.setAttribute("aria-expanded", open ? "true" : "false");
    header.classList.toggle("menu-open", open);
  }

  header.classList.add("has-menu");
  button.hidden = false;
  setOpen(false);

  document.addEventListener("click", function (event) {
    if (event.target.closest(".menu-toggle") === button) {
      setOpen(button.getAttribute("aria-expanded") !== "true");
    } else if (!header.contains(event.target)) {
      setOpen(false);
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || !header.classList.contains("menu-open")) return;
    setOpen(false);
    button.focus();
  });
  document.addEventListener("focusin", function (event) {
    if (!header.contains(event.target)) setOpen(false);
  });
})();
