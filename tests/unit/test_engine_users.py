"""Several users in the engine, in-process (fake executor, real SQLite): owners, who may act on
what, per-user limits, fair share's usage, GPU-hours — and a restart keeps users and owners."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ant_scheduler.core.errors import (
    DuplicateUser,
    Forbidden,
    InvalidQuery,
    QueueLimit,
    TaskNotFound,
    UserNotFound,
)
from ant_scheduler.core.task import Dependency, TaskState
from ant_scheduler.core.users import ADMIN, ADMIN_NAME, hash_token
from ant_scheduler.engine import Engine
from ant_scheduler.executors.fake import FakeExecutor
from ant_scheduler.store import Store
from tests.unit.test_engine import Clock, engine_for, run
from tests.unit.test_engine_integrity import settle


def test_without_users_every_task_is_the_admins(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        (task,) = await engine.submit("a", task_id="a")
        assert task.owner == ADMIN_NAME
        assert [u.name for u in engine.users.list()] == [ADMIN_NAME]
        assert not engine.users.has_users()
        assert engine.authorize(ADMIN, "a").task_id == "a"

    run(tmp_path, body)


def test_users_own_their_tasks_and_act_only_on_them(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        alice, token = await engine.add_user("alice", admin=False, max_gpus=None, max_queued=None)
        bob, _ = await engine.add_user("bob", admin=False, max_gpus=None, max_queued=None)
        boss, _ = await engine.add_user("boss", admin=True, max_gpus=None, max_queued=None)
        # The token is shown once; only its hash is kept, and it finds the user.
        assert token.startswith("ant_") and alice.token_hash == hash_token(token)
        assert token not in str(engine.store.users())
        assert engine.users.by_token(token.encode()) == alice
        assert engine.users.by_token(b"ant_wrong") is None
        await engine.submit("a", task_id="mine", user=alice, tags=["shared"])
        await engine.submit("b", task_id="his", user=bob, tags=["shared"])
        await engine.submit("c", task_id="solo", user=alice, tags=["alone"])
        await settle()
        assert engine.get("mine").owner == "alice" and engine.get("his").owner == "bob"
        assert engine.authorize(alice, "mine").task_id == "mine"
        with pytest.raises(Forbidden, match="belongs to bob"):
            engine.authorize(alice, "his")
        with pytest.raises(TaskNotFound):
            engine.authorize(alice, "nobody")
        # An admin (the token's, or a user made admin) acts on every task.
        assert engine.authorize(ADMIN, "his").owner == "bob"
        assert engine.authorize(boss, "mine").owner == "alice"
        # A tag: only when every task carrying it is the user's own.
        engine.authorize_tag(alice, "alone")
        with pytest.raises(Forbidden, match="bob"):
            engine.authorize_tag(alice, "shared")
        engine.authorize_tag(boss, "shared")
        # The user filter.
        assert sorted(t.task_id for t in engine.list_tasks(owner="alice")[0]) == ["mine", "solo"]
        assert engine.list_tasks(owner="bob")[1] == 1
        with pytest.raises(InvalidQuery):
            engine.list_tasks(owner="Not A Name")
        # A restart's copy is still the owner's, whoever restarts it.
        ex.finish("his", 0)
        await settle()
        copy = await engine.restart("his")
        assert copy.owner == "bob"

    run(tmp_path, body)


def test_restart_with_dependents_only_over_ones_own(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        alice, _ = await engine.add_user("alice", admin=False, max_gpus=None, max_queued=None)
        bob, _ = await engine.add_user("bob", admin=False, max_gpus=None, max_queued=None)
        await engine.submit("p", task_id="prep", user=alice)
        await engine.submit("t", task_id="train", user=alice, after=[Dependency("prep")])
        await engine.submit("e", task_id="eval", user=bob, after=[Dependency("train")])
        await engine.submit("s", task_id="solo", user=alice)
        await engine.submit("s", task_id="solo-eval", user=alice, after=[Dependency("solo")])
        await settle()
        engine.authorize_dependents(alice, "solo")  # every task waiting for it is hers
        with pytest.raises(Forbidden, match="'eval' of bob depends on 'train'"):
            engine.authorize_dependents(alice, "train")
        with pytest.raises(Forbidden, match="'eval' of bob depends on 'prep'"):
            engine.authorize_dependents(alice, "prep")  # transitively: eval waits for train
        engine.authorize_dependents(ADMIN, "prep")
        with pytest.raises(Forbidden, match="belongs to alice"):
            engine.authorize_dependents(bob, "train")

    run(tmp_path, body)


def test_user_names_and_changes(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        await engine.add_user("alice", admin=False, max_gpus=2, max_queued=None)
        with pytest.raises(DuplicateUser):
            await engine.add_user("alice", admin=False, max_gpus=None, max_queued=None)
        with pytest.raises(DuplicateUser):
            await engine.add_user(ADMIN_NAME, admin=False, max_gpus=None, max_queued=None)
        for bad in ("Alice", "has space", "", "x" * 33, "-dash"):
            with pytest.raises(InvalidQuery):
                await engine.add_user(bad, admin=False, max_gpus=None, max_queued=None)
        with pytest.raises(InvalidQuery):
            await engine.add_user("carol", admin=False, max_gpus=-1, max_queued=None)
        changed, token = await engine.set_user("alice", max_gpus=None, max_queued=3)
        assert (changed.max_gpus, changed.max_queued, token) == (None, 3, None)
        old = engine.users.get("alice").token_hash
        changed, token = await engine.set_user("alice", new_token_=True)
        assert token is not None and changed.token_hash == hash_token(token) != old
        with pytest.raises(UserNotFound):
            await engine.set_user("nobody", max_gpus=1)
        with pytest.raises(InvalidQuery):
            await engine.remove_user(ADMIN_NAME)
        await engine.remove_user("alice")
        assert engine.users.by_token(token.encode()) is None
        with pytest.raises(UserNotFound):
            await engine.remove_user("alice")

    run(tmp_path, body)


def test_max_gpus_holds_a_users_tasks_and_no_one_elses(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        alice, _ = await engine.add_user("alice", admin=False, max_gpus=2, max_queued=None)
        bob, _ = await engine.add_user("bob", admin=False, max_gpus=None, max_queued=None)
        await engine.submit("a1", task_id="a1", n_gpus=2, user=alice)
        await engine.submit("a2", task_id="a2", n_gpus=1, user=alice)
        await engine.submit("b1", task_id="b1", n_gpus=1, user=bob)
        await settle()
        # a2 comes before b1, but alice holds her 2 GPUs: b1 starts, a2 waits with a reason.
        assert engine.get("a1").state is TaskState.RUNNING
        assert engine.get("b1").state is TaskState.RUNNING
        a2 = engine.task_dict(engine.get("a2"))
        assert a2["state"] == "queued"
        assert a2["pending_reason"] == (
            "alice holds 2 of 2 GPUs (max_gpus); this task needs 1: "
            "it waits for one of alice's tasks to end"
        )
        ex.finish("a1", 0)
        await settle()
        assert engine.get("a2").state is TaskState.RUNNING
        # Raising the limit lets more start at once.
        await engine.submit("a3", task_id="a3", n_gpus=1, user=alice)
        await settle()
        assert engine.get("a3").state is TaskState.RUNNING

    run(tmp_path, body)


def test_max_queued_refuses_a_submission_over_it(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        alice, _ = await engine.add_user("alice", admin=False, max_gpus=None, max_queued=2)
        await engine.submit("x", task_id="big", n_gpus=4)  # the admin's: all GPUs busy
        await engine.submit("a\nb", mode="multi", task_id="a[uuid]", n_gpus=1, user=alice)
        with pytest.raises(QueueLimit, match="at most 2 queued tasks"):
            await engine.submit("c", n_gpus=1, user=alice)
        assert engine.list_tasks(owner="alice")[1] == 2  # nothing more was stored
        await engine.submit("d", n_gpus=1)  # the admin has no limit
        ex.finish("big", 0)
        await settle()  # alice's two start: her queue is empty again
        await engine.submit("c\nd", mode="multi", task_id="c[uuid]", n_gpus=1, user=alice)

    run(tmp_path, body)


def test_usage_counts_gpu_hours_by_user_and_tag(tmp_path: Path) -> None:
    async def body(engine: Engine, ex: FakeExecutor, clock: Clock) -> None:
        alice, _ = await engine.add_user("alice", admin=False, max_gpus=None, max_queued=None)
        await engine.submit("a", task_id="a", n_gpus=2, user=alice, tags=["sweep", "lr-1"])
        await engine.submit("b", task_id="b", n_gpus=1)
        await settle()
        clock.now += 3600
        ex.finish("a", 0)
        await settle()
        clock.now += 1800  # b still runs: counted up to now
        by_user = engine.usage(7 * 86400, "user")
        assert {r["key"]: r["gpu_hours"] for r in by_user["rows"]} == {"alice": 2.0, "admin": 1.5}
        assert by_user["total"] == 3.5
        by_tag = engine.usage(7 * 86400, "tag")
        assert {r["key"]: r["gpu_hours"] for r in by_tag["rows"]} == {
            "sweep": 2.0,
            "lr-1": 2.0,
            "": 1.5,
        }
        assert by_tag["total"] == 3.5  # a task with two tags counts once
        # A window of the last half hour: only what was used in it.
        recent = engine.usage(1800, "user")
        assert {r["key"]: r["gpu_hours"] for r in recent["rows"]} == {"admin": 0.5}
        with pytest.raises(InvalidQuery):
            engine.usage(3600, "host")
        with pytest.raises(InvalidQuery):
            engine.usage(1, "user")

    run(tmp_path, body)


def test_fairshare_starts_the_user_with_less_usage_first(tmp_path: Path) -> None:
    async def main() -> None:
        ex, clock = FakeExecutor(), Clock()
        async with engine_for(tmp_path, ex, clock, RUNNER_policy="fairshare") as engine:
            alice, _ = await engine.add_user("alice", admin=False, max_gpus=None, max_queued=None)
            bob, _ = await engine.add_user("bob", admin=False, max_gpus=None, max_queued=None)
            # alice used all 4 GPUs for an hour
            await engine.submit("x", task_id="old", n_gpus=4, user=alice)
            await settle()
            clock.now += 3600
            await engine.submit("a\na\na\na", mode="multi", task_id="a[uuid]", user=alice, n_gpus=1)
            await engine.submit("b\nb", mode="multi", task_id="b[uuid]", user=bob, n_gpus=1)
            ex.finish("old", 0)
            await settle()
            held, usage = engine.owner_load()
            assert usage["alice"] == pytest.approx(4.0, rel=1e-2)
            # bob, who used nothing, gets his two first; alice the other two GPUs.
            running = [t for t in engine.list_tasks(states=[TaskState.RUNNING])[0]]
            assert sorted(t.owner for t in running) == ["alice", "alice", "bob", "bob"]
            assert held == {"alice": 2, "bob": 2}
        # After a restart the usage is read back from the store.
        ex2, clock2 = FakeExecutor(), clock
        async with engine_for(tmp_path, ex2, clock2, RUNNER_policy="fairshare") as engine:
            assert engine.fair_usage.ended("alice", clock2.now) == pytest.approx(4.0, rel=1e-2)
            assert engine.users.get("bob").name == "bob"
            assert engine.get("old").owner == "alice"

    asyncio.run(main())


def test_old_tasks_migrate_to_the_admin(tmp_path: Path) -> None:
    from ant_scheduler.store import MIGRATIONS
    from tests.unit.test_store import insert_into_old_schema, task

    path = tmp_path / "ant.db"
    with Store(path, migrations=MIGRATIONS[:15]) as s:
        insert_into_old_schema(s, [task("old", TaskState.SUCCEEDED, finished_at=5.0)])
    with Store(path) as s:
        old = s.get_task("old")
        assert old is not None and old.owner == ADMIN_NAME
        assert s.users() == []
        assert s.list_tasks(owner=ADMIN_NAME)[1] == 1
