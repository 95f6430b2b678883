import asyncio

from ant_scheduler.events import EventBus


def test_ids_are_contiguous_and_resume_works() -> None:
    bus = EventBus(capacity=100)
    first = bus.publish("a", {"n": 1})
    bus.publish("b", {"n": 2})
    bus.publish("c", {"n": 3})
    cursor = bus.parse_cursor(first.id)
    assert cursor == 1
    assert [e.type for e in bus.events_after(cursor)] == ["b", "c"]
    assert bus.parse_cursor(None) == 3
    assert bus.events_after(3) == []


def test_unknown_or_stale_ids_ask_for_resync() -> None:
    bus = EventBus(capacity=3)
    for n in range(10):
        bus.publish("x", n)
    assert bus.parse_cursor("other:5") is None
    assert bus.parse_cursor(f"{bus.boot}:2") is None  # fell out of the ring
    assert bus.parse_cursor(f"{bus.boot}:99") is None  # from the future
    assert bus.parse_cursor(f"{bus.boot}:abc") is None
    assert bus.parse_cursor(f"{bus.boot}:7") == 7
    assert bus.is_gap(2) and not bus.is_gap(7)


def test_encode_is_sse() -> None:
    bus = EventBus()
    event = bus.publish("task_added", {"task_id": "x"})
    text = event.encode().decode()
    assert text == f'id: {bus.boot}:1\nevent: task_added\ndata: {{"task_id":"x"}}\n\n'


def test_wait_wakes_on_publish() -> None:
    async def scenario() -> list[str]:
        bus = EventBus()
        seen: list[str] = []

        async def reader() -> None:
            await bus.wait(0, timeout=5)
            seen.extend(e.type for e in bus.events_after(0))

        task = asyncio.create_task(reader())
        await asyncio.sleep(0.01)
        bus.publish("ping", None)
        await asyncio.wait_for(task, 5)
        return seen

    assert asyncio.run(scenario()) == ["ping"]
