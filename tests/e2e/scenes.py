"""A busy server to look at: running, queued, held and finished tasks at once, and a recovery to
offer. Shared by the accessibility, phone-width and screenshot journeys."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.api.test_tasks_api import wait_state
from tests.server import AntServer

# Output that looks like training: lines, then a progress bar that keeps moving.
TRAIN = (
    "echo 'epoch 1/3 loss=0.912'; echo 'epoch 2/3 loss=0.604'; "
    "for p in $(seq 1 99); do printf '\\r%d%%|####| %d/100 [00:0%d<00:30]' $p $p $((p % 10)); "
    "sleep 6; done"
)
RUNNING = ("train-resnet50-lr3e-4", "finetune-bert-base")
QUEUED = ("sweep-batch-large", "eval-imagenet")
HELD = "ablation-no-dropout"


def busy_server(server_factory: type[AntServer]) -> AntServer:
    """Two of four fake GPUs run tasks (tagged), a 4-GPU task waits for them and a 3-GPU one for
    it (a dependency), one task is held (it was queued when ANT stopped) and one was lost (it was
    running), plus finished ones."""
    server = server_factory(fake_gpus=4).start()
    with server.client() as c:
        c.post("/api/v1/tasks", json={"command": "sleep 600", "n_gpus": 4, "task_id": "old-run"})
        c.post(
            "/api/v1/tasks",
            json={"command": "python train.py --dropout 0", "n_gpus": 2, "task_id": HELD},
        )
        wait_state(c, "old-run", "running")
    server.stop()
    server.start()
    with server.client() as c:
        c.post("/api/v1/tasks", json={"command": "echo done; echo ok", "task_id": "prep-data"})
        # ANSI colours in its log: the log viewer's contrast is checked with them (axe).
        colours = "printf '\\033[30mblack \\033[31mred \\033[34mblue \\033[35mmagenta\\033[0m\\n'"
        c.post("/api/v1/tasks", json={"command": f"{colours}; exit 3", "task_id": "broken-config"})
        wait_state(c, "prep-data", "succeeded")
        wait_state(c, "broken-config", "failed")
        for name in RUNNING:
            task = {"command": TRAIN, "n_gpus": 1, "task_id": name, "tags": ["sweep-lr"]}
            c.post("/api/v1/tasks", json=task)
            wait_state(c, name, "running")
        c.post(
            "/api/v1/tasks",
            json={
                "command": "python sweep.py --batch 512",
                "n_gpus": 4,
                "task_id": QUEUED[0],
                "tags": ["sweep-batch"],
            },
        )
        c.post(
            "/api/v1/tasks",
            json={  # waits for the sweep to end, however it ends (a dependency)
                "command": "python eval.py --split val",
                "n_gpus": 3,
                "task_id": QUEUED[1],
                "after": [{"task_id": QUEUED[0], "condition": "any"}],
            },
        )
    return server


def open_logged_in(page: Page, server: AntServer) -> None:
    """Logs in through the URL; the recovery dialog (offered once per server start) is left open."""
    page.goto(f"{server.url}/?token={server.token}")
    expect(page.get_by_role("dialog", name="Recover tasks")).to_be_visible()


def close_recovery(page: Page) -> None:
    dialog = page.get_by_role("dialog", name="Recover tasks")
    dialog.get_by_role("button", name="Close", exact=True).first.click()
    expect(dialog).to_have_count(0)


def go(page: Page, link: str, path: str) -> None:
    page.get_by_role("link", name=re.compile(link)).first.click()
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))


def show_ongoing(page: Page) -> None:
    go(page, "Ongoing", "/ongoing")
    for name in RUNNING:
        expect(page.get_by_test_id(f"terminal-{name}")).to_contain_text("epoch 2/3")
    for name in QUEUED:
        expect(page.get_by_test_id(f"queued-{name}")).to_be_visible()
    expect(page.get_by_test_id(f"held-{HELD}")).to_be_visible()


def show_preview(page: Page) -> None:
    """Create, multi mode, with a preview of two tasks shown."""
    go(page, "Create", "/create")
    page.get_by_role("radio", name="Multi").check()
    page.get_by_label("Command").fill(
        "ant_n_gpus=2 ant_task_id=lr-[randint:1:9] python train.py --lr 3e-4\n"
        "ant_task_id=lr-small python train.py --lr 1e-4 --epochs 30"
    )
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("preview")).to_contain_text("Would queue 2 task(s)")
