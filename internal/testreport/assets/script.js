"use strict";
// The report's only script. The Content-Security-Policy allows it by its
// hash. It filters the matrix rows by name and status, sets how many runs
// the matrix shows, switches branch tabs, and titles cells on hover.
(function () {
  var q = document.getElementById("q");
  var status = document.getElementById("status");
  var runs = document.getElementById("runs");
  var cols = document.getElementById("cols");
  var sections = Array.prototype.slice.call(document.querySelectorAll("section.branch"));
  var tabs = Array.prototype.slice.call(document.querySelectorAll("nav.branches a"));

  var matrices = sections.map(function (section) {
    var table = section.querySelector("table.matrix");
    var rows = Array.prototype.slice.call(table.tBodies[0].rows).map(function (tr) {
      return { tr: tr, name: tr.cells[0].textContent.toLowerCase() };
    });
    return { table: table, rows: rows, runs: table.tHead.rows[0].cells.length - 1, shown: section.querySelector(".shown") };
  });

  function shownRuns() {
    var n = parseInt(runs.value, 10);
    return n > 0 ? n : Infinity;
  }

  // wanted reports whether a row's shown cells match the status filter.
  function wanted(tr, n, want) {
    var cells = tr.cells, end = Math.min(cells.length, n + 1), i, c;
    if (want === "now") {
      for (i = 1; i < end; i++) {
        c = cells[i].className;
        if (c) return c === "fail";
      }
      return false;
    }
    for (i = 1; i < end; i++) {
      c = cells[i].className;
      if (want === "failing" ? c === "fail" : c === "flaky") return true;
    }
    return false;
  }

  function apply() {
    var n = shownRuns();
    cols.textContent = n === Infinity ? "" : "table.matrix tr > :nth-child(n+" + (n + 2) + ") { display: none }";
    var words = q.value.toLowerCase().split(/\s+/).filter(Boolean);
    var want = status.value;
    matrices.forEach(function (m) {
      var shown = 0;
      m.rows.forEach(function (r) {
        var ok = words.every(function (w) { return r.name.indexOf(w) >= 0; });
        if (ok && want !== "all") ok = wanted(r.tr, n, want);
        r.tr.hidden = !ok;
        if (ok) shown++;
      });
      m.shown.textContent = "— " + shown + " of " + m.rows.length + " tests, " + Math.min(n, m.runs) + " of " + m.runs + " runs";
    });
  }

  function select(id) {
    sections.forEach(function (s) { s.hidden = s.id !== id; });
    tabs.forEach(function (a) { a.classList.toggle("active", a.getAttribute("href") === "#" + id); });
  }
  function fromHash() {
    var id = location.hash.slice(1);
    if (!sections.some(function (s) { return s.id === id; })) id = sections.length ? sections[0].id : "";
    select(id);
  }

  q.addEventListener("input", apply);
  status.addEventListener("change", apply);
  runs.addEventListener("change", apply);
  q.form.addEventListener("submit", function (e) { e.preventDefault(); });
  window.addEventListener("hashchange", fromHash);
  // hashchange fires after the click returns; show the tab at once so the
  // page never shows the old tab under a new hash.
  tabs.forEach(function (a) {
    a.addEventListener("click", function () { select(a.getAttribute("href").slice(1)); });
  });

  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("a.find");
    if (!a) return;
    e.preventDefault();
    q.value = a.getAttribute("data-q");
    status.value = "all";
    apply();
    a.closest("section").querySelector(".matrix-wrap").scrollIntoView();
  });

  // A pass or an absent cell carries no title in the file: it gets the
  // run's on hover.
  document.addEventListener("mouseover", function (e) {
    var td = e.target.closest && e.target.closest("table.matrix td");
    if (!td || td.title) return;
    var th = td.closest("table").tHead.rows[0].cells[td.cellIndex];
    td.title = (td.className === "pass" ? "passed" : "not run") + " · run " + th.title;
  });

  fromHash();
  apply();
  document.body.setAttribute("data-ready", "1");
})();
