"""Bootstrap replicates of every task score, recomputed from one checkpoint's per-item predictions.

Index sets are drawn per stratum (a subtask's items, the perplexity documents, the reading rows) from
(seed, stratum name) alone, so every model is resampled with the very same sets: the pairing the paired
test needs. Accuracy tasks (WUG accuracy included) resample within each subtask file and aggregate as the
task does; the WUG Spearman correlation is refit on resampled items; perplexity resamples documents;
Reading and Eye Tracking resample rows and refit their regressions (as weighted fits with the draw counts,
which equals refitting on the duplicated rows).
"""

from __future__ import annotations

import zlib
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdsynth.eval.metrics import CHOICE_TASKS, aggregate, reading_scores, reading_table, spearman


def index_sets(size: int, samples: int, seed: int, stratum: str) -> np.ndarray:
    """(samples, size) row indices drawn with replacement; the same for every call with these arguments."""
    rng = np.random.default_rng([seed, zlib.crc32(stratum.encode())])
    return rng.integers(0, size, size=(samples, size), dtype=np.int32)


def draw_counts(size: int, samples: int, seed: int, stratum: str) -> np.ndarray:
    """How often each row is drawn in each index set: (samples, size)."""
    indices = index_sets(size, samples, seed, stratum)
    flat = indices + size * np.arange(samples, dtype=np.int64)[:, None]
    return np.bincount(flat.ravel(), minlength=samples * size).reshape(samples, size)


def choice_replicates(rows: dict[str, list], task: str, samples: int, seed: int) -> np.ndarray:
    """Accuracy (%) replicates: each subtask resampled on its own, then aggregated like the score."""
    correct: dict[str, list[bool]] = defaultdict(list)
    for subtask, hit in zip(rows["subtask"], rows["correct"]):
        correct[subtask].append(bool(hit))
    per_subtask = {}
    for subtask, hits in correct.items():
        indices = index_sets(len(hits), samples, seed, f"{task}/{subtask}")
        per_subtask[subtask] = 100 * np.asarray(hits)[indices].mean(axis=1)
    return aggregate(task, per_subtask)


def wug_spearman_replicates(rows: dict[str, list], samples: int, seed: int) -> np.ndarray:
    """Spearman correlation (x100) replicates of P(first variant) against the human ratio."""
    value, reference = np.asarray(rows["value"]), np.asarray(rows["reference"])
    indices = index_sets(len(value), samples, seed, "wug")
    return spearman(value[indices], reference[indices])


def perplexity_replicates(rows: dict[str, list], samples: int, seed: int) -> np.ndarray:
    """exp(summed NLL / predicted tokens) over resampled documents."""
    counts = draw_counts(len(rows["value"]), samples, seed, "perplexity")
    nll, tokens = np.asarray(rows["value"]), np.asarray(rows["tokens"], dtype=np.float64)
    return np.exp((counts @ nll) / (counts @ tokens))


def reading_replicates(
    rows: dict[str, list], reading_rows: list[dict], samples: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(Eye Tracking, Reading) replicates: the regressions refit on resampled word rows."""
    table = reading_table(reading_rows, np.asarray(rows["value"]), np.asarray(rows["reference"]))
    counts = draw_counts(len(reading_rows), samples, seed, "reading")
    eye_tracking, _, reading = reading_scores(table, counts)
    return eye_tracking, reading


def task_replicates(
    predictions: pa.Table, tasks: list[str], reading_rows: list[dict], samples: int, seed: int
) -> dict[str, np.ndarray]:
    """`samples` bootstrap replicates of each of `tasks` from one checkpoint's predictions table.

    `reading_rows` are the reading-time rows (`babylm.load_reading`), needed for Reading and Eye Tracking.
    """

    def rows(task: str) -> dict[str, list]:
        return predictions.filter(pc.equal(predictions.column("task"), task)).to_pydict()

    out = {task: choice_replicates(rows(task), task, samples, seed) for task in tasks if task in CHOICE_TASKS}
    if "wug_accuracy" in tasks:  # the predictions' "wug" rows carry both WUG metrics
        out["wug_accuracy"] = choice_replicates(rows("wug"), "wug", samples, seed)
    if "wug_spearman" in tasks:
        out["wug_spearman"] = wug_spearman_replicates(rows("wug"), samples, seed)
    if "perplexity" in tasks:
        out["perplexity"] = perplexity_replicates(rows("perplexity"), samples, seed)
    if {"reading", "eye_tracking"} & set(tasks):
        out["eye_tracking"], out["reading"] = reading_replicates(rows("reading"), reading_rows, samples, seed)
    return out
