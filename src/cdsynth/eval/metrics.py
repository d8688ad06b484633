"""The BabyLM scores computed from per-item numbers, in numpy: the same code scores a checkpoint and each
bootstrap resample of it (`cdsynth.report.bootstrap`), so a replicate is exactly the score on other items.

Accuracy is aggregated per subtask as the official pipeline does; WUG's Spearman correlation and the
reading regressions' R2 gains take optional resampling (index sets or draw-count weights).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from scipy.stats import rankdata

CHOICE_TASKS = ("blimp", "blimp_supplement", "ewok", "entity_tracking")
EYE_MEASURES = ("RTfirstfix", "RTfirstpass", "RTgopast", "RTrightbound")
BASE_TERMS = ["Subtlex_log10", "length", "context_length"]


def aggregate(task: str, per_subtask: dict[str, Any]) -> Any:
    """A task's score from its subtask accuracies (floats, or equal-length arrays of bootstrap replicates)."""
    if task != "entity_tracking":
        return np.mean(np.stack(list(per_subtask.values())), axis=0)
    groups: dict[str, list] = defaultdict(list)
    for name, value in per_subtask.items():
        groups[name.rsplit("_", 2)[0]].append(value)  # "<file>_<numops>_ops"
    return np.mean(np.stack([np.mean(np.stack(values), axis=0) for values in groups.values()]), axis=0)


def spearman(x: np.ndarray, y: np.ndarray) -> Any:
    """Spearman correlation x 100 along the last axis (average ranks for ties).

    A constant side has no ranking to correlate: that counts as 0, not NaN, so that a bootstrap replicate
    drawing one item many times still has a value.
    """
    x, y = rankdata(x, axis=-1), rankdata(y, axis=-1)
    x -= x.mean(axis=-1, keepdims=True)
    y -= y.mean(axis=-1, keepdims=True)
    norm = np.sqrt((x * x).sum(-1) * (y * y).sum(-1))
    return 100 * np.divide((x * y).sum(-1), norm, out=np.zeros_like(norm), where=norm > 0)


def ols_r2(target: np.ndarray, columns: list[np.ndarray], weights: np.ndarray | None = None) -> Any:
    """R2 of an OLS fit with intercept; with (B, rows) `weights`, of B weighted fits at once.

    Integer weights are the bootstrap: a row drawn twice counts twice, exactly as if it were duplicated.
    Columns are standardized first, which keeps their span (with the intercept) and the normal equations
    well conditioned.
    """
    raw = np.column_stack(columns)
    design = np.column_stack([np.ones_like(target), (raw - raw.mean(0)) / raw.std(0)])
    w = np.ones((1, len(target))) if weights is None else np.asarray(weights, dtype=np.float64)
    k = design.shape[1]
    gram = (w @ (design[:, :, None] * design[:, None, :]).reshape(len(target), k * k)).reshape(-1, k, k)
    moments = w @ (design * target[:, None])
    coef = np.linalg.solve(gram, moments[:, :, None])[:, :, 0]
    residual = target[None, :] - coef @ design.T
    mean = (w @ target) / w.sum(1)
    r2 = 1 - (w * residual**2).sum(1) / (w * (target[None, :] - mean[:, None]) ** 2).sum(1)
    return float(r2[0]) if weights is None else r2


def with_interactions(names: list[str]) -> list[tuple[str, ...]]:
    return [(n,) for n in names] + [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]


def r2_gain(
    table: dict[str, np.ndarray], target: str, base: list[str], weights: np.ndarray | None = None
) -> Any:
    """(R2 with surprisal - R2 without) / (1 - R2 without) x 100, on the rows where every value exists.

    With (B, rows) bootstrap `weights`, returns the B replicate gains.
    """
    used = [target, "pred", *base]
    keep = np.all([np.isfinite(table[name]) for name in used], axis=0)
    terms = [np.prod([table[n][keep] for n in term], axis=0) for term in with_interactions(base)]
    kept = None if weights is None else weights[:, keep]
    r2_base = ols_r2(table[target][keep], terms, kept)
    r2_model = ols_r2(table[target][keep], [*terms, table["pred"][keep]], kept)
    return 100 * (r2_model - r2_base) / (1 - r2_base)


def reading_table(
    rows: list[dict], surprisal: np.ndarray, prev_surprisal: np.ndarray
) -> dict[str, np.ndarray]:
    """The regression variables of every reading row (`babylm.load_reading`); missing values are NaN."""
    table = {
        name: np.array([np.nan if r[name] is None else float(r[name]) for r in rows])
        for name in [*EYE_MEASURES, "self_paced_reading_time", *BASE_TERMS, "prev_length"]
    }
    return table | {"pred": surprisal, "prev_pred": prev_surprisal}


def reading_scores(table: dict[str, np.ndarray], weights: np.ndarray | None = None) -> tuple[Any, dict, Any]:
    """(Eye Tracking, its four measures, Reading): R2 gains, or their bootstrap replicates with weights."""
    eye = {m: r2_gain(table, m, BASE_TERMS, weights) for m in EYE_MEASURES}
    spillover = [*BASE_TERMS, "prev_length", "prev_pred"]
    reading = r2_gain(table, "self_paced_reading_time", spillover, weights)
    return np.mean(np.stack(list(eye.values())), axis=0), eye, reading
