"""The API's OpenAPI schema as JSON, built without starting anything.

`python -m ant_scheduler.api.openapi > build/openapi.json` is the first half of `make types`;
openapi-typescript (frontend/package.json, `npm run types`) turns it into the UI's
frontend/src/api/types.ts, and a test fails when that committed file is stale.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def app_openapi() -> dict[str, Any]:
    """The schema of the real app (no engine runs: routes are only described)."""
    from ant_scheduler.api.app import create_app
    from ant_scheduler.settings import Settings

    class NoEngine:
        settings = Settings()

    app = create_app(NoEngine(), token="unused", manage_engine=False)  # type: ignore[arg-type]
    return app.openapi()


if __name__ == "__main__":
    json.dump(app_openapi(), sys.stdout, indent=2)
    sys.stdout.write("\n")
