// Signature pad for consents: draw with a finger, pen or mouse on the <canvas>; the drawing is
// written as a PNG data URL into the hidden field named by data-target. Without JavaScript the
// scanned signed form is the way to sign (the server refuses a consent with neither).
(function () {
  "use strict";
  document.querySelectorAll("[data-signature-pad]").forEach(function (pad) {
    var canvas = pad.querySelector("canvas");
    var field = document.getElementById(pad.dataset.target);
    var status = pad.querySelector("[data-signature-status]");
    var ctx = canvas.getContext("2d");
    var drawing = false, drawn = false, last = null;

    function blank() {
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.strokeStyle = "#111111";
      ctx.lineWidth = 3;
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
    }
    function point(event) {
      var box = canvas.getBoundingClientRect();
      return {
        x: (event.clientX - box.left) * (canvas.width / box.width),
        y: (event.clientY - box.top) * (canvas.height / box.height),
      };
    }
    function save() {
      field.value = drawn ? canvas.toDataURL("image/png") : "";
      status.textContent = drawn ? "Signed." : "";
    }
    canvas.addEventListener("pointerdown", function (event) {
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      drawing = true;
      last = point(event);
      ctx.beginPath();
      ctx.arc(last.x, last.y, 1.5, 0, Math.PI * 2);
      ctx.fillStyle = "#111111";
      ctx.fill();
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!drawing) return;
      var p = point(event);
      ctx.beginPath();
      ctx.moveTo(last.x, last.y);
      ctx.lineTo(p.x, p.y);
      ctx.stroke();
      last = p;
      drawn = true;
    });
    function stop() {
      if (!drawing) return;
      drawing = false;
      save();
    }
    canvas.addEventListener("pointerup", stop);
    canvas.addEventListener("pointercancel", stop);
    pad.querySelector("[data-signature-clear]").addEventListener("click", function () {
      drawn = false;
      blank();
      save();
    });
    blank();
    // A form shown again after an error keeps the signature already given.
    if (field.value) {
      var img = new Image();
      img.onload = function () { ctx.drawImage(img, 0, 0); drawn = true; save(); };
      img.src = field.value;
    }
  });
})();
