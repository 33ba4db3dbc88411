// The step forms of a sequence show only the fields of each step's kind.
(function () {
  "use strict";
  var FIELDS = {
    wait: ["wait_seconds", "wait_weekday", "wait_time"],
    send: ["subject", "body"],
    branch: ["test", "attribute", "operator", "value", "mailing_list", "go_to"],
    add: ["mailing_list"],
    remove: ["mailing_list"],
    webhook: ["event"]
  };
  var ALL = ["wait_seconds", "wait_weekday", "wait_time", "subject", "body", "test",
    "attribute", "operator", "value", "mailing_list", "go_to", "event"];

  function show(step) {
    var kind = step.querySelector("select[name$='-kind']");
    if (!kind) { return; }
    var wanted = FIELDS[kind.value] || ALL;
    ALL.forEach(function (name) {
      step.querySelectorAll(".field-" + name).forEach(function (box) {
        // (the admin's boxes are flex containers: `hidden` alone would not hide them)
        box.style.display = wanted.indexOf(name) < 0 ? "none" : "";
      });
    });
    // A row whose every field is hidden goes too.
    step.querySelectorAll(".form-row").forEach(function (row) {
      var boxes = row.querySelectorAll(".fieldBox");
      if (boxes.length) {
        var empty = Array.prototype.every.call(boxes, function (b) {
          return b.style.display === "none";
        });
        row.style.display = empty ? "none" : "";
      }
    });
  }

  function showAll() {
    document.querySelectorAll(".inline-related").forEach(show);
  }

  document.addEventListener("change", function (event) {
    if (event.target.matches("select[name$='-kind']")) {
      show(event.target.closest(".inline-related"));
    }
  });
  document.addEventListener("formset:added", function (event) { show(event.target); });
  document.addEventListener("DOMContentLoaded", showAll);
}());
