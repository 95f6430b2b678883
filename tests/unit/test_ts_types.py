from pathlib import Path

from ant_scheduler.api.typescript import app_openapi, generate

TYPES = Path(__file__).resolve().parents[2] / "frontend" / "src" / "api" / "types.ts"


def test_committed_typescript_types_match_the_api() -> None:
    assert TYPES.read_text() == generate(app_openapi()), (
        "frontend/src/api/types.ts is stale: run `make types`"
    )


def test_generator_covers_the_shapes_we_use() -> None:
    text = generate(
        {
            "components": {
                "schemas": {
                    "X": {
                        "properties": {
                            "a": {"type": "string"},
                            "b": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                            "c": {"type": "array", "items": {"$ref": "#/components/schemas/Y"}},
                            "d": {"type": "object", "additionalProperties": {"type": "number"}},
                            "e": {"enum": ["p", "q"]},
                        },
                        "required": ["a"],
                    },
                    "Y": {"type": "string"},
                }
            }
        }
    )
    assert "export interface X {" in text
    assert "  a: string;" in text and "  b?: number | null;" in text
    assert "  c?: Y[];" in text and "  d?: Record<string, number>;" in text
    assert '  e?: "p" | "q";' in text and "export type Y = string;" in text
