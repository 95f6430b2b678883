"""The Create page in real Chromium: preview, a form that clears, env chips, Ctrl+Enter, and a
copied command that submits again as a new task."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.api.test_tasks_api import submit, wait_state
from tests.e2e.conftest import shot
from tests.e2e.test_ui import create, details, go, login
from tests.server import AntServer


def fill_form(
    page: Page, command: str, task_id: str = "", gpus: str = "", multi: bool = False
) -> None:
    page.get_by_role("radio", name="Multi" if multi else "Single").check()
    page.get_by_label("Task ID").fill(task_id)
    page.get_by_label("Number of GPUs").fill(gpus)
    page.get_by_label("Command").fill(command)


def test_preview_in_single_and_multi_mode(page: Page, server: AntServer) -> None:
    login(page, server)
    go(page, "Create New Task")
    fill_form(page, "python train.py --lr 0.1", task_id="pv-[uuid8]", gpus="2")
    page.get_by_role("button", name="Preview").click()
    preview = page.get_by_test_id("preview")
    expect(preview).to_contain_text("Would queue 1 task(s)")
    expect(preview).to_contain_text("ids from templates are drawn again at submit")
    row = page.get_by_test_id("preview-0")
    expect(row).to_contain_text(re.compile(r"pv-[0-9a-f]{8}"))
    expect(row).to_contain_text("python train.py --lr 0.1")
    expect(row.locator("td").nth(1)).to_have_text("2")

    multi = "ant_task_id=m-[phrase] echo a\n# a comment\nant_n_gpus=1 echo b \\\n  c\necho d"
    fill_form(page, multi, multi=True)
    expect(preview).to_have_count(0)  # a change makes the preview stale: it goes
    page.get_by_role("button", name="Preview").click()
    expect(preview).to_contain_text("Would queue 3 task(s)")
    expect(preview.locator("tbody tr")).to_have_count(3)
    expect(page.get_by_test_id("preview-0")).to_contain_text(re.compile(r"m-\w+-\w+"))
    expect(page.get_by_test_id("preview-1").locator("td").nth(1)).to_have_text("1")
    expect(page.get_by_test_id("preview-2")).to_contain_text("echo d")
    shot(page, "create-preview")
    with server.client() as c:
        assert c.get("/api/v1/tasks").json()["total"] == 0  # a preview queues nothing


def test_preview_shows_the_error_a_submit_would(page: Page, server: AntServer) -> None:
    login(page, server)
    with server.client() as c:
        submit(c, "true", task_id="taken")
    go(page, "Create New Task")
    fill_form(page, "echo ok\nant_n_gpus=x echo bad", multi=True)
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("preview-error")).to_contain_text("line 2")
    expect(page.get_by_test_id("preview")).to_have_count(0)
    fill_form(page, "echo again", task_id="taken")
    expect(page.get_by_test_id("preview-error")).to_have_count(0)
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("preview-error")).to_contain_text("duplicate task id 'taken'")


def test_the_form_clears_after_a_submit_and_ctrl_enter_submits(
    page: Page, server: AntServer
) -> None:
    login(page, server)
    go(page, "Create New Task")
    fill_form(page, "echo first", task_id="clear-me", gpus="0")
    page.get_by_label("Command").press("Control+Enter")
    expect(page.get_by_test_id("created-ids")).to_have_text("Created: clear-me")
    expect(page.get_by_label("Command")).to_have_value("")
    expect(page.get_by_label("Task ID")).to_have_value("")
    expect(page.get_by_label("Number of GPUs")).to_have_value("0")  # settings stay
    # A second submit is a new task, not a duplicate of the first; Cmd+Enter works too.
    page.get_by_label("Command").fill("echo second")
    page.get_by_label("Command").press("Meta+Enter")
    expect(page.get_by_test_id("created-ids")).to_have_text(re.compile(r"Created: [0-9a-f-]{36}"))
    expect(page.get_by_test_id("submit-error")).to_have_count(0)
    with server.client() as c:
        assert c.get("/api/v1/tasks").json()["total"] == 2


def test_remembered_env_vars_are_chips_with_a_clear(page: Page, server: AntServer) -> None:
    login(page, server)
    go(page, "Create New Task")
    expect(page.get_by_test_id("env-chips")).to_have_count(0)
    for i, (name, value) in enumerate(
        [("DATA", "/mnt/data/some/long/path/to/a/dataset"), ("K", "v")]
    ):
        page.get_by_role("button", name="+ Add variable").click()
        page.get_by_label(f"Variable {i + 1} name").fill(name)
        page.get_by_label(f"Variable {i + 1} value").fill(value)
    box = page.get_by_label("Variable 1 value").bounding_box()
    assert box is not None and box["width"] >= 300  # wide enough for a path
    page.reload()  # remembered in this browser
    chips = page.get_by_test_id("env-chips")
    expect(chips).to_contain_text("DATA=/mnt/data/some/long/path/to/a/dataset")
    expect(chips).to_contain_text("K=v")
    shot(page, "create-env-chips")
    chips.get_by_role("button", name="Clear DATA").click()
    expect(chips).not_to_contain_text("DATA=")
    expect(page.get_by_label("Variable 1 name")).to_have_value("K")
    page.get_by_role("button", name="+ Add variable").click()
    page.get_by_label("Variable 2 name").fill("OTHER")
    chips.get_by_role("button", name="Clear all").click()
    expect(chips).to_have_count(0)
    expect(page.get_by_label("Variable 1 name")).to_have_count(0)
    page.reload()
    expect(page.get_by_label("Command")).to_be_visible()
    expect(page.get_by_test_id("env-chips")).to_have_count(0)


def copy_command_of(page: Page, task_id: str) -> str:
    go(page, "Completed Tasks")
    details(page, task_id).get_by_role("button", name="Copy command").click()
    expect(page.get_by_text(f"Copied the command of {task_id}")).to_be_visible()
    return str(page.evaluate("navigator.clipboard.readText()"))


def test_copy_command_submits_again_as_a_new_task(page: Page, server: AntServer) -> None:
    login(page, server)
    with server.client() as c:
        [templated] = submit(c, "ant_task_id=cc-[phrase] echo copied", env={"K": "v"})
        wait_state(c, templated["task_id"], "succeeded")
    create(page, "echo literal", task_id="lit-1", gpus="1")
    expect(page.get_by_test_id("created-ids")).to_have_text("Created: lit-1")
    with server.client() as c:
        wait_state(c, "lit-1", "succeeded")

    copied = copy_command_of(page, templated["task_id"])
    assert copied.startswith("ant_task_id='cc-[phrase]' ")
    create(page, copied)
    created = page.get_by_test_id("created-ids")
    expect(created).to_have_text(re.compile(r"Created: cc-\w+-\w+"))
    expect(created).not_to_have_text(f"Created: {templated['task_id']}")

    copied = copy_command_of(page, "lit-1")
    assert "lit-1" not in copied and copied.startswith("ant_n_gpus=1 ")
    create(page, copied)
    expect(page.get_by_test_id("created-ids")).to_have_text(re.compile(r"Created: [0-9a-f-]{36}"))
    with server.client() as c:
        tasks = c.get("/api/v1/tasks").json()["tasks"]
        assert sorted(t["command"] for t in tasks) == [
            "echo copied",
            "echo copied",
            "echo literal",
            "echo literal",
        ]
