"""The paper's statistics: mean-max over checkpoints and seeds, muDeltaREL, and the paired bootstrap test.

See `docs/experiments.md`, "Statistics". Scores are on the scale the tables print (accuracy in %,
R2 gains x 100, perplexity as is); the bootstrap replicates themselves come from `cdsynth.report.bootstrap`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

TASK_LABELS = {
    "perplexity": "Perplexity",
    "blimp": "BLiMP",
    "blimp_supplement": "BLiMP Supp.",
    "entity_tracking": "Entity Tracking",
    "ewok": "EWoK",
    "wug_accuracy": "WUG",
    "wug_spearman": "WUG ρ",
    "reading": "Reading",
    "eye_tracking": "Eye Tracking",
}
LOWER_IS_BETTER = {"perplexity"}
# A table's columns, in order: the paper's, plus the official pipeline's WUG correlation.
DEFAULT_TABLE_TASKS = [
    "perplexity",
    "blimp",
    "blimp_supplement",
    "entity_tracking",
    "ewok",
    "wug_accuracy",
    "wug_spearman",
    "reading",
    "eye_tracking",
]
# The paper's muDeltaREL terms: its seven BabyLM tasks, WUG as an accuracy, perplexity excluded.
PAPER_GAIN_TASKS = [
    "blimp",
    "blimp_supplement",
    "entity_tracking",
    "ewok",
    "wug_accuracy",
    "reading",
    "eye_tracking",
]


@dataclass(frozen=True)
class MeanMax:
    """Per seed the best checkpoint's score (max, or min for perplexity), then their mean and std."""

    mean: float
    std: float
    per_seed: dict[int, float]
    selected: dict[int, int]  # seed -> the step whose score was taken


def mean_max(scores: dict[int, dict[int, float]], task: str) -> MeanMax:
    """`scores[seed][step]` is one checkpoint's score; the std is over seeds (ddof 1; 0 for one seed)."""
    pick = min if task in LOWER_IS_BETTER else max
    selected = {seed: pick(by_step, key=by_step.__getitem__) for seed, by_step in scores.items()}
    per_seed = {seed: float(scores[seed][step]) for seed, step in selected.items()}
    values = np.array(list(per_seed.values()))
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return MeanMax(float(values.mean()), std, per_seed, selected)


def relative_gain(
    experiment: dict[str, float], baseline: dict[str, float], tasks: Sequence[str] = PAPER_GAIN_TASKS
) -> float:
    """muDeltaREL in %: the mean over `tasks` of (experiment - baseline) / |baseline|.

    The paper divides by the baseline, which is the same for its positive scores; |baseline| keeps a gain
    positive where a weak model's score is negative (a correlation or an R2 gain can be). A task where
    lower is better (perplexity, which the paper leaves out) counts its decrease as the gain. A baseline of
    exactly 0 leaves the relative gain undefined: NaN.
    """
    if any(baseline[t] == 0 for t in tasks):
        return float("nan")
    sign = {t: -1 if t in LOWER_IS_BETTER else 1 for t in tasks}
    gains = [sign[t] * (experiment[t] - baseline[t]) / abs(baseline[t]) for t in tasks]
    return 100 * float(np.mean(gains))


@dataclass(frozen=True)
class PairedTest:
    """Experiment minus baseline over shared bootstrap index sets."""

    low: float  # percentile interval of the difference
    high: float
    p_value: float  # one-sided, for "the experiment is better"
    significant: bool  # the interval excludes 0


def paired_test(
    experiment: np.ndarray, baseline: np.ndarray, task: str, confidence: float = 0.95
) -> PairedTest:
    """Compare replicate arrays computed on the same index sets: p = (#{not better} + 1) / (B + 1)."""
    if experiment.shape != baseline.shape:
        raise ValueError(f"replicates differ in shape: {experiment.shape} vs {baseline.shape}")
    diff = experiment - baseline
    tail = 50 * (1 - confidence)
    low, high = np.percentile(diff, [tail, 100 - tail])
    not_better = diff >= 0 if task in LOWER_IS_BETTER else diff <= 0
    p_value = (int(not_better.sum()) + 1) / (len(diff) + 1)
    return PairedTest(float(low), float(high), p_value, bool(low > 0 or high < 0))
