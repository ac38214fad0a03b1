"use strict";
// Starts Swagger UI on the page's spec URL (a data attribute: the page holds no inline code, CSP script-src 'self').
document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    validatorUrl: null, // no badge fetched from a third party
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
