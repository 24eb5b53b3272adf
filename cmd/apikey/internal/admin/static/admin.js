// Progressive enhancement for the apikey admin site: copy-to-clipboard
// buttons. Every page works without this script.
(function () {
  "use strict";
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) return;
    var status = document.querySelector(".copy-status");
    button.hidden = false;
    button.addEventListener("click", function () {
      var done = function (ok) {
        if (status) status.textContent = ok ? "Copied to the clipboard." : "Copy failed: select the key and copy it by hand.";
      };
      field.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(function () { done(true); }, function () { done(document.execCommand("copy")); });
      } else {
        done(document.execCommand("copy"));
      }
    });
  });
  // Select the whole key when its field gets focus.
  document.querySelectorAll("input.token").forEach(function (input) {
    input.addEventListener("focus", function () { input.select(); });
  });
})();
