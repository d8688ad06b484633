"""The experiment trackers of `train.loggers`: a run's metrics at every save step, for TensorBoard, Weights &
Biases (offline) and MLflow (a local file store), each in a folder of the run's output.

Each tracker is written once, from the run's whole history, when the run publishes, and not step by step
as it trains: a killed run resumes from its last save with the history so far, so steps logged after that
save would be logged again, and a tracker's folder of the attempt before would hold them twice. Written
from the history, the folder holds exactly one value per scalar per step, whatever the run went through.
The trackers' packages are imported only here, and only when a run names them.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# What a tracker shows, by tag: a value of one row of the trainer's history (one save step).
SCALARS: dict[str, Callable[[dict[str, Any]], float]] = {
    "loss/train": lambda row: row["train_loss"],
    "loss/val": lambda row: row["val_loss"],
    "lr": lambda row: row["lr"],
    "tokens_per_s": lambda row: row["tokens_per_s"],
    "synthetic_ratio": lambda row: row["synthetic_ratio"],
    "words/seen": lambda row: row["words_real"] + row["words_synthetic"],
    "words/real": lambda row: row["words_real"],
    "words/synthetic": lambda row: row["words_synthetic"],
    "tokens": lambda row: row["tokens"],
}


# The most metrics MLflow takes in one `log_batch`.
MLFLOW_BATCH = 1000


def scalars(row: dict[str, Any]) -> dict[str, float]:
    return {tag: float(value(row)) for tag, value in SCALARS.items()}


def wall_times(history: list[dict[str, Any]]) -> list[float]:
    """Each row's time, so that a tracker's time axis shows the training time (`elapsed_s`) rather than
    the moment of writing: the last row now, the others as long before as they were saved."""
    start = time.time() - history[-1]["elapsed_s"]
    return [start + row["elapsed_s"] for row in history]


def write_tensorboard(history: list[dict[str, Any]], folder: Path, name: str) -> None:
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(log_dir=str(folder)) as writer:
        for row, walltime in zip(history, wall_times(history)):
            for tag, value in scalars(row).items():
                writer.add_scalar(tag, value, global_step=row["step"], walltime=walltime)


def write_wandb(history: list[dict[str, Any]], folder: Path, name: str) -> None:
    os.environ["WANDB_MODE"] = "offline"  # never the network, whatever the user's wandb settings say
    import wandb

    # wandb makes its folder, <dir>/wandb/, itself.
    run = wandb.init(project="cdsynth", dir=str(folder.parent), name=name, mode="offline")
    for row in history:
        run.log(scalars(row), step=row["step"])
    run.finish()


def write_mlflow(history: list[dict[str, Any]], folder: Path, name: str) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri=folder.absolute().as_uri())
    run_id = client.create_run(client.create_experiment(name)).info.run_id
    metrics = [
        Metric(key=tag, value=value, timestamp=round(walltime * 1000), step=row["step"])
        for row, walltime in zip(history, wall_times(history))
        for tag, value in scalars(row).items()
    ]
    for start in range(0, len(metrics), MLFLOW_BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + MLFLOW_BATCH])
    client.set_terminated(run_id)


# Each tracker's writer and its folder in the run (wandb names its own folder `wandb/`).
TRACKERS: dict[str, tuple[Callable[[list[dict[str, Any]], Path, str], None], str]] = {
    "tensorboard": (write_tensorboard, "tensorboard"),
    "wandb": (write_wandb, "wandb"),
    "mlflow": (write_mlflow, "mlruns"),
}


def write_trackers(
    loggers: tuple[str, ...], history: list[dict[str, Any]], run_dir: Path, name: str
) -> list[str]:
    """Write each logger's folder into `run_dir` afresh from `history`; the names of the folders.

    A folder an earlier attempt left (killed while publishing) is replaced, not added to.
    """
    written = []
    for logger in loggers:
        write, folder = TRACKERS[logger]
        shutil.rmtree(run_dir / folder, ignore_errors=True)
        write(history, run_dir / folder, name)
        written.append(folder)
    return written
