"""TypeScript interfaces generated from the API's OpenAPI schema, for the web UI.

`python -m ant_scheduler.api.typescript > frontend/src/api/types.ts` regenerates the file; a test
fails when the committed file differs, so the UI and the API cannot drift apart silently.
"""

from __future__ import annotations

import json
import sys
from typing import Any

HEADER = (
    "// Generated from the ANT OpenAPI schema by `make types`"
    " (python -m ant_scheduler.api.typescript).\n// Do not edit by hand.\n"
)


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def ts_type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return _ref_name(schema["$ref"])
    if "anyOf" in schema or "oneOf" in schema:
        parts = [ts_type(s) for s in schema.get("anyOf", schema.get("oneOf", []))]
        return " | ".join(dict.fromkeys(parts))
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        return "string"
    if kind in ("integer", "number"):
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "null":
        return "null"
    if kind == "array":
        inner = ts_type(schema.get("items", {}))
        return f"({inner})[]" if "|" in inner else f"{inner}[]"
    if kind == "object" or "properties" in schema or "additionalProperties" in schema:
        if "properties" in schema:
            return _object_body(schema, indent="  ")
        extra = schema.get("additionalProperties")
        value = ts_type(extra) if isinstance(extra, dict) and extra else "unknown"
        return f"Record<string, {value}>"
    return "unknown"


def _object_body(schema: dict[str, Any], indent: str) -> str:
    required = set(schema.get("required", []))
    lines = ["{"]
    for name, prop in schema.get("properties", {}).items():
        optional = "" if name in required else "?"
        lines.append(f"{indent}{name}{optional}: {ts_type(prop)};")
    lines.append(indent[:-2] + "}")
    return "\n".join(lines)


def generate(openapi: dict[str, Any]) -> str:
    out = [HEADER]
    schemas = openapi.get("components", {}).get("schemas", {})
    for name in sorted(schemas):
        schema = schemas[name]
        if "properties" in schema:
            out.append(f"export interface {name} {_object_body(schema, '  ')}\n")
        else:
            out.append(f"export type {name} = {ts_type(schema)};\n")
    return "\n".join(out)


def app_openapi() -> dict[str, Any]:
    """The schema of the real app, built without starting anything."""
    from ant_scheduler.api.app import create_app
    from ant_scheduler.settings import Settings

    class NoEngine:
        settings = Settings()

    app = create_app(NoEngine(), token="unused", manage_engine=False)  # type: ignore[arg-type]
    schema: dict[str, Any] = app.openapi()
    return schema


if __name__ == "__main__":
    sys.stdout.write(generate(app_openapi()))
