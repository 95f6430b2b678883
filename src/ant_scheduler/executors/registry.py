"""Which executor runs tasks (RUNNER_executor): a name -> factory table. Adding an executor is one
module implementing executors.base.Executor plus one line here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ant_scheduler.core.errors import ConfigError
from ant_scheduler.executors.base import Executor
from ant_scheduler.settings import Settings

Factory = Callable[[Settings, str], Executor]


def _local(settings: Settings, server_id: str) -> Executor:
    from ant_scheduler.executors.local import LocalExecutor

    return LocalExecutor(
        log_dir=Path(settings.LOGGER_log_dir),
        server_id=server_id,
        become_subreaper=True,  # finds what tasks leave behind cheaply (see local.py)
        log_group_readable=settings.LOGGER_group_readable,
    )


def _ray(settings: Settings, server_id: str) -> Executor:
    import importlib.util

    if importlib.util.find_spec("ray") is None:  # ANT itself never imports Ray (the bridge does)
        raise ConfigError("RUNNER_executor 'ray' needs Ray: pip install 'ant-scheduler[ray]'")
    from ant_scheduler.executors.ray import RayExecutor

    return RayExecutor(
        address=settings.RAY_address,
        server_id=server_id,
        log_dir=Path(settings.LOGGER_log_dir),
        state_file=settings.state_dir / "ray_nodes.json",
        kill_grace_seconds=settings.RUNNER_kill_grace_seconds,
        agent_idle_seconds=settings.RAY_agent_idle_seconds,
        connect_timeout=settings.RAY_connect_timeout_seconds,
    )


EXECUTORS: dict[str, Factory] = {
    "local": _local,
    "ray": _ray,
}


def create_executor(settings: Settings, server_id: str) -> Executor:
    """The executor RUNNER_executor names; server_id marks this server's tasks."""
    factory = EXECUTORS.get(settings.RUNNER_executor)
    if factory is None:
        known = ", ".join(repr(name) for name in EXECUTORS)
        raise ConfigError(
            f"config key 'RUNNER_executor': unknown executor {settings.RUNNER_executor!r} "
            f"(known: {known})"
        )
    return factory(settings, server_id)
