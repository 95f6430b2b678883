"""Tasks imported from ANT 1.1 in the recovery dialog: an interrupted one (held, its run kept as a
lost attempt) is listed with the interrupted tasks, a queued one with the queued tasks."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.server import AntServer

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ant1" / "recovery_v2.json"


def test_imported_interrupted_tasks_are_offered_as_interrupted(
    page: Page, server_factory: type[AntServer]
) -> None:
    server = server_factory(fake_gpus=2).start()
    with server.client() as c:
        r = c.post("/api/v1/import/ant1", json={"content": FIXTURE.read_text()})
        assert r.status_code == 200, r.text
        held = [t for t in c.get("/api/v1/tasks", params={"state": "held"}).json()["tasks"]]
    interrupted = {t["task_id"] for t in held if t["attempts"]}
    queued = {t["task_id"] for t in held} - interrupted
    assert "train-big" in interrupted and "eval-b" in queued  # the file's ongoing and queued
    page.goto(f"{server.url}/?token={server.token}")
    dialog = page.get_by_role("dialog")
    for task_id in interrupted:
        expect(dialog.get_by_test_id("group-lost")).to_contain_text(task_id)
    for task_id in queued:
        expect(dialog.get_by_test_id("group-held")).to_contain_text(task_id)
    expect(dialog.get_by_test_id("group-held")).not_to_contain_text("train-big")
