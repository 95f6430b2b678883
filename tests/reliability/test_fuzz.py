"""Fuzzing: schemathesis against the OpenAPI schema, and random multi-mode text at the parser."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.reality import check_reality
from tests.server import AntServer

ST = str(Path(sys.executable).parent / "st")
# Fuzzed commands must not run anything: tasks ask for more GPUs than exist by default, and the
# server's PATH holds no programs (only shell builtins could run, inside a temporary directory).
SAFE = {"RUNNER_default_n_gpus": 64}


def safe_server(server_factory: type[AntServer]) -> AntServer:
    server = server_factory(fake_gpus=1, config=SAFE)
    empty = server.workdir / "empty-path"
    empty.mkdir()
    server.args[0:1] = ["env", f"PATH={empty}", sys.executable]
    return server.start()


def test_schemathesis_finds_no_server_error(server_factory: type[AntServer]) -> None:
    server = safe_server(server_factory)
    r = subprocess.run(
        [
            ST,
            "run",
            f"{server.url}/api/openapi.json",
            "-H",
            f"Authorization: Bearer {server.token}",
            "-c",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
            "-n",
            os.environ.get("ANT_FUZZ_EXAMPLES", "30"),
            "-w",
            "1",
            "--request-timeout",
            "10",
            "--phases",
            "examples,fuzzing",
            # Event and log streams stay open by design; they are covered by their own tests.
            "--exclude-path-regex",
            "(/events|/log/stream)$",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=server.workdir,  # schemathesis keeps a cache folder where it runs
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert httpx.get(server.url + "/api/").status_code == 200
    with server.client() as c:
        check_reality(c, server.state_dir)


text_lines = st.lists(
    st.one_of(
        st.text(max_size=40),
        st.sampled_from(
            [
                "ant_n_gpus=2 echo a",
                "ant_task_id=[uuid8] x",
                "ant_task_id='a b' x",
                'ant_envar={"K": "V"} y',
                "ant_envar={bad",
                "# comment",
                "x \\",
                "{rand int 1 2}",
                "{rand float 9 1}",
                "ant_task_id=[nope] z",
                "\\",
                "",
            ]
        ),
    ),
    max_size=12,
).map("\n".join)


def test_random_multi_mode_text_never_breaks_the_api(server_factory: type[AntServer]) -> None:
    server = safe_server(server_factory)

    with server.client() as c:

        @given(text_lines)
        @settings(
            max_examples=int(os.environ.get("ANT_FUZZ_EXAMPLES", "150")),
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        )
        def check(text: str) -> None:
            before = c.get("/api/v1/tasks", params={"limit": 1}).json()["total"]
            r = c.post("/api/v1/tasks", json={"command": text, "mode": "multi"})
            assert r.status_code in (201, 400, 409), (r.status_code, r.text)
            after = c.get("/api/v1/tasks", params={"limit": 1}).json()["total"]
            if r.status_code == 201:
                assert after == before + len(r.json()["tasks"])
            else:
                assert set(r.json()) == {"error"} and after == before

        check()
        check_reality(c, server.state_dir)
