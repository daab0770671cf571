// The few behaviours the server-rendered pages need: live refresh, following a log, filtering a list, confirms.
(function () {
  "use strict";

  // Elements marked data-refresh="<seconds>" are re-fetched with the page and swapped in place, unless the user is
  // typing inside one of them.
  function refresher() {
    var blocks = document.querySelectorAll("[data-refresh][id]");
    if (!blocks.length) return;
    var seconds = parseFloat(blocks[0].getAttribute("data-refresh")) || 5;
    setInterval(function () {
      fetch(window.location.href, { headers: { "X-Requested-With": "refresh" }, cache: "no-store" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          var fresh = new DOMParser().parseFromString(html, "text/html");
          document.querySelectorAll("[data-refresh][id]").forEach(function (old) {
            if (old.contains(document.activeElement) && document.activeElement !== document.body) return;
            var replacement = fresh.getElementById(old.id);
            if (replacement) old.replaceWith(document.importNode(replacement, true));
          });
          document.dispatchEvent(new Event("ui:refreshed"));
        })
        .catch(function () { /* the next round tries again */ });
    }, seconds * 1000);
  }

  // <pre id="tail" data-read-url data-path data-offset>: append what the file gains, through the master's proxy.
  function tail() {
    var pre = document.getElementById("tail");
    if (!pre) return;
    var follow = document.getElementById("tail-follow");
    var offset = parseInt(pre.getAttribute("data-offset"), 10) || 0;
    var busy = false;
    pre.scrollTop = pre.scrollHeight;
    function poll() {
      if (busy) return;
      busy = true;
      var url = pre.getAttribute("data-read-url") + "?path=" + encodeURIComponent(pre.getAttribute("data-path")) +
        "&offset=" + offset + "&length=65536";
      fetch(url, { cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (chunk) {
          if (!chunk || !chunk.data) return;
          offset = chunk.offset + new TextEncoder().encode(chunk.data).length;
          pre.setAttribute("data-offset", String(offset));
          pre.appendChild(document.createTextNode(chunk.data));
          if (!follow || follow.checked) pre.scrollTop = pre.scrollHeight;
        })
        .catch(function () {})
        .then(function () { busy = false; });
    }
    setInterval(poll, 1000);
  }

  // <input data-filter="#table-id">: show only rows whose data-search text contains what is typed.
  function filters() {
    document.querySelectorAll("input[data-filter]").forEach(function (input) {
      function apply() {
        var needle = input.value.trim().toLowerCase();
        document.querySelectorAll(input.getAttribute("data-filter") + " tbody tr[data-search]").forEach(function (row) {
          row.hidden = needle !== "" && row.getAttribute("data-search").toLowerCase().indexOf(needle) < 0;
        });
      }
      input.addEventListener("input", apply);
      document.addEventListener("ui:refreshed", apply);
      apply();
    });
  }

  // <form data-confirm="question">: ask before destructive actions.
  function confirms() {
    document.addEventListener("submit", function (event) {
      var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
      if (question && !window.confirm(question)) event.preventDefault();
    }, true);
  }

  // Forms with a JSON mode: a tab switch shows one of the two fieldsets and records which one is used.
  function modes() {
    document.querySelectorAll("[data-mode-switch]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        event.preventDefault();
        var form = document.getElementById(link.getAttribute("data-form"));
        var mode = link.getAttribute("data-mode-switch");
        form.querySelector("input[name=mode]").value = mode;
        form.querySelectorAll("[data-mode]").forEach(function (el) { el.hidden = el.getAttribute("data-mode") !== mode; });
        document.querySelectorAll("[data-mode-switch]").forEach(function (l) {
          l.classList.toggle("active", l === link);
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    refresher();
    tail();
    filters();
    confirms();
    modes();
  });
})();
