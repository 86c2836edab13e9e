// Starts Swagger UI on /docs. A file, not an inline script: the hub's Content-Security-Policy
// allows scripts from the hub itself only.
"use strict";
window.addEventListener("load", () => {
  window.ui = window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
