// apikeyportal: adds a working Copy button next to a secret. Without
// JavaScript the button stays hidden and the secret can be selected by hand.
(function () {
  "use strict";
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    var status = document.querySelector(".copy-status");
    if (!source) { return; }
    function say(text) { if (status) { status.textContent = text; } }
    function fallback() {
      var range = document.createRange();
      range.selectNodeContents(source);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      try {
        say(document.execCommand("copy") ? "Copied." : "Press Ctrl+C (⌘C) to copy the selected key.");
      } catch (e) {
        say("Press Ctrl+C (⌘C) to copy the selected key.");
      }
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = source.textContent.trim();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { say("Copied."); }, fallback);
      } else {
        fallback();
      }
    });
  });
})();
