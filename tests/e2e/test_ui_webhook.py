"""P12 notifications in the web UI: the Create form's Webhook field reaches the task (a real
receiver on 127.0.0.1 gets its end), a bad URL is refused with the server's words, and the task
page shows the URL masked; the dashboard counts the deliveries."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.api.test_tasks_api import wait_state
from tests.e2e.test_ui import go, login
from tests.e2e.test_ui_create import fill_form
from tests.server import AntServer, wait_for
from tests.webhook_receiver import webhook_receiver


def test_the_webhook_field_from_create_to_the_post(page: Page, server: AntServer) -> None:
    with webhook_receiver() as hook:
        login(page, server)
        go(page, "Create New Task")
        fill_form(page, "echo from the form", task_id="hooked", gpus="1")
        page.get_by_label("Webhook URL").fill("hooks.example.com/x")
        page.get_by_role("button", name="Submit").click()
        expect(page.get_by_test_id("submit-error")).to_contain_text(
            "the webhook URL must be an http:// or https:// URL"
        )
        page.get_by_label("Webhook URL").fill(hook.url + "/ui/s3cret")
        page.get_by_role("button", name="Submit").click()
        expect(page.get_by_test_id("created-ids")).to_have_text("Created: hooked")
        with server.client() as c:
            wait_state(c, "hooked", "succeeded")
            assert c.get("/api/v1/tasks").json()["total"] == 1  # the refused one left nothing
        [told] = wait_for(lambda: hook.bodies("/ui/s3cret"))
        assert told["task_id"] == "hooked" and told["state"] == "succeeded"
        assert told["log_tail"] == ["from the form"]
        page.goto(f"{server.url}/tasks/hooked")
        expect(page.get_by_text(hook.url + "/…")).to_be_visible()
        expect(page.get_by_text("s3cret")).to_have_count(0)
        # The dashboard counts the deliveries (health, sent with each monitoring sample).
        go(page, "Dashboard")
        expect(page.get_by_test_id("webhooks")).to_have_text("Webhooks: 1 sent · 0 failed")
