"use strict";
// Swagger UI for /api/v1/ (a file of its own: the Content-Security-Policy allows no inline script).
// "Try it out" calls the API with this browser's session (changes carry the CSRF token) or, after
// "Authorize", with an API token, which Swagger UI keeps in memory only.
(function () {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.schemaUrl,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null,
    persistAuthorization: false,
    deepLinking: true,
    requestInterceptor: function (request) {
      if (request.method && !["GET", "HEAD", "OPTIONS"].includes(request.method.toUpperCase())) {
        request.headers["X-CSRFToken"] = root.dataset.csrfToken;
      }
      return request;
    },
  });
})();
