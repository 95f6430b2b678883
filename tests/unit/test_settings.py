import json
import warnings
from pathlib import Path

import pytest

from ant_scheduler.core.errors import ConfigError
from ant_scheduler.settings import (
    Settings,
    UnknownConfigKey,
    defaults_as_dict,
    load_settings,
    settings_from_mapping,
)

REPO = Path(__file__).resolve().parents[2]
SEED_KEYS = {
    "backend_port": 5000,
    "frontend_port": 6060,
    "step_interval": 1,
    "logger": "default_logger",
    "loader": "memory_loader",
    "handler": "subprocess_handler",
    "runner": "gpu_runner",
    "visualizer": "flask_visualizer",
    "RUNNER_default_n_gpus": 0,
    "RECOVERY_enabled": True,
    "RECOVERY_state_file": "./ant_runner_logs/ant_recovery_state.json",
    "LOGGER_log_dir": "./ant_runner_logs",
    "LOGGER_log_to_file": True,
    "LOGGER_log_to_stdout": True,
    "LOGGER_level": 0,
    "ADGS_enabled": False,
    "ADGS_usage_threshold": 0.5,
    "ADGS_mem_threshold": 0.5,
    "MONITORING_history_size": 300,
    "MONITORING_refresh_interval": 1,
    "MONITORING_smoother_alpha": 0.1,
    "HANDLER_pipe_to_file": True,
    "VISUALIZER_log_max_height": 20,
    "VISUALIZER_log_max_width": "inf",
    "VISUALIZER_terminal_win_height": 20,
    "VISUALIZER_ongoing_output_line_control_enabled": True,
    "VISUALIZER_completed_output_line_control_enabled": True,
    "VISUALIZER_completed_output_default_lines": 50,
    "VISUALIZER_output_min_lines": 1,
    "VISUALIZER_output_max_lines": 10,
    "VISUALIZER_view_log_max_lines": 200,
}


def test_shipped_config_has_every_seed_key_with_seed_default() -> None:
    shipped = json.loads((REPO / "config/default.json").read_text())
    for key, value in SEED_KEYS.items():
        assert shipped[key] == value, key


def test_shipped_config_equals_built_in_defaults() -> None:
    shipped = json.loads((REPO / "config/default.json").read_text())
    assert shipped == defaults_as_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_settings(REPO / "config/default.json") == Settings()


def test_every_added_key_is_documented() -> None:
    doc = (REPO / "docs/configuration.md").read_text()
    for key in defaults_as_dict():
        assert f"`{key}`" in doc, key


def test_unknown_key_warns_naming_it() -> None:
    with pytest.warns(UnknownConfigKey, match="'stepinterval'"):
        s = settings_from_mapping({"stepinterval": 2})
    assert s == Settings()


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("step_interval", "fast", "a number"),
        ("frontend_port", 6060.5, "an integer"),
        ("frontend_port", True, "an integer"),
        ("RECOVERY_enabled", "yes", "true or false"),
        ("LOGGER_log_dir", 3, "a string"),
        ("RUNNER_max_cpu_tasks", "4", "an integer or null"),
    ],
)
def test_wrong_type_is_an_error_naming_key_and_type(key: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError, match=f"'{key}' must be {expected}"):
        settings_from_mapping({key: value})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("frontend_port", 70000),
        ("step_interval", 0),
        ("MONITORING_smoother_alpha", 1.5),
        ("RUNNER_policy", "random"),
        ("RUNNER_on_shutdown", "explode"),
        ("RUNNER_max_cpu_tasks", 0),
    ],
)
def test_out_of_range_values_are_errors(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=key):
        settings_from_mapping({key: value})


def test_int_accepted_for_float_and_null_for_optional() -> None:
    s = settings_from_mapping({"step_interval": 2, "RUNNER_max_cpu_tasks": None})
    assert s.step_interval == 2
    assert s.RUNNER_max_cpu_tasks is None


def test_load_settings_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "c.json"
    bad.write_text("{ nope")
    with pytest.raises(ConfigError, match="invalid JSON at line 1"):
        load_settings(bad)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "missing.json")
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        load_settings(bad)


def test_state_dir_defaults_to_log_dir() -> None:
    assert Settings().state_dir == Path("./ant_runner_logs")
    assert Settings(STATE_dir="/tmp/x").state_dir == Path("/tmp/x")


def test_replace_validates() -> None:
    s = Settings().replace(frontend_port=7000)
    assert s.frontend_port == 7000
    with pytest.raises(ConfigError):
        Settings().replace(frontend_port="x")
