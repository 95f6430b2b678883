import random
import re
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ant_scheduler.core.errors import TaskRejected
from ant_scheduler.core.templates import expand_rand, expand_task_id, validate_task_id

NOW = datetime(2026, 5, 29, 23, 59, 1)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def expand(template: str, seed: int = 0) -> str:
    return expand_task_id(template, rng=random.Random(seed), now=NOW)


def test_uuid_forms() -> None:
    assert UUID.fullmatch(expand("[uuid]"))
    assert UUID.fullmatch(expand("uuid.uuid4()"))
    assert re.fullmatch(r"[0-9a-f]{8}", expand("[uuid8]"))
    assert expand("[uuid]", 1) != expand("[uuid]", 2)


def test_date_time_placeholders_use_the_given_clock() -> None:
    assert expand("[date]") == "20260529"
    assert expand("[time]") == "235901"
    assert expand("[datetime]") == "20260529-235901"


def test_phrases_and_randint() -> None:
    assert re.fullmatch(r"experiment-[a-z]+-[a-z]+", expand("experiment-[random_phrase]"))
    assert re.fullmatch(r"[a-z]+-[a-z]+", expand("[phrase]"))
    for seed in range(50):
        value = int(expand("ablation-[randint:1000:9999]", seed).split("-")[1])
        assert 1000 <= value <= 9999
    assert expand("[randint:5:5]") == "5"
    assert expand("[randint:-3:-3]") == "-3"


def test_seed_readme_examples() -> None:
    assert re.fullmatch(r"teacher-20260529-[0-9a-f]{8}", expand("teacher-[date]-[uuid8]"))
    assert re.fullmatch(
        r"experiment-[a-z]+-[a-z]+-[0-9a-f]{8}", expand("experiment-[random_phrase]-[uuid8]")
    )


def test_literal_text_is_kept() -> None:
    assert expand("plain_id.v2") == "plain_id.v2"


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("[foo]", "unknown placeholder '[foo]'"),
        ("x-[UUID]", "unknown placeholder '[UUID]'"),
        ("[randint:1]", "write [randint:START:END] with whole numbers"),
        ("[randint:a:b]", "write [randint:START:END] with whole numbers"),
        ("[randint:9:1]", "greater than END"),
        ("[]", "unknown placeholder '[]'"),
    ],
)
def test_bad_placeholders_are_rejected(template: str, fragment: str) -> None:
    with pytest.raises(TaskRejected, match=re.escape(fragment)):
        expand(template)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "a/b",
        "..",
        ".",
        ".hidden",
        "-rf",
        "a b",
        "x\x00y",
        "tab\there",
        "ümlaut",
        "a" * 129,
        "a\\b",
    ],
)
def test_unsafe_ids_are_rejected_not_rewritten(bad: str) -> None:
    with pytest.raises(TaskRejected):
        validate_task_id(bad)


def test_safe_ids_pass_unchanged() -> None:
    for ok in ["a", "A-b_c.9", "x" * 128, "first_task", "a..b"]:
        assert validate_task_id(ok) == ok


@given(st.text(max_size=40))
@settings(max_examples=300)
def test_any_accepted_id_stays_inside_the_log_dir(text: str) -> None:
    try:
        task_id = validate_task_id(expand_task_id(text, rng=random.Random(0), now=NOW))
    except TaskRejected:
        return
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,128}", task_id)
    root = Path("/logs/session")
    assert (root / f"{task_id}.log").resolve().parent == root


def test_rand_int_and_float() -> None:
    rng = random.Random(3)
    for _ in range(100):
        port = int(expand_rand("{rand int 4000 5000}", rng=rng))
        assert 4000 <= port <= 5000
        seed = float(expand_rand("{rand float 3.4 6.4}", rng=rng))
        assert 3.4 <= seed <= 6.4
    text = expand_rand("PORT={rand int 1 1} python x.py --a {rand int 2 2}", rng=rng)
    assert text == "PORT=1 python x.py --a 2"


def test_rand_is_per_occurrence() -> None:
    values = expand_rand(" ".join(["{rand int 0 1000000}"] * 5), rng=random.Random(1)).split()
    assert len(set(values)) > 1


@pytest.mark.parametrize(
    "bad",
    [
        "{rand int 5 1}",
        "{rand int a b}",
        "{rand int 1.5 2}",
        "{rand float x 1}",
        "{rand float 2 1}",
        "{rand str 1 2}",
        "{rand int 1}",
        "{rand}",
        "{rand float nan 1}",
        "{rand float 1 inf}",
    ],
)
def test_malformed_rand_is_rejected(bad: str) -> None:
    with pytest.raises(TaskRejected, match="bad random form"):
        expand_rand(f"python x.py {bad}", rng=random.Random(0))


def test_other_braces_are_left_alone() -> None:
    text = "awk '{print $1}' f && echo ${HOME} {random} {randomize 1 2}"
    assert expand_rand(text, rng=random.Random(0)) == text
