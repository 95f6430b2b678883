"""The UI's TypeScript types are generated from the API's OpenAPI schema (`make types`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ant_scheduler.api.openapi import app_openapi
from ant_scheduler.core.task import ENDED_STATES
from ant_scheduler.wire import EndedState

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
TYPES = FRONTEND / "src" / "api" / "types.ts"


def test_committed_typescript_types_match_the_api(tmp_path: Path) -> None:
    if not (FRONTEND / "node_modules" / ".bin" / "openapi-typescript").exists():
        pytest.fail("openapi-typescript is missing: run `npm ci` in frontend/ (make test does)")
    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(app_openapi()))
    out = tmp_path / "types.ts"
    # The same command as `make types`: the generator's options live in package.json.
    subprocess.run(
        ["npm", "run", "--silent", "types", "--", str(schema), "-o", str(out)],
        cwd=FRONTEND,
        check=True,
        capture_output=True,
        timeout=120,
    )
    stale = "frontend/src/api/types.ts is stale: run `make types`"
    assert out.read_text() == TYPES.read_text(), stale


def test_the_ended_states_the_ui_imports_are_the_cores() -> None:
    assert {s.value for s in EndedState} == {s.value for s in ENDED_STATES}
    text = TYPES.read_text()
    values = ", ".join(f'"{s.value}"' for s in EndedState)
    assert "endedStateValues: ReadonlyArray<" in text and f"= [{values}];" in text
