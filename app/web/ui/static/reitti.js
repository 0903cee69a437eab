// Reitti's only script: the route form follows the event type without a button press.
// Without JavaScript the "Show the form" button does the same. A pointer's choice
// reloads at once; from the keyboard the arrows only move, and Enter confirms, so that
// browsing the list with the arrow keys does not reload the page at every step.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    var byKeyboard = false;
    select.addEventListener("keydown", function (event) {
      byKeyboard = event.key !== "Enter";
      if (event.key === "Enter" && select.value) {
        event.preventDefault();
        select.form.submit();
      }
    });
    select.addEventListener("pointerdown", function () { byKeyboard = false; });
    select.addEventListener("change", function () {
      if (!byKeyboard && select.value) select.form.submit();
    });
  });
  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();
});
