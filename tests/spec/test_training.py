"""The training settings' `loggers`: known trackers only, those installed, checked with the config."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import micro_settings

from cdsynth.errors import ConfigError
from cdsynth.spec.config import validate_config
from cdsynth.spec.training import installed

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
DEMO = yaml.safe_load((REPO / "config.yaml").read_text())


def demo_with_loggers(loggers: list[str]) -> dict:
    config = copy.deepcopy(DEMO)
    config["train"]["loggers"] = loggers
    return config


@pytest.mark.parametrize("name", ["wandb", "mlflow"])
def test_a_logger_not_installed_is_refused_naming_the_field_and_the_install_command(name):
    if installed(name):
        pytest.skip(f"{name} is installed here")
    with pytest.raises(ConfigError) as err:
        validate_config(demo_with_loggers(["tensorboard", name]), SCHEMA)
    assert f"train.loggers: {name} is not installed; pip install {name}" in str(err.value)
    assert str(err.value).count("train.loggers") == 1, "tensorboard is installed"


def test_an_unknown_logger_is_refused_by_the_settings():
    with pytest.raises(ConfigError, match="loggers: 'neptune' is not one of tensorboard, wandb, mlflow"):
        micro_settings(
            seed=0,
            steps=2,
            batch_size=2,
            micro_batch_size=2,
            lr=1e-3,
            warmup_steps=0,
            checkpoints={"every": 1},
            eval_blocks=1,
            loggers=["neptune"],
        )


def test_an_installed_logger_is_a_valid_config_that_imports_no_tracker():
    """The Snakefile checks the config each time Snakemake parses it: finding a package imports nothing."""
    code = (
        "import sys, yaml; from cdsynth.spec.config import validate_config; "
        f"config = yaml.safe_load(open({str(REPO / 'config.yaml')!r})); "
        "config['train']['loggers'] = ['tensorboard']; "
        f"validate_config(config, {str(SCHEMA)!r}); "
        "assert 'tensorboard' not in sys.modules, 'tensorboard imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_folder_named_like_a_package_is_not_the_package(tmp_path, monkeypatch):
    """wandb's output folder is `./wandb/`: on the path, Python finds it as a namespace package."""
    (tmp_path / "cdsynth_tracker").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    assert not installed("cdsynth_tracker")
    assert installed("yaml")
