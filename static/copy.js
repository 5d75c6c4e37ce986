// Copy buttons beside a SHA-256, a link or a recipe: shown only where the clipboard can be written
// (the text stays selectable without them), and each click says "Copied" to screen readers too.
(function () {
  "use strict";
  if (!navigator.clipboard) return;
  const live = document.createElement("p");
  live.className = "visually-hidden";
  live.setAttribute("role", "status");
  live.setAttribute("aria-live", "polite");
  document.body.appendChild(live);
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    const target = document.getElementById(button.dataset.copy);
    if (!target) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(
        function () { live.textContent = "Copied."; },
        function () { live.textContent = "Could not copy: select the text and copy it by hand."; }
      );
    });
  });
})();
