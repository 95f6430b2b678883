// The API docs page (/api/docs): Swagger UI from the npm package swagger-ui-dist, bundled into
// ANT's own assets. Nothing is loaded from another origin and there is no inline script, so the
// page works offline and under ANT's Content-Security-Policy.
import SwaggerUIBundle from "swagger-ui-dist/swagger-ui-bundle.js";
import "swagger-ui-dist/swagger-ui.css";

SwaggerUIBundle({
  url: "/api/openapi.json",
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  deepLinking: true,
  // The default validator badge would send the schema to a public service.
  validatorUrl: null,
  // "Try it out" runs in the browser with the session cookie: changes need the CSRF header.
  requestInterceptor: (request) => {
    request.headers["X-ANT-CSRF"] = "1";
    return request;
  },
});
