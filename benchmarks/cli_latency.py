"""How long one `ant` command takes, start to exit, next to `tsp true`, in the same run.

    make bench                         (runs this with the other benchmarks)
    python benchmarks/cli_latency.py [--quick] [--samples N] [--also-src OTHER/src]

Against a real local server started as by default (TLS), from the server's directory, where its
connection file names its local socket (the default setup: `ant` connects through the socket):
the wall time of `ant submit -- true` and `ant ls -n 5` (median and p90, and the median CPU time
of the process), next to `tsp true` and a bare `python -c pass`; then `ant submit` over TLS with
the pinned certificate (a copy of the connection file without the socket, as on another machine
or with a server that has none), and to a plain-HTTP server named by ANT_URL. The commands take
turns, so the machine's noise falls on all of them alike. Then the cold import time of what `ant`
is made of. `--also-src` measures `ant submit` of another checkout too (e.g. the one before a
change), from the server's directory, in the same run.

Bytecode caches are allowed (PYTHONDONTWRITEBYTECODE is dropped for the measured commands), as in
any installed package. Writes benchmarks/results/cli_latency.json; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.server import AntServer

from benchmarks.suite import Tsp, machine, pct

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
PYTHON = sys.executable
ANT_BIN = str(Path(sys.executable).parent / "ant")
IMPORTS = {
    "python -c pass (start-up alone)": "pass",
    "import ant_scheduler.client": "import ant_scheduler.client",
    "import ant_scheduler.wire (answers)": "import ant_scheduler.wire",
    "import socket": "import socket",
    "import ant_scheduler.cli.commands (all of ant)": "import ant_scheduler.cli.commands",
    "import argparse (reads the arguments)": "import argparse",
    "import ssl": "import ssl",
    "import rich (tables)": "import rich.console, rich.table",
    "import http.client, ssl, json": "import http.client, ssl, json",
    "import httpx (the client before)": "import httpx",
}


def env_for(src: Path, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ANT_URL", "ANT_TOKEN")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = str(src)
    env["XDG_CONFIG_HOME"] = str(workdir / "no-config")  # the connection file of the directory
    env["NO_COLOR"] = "1"
    return env


def run_once(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, int]:
    """(wall ms, CPU ms of the process, exit status)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - t0) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, (usage.ru_utime + usage.ru_stime) * 1000, proc.returncode


def take_turns(
    commands: dict[str, tuple[list[str], dict[str, str], Path]], samples: int
) -> dict[str, Any]:
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for name, (argv, env, cwd) in commands.items():  # warm-up: bytecode caches, page cache
        for _ in range(2):
            if run_once(argv, env, cwd)[2] != 0:
                raise RuntimeError(f"{name}: {argv} failed")
    for _ in range(samples):
        for name, (argv, env, cwd) in commands.items():
            wall, cpu, code = run_once(argv, env, cwd)
            if code != 0:
                raise RuntimeError(f"{name}: {argv} exited {code}")
            walls[name].append(wall)
            cpus[name].append(cpu)
    return {
        name: {
            "median_ms": statistics.median(walls[name]),
            "p90_ms": pct(walls[name], 0.9),
            "min_ms": min(walls[name]),
            "cpu_median_ms": statistics.median(cpus[name]),
            "n": samples,
        }
        for name in commands
    }


def without_socket(work: Path) -> Path:
    """A directory with a copy of the server's connection file that names no local socket: `ant`
    run there uses the URL, over TLS with the pinned certificate."""
    state = work / "ant_runner_logs"
    deadline = time.monotonic() + 20
    while not (state / "connection.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # written just after the server starts to answer
    info = json.loads((state / "connection.json").read_text())
    if not info.get("unix_socket"):
        raise RuntimeError("the server made no local socket (see its output)")
    there = work / "tls-only"
    there.mkdir()
    (there / "connection.json").write_text(json.dumps({**info, "unix_socket": None}))
    os.chmod(there / "connection.json", 0o600)
    return there


def bench_commands(work: Path, samples: int, others: list[Path]) -> dict[str, Any]:
    server = AntServer(
        workdir=work, fake_gpus=8, tls=True, config={"LOGGER_log_dir": "ant_runner_logs"}
    ).start()
    (work / "http").mkdir()
    plain = AntServer(workdir=work / "http", fake_gpus=8).start()
    tsp = Tsp(work, 8)
    try:
        env = env_for(REPO / "src", work)
        env_plain = {**env, "ANT_URL": plain.url, "ANT_TOKEN": plain.token or ""}
        tls_only = without_socket(work)
        commands = {
            "python -c pass": ([PYTHON, "-c", "pass"], env, work),
            "ant submit -- true": ([ANT_BIN, "submit", "--", "true"], env, work),
            "ant submit -- true (https://, pinned cert)": (
                [ANT_BIN, "submit", "--", "true"],
                env,
                tls_only,
            ),
            "ant submit -- true (http://, ANT_URL)": (
                [ANT_BIN, "submit", "--", "true"],
                env_plain,
                work,
            ),
            "ant ls -n 5": ([ANT_BIN, "ls", "-n", "5"], env, work),
            "tsp true": (["tsp", "true"], tsp.env, work),
        }
        for src in others:
            commands[f"ant submit -- true ({src})"] = (
                [ANT_BIN, "submit", "--", "true"],
                env_for(src, work),
                work,
            )
        return take_turns(commands, samples)
    finally:
        tsp.close()
        plain.stop()
        server.stop()


def bench_imports(work: Path, samples: int) -> dict[str, Any]:
    env = env_for(REPO / "src", work)
    commands = {name: ([PYTHON, "-c", code], env, work) for name, code in IMPORTS.items()}
    return take_turns(commands, samples)


# In one process, in this order: what each part of `ant` adds to what came before it. `ant
# submit` through the local socket loads the first four; ssl is for https over TCP, wire.py for
# the commands that read answers into its dataclasses, rich for those that print a table.
PARTS = [
    ("the client (json, re)", "ant_scheduler.client"),
    ("argparse (reads the arguments)", "argparse"),
    ("the CLI's own modules", "ant_scheduler.cli.commands"),
    ("socket (first request)", "socket"),
    ("ssl (https over TCP only)", "ssl"),
    ("wire.py: the answers' dataclasses (typing, dataclasses)", "ant_scheduler.wire"),
    ("rich (only `ls`, `show`, `gpus`, `recover`)", "rich.table"),
]
# Only built-in modules before the measured imports (json would hide the client's), and the
# cyclic collector off while they load, as `ant`'s main() does.
PARTS_CODE = """
import gc, sys, time
gc.disable()
out = []
for name in sys.argv[1:]:
    t0 = time.perf_counter()
    __import__(name)
    out.append((time.perf_counter() - t0) * 1000)
print(" ".join(map(repr, out)))
"""


def bench_parts(work: Path, samples: int) -> dict[str, Any]:
    env = env_for(REPO / "src", work)
    argv = [PYTHON, "-c", PARTS_CODE, *[module for _, module in PARTS]]
    runs = []
    for _ in range(samples):
        r = subprocess.run(argv, env=env, cwd=work, capture_output=True, text=True, check=True)
        runs.append([float(ms) for ms in r.stdout.split()])
    return {
        name: {"median_ms": statistics.median(col), "min_ms": min(col)}
        for (name, _), col in zip(PARTS, zip(*runs, strict=True), strict=True)
    }


def print_table(title: str, rows: dict[str, Any]) -> None:
    print(f"\n{title}")
    print(f"{'':52} {'median':>8} {'p90':>8} {'cpu':>8}  (ms)")
    for name, r in rows.items():
        print(f"{name:52} {r['median_ms']:8.1f} {r['p90_ms']:8.1f} {r['cpu_median_ms']:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10 samples instead of 40")
    parser.add_argument("--samples", type=int, help="samples of each command")
    parser.add_argument(
        "--also-src",
        type=Path,
        action="append",
        default=[],
        help="another checkout's src/ to measure `ant submit` of, in the same run",
    )
    args = parser.parse_args()
    samples = args.samples or (10 if args.quick else 40)
    if shutil.which("tsp") is None:
        sys.exit("task-spooler (tsp) is not installed: run `make bench`, which installs it")
    # The server runs this checkout too.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    results: dict[str, Any] = {"machine": machine(), "samples": samples}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results["commands"] = bench_commands(work, samples, [p.resolve() for p in args.also_src])
        results["imports"] = bench_imports(work, samples)
        results["parts"] = bench_parts(work, max(samples, 20))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cli_latency.json").write_text(json.dumps(results, indent=2))
    print_table("wall time of one command, start to exit", results["commands"])
    print_table("cold import in a fresh `python -c` (start-up included)", results["imports"])
    print("\nwhat each part adds, imported in this order in one process (ms)")
    for name, r in results["parts"].items():
        print(f"{name:56} {r['median_ms']:8.1f} (min {r['min_ms']:.1f})")


if __name__ == "__main__":
    main()
