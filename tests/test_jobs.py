"""A Snakemake job's failure: the whole cause in the rule's log, one line on the console, exit status 1."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cdsynth.errors import DataError
from cdsynth.jobs import run_job


def failing(error: Exception):
    def job() -> None:
        print("loading the model")
        raise error

    return job


def test_an_unexpected_error_goes_to_the_log_with_its_traceback(tmp_path, capfd):
    smk = SimpleNamespace(log=[str(tmp_path / "logs" / "job.log")], rule="synth_shard")
    with pytest.raises(SystemExit) as exit_info:
        run_job(smk, failing(ValueError("header too large")))
    assert exit_info.value.code == 1
    log = (tmp_path / "logs" / "job.log").read_text()
    assert "loading the model" in log and "Traceback" in log and "ValueError: header too large" in log
    console = capfd.readouterr().err.strip().splitlines()
    assert console == [f"rule synth_shard failed: ValueError: header too large (traceback in {smk.log[0]})"]


def test_a_user_error_is_shown_by_its_message_alone(tmp_path, capfd):
    smk = SimpleNamespace(log=[str(tmp_path / "job.log")], rule="evaluate")
    with pytest.raises(SystemExit):
        run_job(smk, failing(DataError("x.arrow: corrupt; rebuild it")))
    assert "error: x.arrow: corrupt; rebuild it" in (tmp_path / "job.log").read_text()
    assert capfd.readouterr().err.strip() == "cdsynth error in rule evaluate: x.arrow: corrupt; rebuild it"
