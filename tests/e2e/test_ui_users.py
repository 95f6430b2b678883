"""Several users in the web UI (P13): Alice signs in with her own token, the header says so, she
sees everyone's tasks and narrows them to hers with the user filter (Ongoing and Completed, kept
in the URL), acting on Bob's task is refused with the server's reason, and the Usage page shows
GPU-hours by user and by tag."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.api.test_tasks_api import submit, wait_state
from tests.e2e.a11y import assert_accessible
from tests.e2e.test_ui import confirm
from tests.server import AntServer


@pytest.fixture
def page(axe_page: Page) -> Page:
    """conftest's axe_page: axe checks these pages."""
    return axe_page


def as_user(server: AntServer, token: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=server.url, headers=headers, verify=False, timeout=30)


def test_alice_signs_in_filters_by_user_and_reads_usage(page: Page, server: AntServer) -> None:
    with server.client() as admin:
        tokens = {}
        for name in ("alice", "bob"):
            r = admin.post("/api/v1/users", json={"name": name})
            assert r.status_code == 201, r.text
            tokens[name] = r.json()["token"]
        submit(admin, "true", task_id="admins-done")
        wait_state(admin, "admins-done", "succeeded")
    with as_user(server, tokens["alice"]) as alice, as_user(server, tokens["bob"]) as bob:
        submit(alice, "sleep 60", task_id="a-run", n_gpus=1, tags=["sweep"])
        submit(alice, "true", task_id="a-done", n_gpus=1)
        submit(bob, "sleep 60", task_id="b-run", n_gpus=1)
        for task_id in ("a-run", "b-run"):
            wait_state(alice, task_id, "running")
        wait_state(alice, "a-done", "succeeded")

    # Sign in with her own token on the login page.
    page.goto(server.url)
    page.get_by_label("Token").fill(tokens["alice"])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("signed-in")).to_have_text("Signed in as alice")

    # Ongoing: everyone's tasks, each with its owner; the filter keeps hers (in the URL).
    page.get_by_role("link", name=re.compile("Ongoing Tasks")).click()
    mine, his = page.get_by_test_id("running-a-run"), page.get_by_test_id("running-b-run")
    expect(mine).to_contain_text("alice")
    expect(his).to_contain_text("bob")
    page.get_by_label("Show the tasks of").select_option("alice")
    expect(page).to_have_url(re.compile(r"/ongoing\?user=alice$"))
    expect(his).to_have_count(0)
    expect(mine).to_be_visible()
    assert_accessible(page, "Ongoing filtered by a user")

    # Bob's task: Kill is refused with the server's reason, and it runs on.
    page.get_by_label("Show the tasks of").select_option("")
    expect(page).to_have_url(re.compile(r"/ongoing$"))
    his.get_by_role("button", name="Kill").click()
    confirm(page, "Kill")
    expect(page.get_by_text("belongs to bob")).to_be_visible()
    with server.client() as admin:
        assert admin.get("/api/v1/tasks/b-run").json()["state"] == "running"

    # Completed, filtered by user through the server.
    page.get_by_role("link", name=re.compile("Completed Tasks")).click()
    expect(page.get_by_test_id("completed-admins-done")).to_be_visible()
    page.get_by_label("Show the tasks of").select_option("alice")
    expect(page).to_have_url(re.compile(r"/completed\?user=alice$"))
    expect(page.get_by_test_id("completed-a-done")).to_be_visible()
    expect(page.get_by_test_id("completed-admins-done")).to_have_count(0)

    # Usage: GPU-hours by user (running tasks up to now), then by tag.
    page.get_by_role("link", name="Usage").click()
    expect(page).to_have_url(re.compile(r"/usage$"))
    table = page.get_by_test_id("usage-table")
    expect(table.get_by_test_id("usage-row-alice")).to_contain_text("alice (me)")
    expect(table.get_by_test_id("usage-row-bob")).to_be_visible()
    expect(table.get_by_test_id("usage-row-admin")).to_have_count(0)  # "true" used no GPU
    assert_accessible(page, "Usage")
    page.get_by_label("Group by").select_option("tag")
    expect(table.get_by_test_id("usage-row-sweep")).to_be_visible()
    expect(table.get_by_test_id("usage-row-untagged")).to_contain_text("(no tag)")
    page.get_by_label("Window").select_option("24h")
    expect(table.get_by_test_id("usage-row-sweep")).to_be_visible()
    with server.client() as admin:
        for task_id in ("a-run", "b-run"):
            admin.post(f"/api/v1/tasks/{task_id}/kill")
