// The part of swagger-ui-dist's prebuilt bundle that the docs page uses (the package has no types).
declare module "swagger-ui-dist/swagger-ui-bundle.js" {
  interface SwaggerRequest {
    headers: Record<string, string>;
    [key: string]: unknown;
  }
  interface SwaggerUIOptions {
    url: string;
    dom_id: string;
    presets?: unknown[];
    layout?: string;
    deepLinking?: boolean;
    validatorUrl?: string | null;
    requestInterceptor?: (request: SwaggerRequest) => SwaggerRequest;
  }
  interface SwaggerUIBundleFn {
    (options: SwaggerUIOptions): unknown;
    presets: { apis: unknown };
  }
  const SwaggerUIBundle: SwaggerUIBundleFn;
  export default SwaggerUIBundle;
}
