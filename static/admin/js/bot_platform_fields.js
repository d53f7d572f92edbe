// The bot add page: show only the fieldsets the chosen platform uses. Change pages are
// already cut to their platform on the server (a bot's platform cannot change).
"use strict";
(function () {
  function update(select) {
    const platform = select.value;
    document.querySelectorAll("fieldset.platform-fields").forEach(function (fieldset) {
      fieldset.hidden = !platform || !fieldset.classList.contains("platform-" + platform);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    const select = document.querySelector("select#id_platform");
    if (!select) return;
    select.addEventListener("change", function () { update(select); });
    update(select);
  });
})();
