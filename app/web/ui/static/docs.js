// Starts Swagger UI on /docs (app/web/docs.py). A file, not an inline script, so that the
// page lives under the same CSP as the UI. No validator badge: it would call another host.
// No deep links: Swagger UI puts them inside the operation's button (axe: nested-interactive);
// no syntax colours: some of its themes' tokens are too faint on their dark ground (axe: color-contrast).
document.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.url,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: false,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,
    syntaxHighlight: false,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
  // Mend what axe finds in Swagger UI's own markup as it renders: the request body's editor
  // has no label, a copy button has no name, and a scrolling example cannot be reached from the keyboard.
  new MutationObserver(function () {
    root.querySelectorAll("textarea:not([aria-label])").forEach(function (area) {
      if (area.labels.length === 0) area.setAttribute("aria-label", area.classList.contains("body-param__text") ? "Request body" : "Value");
    });
    root.querySelectorAll(".copy-to-clipboard > button:not([aria-label])").forEach(function (button) {
      button.setAttribute("aria-label", "Copy to clipboard");
    });
    root.querySelectorAll(".highlight-code > pre:not([tabindex])").forEach(function (pre) {
      pre.setAttribute("tabindex", "0");
    });
  }).observe(root, { childList: true, subtree: true });
});
