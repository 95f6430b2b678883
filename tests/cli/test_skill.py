"""Every command that skills/ant-scheduler-control/SKILL.md shows runs against a live server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.server import AntServer, wait_for

REPO = Path(__file__).resolve().parents[2]
SKILL = REPO / "skills" / "ant-scheduler-control" / "SKILL.md"
BIN = str(Path(sys.executable).parent)


def bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", SKILL.read_text(), flags=re.S)


def commands(block: str) -> list[str]:
    """`ant ...` commands of a block, continuation lines joined, trailing comments dropped."""
    joined = block.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line.startswith("ant "):
            out.append(line)
    return out


def test_skill_has_the_documented_sections() -> None:
    text = SKILL.read_text()
    for topic in ("project defaults", "Launch", "status", "logs", "Restart", "GPUs", "health"):
        assert topic.lower() in text.lower(), topic
    assert len(bash_blocks()) >= 6


def test_every_skill_command_runs(server_factory: type[AntServer]) -> None:
    server = server_factory(tls=True, config={"LOGGER_log_dir": "ant_runner_logs"}).start()
    env = {k: v for k, v in os.environ.items() if k not in ("ANT_URL", "ANT_TOKEN")}
    env.update(
        PATH=f"{BIN}:{env['PATH']}",
        XDG_CONFIG_HOME=str(server.workdir / "cfg"),
        NO_COLOR="1",
    )

    def sh(script: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=server.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "Traceback" not in r.stderr
        if ok:
            assert r.returncode == 0, (script, r.stdout, r.stderr)
        return r

    # Held tasks for the recovery section: they need 8 GPUs, the server has 4.
    for name in ("held-1", "held-2"):
        sh(f"ant --url {server.url} --token {server.token} submit --id {name} -g 8 -- true")
    server.stop()
    server.start()

    setup, *rest = bash_blocks()
    setup = setup.replace("https://127.0.0.1:6060", server.url).replace(
        "ANT_TOKEN=...", f"ANT_TOKEN={server.token}"
    )
    out = sh(setup).stdout
    assert '"status": "ok"' in out
    env.update(ANT_URL=server.url, ANT_TOKEN=server.token or "")
    env.update(ANT_PROJECT_WD=str(server.workdir), ANT_PROJECT_CONDA_ENV="base")
    (server.workdir / "jobs.txt").write_text("ant_task_id=job-a true\nant_task_id=job-b true\n")

    def fresh(name: str, command: str = "true", gpus: int = 0) -> str:
        sh(f"ant submit --id {name} -g {gpus} -- '{command}'")
        return name

    ran = 0
    for block in rest:
        for command in commands(block):
            sub = command.split()[1]
            task_id = "unused"
            if "<task_id>" in command:
                if sub == "kill":
                    task_id = fresh(f"k{ran}", "sleep 30")
                    wait_for(lambda t=task_id: '"running"' in sh(f"ant show {t} --json").stdout)
                elif sub in ("promote", "move"):
                    fresh(f"blk{ran}", "sleep 30", gpus=4)
                    task_id = fresh(f"p{ran}", "true", gpus=1)
                elif sub == "recover":
                    task_id = "held-1"
                else:
                    task_id = fresh(f"t{ran}", "echo skill")
                    sh(f"ant wait {task_id}")
            command = command.replace("<new_id>", f"renamed-{ran}")
            r = sh(command.replace("<task_id>", task_id))
            assert r.returncode == 0
            ran += 1
    assert ran >= 15
