"""`ant service install`: the systemd unit that runs `ant serve` as a service (docs/deployment.md).

The unit stops only ANT's own process (`KillMode=process`): the tasks it started keep running
through a restart or a stop of the unit, and the next `ant serve` re-adopts them, as it does
after any restart of ANT.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

SYSTEM_DIR = Path("/etc/systemd/system")
_PLAIN = re.compile(r"[\w@+=:,./-]+", re.ASCII)
_NAME = re.compile(r"[A-Za-z0-9_.@-]+", re.ASCII)


@dataclass(frozen=True)
class Unit:
    name: str  # the unit is <name>.service
    user_unit: bool  # a user's own manager (systemctl --user), else the system's
    workdir: Path  # absolute: where tasks run unless they say otherwise; relative paths start
    state_dir: Path  # absolute: the database, token, TLS files and connection file
    program: tuple[str, ...]  # how to run `ant`: this interpreter, `-m ant_scheduler`
    host: str | None = None
    port: int | None = None
    config: Path | None = None
    tls: bool = True
    run_as: str | None = None  # a system unit's User=

    def path(self, config_home: Path) -> Path:
        """Where systemd looks for it: ~/.config/systemd/user/ or /etc/systemd/system/."""
        folder = config_home / "systemd" / "user" if self.user_unit else SYSTEM_DIR
        return folder / f"{self.name}.service"

    def text(self) -> str:
        serve = [*self.program, "serve", "--state-dir", str(self.state_dir)]
        if self.config is not None:
            serve += ["--config", str(self.config)]
        if self.host is not None:
            serve += ["--host", self.host]
        if self.port is not None:
            serve += ["--port", str(self.port)]
        if not self.tls:
            serve.append("--no-tls")
        who = "" if self.user_unit or self.run_as is None else f"User={self.run_as}\n"
        target = "default.target" if self.user_unit else "multi-user.target"
        return f"""\
# Written by `ant service install` (docs/deployment.md). Run it again to change it.
[Unit]
Description=ANT GPU job scheduler ({_escape(str(self.state_dir))})
Wants=network-online.target
After=network-online.target

[Service]
Type=exec
{who}WorkingDirectory={_escape(str(self.workdir))}
ExecStart={" ".join(_quote(word) for word in serve)}
Environment=PYTHONUNBUFFERED=1
# Stop ANT alone: its tasks outlive a restart of the unit, and ANT re-adopts them when it starts.
KillMode=process
KillSignal=SIGTERM
TimeoutStopSec=30
Restart=on-failure
RestartSec=5
LimitNOFILE=65536

[Install]
WantedBy={target}
"""

    def next_steps(self) -> list[str]:
        """The commands that load, enable and start it, and where its output goes."""
        ctl = "systemctl --user" if self.user_unit else "systemctl"
        journal = "journalctl --user" if self.user_unit else "journalctl"
        steps = [f"{ctl} daemon-reload", f"{ctl} enable --now {self.name}.service"]
        if self.user_unit:  # else the user's manager, and ANT, end with the last login session
            steps.append(f"loginctl enable-linger {os.environ.get('USER') or '$USER'}")
        steps.append(f"{journal} -u {self.name}.service -f   # its output")
        return steps


def valid_name(name: str) -> bool:
    return bool(_NAME.fullmatch(name)) and not name.startswith(("-", "."))


def _escape(value: str) -> str:
    """A value as systemd reads it back: `%` starts a specifier, so it is doubled."""
    return value.replace("%", "%%")


def _quote(word: str) -> str:
    """One word of ExecStart (systemd's own quoting: double quotes, backslash escapes; `$` and
    `%` doubled so that neither a variable nor a specifier is expanded)."""
    word = _escape(word).replace("$", "$$")
    if _PLAIN.fullmatch(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
