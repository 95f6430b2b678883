"""Settings: the seed-compatible JSON config, plus CLI overrides, turned into one typed object.

Unknown keys only warn (old configs keep working); a value of the wrong type is an error that names
the key and the type it should have, so a typo never silently becomes a default.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ant_scheduler.core.errors import ConfigError, TaskRejected
from ant_scheduler.core.notification import check_webhook_url
from ant_scheduler.core.sizes import parse_size


class UnknownConfigKey(UserWarning):
    pass


@dataclass(frozen=True)
class Settings:
    # --- the seed's keys, same names and defaults -------------------------------------------
    backend_port: int = 5000  # accepted for compatibility; ANT serves everything on frontend_port
    frontend_port: int = 6060
    step_interval: float = 1
    logger: str = "default_logger"
    loader: str = "memory_loader"
    handler: str = "subprocess_handler"
    runner: str = "gpu_runner"
    visualizer: str = "flask_visualizer"
    RUNNER_default_n_gpus: int = 0
    RECOVERY_enabled: bool = True
    RECOVERY_state_file: str = "./ant_runner_logs/ant_recovery_state.json"
    LOGGER_log_dir: str = "./ant_runner_logs"
    LOGGER_log_to_file: bool = True
    LOGGER_log_to_stdout: bool = True
    LOGGER_level: int = 0
    ADGS_enabled: bool = False
    ADGS_usage_threshold: float = 0.5
    ADGS_mem_threshold: float = 0.5
    MONITORING_history_size: int = 300
    MONITORING_refresh_interval: float = 1
    MONITORING_smoother_alpha: float = 0.1
    HANDLER_pipe_to_file: bool = True
    VISUALIZER_log_max_height: int = 20
    VISUALIZER_log_max_width: str | int = "inf"
    VISUALIZER_terminal_win_height: int = 20
    VISUALIZER_ongoing_output_line_control_enabled: bool = True
    VISUALIZER_completed_output_line_control_enabled: bool = True
    VISUALIZER_completed_output_default_lines: int = 50
    VISUALIZER_output_min_lines: int = 1
    VISUALIZER_output_max_lines: int = 10
    VISUALIZER_view_log_max_lines: int = 200
    # --- keys ANT 2 adds (documented in docs/configuration.md) --------------------------------
    RUNNER_policy: str = "fifo"  # fifo, backfill or fairshare (docs/scheduling.md)
    # Fair share: a GPU-hour used this long ago counts half (Slurm's PriorityDecayHalfLife).
    RUNNER_fairshare_half_life_hours: float = 168
    RUNNER_max_cpu_tasks: int | None = None
    RUNNER_on_shutdown: str = "keep"
    RUNNER_executor: str = "local"  # what runs tasks: a name in executors/registry.py
    RUNNER_kill_grace_seconds: float = 10
    RECOVERY_auto_restore: bool = False
    STATE_dir: str | None = None
    SERVER_host: str = "0.0.0.0"
    SERVER_max_body_bytes: int = 16 * 1024 * 1024
    ADGS_window_seconds: float = 20
    ADGS_grace_seconds: float = 30
    METRICS_require_auth: bool = True
    # --- integrity (docs/configuration.md) ------------------------------------------------------
    STORE_retry_seconds: float = 10  # how long a command waits for a locked database (then 503)
    RUNNER_stray_grace_seconds: float = 10  # processes a task left behind are killed after this
    RUNNER_wait_for_strays: bool = False  # true: never kill them; the GPUs wait until they end
    SERVER_max_expanded_bytes: int = 64 * 1024 * 1024  # a submission's size after expansion
    LOGGER_group_readable: bool = False  # task logs 0640 (directories 0750) instead of 0600/0700
    # --- the Ray executor (docs/scale-out.md) ---------------------------------------------------
    RAY_address: str = "auto"  # "auto", "HOST:6379" or "ray://HOST:10001"
    RAY_agent_idle_seconds: float = 60  # an agent nobody pulls from, with nothing running, goes
    RAY_connect_timeout_seconds: float = 30  # a bridge not connected by then is started over
    # --- the dashboard (docs/monitoring.md) ------------------------------------------------------
    MONITORING_keep_hours: float = 24  # monitor samples kept in the store (downsampled) for charts
    # --- notifications when a task ends (docs/workflows.md, Notifications) ---------------------
    NOTIFY_webhook_url: str | None = None  # every task's end is POSTed here (null: none)
    NOTIFY_on: str = "all"  # "all" ends, or "failures" (all but succeeded): the server-wide URL
    NOTIFY_format: str = "json"  # "json" (ANT's payload) or "slack" ({"text": ...})
    NOTIFY_timeout_seconds: float = 5  # one POST's timeout (connecting, then each read)
    NOTIFY_retries: int = 3  # attempts after the first one failed; then it is given up
    NOTIFY_backoff_seconds: float = 2  # before the first retry; doubled before each next one
    NOTIFY_queue_size: int = 1000  # notifications waiting at most; more are dropped (counted)
    # --- sharing a GPU box (docs/scheduling.md) ------------------------------------------------
    RUNNER_gpu_mem_reserve: int | str = "1G"  # kept free on a GPU memory tasks share (bytes/size)
    RUNNER_enforce_gpu_mem: bool = False  # kill a memory task using more than it declared
    RUNNER_numa_affinity: bool = False  # pin a task's CPUs to its GPUs' NUMA node, where known

    @property
    def gpu_mem_reserve(self) -> int:
        """RUNNER_gpu_mem_reserve in bytes (checked when the settings were made)."""
        return _reserve_bytes(self.RUNNER_gpu_mem_reserve)

    @property
    def state_dir(self) -> Path:
        """Where the database, token, certificate and connection file live."""
        return Path(self.STATE_dir) if self.STATE_dir else Path(self.LOGGER_log_dir)

    def replace(self, **changes: Any) -> Settings:
        merged = {f.name: getattr(self, f.name) for f in fields(self)}
        merged.update(changes)
        return settings_from_mapping(merged, source="overrides")


_CHOICES: dict[str, tuple[str, ...]] = {
    "RUNNER_policy": ("fifo", "backfill", "fairshare"),
    "RUNNER_on_shutdown": ("keep", "terminate"),
    "NOTIFY_on": ("all", "failures"),
    "NOTIFY_format": ("json", "slack"),
}
_TYPE_HINTS = typing.get_type_hints(Settings)


def _type_name(hint: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        parts = [("null" if a is type(None) else names[a]) for a in typing.get_args(hint)]
        return " or ".join(parts)
    return names[hint]


def _matches(value: Any, hint: Any) -> bool:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if isinstance(value, bool):  # JSON true is not a number here
        return hint is bool
    if hint is float:
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, hint)


def _check_ranges(s: Settings) -> None:
    def need(ok: bool, key: str, what: str) -> None:
        if not ok:
            raise ConfigError(f"config key '{key}': must be {what}, got {getattr(s, key)!r}")

    for key in ("frontend_port", "backend_port"):
        need(0 <= getattr(s, key) <= 65535, key, "a port number between 0 and 65535")
    for key in ("step_interval", "MONITORING_refresh_interval"):
        need(getattr(s, key) > 0, key, "greater than 0")
    need(0 < s.MONITORING_smoother_alpha <= 1, "MONITORING_smoother_alpha", "in (0, 1]")
    need(s.RUNNER_default_n_gpus >= 0, "RUNNER_default_n_gpus", ">= 0")
    need(
        s.RUNNER_max_cpu_tasks is None or s.RUNNER_max_cpu_tasks >= 1,
        "RUNNER_max_cpu_tasks",
        "null (unlimited) or >= 1",
    )
    need(
        s.RUNNER_fairshare_half_life_hours > 0, "RUNNER_fairshare_half_life_hours", "greater than 0"
    )
    need(s.RUNNER_kill_grace_seconds >= 0, "RUNNER_kill_grace_seconds", ">= 0")
    need(s.RAY_agent_idle_seconds >= 1, "RAY_agent_idle_seconds", ">= 1")
    need(s.RAY_connect_timeout_seconds >= 1, "RAY_connect_timeout_seconds", ">= 1")
    need(s.MONITORING_history_size >= 1, "MONITORING_history_size", ">= 1")
    need(s.MONITORING_keep_hours >= 1, "MONITORING_keep_hours", ">= 1")
    need(s.VISUALIZER_terminal_win_height >= 1, "VISUALIZER_terminal_win_height", ">= 1")
    need(s.VISUALIZER_view_log_max_lines >= 1, "VISUALIZER_view_log_max_lines", ">= 1")
    need(s.SERVER_max_body_bytes >= 1024, "SERVER_max_body_bytes", ">= 1024")
    need(s.SERVER_max_expanded_bytes >= 1024, "SERVER_max_expanded_bytes", ">= 1024")
    need(s.STORE_retry_seconds >= 0, "STORE_retry_seconds", ">= 0")
    need(s.RUNNER_stray_grace_seconds >= 0, "RUNNER_stray_grace_seconds", ">= 0")
    need(s.NOTIFY_timeout_seconds > 0, "NOTIFY_timeout_seconds", "greater than 0")
    need(0 <= s.NOTIFY_retries <= 100, "NOTIFY_retries", "from 0 to 100")
    need(s.NOTIFY_backoff_seconds >= 0, "NOTIFY_backoff_seconds", ">= 0")
    need(s.NOTIFY_queue_size >= 1, "NOTIFY_queue_size", ">= 1")
    if s.NOTIFY_webhook_url:
        try:
            check_webhook_url(s.NOTIFY_webhook_url, "NOTIFY_webhook_url")
        except TaskRejected as exc:
            raise ConfigError(f"config key {exc.message}") from None
    try:
        _reserve_bytes(s.RUNNER_gpu_mem_reserve)
    except TaskRejected:
        need(False, "RUNNER_gpu_mem_reserve", "bytes (>= 0) or a size such as 1G or 512M")
    for key, allowed in _CHOICES.items():
        need(getattr(s, key) in allowed, key, "one of " + ", ".join(repr(a) for a in allowed))


def _reserve_bytes(value: int | str) -> int:
    if isinstance(value, int):
        if value < 0:
            raise TaskRejected("negative")
        return value
    return 0 if value.strip() in ("0", "") else parse_size(value, "RUNNER_gpu_mem_reserve")


def settings_from_mapping(data: Any, *, source: str = "config") -> Settings:
    """Validate a parsed JSON object into Settings. Warns on unknown keys, raises on bad values."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the config must be a JSON object")
    known = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            warnings.warn(f"{source}: unknown config key '{key}' (ignored)", UnknownConfigKey, 2)
            continue
        hint = _TYPE_HINTS[key]
        if not _matches(value, hint):
            raise ConfigError(
                f"{source}: config key '{key}' must be {_type_name(hint)}, got {json.dumps(value)}"
            )
        values[key] = value
    settings = Settings(**values)
    _check_ranges(settings)
    return settings


def load_settings(path: Path | None = None) -> Settings:
    """Read a config file. With no path, `./config/default.json` if present (as the seed does)."""
    if path is None:
        candidate = Path("config/default.json")
        if not candidate.is_file():
            return Settings()
        path = candidate
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    return settings_from_mapping(data, source=str(path))


def defaults_as_dict() -> dict[str, Any]:
    return dataclasses.asdict(Settings())
