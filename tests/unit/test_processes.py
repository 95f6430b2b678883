"""/proc reading for the executor: stat lines, markers, children, scans, the subreaper."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator

import psutil
import pytest

from ant_scheduler.executors import processes
from ant_scheduler.executors.base import SERVER_ID_ENV, TASK_ID_ENV


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "100"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_parse_stat_survives_odd_command_names() -> None:
    line = b"42 (a) b (c) d) S 7 42 40 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 0 0\n"
    stat = processes.parse_stat(42, line)
    assert stat == processes.ProcStat(
        42, "S", 7, 42, 40, 12345, flags=4194560, image=(b"a) b (c) d", 0)
    )
    assert not stat.kthread and not stat.mid_exec  # no env_end field in this short line
    full = line.rstrip() + b" 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    execing = processes.parse_stat(42, full)
    assert execing is not None and execing.env_end == 0 and execing.mid_exec
    assert processes.parse_stat(1, b"garbage") is None
    assert processes.parse_stat(1, b"1 (x) S 1 2") is None


def test_read_stat_matches_psutil(sleeper: subprocess.Popen[bytes]) -> None:
    stat = processes.read_stat(sleeper.pid)
    assert stat is not None
    ps = psutil.Process(sleeper.pid)
    assert (stat.ppid, stat.pgid, stat.sid) == (os.getpid(), os.getpgid(0), os.getsid(0))
    assert abs(stat.start_time - ps.create_time()) < 0.01  # adoption compares the two
    assert processes.is_same_process(sleeper.pid, ps.create_time())
    assert not processes.is_same_process(sleeper.pid, ps.create_time() + 1)
    assert sleeper.pid in processes.children(os.getpid())
    sleeper.kill()
    sleeper.wait()
    assert processes.read_stat(sleeper.pid) is None
    assert not processes.is_same_process(sleeper.pid, ps.create_time())
    assert processes.children(sleeper.pid) == []


def test_kernel_threads_and_exec_state() -> None:
    me = processes.read_stat(os.getpid())
    assert me is not None and not me.kthread and me.env_end > 0 and not me.mid_exec
    kthreadd = processes.read_stat(2)
    if kthreadd is None or not kthreadd.kthread:
        pytest.skip("no kernel threads visible here (a pid namespace)")
    assert not kthreadd.mid_exec  # no environment, but not for an execve
    threads = processes._kernel_threads()
    assert 2 in threads and os.getpid() not in threads
    assert all(processes.read_environ(pid) in (b"", None) for pid in list(threads)[:20])


def test_zombie_is_not_the_same_process() -> None:
    proc = subprocess.Popen(["true"])
    try:
        while True:
            stat = processes.read_stat(proc.pid)
            assert stat is not None
            if stat.zombie:
                break
            time.sleep(0.01)
        assert not processes.is_same_process(proc.pid, stat.start_time)
    finally:
        proc.wait()


def test_env_values_and_markers() -> None:
    env = b"A=1\0ANT_SERVER_ID=s1\0XANT_TASK_ID=no\0ANT_TASK_ID=t 1\0EMPTY=\0LAST=x"
    assert processes.env_value(env, "A") == "1"
    assert processes.env_value(env, "ANT_TASK_ID") == "t 1"  # not the XANT_ one
    assert processes.env_value(env, "EMPTY") == ""
    assert processes.env_value(env, "LAST") == "x"
    assert processes.env_value(env, "NONE") is None
    assert processes.marker(env, "s1") == "t 1"
    assert processes.marker(env, "s") is None  # a prefix of the id is not the id
    assert processes.marker(b"ANT_SERVER_ID=s1\0ANT_TASK_ID=\0", "s1") is None


def test_scan_finds_marked_processes_of_one_server_only() -> None:
    server = f"scan-{uuid.uuid4().hex[:8]}"
    base = {"PATH": os.environ["PATH"]}
    procs = [
        subprocess.Popen(["sleep", "100"], env={**base, SERVER_ID_ENV: server, TASK_ID_ENV: "a"}),
        subprocess.Popen(
            ["sleep", "100"],
            env={**base, SERVER_ID_ENV: server, TASK_ID_ENV: "b", "CUDA_VISIBLE_DEVICES": "1"},
            start_new_session=True,
        ),
        subprocess.Popen(
            ["sleep", "100"], env={**base, SERVER_ID_ENV: server + "x", TASK_ID_ENV: "c"}
        ),
        subprocess.Popen(["sleep", "100"], env={**base, SERVER_ID_ENV: server}),  # no task id
    ]
    try:
        found = {p.task_id: p for p in processes.scan(server)}
        assert set(found) == {"a", "b"}
        assert found["a"].pid == procs[0].pid and not found["a"].session_leader
        assert found["b"].session_leader and found["b"].cuda_visible_devices == "1"
        assert found["a"].cuda_visible_devices is None
        swept = {s.pid: s for s in processes.sweep(server, stat_all=True)}
        assert swept[procs[0].pid].task_id == "a" and swept[procs[2].pid].task_id is None
        assert os.getpid() not in swept
        assert len(swept) > len(found)
        marked = processes.sweep(server, stat_all=False)
        assert sorted(s.task_id or "" for s in marked) == ["a", "b"]
        procs[0].kill()
        procs[0].wait()
        assert {p.task_id for p in processes.scan(server)} == {"b"}
        took = []
        for _ in range(20):
            t0 = time.perf_counter()
            processes.scan(server)
            took.append(time.perf_counter() - t0)
        n = len(psutil.pids())
        print(f"\nscan: median {statistics.median(took) * 1000:.2f} ms with {n} processes")
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_signal_process_checks_identity(sleeper: subprocess.Popen[bytes]) -> None:
    stat = processes.read_stat(sleeper.pid)
    assert stat is not None
    assert not processes.signal_process(sleeper.pid, stat.start_ticks + 1, signal.SIGKILL)
    assert sleeper.poll() is None
    assert processes.signal_process(sleeper.pid, stat.start_ticks, signal.SIGKILL)
    assert sleeper.wait() == -signal.SIGKILL
    assert not processes.signal_group(0, signal.SIGKILL)  # never our own group
    assert not processes.signal_group(1, signal.SIGKILL)
    assert not processes.signal_group(os.getpgrp(), signal.SIGKILL)


def test_subreaper_can_be_set_and_reset() -> None:
    assert processes.children_listing_supported()
    assert not processes.is_child_subreaper()
    try:
        assert processes.set_child_subreaper(True)
        assert processes.is_child_subreaper()
        # An orphan now comes to us: `sh` exits right after starting the sleep.
        out = subprocess.run(
            ["sh", "-c", "sleep 100 >/dev/null 2>&1 & echo $!"],
            capture_output=True,
            text=True,
            check=True,
        )
        orphan = int(out.stdout)
        try:
            stat = processes.read_stat(orphan)
            assert stat is not None and stat.ppid == os.getpid()
            assert orphan in processes.children(os.getpid())
        finally:
            os.kill(orphan, signal.SIGKILL)
            os.waitpid(orphan, 0)
    finally:
        assert processes.set_child_subreaper(False)
    assert not processes.is_child_subreaper()
