import json
import random
import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ant_scheduler.core.durations import format_duration, parse_duration
from ant_scheduler.core.errors import TaskRejected
from ant_scheduler.core.parsing import (
    SubmitDefaults,
    format_copy_command,
    logical_lines,
    parse_submission,
    process_env,
    strip_ant_args,
)
from ant_scheduler.core.task import TaskSpec

NOW = datetime(2026, 5, 29, 12, 0, 0)


def parse(text: str, mode: str = "single", seed: int = 0, **defaults: object) -> list[TaskSpec]:
    return parse_submission(
        text,
        mode=mode,  # type: ignore[arg-type]
        defaults=SubmitDefaults(**defaults),  # type: ignore[arg-type]
        rng=random.Random(seed),
        now=NOW,
    )


def one(text: str, **defaults: object) -> TaskSpec:
    [spec] = parse(text, **defaults)
    return spec


SEED_MULTI = """# Running three commands with partially-defined parameters:
ant_n_gpus=4 ant_task_id="first_task" python first_task_.py \\
--dataset my_dataset \\
--batch_size 4
ant_n_gpus=2 python second_task.py \\
--batch_size 8
python thrid_task.py
"""


def test_seed_multi_queue_block() -> None:
    first, second, third = parse(SEED_MULTI, mode="multi")
    assert first.task_id == "first_task" and first.n_gpus == 4
    assert first.command == "python first_task_.py --dataset my_dataset --batch_size 4"
    assert second.n_gpus == 2 and second.command == "python second_task.py --batch_size 8"
    assert third.n_gpus == 0 and third.command == "python thrid_task.py"
    uuid = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    assert re.fullmatch(uuid, second.task_id) and re.fullmatch(uuid, third.task_id)
    assert second.task_id != third.task_id


def test_seed_rand_examples() -> None:
    spec = one("PORT={rand int 4000 5000} python myscript.py")
    assert re.fullmatch(r"PORT=\d{4} python myscript\.py", spec.command)
    assert 4000 <= int(spec.command[5:9]) <= 5000
    spec = one("python myscript.py --seed {rand float 3.4 6.4}")
    assert 3.4 <= float(spec.command.split()[-1]) <= 6.4
    assert spec.submitted == "python myscript.py --seed {rand float 3.4 6.4}"


def test_seed_template_examples() -> None:
    assert re.fullmatch(
        r"experiment-[a-z]+-[a-z]+",
        one('ant_task_id="experiment-[random_phrase]" python train.py').task_id,
    )
    assert re.fullmatch(
        r"teacher-20260529-[0-9a-f]{8}",
        one('ant_task_id="teacher-[date]-[uuid8]" python t.py').task_id,
    )
    task_id = one('ant_task_id="ablation-[randint:1000:9999]" python train.py').task_id
    assert 1000 <= int(task_id.split("-")[1]) <= 9999


def test_templates_expand_once_per_task_in_multi_mode() -> None:
    specs = parse("python a.py\npython b.py\npython c.py", mode="multi", task_id="run-[uuid8]")
    assert len({s.task_id for s in specs}) == 3


def test_single_mode_keeps_newlines() -> None:
    spec = one("  echo a\necho b  \n")
    assert spec.command == "echo a\necho b"


def test_multi_mode_comments_blanks_and_continuations() -> None:
    text = "\n  # comment\n\necho a \\\n  b\n   \n#x\necho c\r\necho d \\\n"
    assert [line for _, line in logical_lines(text)] == ["echo a   b", "echo c", "echo d"]
    assert [n for n, _ in logical_lines(text)] == [4, 8, 9]
    # A comment line ends a continuation, as bash would read it.
    assert [line for _, line in logical_lines("echo a \\\n# note\necho b")] == [
        "echo a",
        "echo b",
    ]


def test_multi_errors_name_the_line() -> None:
    with pytest.raises(TaskRejected, match=r"^line 3: ant_n_gpus must be a whole number"):
        parse("echo a\n# c\nant_n_gpus=x echo b", mode="multi")
    with pytest.raises(TaskRejected, match=r"line 2: task id 'same' is already used on line 1"):
        parse("ant_task_id=same a\nant_task_id=same b", mode="multi")
    with pytest.raises(TaskRejected, match="no command found"):
        parse("# only\n\n", mode="multi")


def test_inline_args_are_removed_and_last_wins() -> None:
    with pytest.raises(TaskRejected):
        one("ant_task_id='b c' python x.py")  # space in the id
    spec = one('ant_n_gpus=1 ant_task_id=a ant_n_gpus=3 ant_task_id="b" python x.py')
    assert (spec.task_id, spec.n_gpus, spec.command) == ("b", 3, "python x.py")


def test_other_leading_assignments_stay() -> None:
    spec = one("PORT=12 ant_n_gpus=2 OTHER='a b' python x.py ant_n_gpus=5")
    assert spec.n_gpus == 2
    assert spec.command == "PORT=12 OTHER='a b' python x.py ant_n_gpus=5"


def test_ant_envar_bare_and_quoted_json() -> None:
    spec = one('ant_envar={"K": "V", "A": "b c", "N": 3} python x.py', env={"K": "old", "Z": "z"})
    assert spec.env == {"K": "V", "A": "b c", "N": "3", "Z": "z"}
    assert spec.command == "python x.py"
    spec = one('ant_envar=\'{"K": "V"}\' python x.py')
    assert spec.env == {"K": "V"}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("ant_envar={nope} x", "not valid JSON"),
        ("ant_envar='[1]' x", "must be a JSON object"),
        ('ant_envar={"K": [1]} x', "must be a string or a number"),
        ('ant_envar={"1A": "x"} x', "not a valid shell identifier"),
        ("ant_n_gpus=-1 x", "whole number"),
        ("ant_n_gpus=2000 x", "at most 1024"),
        ("ant_n_gpus=2", "the command is empty"),
        ("   ", "the command is empty"),
        ("ant_task_id='unterminated x", "unterminated single quote"),
        ("ant_task_id=../../etc x", "may only contain letters"),
        ("ant_task_id=[bogus] x", "unknown placeholder"),
        ("echo {rand int 9 1}", "bad random form"),
        ("echo \x00", "NUL"),
    ],
)
def test_rejections(text: str, fragment: str) -> None:
    with pytest.raises(TaskRejected, match=re.escape(fragment)):
        one(text)


def test_precedence_inline_over_env_over_form_over_config() -> None:
    assert one("x", default_n_gpus=2).n_gpus == 2
    assert one("x", default_n_gpus=2, n_gpus=1).n_gpus == 1
    assert one("x", n_gpus=1, env={"ant_n_gpus": "3"}).n_gpus == 3
    assert one("ant_n_gpus=4 x", n_gpus=1, env={"ant_n_gpus": "3"}).n_gpus == 4
    assert one("x", task_id="form").task_id == "form"
    assert one("x", task_id="form", env={"ant_task_id": "env-[date]"}).task_id == "env-20260529"
    assert one("ant_task_id=inline x", env={"ant_task_id": "env"}).task_id == "inline"
    spec = one("x", env={"ant_task_id": "e", "ant_n_gpus": "1", "KEEP": "1"})
    assert spec.env == {"KEEP": "1"}


def test_env_names_and_values_are_checked() -> None:
    with pytest.raises(TaskRejected, match="not a valid shell identifier"):
        one("x", env={"A-B": "1"})
    with pytest.raises(TaskRejected, match="NUL"):
        one("x", env={"A": "a\x00b"})


def test_special_variables_build_the_final_command() -> None:
    env = {
        "ant_wd": "/my/work dir",
        "ant_conda_env": "my_env",
        "ant_conda_path": "/home/ana conda/bin/conda",
        "PLAIN": "1",
    }
    spec = one("PORT={rand int 7 7} python train.py", env=env)
    assert spec.command == (
        "cd '/my/work dir' && PORT=7 '/home/ana conda/bin/conda' run --live-stream -n my_env "
        "python train.py"
    )
    assert spec.workdir == "/my/work dir"
    assert spec.env == env  # kept for "copy command"
    assert process_env(spec.env) == {"PLAIN": "1"}
    spec = one("python x.py", env={"ant_conda_env_path": "/envs/a b"})
    assert spec.command == "conda run --live-stream -p '/envs/a b' python x.py"
    with pytest.raises(TaskRejected, match="not both"):
        one("x", env={"ant_conda_env": "a", "ant_conda_env_path": "/b"})


def test_workdir_with_space_and_quote_works_in_bash(tmp_path: Path) -> None:
    weird = tmp_path / "it's a dir"
    weird.mkdir()
    spec = one("pwd", env={"ant_wd": str(weird)})
    out = subprocess.run(["bash", "-c", spec.command], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(weird)


def test_copy_command_round_trip_example() -> None:
    spec = one(
        "ant_task_id=exp-1 PORT={rand int 1 9} python x.py --name 'a b'",
        env={"ant_wd": "/w", "K": 'quote"s'},
        n_gpus=2,
    )
    copied = format_copy_command(spec.n_gpus, spec.env, spec.submitted)
    assert copied.startswith("ant_n_gpus=2 ant_envar=")  # a literal id is taken: left out
    assert copied.endswith("PORT={rand int 1 9} python x.py --name 'a b'")
    again = one(copied)
    assert (again.n_gpus, again.env) == (spec.n_gpus, spec.env)
    assert again.task_id != spec.task_id  # a new task, with the default id
    assert again.command == spec.command  # same seed, same random draw
    assert strip_ant_args(copied) == "PORT={rand int 1 9} python x.py --name 'a b'"


def test_copy_command_keeps_an_id_template_of_the_submitted_text() -> None:
    spec = one("ant_n_gpus=1 ant_task_id='exp-[phrase]' python x.py")
    copied = format_copy_command(spec.n_gpus, spec.env, spec.submitted)
    assert copied == "ant_task_id='exp-[phrase]' ant_n_gpus=1 python x.py"
    again = one(copied, seed=1)
    assert again.task_id.startswith("exp-") and again.task_id != spec.task_id
    # Each line of a multi submission keeps its own.
    first, second = parse("ant_task_id=a-[uuid8] x\nant_task_id=b y", mode="multi")
    assert format_copy_command(0, {}, first.submitted) == "ant_task_id='a-[uuid8]' ant_n_gpus=0 x"
    assert format_copy_command(0, {}, second.submitted) == "ant_n_gpus=0 y"
    # The form's / API's id (template or not) is not part of the submitted text.
    spec = one("python x.py", task_id="run-[uuid8]")
    assert format_copy_command(spec.n_gpus, spec.env, spec.submitted) == "ant_n_gpus=0 python x.py"


ids = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,30}", fullmatch=True)
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True).filter(
    lambda n: n not in ("ant_task_id", "ant_n_gpus")
)
values = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=20)
commands = st.text(
    st.characters(exclude_characters="\x00\r", exclude_categories=("Cs",)), min_size=1, max_size=60
).filter(lambda c: c.strip() and not c.strip().startswith(("ant_", "#")) and "{rand" not in c)


@given(ids, st.integers(0, 16), st.dictionaries(names, values, max_size=4), commands)
@settings(max_examples=200, deadline=None)
def test_copy_command_round_trips(task_id: str, n: int, env: dict[str, str], command: str) -> None:
    try:
        spec = one(command, env=env, task_id=task_id, n_gpus=n)
    except TaskRejected:
        return  # e.g. an unterminated quote in a leading assignment, or conda options clash
    copied = format_copy_command(spec.n_gpus, spec.env, spec.submitted)
    again = one(copied)
    assert (again.n_gpus, again.env) == (spec.n_gpus, spec.env)
    assert again.command == spec.command
    assert again.task_id != spec.task_id  # a new task: the copy leaves the id out


@given(st.text(max_size=200), st.sampled_from(["single", "multi"]))
@settings(max_examples=400, deadline=None)
def test_parser_never_crashes(text: str, mode: str) -> None:
    try:
        specs = parse(text, mode=mode)
    except TaskRejected as exc:
        assert exc.message
        return
    for spec in specs:
        assert re.fullmatch(r"[A-Za-z0-9._-]{1,128}", spec.task_id)
        root = Path("/logs/s")
        assert (root / f"{spec.task_id}.log").resolve().parent == root
        assert spec.command.strip()


@given(
    st.lists(
        st.tuples(ids, st.integers(0, 8), commands),
        min_size=1,
        max_size=5,
        unique_by=lambda t: t[0],
    )
)
@settings(max_examples=100, deadline=None)
def test_multi_mode_yields_one_task_per_line(rows: list[tuple[str, int, str]]) -> None:
    lines = [
        f"ant_task_id={tid} ant_n_gpus={n} {cmd.replace(chr(10), ' ').rstrip(chr(92))}"
        for tid, n, cmd in rows
    ]
    lines = [line for line in lines if line.split(" ", 2)[2].strip()]
    try:
        specs = parse("\n".join(lines), mode="multi")
    except TaskRejected:
        return
    assert [(s.task_id, s.n_gpus) for s in specs] == [
        (line.split(" ")[0][12:], int(line.split(" ")[1][11:])) for line in lines
    ]


def test_json_of_env_in_copy_command_is_compact() -> None:
    copied = format_copy_command(1, {"A": "1"}, "echo")
    assert json.loads(copied.split("'")[1]) == {"A": "1"}


# ------------------------------------------------------------------ nodes (n_nodes, ant_n_nodes)


def test_n_nodes_from_inline_env_and_field() -> None:
    assert one("python train.py").n_nodes == 1
    assert one("python train.py", n_nodes=3).n_nodes == 3
    spec = one("ant_n_nodes=2 ant_n_gpus=4 torchrun x.py", n_nodes=3)
    assert (spec.n_nodes, spec.n_gpus, spec.command) == (2, 4, "torchrun x.py")
    assert "ant_n_nodes" not in spec.env
    # As a variable (env or ant_envar) it acts like the field, and is not passed on.
    spec = one("""ant_envar='{"ant_n_nodes": "4"}' x""")
    assert spec.n_nodes == 4 and "ant_n_nodes" not in spec.env
    assert process_env({"ant_n_nodes": "2", "A": "1"}) == {"A": "1"}
    assert strip_ant_args("ant_n_nodes=2 ant_n_gpus=1 run") == "run"
    multi = parse("ant_n_nodes=2 a\nb\nant_n_nodes=64 c", mode="multi")
    assert [s.n_nodes for s in multi] == [2, 1, 64]


@pytest.mark.parametrize("value", ["0", "65", "-1", "two", "1.5", "", "99999999"])
def test_bad_n_nodes_is_rejected_with_the_range(value: str) -> None:
    with pytest.raises(
        TaskRejected, match="ant_n_nodes must be a whole number of nodes from 1 to 64"
    ):
        one(f"ant_n_nodes={value} x")
    with pytest.raises(TaskRejected, match="line 2: ant_n_nodes"):
        parse(f"a\nant_n_nodes={value} x", mode="multi")
    with pytest.raises(TaskRejected, match="number of nodes must be from 1 to 64"):
        one("x", n_nodes=0)


def test_copy_command_of_a_gang_round_trips() -> None:
    spec = one("ant_n_nodes=2 ant_n_gpus=8 torchrun train.py", task_id="big")
    copied = format_copy_command(spec.n_gpus, spec.env, spec.submitted, spec.n_nodes)
    assert copied == "ant_n_gpus=8 ant_n_nodes=2 torchrun train.py"
    again = one(copied)
    assert (again.n_gpus, again.n_nodes, again.command) == (8, 2, "torchrun train.py")
    assert "ant_n_nodes" not in format_copy_command(1, {}, "echo")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("15m", 900),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        ("1.5h", 5400),
        (" 2H ", 7200),
        ("1d2h3m4s", 93784),
        ("0.5", 0.5),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5", "2x", "h", "1m2h", "2h2h", "inf", "nan", "400d"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(TaskRejected, match="timeout"):
        parse_duration(text)


def test_timeout_inline_env_and_field_and_its_copy_command() -> None:
    """Inline ant_timeout= > the ant_timeout variable > the API field; it never reaches the env,
    and the copy command carries it."""
    assert one("python x.py").timeout is None
    assert one("python x.py", timeout=60.0).timeout == 60
    spec = one("python x.py", timeout=60.0, env={"ant_timeout": "15m"})
    assert spec.timeout == 900 and "ant_timeout" not in spec.env
    spec = one("ant_timeout=1h30m python x.py", timeout=60.0, env={"ant_timeout": "15m"})
    assert spec.timeout == 5400 and spec.command == "python x.py"
    copy = format_copy_command(1, {}, spec.submitted, 1, spec.timeout)
    assert copy == "ant_n_gpus=1 ant_timeout=1h30m python x.py"
    assert one(copy).timeout == 5400
    with pytest.raises(TaskRejected, match="ant_timeout"):
        one("ant_timeout=soon python x.py")
    with pytest.raises(TaskRejected, match="line 2: ant_timeout"):
        parse("true\nant_timeout=0 true", mode="multi")


def test_notify_inline_env_and_field_and_the_submitted_text_keeps_no_url() -> None:
    """Inline ant_notify= > the ant_notify variable > the API field; the URL (it may hold a
    token) is neither in the env nor in the submitted text nor in the copy command."""
    assert one("python x.py").notify is None
    assert one("python x.py", notify="https://a.example/1").notify == "https://a.example/1"
    spec = one("python x.py", notify="https://a.example/1", env={"ant_notify": "http://b/2"})
    assert spec.notify == "http://b/2" and "ant_notify" not in spec.env
    spec = one("ant_n_gpus=1 ant_notify='https://c.example/3?t=s' python x.py", env={})
    assert spec.notify == "https://c.example/3?t=s" and spec.command == "python x.py"
    assert spec.submitted == "ant_n_gpus=1 python x.py"
    assert "c.example" not in format_copy_command(1, {}, spec.submitted)
    with pytest.raises(TaskRejected, match="ant_notify: the webhook URL"):
        one("ant_notify=ftp://x python x.py")
    with pytest.raises(TaskRejected, match="line 2: ant_notify"):
        parse("true\nant_notify=nope true", mode="multi")


def test_tags_add_up_from_the_field_the_variable_and_the_inline_word() -> None:
    spec = one("ant_tags=lr-1,sweep python a.py", tags=("sweep",), env={"ant_tags": "env-tag"})
    assert spec.tags == ["sweep", "env-tag", "lr-1"]
    assert spec.command == "python a.py" and "ant_tags" not in spec.env
    assert "ant_tags=sweep,env-tag,lr-1" in format_copy_command(
        0, spec.env, spec.submitted, tags=spec.tags
    )
    with pytest.raises(TaskRejected, match="not a valid tag"):
        one("ant_tags='a b' true")
