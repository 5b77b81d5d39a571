// mxgate console: progressive enhancement only; every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Ask before a destructive action (forms with data-confirm).
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.getAttribute("data-confirm"))) { e.preventDefault(); }
    });
  });
  // Ask before one button of a form acts (button[data-confirm], e.g. delete).
  document.querySelectorAll("button[data-confirm]").forEach(function (b) {
    b.addEventListener("click", function (e) {
      if (!window.confirm(b.getAttribute("data-confirm"))) { e.preventDefault(); }
    });
  });
  // A box that selects every row of its table (data-select-all="name").
  document.querySelectorAll("input[data-select-all]").forEach(function (box) {
    box.addEventListener("change", function () {
      var name = box.getAttribute("data-select-all");
      document.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (b) { b.checked = box.checked; });
    });
  });
  // Pages that follow a live state reload themselves (data-refresh="seconds").
  var r = document.querySelector("[data-refresh]");
  if (r) {
    var s = parseInt(r.getAttribute("data-refresh"), 10);
    // Reload only once the page answers: during a failover the VIP does
    // not for a moment, and a failed reload would leave the browser's
    // error page, which never reloads again.
    var again = function () {
      window.fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
        .then(function (res) { if (res.ok) { window.location.reload(); } else { window.setTimeout(again, 1000); } })
        .catch(function () { window.setTimeout(again, 1000); });
    };
    if (s > 0) { window.setTimeout(again, s * 1000); }
  }
});
