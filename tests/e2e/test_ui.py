"""Journeys through the web UI in real Chromium against `ant serve --fake-gpus 4`."""

from __future__ import annotations

import re
from urllib.parse import urlparse

from playwright.sync_api import Locator, Page, Request, expect

from tests.api.test_tasks_api import wait_state
from tests.e2e.conftest import shot
from tests.server import AntServer

# The pages' URLs, by the name of their link in the header.
PAGES = {
    "Dashboard": "/",
    "Create New Task": "/create",
    "Ongoing Tasks": "/ongoing",
    "Completed Tasks": "/completed",
}


def login(page: Page, server: AntServer) -> None:
    page.goto(f"{server.url}/?token={server.token}")
    expect(page.get_by_test_id("gpu-0")).to_be_visible()


def go(page: Page, name: str) -> None:
    page.get_by_role("link", name=re.compile(name)).click()
    expect(page).to_have_url(re.compile(re.escape(PAGES[name]) + "$"))


def details(page: Page, task_id: str) -> Locator:
    """Open a row of the Completed table (its details, actions and output) and return it."""
    row = page.get_by_test_id(f"completed-{task_id}")
    row.get_by_role("button", name=f"Details of {task_id}").click()
    expect(row.get_by_role("button", name="Delete", exact=True)).to_be_visible()
    return row


def confirm(page: Page, button: str) -> None:
    """Answer the confirmation a kill, a delete or a bulk action asks for."""
    dialog = page.get_by_role("alertdialog")
    dialog.get_by_role("button", name=button, exact=True).click()
    expect(dialog).to_have_count(0)


def create(
    page: Page, command: str, task_id: str = "", gpus: str = "", multi: bool = False
) -> None:
    go(page, "Create New Task")
    page.get_by_role("radio", name="Multi" if multi else "Single").check()
    page.get_by_label("Task ID").fill(task_id)
    page.get_by_label("Number of GPUs").fill(gpus)
    page.get_by_label("Command").fill(command)
    page.get_by_role("button", name="Submit").click()


def test_login_form_for_missing_or_wrong_token(page: Page, server: AntServer) -> None:
    page.goto(server.url + "/")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    page.get_by_label("Token").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Invalid token")
    shot(page, "login")
    page.get_by_label("Token").fill(server.token or "")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("gpu-0")).to_be_visible()
    page.goto(f"{server.url}/?token=bad")
    expect(page.get_by_test_id("gpu-0")).to_be_visible()  # the cookie from before still works


def test_submit_watch_kill_complete_restart(page: Page, server: AntServer) -> None:
    login(page, server)
    shot(page, "dashboard")
    command = (
        "for i in 1 2 3; do echo tick$i; done; printf '\\033[31mred text\\033[0m\\n'; "
        "for p in 10 20 30; do printf '\\r%d%%|###| %d/100' $p $p; done; echo; sleep 60"
    )
    create(page, command, task_id="ui-single", gpus="1")
    expect(page.get_by_test_id("created-ids")).to_have_text("Created: ui-single")
    expect(page.get_by_text("Queued 1 task(s): ui-single")).to_be_visible()  # toast
    shot(page, "create")
    go(page, "Ongoing Tasks")
    terminal = page.get_by_test_id("terminal-ui-single")
    expect(terminal).to_contain_text("tick3")
    expect(terminal).to_contain_text("30%|###| 30/100")
    expect(terminal.locator("span", has_text="red text")).to_have_css("color", "rgb(232, 106, 106)")
    expect(page.get_by_test_id("progress-ui-single")).to_contain_text("30%")
    shot(page, "ongoing")
    page.get_by_test_id("running-ui-single").get_by_role("button", name="Kill").click()
    confirm(page, "Kill")
    expect(page.get_by_text("Killed: ui-single")).to_be_visible()
    go(page, "Completed Tasks")
    card = page.get_by_test_id("completed-ui-single")
    expect(card).to_contain_text("killed")
    details(page, "ui-single")
    expect(page.get_by_test_id("output-ui-single")).to_contain_text("tick1")
    shot(page, "completed")
    card.get_by_role("button", name="Copy command").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("ant_n_gpus=1 ")  # a new task: the literal id is left out
    card.get_by_role("button", name="View full log").click()
    expect(page.get_by_test_id("full-log")).to_contain_text("tick2")
    page.get_by_role("button", name="Close log").click()
    card.get_by_role("button", name="Restart").click()
    expect(page.get_by_text("Queued ui-single-restart-1")).to_be_visible()
    go(page, "Ongoing Tasks")
    expect(page.get_by_test_id("running-ui-single-restart-1")).to_be_visible()
    page.get_by_test_id("running-ui-single-restart-1").get_by_role("button", name="Kill").click()
    confirm(page, "Kill")
    expect(page.get_by_test_id("running-ui-single-restart-1")).to_have_count(0)


def test_multi_submit_search_and_bulk_delete(page: Page, server: AntServer) -> None:
    login(page, server)
    create(page, "ant_task_id=m-one echo one\n# comment\nant_task_id=m-two echo two", multi=True)
    expect(page.get_by_test_id("created-ids")).to_have_text("Created: m-one, m-two")
    create(page, "echo other", task_id="other-task")
    create(page, "ant_n_gpus=x echo bad", multi=True)
    expect(page.get_by_test_id("submit-error")).to_contain_text("line 1")
    go(page, "Completed Tasks")
    expect(page.get_by_test_id("completed-other-task")).to_be_visible()
    page.get_by_label("Search tasks").fill("m-")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_test_id("completed-other-task")).to_have_count(0)
    expect(page.get_by_test_id("completed-m-one")).to_be_visible()
    expect(page.get_by_test_id("completed-m-two")).to_be_visible()
    page.get_by_label("Select all on this page").check()
    page.get_by_role("button", name="Delete selected").click()
    confirm(page, "Delete")
    expect(page.get_by_text(re.compile(r"Deleted m-\w+, m-\w+"))).to_be_visible()
    expect(page.get_by_test_id("completed-m-one")).to_have_count(0)
    with server.client() as c:
        assert c.get("/api/v1/tasks", params={"q": "m-"}).json()["total"] == 0
        assert c.get("/api/v1/tasks/other-task").status_code == 200


def test_gpu_toggle_makes_a_task_wait_with_its_reason(page: Page, server: AntServer) -> None:
    login(page, server)
    for i in range(4):
        page.get_by_label(f"GPU {i} enabled").uncheck()
        expect(page.get_by_test_id(f"gpu-{i}-state")).to_have_text("disabled")
    create(page, "echo on-gpu", task_id="waits", gpus="1")
    go(page, "Ongoing Tasks")
    row = page.get_by_test_id("queued-waits")
    expect(row).to_contain_text("disabled")
    shot(page, "queue-waiting")
    go(page, "Dashboard")
    page.get_by_label("GPU 2 enabled").check()
    go(page, "Completed Tasks")
    expect(page.get_by_test_id("completed-waits")).to_contain_text("succeeded")
    with server.client() as c:
        assert c.get("/api/v1/tasks/waits").json()["gpu_ids"] == [2]


def test_queue_promote_and_delete(page: Page, server: AntServer) -> None:
    login(page, server)
    with server.client() as c:
        c.post("/api/v1/tasks", json={"command": "sleep 60", "n_gpus": 4, "task_id": "hog"})
        for name in ("qa", "qb", "qc"):
            c.post("/api/v1/tasks", json={"command": "true", "n_gpus": 1, "task_id": name})
    go(page, "Ongoing Tasks")
    expect(page.get_by_test_id("queued-qc")).to_contain_text("3")
    page.get_by_test_id("queued-qc").get_by_role("button", name="Move to top").click()
    expect(page.get_by_test_id("queued-qc").locator("td[data-label=Position]")).to_have_text("1")
    page.get_by_test_id("queued-qb").get_by_role("button", name="Delete").click()
    confirm(page, "Delete")
    expect(page.get_by_test_id("queued-qb")).to_have_count(0)
    page.get_by_test_id("running-hog").get_by_role("button", name="Kill").click()
    confirm(page, "Kill")


def test_restart_server_and_restore_through_the_dialog(
    page: Page, server_factory: type[AntServer]
) -> None:
    server = server_factory(fake_gpus=1).start()
    login(page, server)
    with server.client() as c:
        c.post("/api/v1/tasks", json={"command": "sleep 60", "n_gpus": 1, "task_id": "blocker"})
        c.post(
            "/api/v1/tasks", json={"command": "echo restored-ok", "n_gpus": 1, "task_id": "later"}
        )
        c.post("/api/v1/tasks", json={"command": "echo x", "n_gpus": 1, "task_id": "dropme"})
    go(page, "Ongoing Tasks")
    expect(page.get_by_test_id("queued-later")).to_be_visible()
    server.stop()
    expect(page.get_by_role("alert")).to_contain_text("Lost the connection")
    server.start()
    # The open page reconnects by itself, resyncs, and offers the recovery dialog.
    expect(page.get_by_role("alert")).to_have_count(0, timeout=30_000)
    expect(page.get_by_test_id("queued-later")).to_have_count(0)  # held now, not queued
    dialog = page.get_by_role("dialog", name="Recover tasks")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_test_id("recover-later")).to_be_visible()
    shot(page, "recovery-dialog")
    dialog.get_by_role("button", name="Delete dropme").click()
    confirm(page, "Delete")
    expect(dialog.get_by_test_id("recover-dropme")).to_have_count(0)
    expect(dialog.get_by_test_id("group-lost")).to_contain_text("blocker")  # was running
    dialog.get_by_test_id("group-held").get_by_role("button", name="Select all", exact=True).click()
    dialog.get_by_role("button", name=re.compile("Restore selected")).click()
    expect(page.get_by_text("Restored later")).to_be_visible()
    dialog.get_by_role("button", name="Close", exact=True).first.click()
    go(page, "Completed Tasks")
    expect(page.get_by_test_id("completed-later")).to_contain_text("succeeded")
    page.reload()
    expect(page.get_by_test_id("completed-later")).to_be_visible()
    expect(page.get_by_role("dialog", name="Recover tasks")).to_have_count(0)  # once per start


def test_pages_fit_a_phone_screen(page: Page, server: AntServer) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, server)
    with server.client() as c:
        c.post("/api/v1/tasks", json={"command": "echo phone; sleep 30", "task_id": "phone"})
    for name in ("Dashboard", "Create New Task", "Ongoing Tasks", "Completed Tasks"):
        go(page, name)
        page.wait_for_timeout(300)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{name} is {width}px wide on a 390px screen"
        shot(page, "phone-" + name.split()[0].lower())
    with server.client() as c:
        c.post("/api/v1/tasks/phone/kill")


def test_the_queue_is_cards_on_a_phone_with_every_action_on_screen(
    page: Page, server: AntServer
) -> None:
    """P11: at 390 px the queue hid its GPUs column and pushed Move to top / Delete off-screen."""
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, server)
    with server.client() as c:
        c.post("/api/v1/tasks", json={"command": "sleep 30", "task_id": "hog", "n_gpus": 4})
        c.post("/api/v1/tasks", json={"command": "true", "task_id": "waits", "n_gpus": 2})
    go(page, "Ongoing Tasks")
    row = page.get_by_test_id("queued-waits")
    gpus = row.locator('td[data-label="GPUs"]')  # labelled on the card (CSS ::before)
    expect(gpus).to_be_visible()
    expect(gpus).to_have_text("2")
    expect(row.locator('td[data-label="Waiting because"]')).to_contain_text("needs 2 GPUs")
    for name in ("Move to top", "Delete"):
        button = row.get_by_role("button", name=name)
        expect(button).to_be_visible()
        box = button.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (name, box)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "phone-queue")
    row.get_by_role("button", name="Delete").click()
    confirm(page, "Delete")
    expect(page.get_by_test_id("queued-waits")).to_have_count(0)
    with server.client() as c:
        c.post("/api/v1/tasks/hog/kill")


def test_live_lines_control_is_remembered(page: Page, server: AntServer) -> None:
    login(page, server)
    with server.client() as c:
        c.post("/api/v1/tasks", json={"command": "seq 1 15; sleep 60", "task_id": "lines"})
    go(page, "Ongoing Tasks")
    terminal = page.get_by_test_id("terminal-lines")
    expect(terminal).to_contain_text("15")
    page.get_by_label("Live lines", exact=True).fill("3")
    expect(terminal.locator(".term-line")).to_have_count(3)
    page.reload()
    expect(page).to_have_url(server.url + "/ongoing")  # a reload stays on the page
    expect(page.get_by_label("Live lines", exact=True)).to_have_value("3")
    page.get_by_test_id("running-lines").get_by_role("button", name="Kill").click()
    confirm(page, "Kill")


def test_env_editor_is_remembered_and_used(page: Page, server: AntServer) -> None:
    login(page, server)
    go(page, "Create New Task")
    page.get_by_role("button", name="+ Add variable").click()
    page.get_by_label("Variable 1 name").fill("GREETING")
    page.get_by_label("Variable 1 value").fill("hello env")
    page.get_by_text("Special variables").click()
    expect(page.get_by_text("conda run --live-stream -n <env>")).to_be_visible()
    page.reload()
    expect(page.get_by_label("Variable 1 value")).to_have_value("hello env")
    create(page, 'echo "got $GREETING"', task_id="envtask")
    expect(page.get_by_test_id("created-ids")).to_have_text("Created: envtask")
    go(page, "Completed Tasks")
    details(page, "envtask")
    expect(page.get_by_test_id("output-envtask")).to_contain_text("got hello env")


def test_download_and_bulk_restart(page: Page, server: AntServer) -> None:
    login(page, server)
    with server.client() as c:
        for name in ("b-1", "b-2"):
            c.post("/api/v1/tasks", json={"command": f"echo content-of-{name}", "task_id": name})
    go(page, "Completed Tasks")
    expect(page.get_by_test_id("completed-b-2")).to_be_visible()
    with page.expect_download() as download:
        details(page, "b-1").get_by_role("link", name="Download").click()
    assert "content-of-b-1" in download.value.path().read_text()
    page.get_by_label("Select b-1").check()
    page.get_by_label("Select b-2").check()
    with page.expect_download() as bulk:
        page.get_by_role("button", name="Download selected").click()
    text = bulk.value.path().read_text()
    assert "===== b-1 =====" in text and "content-of-b-2" in text
    page.get_by_label("Select b-1").check()
    page.get_by_label("Select b-2").check()
    page.get_by_role("button", name="Restart selected").click()
    confirm(page, "Restart")
    expect(page.get_by_text(re.compile(r"Queued b-\d-restart-1, b-\d-restart-1"))).to_be_visible()
    expect(page.get_by_test_id("completed-b-1-restart-1")).to_be_visible()


def test_terminal_follows_output_unless_scrolled_up(page: Page, server: AntServer) -> None:
    login(page, server)
    with server.client() as c:
        c.post(
            "/api/v1/tasks",
            json={
                "command": "for i in $(seq 1 400); do echo row$i; done; sleep 60",
                "task_id": "scroll",
            },
        )
    go(page, "Ongoing Tasks")
    terminal = page.get_by_test_id("terminal-scroll")
    expect(terminal).to_contain_text("row400")
    at_bottom = "el => el.scrollHeight - el.scrollTop - el.clientHeight < 8"
    assert terminal.evaluate(at_bottom)
    terminal.evaluate("el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
    page.wait_for_timeout(700)  # a few terminal snapshots arrive meanwhile
    assert terminal.evaluate("el => el.scrollTop") == 0
    with server.client() as c:
        c.post("/api/v1/tasks/scroll/kill")


def test_completed_pages_through_history(page: Page, server: AntServer) -> None:
    login(page, server)
    text = "\n".join(f"ant_task_id=h-{i:02d} true" for i in range(30))
    with server.client() as c:
        c.post("/api/v1/tasks", json={"command": text, "mode": "multi"})
    go(page, "Completed Tasks")
    expect(page.get_by_text("1-30 of 30")).to_be_visible()
    page.get_by_label("Rows per page").select_option("25")
    expect(page.get_by_text("1-25 of 30")).to_be_visible()
    page.get_by_role("button", name="Next page").click()
    expect(page.get_by_text("26-30 of 30")).to_be_visible()
    expect(page.locator("[data-testid^=completed-h-]")).to_have_count(5)


def test_task_page_by_url_live_and_after_a_reload(page: Page, server: AntServer) -> None:
    login(page, server)
    with server.client() as c:
        command = "echo first-line; printf '40%%|##| 4/10\\n'; sleep 60"
        c.post("/api/v1/tasks", json={"command": command, "task_id": "solo", "n_gpus": 1})
        wait_state(c, "solo", "running")
    page.goto(server.url + "/tasks/solo")
    state = page.get_by_test_id("task-state")
    expect(state).to_have_text("running")
    expect(page.get_by_test_id("task-solo")).to_contain_text("echo first-line")
    expect(page.get_by_test_id("terminal-solo")).to_contain_text("first-line")
    expect(page.get_by_test_id("progress-solo")).to_contain_text("40%")
    page.reload()
    expect(page).to_have_url(server.url + "/tasks/solo")
    expect(state).to_have_text("running")
    expect(page.get_by_test_id("terminal-solo")).to_contain_text("first-line")
    shot(page, "task-running")
    page.get_by_role("button", name="Kill").click()
    confirm(page, "Kill")
    expect(page.get_by_text("Killed: solo")).to_be_visible()
    expect(state).to_have_text("killed")  # from the event: the page reads nothing again
    expect(page.get_by_test_id("output-solo")).to_contain_text("first-line")
    expect(page.get_by_test_id("task-solo")).to_contain_text("Exit code")
    shot(page, "task-ended")
    page.get_by_role("button", name="Restart").click()
    expect(page).to_have_url(server.url + "/tasks/solo-restart-1")
    expect(state).to_have_text(re.compile("queued|running"))
    # From a list to a task: its id is a link.
    go(page, "Ongoing Tasks")
    page.get_by_test_id("running-solo-restart-1").get_by_role("link", name="solo-restart-1").click()
    expect(page).to_have_url(server.url + "/tasks/solo-restart-1")
    expect(state).to_have_text("running")
    page.get_by_role("button", name="Kill").click()
    confirm(page, "Kill")
    expect(state).to_have_text("killed")
    page.goto(server.url + "/tasks/no-such-task")
    expect(page.get_by_test_id("task-missing")).to_contain_text("There is no task no-such-task")


def test_live_updates_come_from_events_not_from_reading_lists(
    page: Page, server: AntServer
) -> None:
    """The task lists are read when the page opens; after that, tasks changing state show from
    the events alone (only the queue is read again, for positions and reasons)."""
    login(page, server)
    with server.client() as c:
        c.post("/api/v1/tasks", json={"command": "sleep 60", "task_id": "live-a", "n_gpus": 1})
        wait_state(c, "live-a", "running")
    reads: list[str] = []

    def on_request(request: Request) -> None:
        if urlparse(request.url).path == "/api/v1/tasks" and request.method == "GET":
            reads.append(urlparse(request.url).query)

    page.on("request", on_request)
    page.goto(server.url + "/ongoing")
    expect(page.get_by_test_id("running-live-a")).to_be_visible()
    page.wait_for_timeout(500)
    assert any("state=running" in q for q in reads), reads  # the first read of the lists
    reads.clear()
    with server.client() as c:
        c.post("/api/v1/tasks/live-a/kill")
        expect(page.get_by_test_id("running-live-a")).to_have_count(0)
        expect(page.get_by_role("link", name="Ongoing Tasks: 0 running, 0 queued")).to_be_visible()
        c.post("/api/v1/tasks", json={"command": "sleep 1.5", "task_id": "live-b", "n_gpus": 1})
        expect(page.get_by_test_id("running-live-b")).to_be_visible()
        wait_state(c, "live-b", "succeeded")
        expect(page.get_by_test_id("running-live-b")).to_have_count(0)
    page.wait_for_timeout(800)  # time for any read that would follow
    assert [q for q in reads if "state=queued" not in q] == [], reads
    assert len(reads) <= 2, reads  # the queue, read again after live-b was queued


def test_old_hash_links_land_on_their_page(page: Page, server: AntServer) -> None:
    login(page, server)
    page.goto(server.url + "/#/ongoing")
    expect(page).to_have_url(server.url + "/ongoing")
    expect(page.get_by_role("heading", name=re.compile(r"^Running"))).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("Ongoing Tasks"))).to_have_class("active")
    page.goto(server.url + "/#/completed")
    expect(page).to_have_url(server.url + "/completed")
    expect(page.get_by_label("Search tasks")).to_be_visible()
    # An old link followed while the UI is open: only the hash changes.
    go(page, "Dashboard")
    page.evaluate("window.location.hash = '#/create'")
    expect(page).to_have_url(server.url + "/create")
    expect(page.get_by_label("Command")).to_be_visible()
