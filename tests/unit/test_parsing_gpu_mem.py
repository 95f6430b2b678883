"""gpu_mem as users write it: --gpu-mem / the form / the API (bytes or a size) and the inline
`ant_gpu_mem=` word, with the usual precedence; sizes; the copy command."""

from __future__ import annotations

import pytest

from ant_scheduler.core.errors import TaskRejected
from ant_scheduler.core.parsing import format_copy_command
from ant_scheduler.core.sizes import format_size, parse_size, short_size
from tests.unit.test_parsing import one, parse

G = 2**30


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20G", 20 * G),
        ("20GiB", 20 * G),
        ("20gb", 20 * G),
        ("512M", 512 * 2**20),
        ("1.5G", 3 * G // 2),
        (" 2 T ", 2 * 2**40),
        ("1048576", 2**20),
    ],
)
def test_sizes(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "G", "20X", "-1G", "20 G B x", "0", "1K", "2000P"])
def test_bad_sizes_are_rejected_in_one_line(text: str) -> None:
    with pytest.raises(TaskRejected, match="gpu_mem must be"):
        parse_size(text)


def test_format_and_short_size() -> None:
    assert format_size(20 * G) == "20 GiB"
    assert format_size(3 * G // 2) == "1.5 GiB"
    assert format_size(512 * 2**20) == "512 MiB"
    assert short_size(20 * G) == "20G" and short_size(1536 * 2**20) == "1536M"


def test_inline_word_the_variable_and_the_field() -> None:
    assert one("ant_gpu_mem=20G python x.py").gpu_mem == 20 * G
    spec = one("python x.py", gpu_mem="8G")
    assert spec.gpu_mem == 8 * G and spec.n_gpus == 1 and spec.command == "python x.py"
    assert one("python x.py", gpu_mem=4 * G).gpu_mem == 4 * G  # the API's bytes
    assert one("ant_gpu_mem=2G python x.py", gpu_mem="8G").gpu_mem == 2 * G  # inline wins
    assert one("python x.py", env={"ant_gpu_mem": "3G"}).gpu_mem == 3 * G
    spec = one("python x.py", env={"ant_gpu_mem": "3G"})
    assert "ant_gpu_mem" not in spec.env  # consumed, as the other field variables
    assert one("python x.py").gpu_mem is None


def test_gpu_mem_makes_a_one_gpu_task_and_refuses_more() -> None:
    assert one("python x.py", gpu_mem="1G", default_n_gpus=0).n_gpus == 1
    assert one("ant_n_gpus=1 ant_gpu_mem=1G python x.py").n_gpus == 1
    with pytest.raises(TaskRejected, match="share of one GPU"):
        one("ant_n_gpus=2 ant_gpu_mem=1G python x.py")
    with pytest.raises(TaskRejected, match="share of one GPU"):
        one("python x.py", gpu_mem="1G", n_nodes=2)
    with pytest.raises(TaskRejected, match="gpu_mem must be"):
        one("ant_gpu_mem=lots python x.py")
    with pytest.raises(TaskRejected, match="gpu_mem must be from 1M"):
        one("python x.py", gpu_mem=5)


def test_multi_mode_lines_declare_their_own() -> None:
    specs = parse("ant_gpu_mem=10G a.py\nb.py\nant_gpu_mem=512M c.py", mode="multi", n_gpus=1)
    assert [s.gpu_mem for s in specs] == [10 * G, None, 512 * 2**20]


def test_copy_command_keeps_gpu_mem() -> None:
    text = format_copy_command(1, {}, "python x.py", gpu_mem=20 * G)
    assert text == "ant_n_gpus=1 ant_gpu_mem=20G python x.py"
    assert one(text).gpu_mem == 20 * G


def test_the_reserve_setting() -> None:
    from ant_scheduler.core.errors import ConfigError
    from ant_scheduler.settings import Settings

    assert Settings().gpu_mem_reserve == G  # the default, "1G"
    assert Settings().replace(RUNNER_gpu_mem_reserve="512M").gpu_mem_reserve == 512 * 2**20
    assert Settings().replace(RUNNER_gpu_mem_reserve=0).gpu_mem_reserve == 0
    assert Settings().replace(RUNNER_gpu_mem_reserve="0").gpu_mem_reserve == 0
    for bad in ("lots", -1, True):
        with pytest.raises(ConfigError, match="RUNNER_gpu_mem_reserve"):
            Settings().replace(RUNNER_gpu_mem_reserve=bad)
