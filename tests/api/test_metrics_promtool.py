"""/metrics against Prometheus' own checker, and contrib/'s Grafana dashboard and scrape config
against what /metrics serves (promtool: Debian's `prometheus` package, `make promtool`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.test_tasks_api import submit, wait_state
from tests.server import AntServer, wait_for

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "contrib" / "grafana" / "ant.json"
SCRAPE_CONFIG = ROOT / "contrib" / "prometheus" / "prometheus.yml"
# `make promtool` unpacks it into the venv; one on the PATH does as well.
PROMTOOL = shutil.which("promtool") or shutil.which(
    "promtool", path=str(Path(sys.executable).parent)
)
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool missing: `make promtool`")


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """/metrics of a server with a task running on a GPU, one succeeded and one failed."""
    server = AntServer(workdir=tmp_path_factory.mktemp("metrics"), fake_gpus=2).start()
    try:
        with server.client() as c:
            submit(c, "sleep 300", n_gpus=1, task_id="trainer")
            submit(c, "true", task_id="fine")
            submit(c, "exit 3", task_id="broken")
            wait_state(c, "trainer", "running")
            wait_state(c, "fine", "succeeded")
            wait_state(c, "broken", "failed")

            # The GPU's sample shows the task's memory once it has been sampled.
            def sampled() -> str | None:
                text = c.get("/metrics").text
                return text if "ant_task_gpu_memory_used_bytes{" in text else None

            yield wait_for(sampled)
    finally:
        server.stop()


def series(text: str) -> dict[str, float]:
    """Each sample line as `name{labels}` -> value."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            found[key] = float(value)
    return found


def sample_names(text: str) -> set[str]:
    return {re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines() if line[:1] != "#"}


@needs_promtool
def test_promtool_accepts_the_metrics(scraped: str) -> None:
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=scraped, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_names_follow_the_conventions(scraped: str) -> None:
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", scraped, re.M))
    helps = set(re.findall(r"^# HELP (\S+) ", scraped, re.M))
    assert set(types) <= helps and len(types) > 15
    for name, kind in types.items():
        assert name.startswith("ant_"), name
        if kind == "counter":
            assert name.endswith("_total"), name
        if kind == "histogram":
            assert name.endswith("_seconds"), name  # every histogram of ANT is of a time
    assert "ant_gpu_memory_used_bytes" in types and "ant_gpu_utilization_ratio" in types


def test_the_dashboards_metrics_are_served(scraped: str) -> None:
    values = series(scraped)
    # GPU use per GPU and per task (the fake GPUs: 85 % and 2 GiB for an ANT task).
    held = [
        k
        for k in values
        if re.match(r'ant_task_gpu_utilization_ratio\{gpu="[01]",task_id="trainer"\}$', k)
    ]
    assert len(held) == 1 and values[held[0]] == 0.85
    assert values['ant_task_gpu_memory_used_bytes{task_id="trainer"}'] == 2 * 2**30
    assert sum(v for k, v in values.items() if k.startswith("ant_gpu_allocated{")) == 1
    # The queue, its wait, the outcomes, the version.
    assert values["ant_queue_length"] == 0
    assert values["ant_task_wait_seconds_count"] == 3
    assert values['ant_tasks_ended_total{state="succeeded"}'] == 1
    assert values['ant_tasks_ended_total{state="failed"}'] == 1
    assert values['ant_tasks_ended_total{state="lost"}'] == 0
    assert any(k.startswith("ant_build_info{version=") for k in values)


def dashboard_queries() -> list[str]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    return [t["expr"] for p in panels for t in p["targets"]] + [
        v["definition"] for v in dashboard["templating"]["list"] if "definition" in v
    ]


def test_the_dashboard_asks_only_for_served_metrics(scraped: str) -> None:
    served = sample_names(scraped)
    asked = {name for q in dashboard_queries() for name in re.findall(r"\bant_[a-z0-9_]+", q)}
    assert asked <= served, asked - served
    # What the dashboard is for: GPU use per GPU and per task, the queue and its wait, outcomes.
    assert {
        "ant_gpu_utilization_ratio",
        "ant_gpu_memory_used_bytes",
        "ant_task_gpu_utilization_ratio",
        "ant_task_gpu_memory_used_bytes",
        "ant_queue_length",
        "ant_task_wait_seconds_bucket",
        "ant_tasks_ended_total",
    } <= asked


@needs_promtool
def test_the_dashboards_queries_are_promql(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule (Grafana's variables filled in)."""
    filled = {"$__rate_interval": "5m", "$__range": "1h", "$instance": ".*"}
    rules = []
    for i, query in enumerate(dashboard_queries()):
        if query.startswith("label_values("):
            query = re.sub(r"label_values\((\w+), \w+\)", r"\1", query)
        for variable, value in filled.items():
            query = query.replace(variable, value)
        rules.append(f"      - record: dashboard:query{i}\n        expr: {json.dumps(query)}\n")
    path = tmp_path / "rules.yml"
    path.write_text("groups:\n  - name: dashboard\n    rules:\n" + "".join(rules))
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_the_scrape_config_is_valid_and_sends_the_token(tmp_path: Path) -> None:
    text = SCRAPE_CONFIG.read_text()
    assert "job_name: ant" in text and "metrics_path: /metrics" in text
    assert re.search(r"authorization:\n\s+type: Bearer\n\s+credentials_file: ", text)
    for name in ("ant.token", "ant-cert.pem"):  # promtool checks that the files exist
        (tmp_path / name).write_text("x\n")
        text = text.replace(f"/etc/prometheus/{name}", str(tmp_path / name))
    path = tmp_path / "prometheus.yml"
    path.write_text(text)
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, "check", "config", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
