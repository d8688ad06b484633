"""One experiment's summary: mean-max scores over its seeds' checkpoints and its bootstrap replicates.

An experiment is a set of training runs (one per seed) whose checkpoints were all evaluated. Its summary
(`summary.json`) holds the mean-max of every task in `stats.TASK_LABELS` (both WUG metrics among them) and
the checkpoint each seed contributed; its replicates (`replicates.npz`) hold, per task, the bootstrap
distribution of those selected checkpoints averaged over seeds, which the tables compare against the
baseline's.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from cdsynth.errors import DataError
from cdsynth.eval.items import load_reading
from cdsynth.io import atomic_path, read_json, write_json
from cdsynth.report.bootstrap import task_replicates
from cdsynth.report.statistics import TASK_LABELS, mean_max
from cdsynth.spec.paths import EVALUATED_FILE, checkpoint_dir


def evaluated_checkpoints(evaluation: str | os.PathLike) -> dict[int, str]:
    """Step -> scores directory of every checkpoint an evaluation scored (its `EVALUATED_FILE`)."""
    listing = Path(evaluation) / EVALUATED_FILE
    if not listing.is_file():
        raise DataError(f"{listing}: not found (evaluated by an older version); evaluate the run again.")
    return {row["step"]: checkpoint_dir(str(evaluation), row["step"]) for row in read_json(listing)}


def read_scores(eval_dirs: dict[int, dict[int, str]]) -> dict[int, dict[int, dict[str, float]]]:
    """scores[seed][step] = that checkpoint's task scores."""
    scores: dict[int, dict[int, dict[str, float]]] = {}
    for seed, by_step in eval_dirs.items():
        for step, directory in by_step.items():
            path = Path(directory) / "scores.json"
            if not path.is_file():
                raise DataError(f"{path}: not found. Evaluate the checkpoint first (rerun Snakemake).")
            found = read_json(path)["scores"]
            missing = [task for task in TASK_LABELS if task not in found]
            if missing:
                raise DataError(
                    f"{path}: no {', '.join(missing)} score (evaluated by an older version); "
                    "evaluate the checkpoint again."
                )
            scores.setdefault(seed, {})[step] = found
    return scores


def items_fingerprint(predictions) -> dict[str, str]:
    """Per task, a hash of which items were scored: two models are comparable only on the same items."""
    out = {}
    columns = predictions.select(["task", "subtask", "item"]).to_pydict()
    keys: dict[str, list[str]] = {}
    for task, subtask, item in zip(columns["task"], columns["subtask"], columns["item"]):
        keys.setdefault(task, []).append(f"{subtask}:{item}")
    for task, names in keys.items():
        out[task] = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
    out["eye_tracking"] = out["reading"]
    return out


def summarize_experiment(
    name: str,
    evaluations: dict[int, str],
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    samples: int = 1000,
    seed: int = 42,
) -> dict[str, Any]:
    """Write `summary.json` and `replicates.npz` for one experiment from its seeds' evaluations
    (seed -> evaluation directory)."""
    eval_dirs = {seed: evaluated_checkpoints(evaluation) for seed, evaluation in evaluations.items()}
    scores = read_scores(eval_dirs)
    tasks = {
        task: mean_max(
            {s: {step: by_step[step][task] for step in by_step} for s, by_step in scores.items()}, task
        )
        for task in TASK_LABELS
    }
    reading_rows = load_reading(data_dir)
    replicates: dict[str, list[np.ndarray]] = {task: [] for task in TASK_LABELS}
    fingerprints: dict[str, str] = {}
    for run_seed in scores:
        # Each checkpoint this seed contributes is read once, for the tasks it was selected for.
        by_step: dict[int, list[str]] = {}
        for task, result in tasks.items():
            by_step.setdefault(result.selected[run_seed], []).append(task)
        for step, selected in by_step.items():
            predictions = pq.read_table(Path(eval_dirs[run_seed][step]) / "predictions.parquet")
            fingerprints |= items_fingerprint(predictions)
            for task, values in task_replicates(predictions, selected, reading_rows, samples, seed).items():
                if task in selected:
                    replicates[task].append(values)
    summary = {
        "experiment": name,
        "seeds": sorted(scores),
        "bootstrap": {"samples": samples, "seed": seed},
        "items": fingerprints,
        "tasks": {task: asdict(result) for task, result in tasks.items()},
    }
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "replicates.npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **{task: np.mean(reps, axis=0) for task, reps in replicates.items()})
    write_json(summary, out_dir / "summary.json")
    return summary


def load_summary(directory: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    directory = Path(directory)
    with np.load(directory / "replicates.npz") as data:
        replicates = {task: data[task] for task in data.files}
    return read_json(directory / "summary.json"), replicates


def read_history(metrics_csv: str | os.PathLike) -> list[dict[str, float]]:
    """A run's metrics.csv as rows of numbers."""
    with open(metrics_csv, newline="") as handle:
        return [
            {key: float(value) for key, value in row.items() if value != ""} for row in csv.DictReader(handle)
        ]
