"""GPU memory packing and placement in the web UI (P13): the Create form's GPU memory field (its
preview, a bad size refused before anything is sent), the task page's declared memory and
placement, the over-use flag on the running card and the task page (a fake GPU made to use more
than declared), and a multi-GPU task's placement on a fake topology."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.api.test_tasks_api import submit, wait_state
from tests.e2e.a11y import assert_accessible
from tests.e2e.test_ui import go, login
from tests.e2e.test_ui_create import fill_form
from tests.server import AntServer, wait_for

G = 2**30


@pytest.fixture
def page(axe_page: Page) -> Page:
    """conftest's axe_page: axe checks these pages."""
    return axe_page


def test_gpu_memory_on_create_and_the_over_use_flag(
    page: Page, server_factory: type[AntServer]
) -> None:
    server = server_factory(fake_gpus=2).start()
    login(page, server)
    go(page, "Create New Task")
    fill_form(page, "sleep 60", task_id="eval-a")
    page.get_by_label("GPU memory").fill("lots")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_text("GPU memory must be a size such as 20G or 512M")).to_be_visible()
    page.get_by_label("GPU memory").fill("6G")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("preview-0")).to_contain_text("6.0 GiB")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_test_id("created-ids")).to_have_text("Created: eval-a")
    with server.client() as c:
        task = wait_state(c, "eval-a", "running")
        assert task["gpu_mem"] == 6 * G and task["gpu_ids"] == [0]
        # A second one shares GPU 0 and, on the fake GPU, uses more than it declared.
        submit(c, "sleep 60", task_id="eval-b", gpu_mem="4G", env={"ANT_FAKE_GPU_MEM": "7G"})
        wait_state(c, "eval-b", "running")
        wait_for(lambda: c.get("/api/v1/tasks/eval-b").json()["gpu_mem_over"])

    go(page, "Ongoing Tasks")
    card = page.get_by_test_id("running-eval-b")
    expect(card).to_contain_text("4.0 GiB of the GPU")
    expect(card.get_by_test_id("gpu-mem-over-eval-b")).to_have_text(
        "GPU memory over: 7.0 GiB used of 4.0 GiB declared"
    )
    expect(page.get_by_test_id("gpu-mem-over-eval-a")).to_have_count(0)  # within its share
    assert_accessible(page, "ongoing with a GPU memory over-use flag")
    with server.client() as c:  # a queued memory task's row says its share
        submit(c, "true", task_id="eval-c", gpu_mem="20G")
    expect(page.get_by_test_id("queued-eval-c")).to_contain_text("20.0 GiB of 1")
    expect(page.get_by_test_id("queued-eval-c")).to_contain_text(
        "needs 20 GiB of GPU memory but the largest usable GPU has 16 GiB"
    )

    go(page, "Dashboard")  # the shared GPU's card says by how many and how much is declared
    expect(page.get_by_test_id("gpu-0-shared")).to_have_text(
        "shared by 2 tasks · 10.0 GiB declared of 16.0 GiB"
    )
    expect(page.get_by_test_id("gpu-1-shared")).to_have_count(0)

    page.goto(f"{server.url}/tasks/eval-b")
    expect(page.get_by_text("4.0 GiB declared (shares one GPU); using 7.0 GiB")).to_be_visible()
    expect(page.get_by_test_id("gpu-mem-over")).to_have_text(
        "GPU memory over: 7.0 GiB used of 4.0 GiB declared"
    )
    expect(
        page.get_by_text("GPU 0 shared: declares 4 GiB, 6 GiB declared there already")
    ).to_be_visible()
    assert_accessible(page, "task page with the GPU memory over-use flag")


def test_a_multi_gpu_tasks_placement_on_the_task_page(
    page: Page, server_factory: type[AntServer]
) -> None:
    server = server_factory(
        fake_gpus=8, extra_args=["--fake-topology", "nvlink=0-3,4-7; socket=0-3,4-7"]
    ).start()
    with server.client() as c:
        submit(c, "sleep 60", task_id="one", n_gpus=1)
        submit(c, "sleep 60", task_id="four", n_gpus=4)
        assert wait_state(c, "four", "running")["gpu_ids"] == [4, 5, 6, 7]
    login(page, server)
    page.goto(f"{server.url}/tasks/four")
    expect(page.get_by_text("GPUs 4, 5, 6, 7: one NVLink island 1")).to_be_visible()
