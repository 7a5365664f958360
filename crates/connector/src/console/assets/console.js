// dtc console: progressive enhancement only; every page works without it.
// (No inline scripts: the Content-Security-Policy allows scripts from this file alone.)
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // The language switch submits itself.
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }
  // Deleting asks first.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  // The deliveries list refreshes itself while the box is ticked (remembered per browser).
  const auto = document.querySelector("input[data-auto-refresh]");
  if (auto) {
    auto.checked = window.localStorage.getItem("dtc-auto-refresh") !== "off";
    auto.addEventListener("change", () =>
      window.localStorage.setItem("dtc-auto-refresh", auto.checked ? "on" : "off"));
    window.setInterval(() => { if (auto.checked && !document.hidden) window.location.reload(); }, 5000);
  }
  // The New Connection dialog shows the fields of the chosen kind only; the other kind's
  // fieldset is disabled, so its required fields do not block the form.
  const kind = document.querySelector("select[data-kind-switch]");
  if (kind) {
    const show = () => {
      for (const set of document.querySelectorAll("fieldset[data-kind]")) {
        const on = set.dataset.kind === kind.value;
        set.disabled = !on;
        set.hidden = !on;
      }
    };
    kind.addEventListener("change", show);
    show();
  }
});
