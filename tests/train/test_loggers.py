"""The trackers of `train.loggers`, read back with their own readers: every scalar at its step, once."""

from __future__ import annotations

import csv
from dataclasses import replace

import pytest
from helpers import micro_settings
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cdsynth.resumable import WorkDir, work_path
from cdsynth.train.loggers import write_trackers
from cdsynth.train.trainer import run_fingerprint, train

# Rows as the trainer appends them to its history at each save step.
HISTORY = [
    {
        "step": 20,
        "tokens": 5120,
        "words_real": 3000,
        "words_synthetic": 1000,
        "train_loss": 6.5,
        "val_loss": 6.25,
        "lr": 0.002,
        "elapsed_s": 1.5,
        "tokens_per_s": 3413.3,
        "synthetic_ratio": 0.25,
    },
    {
        "step": 40,
        "tokens": 10240,
        "words_real": 6000,
        "words_synthetic": 2000,
        "train_loss": 5.5,
        "val_loss": 5.375,
        "lr": 0.001,
        "elapsed_s": 3.0,
        "tokens_per_s": 3500.0,
        "synthetic_ratio": 0.25,
    },
    {
        "step": 60,
        "tokens": 15360,
        "words_real": 9100,
        "words_synthetic": 2900,
        "train_loss": 5.0,
        "val_loss": 4.875,
        "lr": 0.0,
        "elapsed_s": 4.5,
        "tokens_per_s": 3600.0,
        "synthetic_ratio": 0.241667,
    },
]
EXPECTED = {
    "loss/train": [6.5, 5.5, 5.0],
    "loss/val": [6.25, 5.375, 4.875],
    "lr": [0.002, 0.001, 0.0],
    "tokens_per_s": [3413.3, 3500.0, 3600.0],
    "synthetic_ratio": [0.25, 0.25, 0.241667],
    "words/seen": [4000, 8000, 12000],
    "words/real": [3000, 6000, 9100],
    "words/synthetic": [1000, 2000, 2900],
    "tokens": [5120, 10240, 15360],
}

# A micro run of two saves (steps 2 and 4).
MICRO_RUN = dict(
    seed=5,
    steps=4,
    batch_size=4,
    micro_batch_size=4,
    lr=3e-3,
    warmup_steps=1,
    checkpoints={"every": 2},
    eval_blocks=8,
)


def tensorboard_scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """(step, value) of every event of each scalar tag in the folder's event files."""
    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_holds_every_scalar_at_its_step(tmp_path):
    assert write_trackers(("tensorboard",), HISTORY, tmp_path, name="run") == ["tensorboard"]
    scalars = tensorboard_scalars(tmp_path / "tensorboard")
    assert set(scalars) == set(EXPECTED)
    for tag, values in EXPECTED.items():
        assert [step for step, _ in scalars[tag]] == [20, 40, 60], tag
        assert [value for _, value in scalars[tag]] == pytest.approx(values, rel=1e-6), tag


def test_the_history_written_again_after_a_resume_leaves_one_value_per_step(tmp_path):
    """A run killed while publishing left the folder of its first two saves; the resumed run's whole
    history replaces it."""
    write_trackers(("tensorboard",), HISTORY[:2], tmp_path, name="run")
    write_trackers(("tensorboard",), HISTORY, tmp_path, name="run")
    assert len(list((tmp_path / "tensorboard").iterdir())) == 1, "one event file"
    for tag, events in tensorboard_scalars(tmp_path / "tensorboard").items():
        assert [step for step, _ in events] == [20, 40, 60], tag


def test_no_loggers_write_nothing(tmp_path):
    assert write_trackers((), HISTORY, tmp_path, name="run") == []
    assert not any(tmp_path.iterdir())


def test_mlflow_holds_every_scalar_at_its_step(tmp_path):
    mlflow = pytest.importorskip("mlflow")
    assert write_trackers(("mlflow",), HISTORY, tmp_path, name="run") == ["mlruns"]
    client = mlflow.MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    run = client.search_runs([client.get_experiment_by_name("run").experiment_id])[0]
    for tag, values in EXPECTED.items():
        history = client.get_metric_history(run.info.run_id, tag)
        assert sorted((m.step, m.value) for m in history) == list(zip([20, 40, 60], values)), tag


def test_wandb_writes_an_offline_run_inside_the_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "online")  # the logger overrides it: never the network
    assert write_trackers(("wandb",), HISTORY, tmp_path, name="run") == ["wandb"]
    assert list((tmp_path / "wandb").glob("offline-run-*")), "an offline run, in the run's wandb/"


def test_a_resumed_training_run_publishes_readable_events_of_its_metrics(prepared, tmp_path, monkeypatch):
    """The run is stopped in its first publish, after the trackers were written: the rerun resumes from its
    last save, publishes, and its events hold each step once, with metrics.csv's validation losses."""
    cfg = micro_settings(**MICRO_RUN, loggers=["tensorboard"])
    paths = (prepared["train"], prepared["test"], prepared["tokenizer"], tmp_path / "run")
    publish = WorkDir.publish

    def killed(self, parts):
        raise KeyboardInterrupt

    monkeypatch.setattr(WorkDir, "publish", killed)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, *paths)
    assert (work_path(tmp_path / "run") / "tensorboard").is_dir()
    monkeypatch.setattr(WorkDir, "publish", publish)
    train(cfg, *paths)

    with open(tmp_path / "run" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    events = tensorboard_scalars(tmp_path / "run" / "tensorboard")["loss/val"]
    assert [step for step, _ in events] == [int(row["step"]) for row in rows] == [2, 4]
    assert [value for _, value in events] == pytest.approx([float(row["val_loss"]) for row in rows], rel=1e-6)


def test_adding_a_logger_keeps_the_runs_fingerprint_so_a_killed_run_resumes():
    cfg = micro_settings(**MICRO_RUN)
    assert run_fingerprint(replace(cfg, loggers=("tensorboard",)), "data") == run_fingerprint(cfg, "data")
