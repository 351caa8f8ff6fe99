(function () {
  "use strict";
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input.verdict-filter"));
  var search = document.getElementById("search");
  var shown = document.getElementById("shown");
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-verdict]"));
  var details = Array.prototype.slice.call(document.querySelectorAll("section[data-verdict]"));
  var problems = ["fail", "error", "unreachable", "unexpected-pass", "differs"];
  if (!search || !shown) { return; }
  function visible(el, on, q) {
    return on[el.getAttribute("data-verdict")] === true &&
      (q === "" || (el.getAttribute("data-search") || "").indexOf(q) !== -1);
  }
  function apply() {
    var on = {};
    boxes.forEach(function (b) { on[b.value] = b.checked; });
    var q = search.value.trim().toLowerCase();
    var n = 0;
    rows.forEach(function (r) { var ok = visible(r, on, q); r.hidden = !ok; if (ok) { n += 1; } });
    details.forEach(function (d) { d.hidden = !visible(d, on, q); });
    shown.textContent = n + " of " + rows.length + " shown";
  }
  boxes.forEach(function (b) { b.addEventListener("change", apply); });
  search.addEventListener("input", apply);
  document.getElementById("only-problems").addEventListener("click", function () {
    boxes.forEach(function (b) { b.checked = problems.indexOf(b.value) !== -1; });
    apply();
  });
  document.getElementById("show-all").addEventListener("click", function () {
    boxes.forEach(function (b) { b.checked = true; });
    search.value = "";
    apply();
  });
  apply();
})();
