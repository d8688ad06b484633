"""The paper's statistics on small cases whose answers are worked out by hand."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy.stats import spearmanr

from cdsynth.eval.metrics import r2_gain, spearman
from cdsynth.report.bootstrap import (
    choice_replicates,
    draw_counts,
    index_sets,
    perplexity_replicates,
    task_replicates,
)
from cdsynth.report.statistics import PAPER_GAIN_TASKS, mean_max, paired_test, relative_gain


def test_mean_max_takes_each_seeds_best_checkpoint_then_averages():
    scores = {1: {100: 60.0, 200: 64.0, 300: 62.0}, 2: {100: 66.0, 200: 65.0, 300: 61.0}}
    result = mean_max(scores, "blimp")
    assert result.selected == {1: 200, 2: 100}
    assert result.mean == pytest.approx(65.0)  # (64 + 66) / 2
    assert result.std == pytest.approx(np.sqrt(2))  # sample std of [64, 66]


def test_mean_max_takes_the_minimum_for_perplexity():
    scores = {1: {100: 30.0, 200: 25.0}, 2: {100: 27.0, 200: 29.0}}
    result = mean_max(scores, "perplexity")
    assert result.selected == {1: 200, 2: 100}
    assert result.mean == pytest.approx(26.0) and result.per_seed == {1: 25.0, 2: 27.0}


def test_relative_gain_averages_the_seven_tasks_and_ignores_perplexity():
    base = {"perplexity": 20.0, "blimp": 50.0, "blimp_supplement": 50.0, "entity_tracking": 20.0}
    base |= {"ewok": 50.0, "wug_accuracy": 50.0, "wug_spearman": 10.0, "reading": 2.0, "eye_tracking": 4.0}
    exp = dict(base, perplexity=10.0, blimp=55.0, reading=1.0, wug_spearman=30.0)  # +10%, -50%, others 0
    assert relative_gain(exp, base) == pytest.approx(100 * (0.10 - 0.50) / 7)
    assert relative_gain(exp, base, PAPER_GAIN_TASKS) == relative_gain(exp, base)


def test_relative_gain_over_a_chosen_task_list():
    base = {"perplexity": 20.0, "blimp": 50.0, "wug_spearman": 10.0, "ewok": 50.0}
    exp = {"perplexity": 18.0, "blimp": 55.0, "wug_spearman": 30.0, "ewok": 0.0}
    assert relative_gain(exp, base, ["blimp", "wug_spearman"]) == pytest.approx(100 * (0.10 + 2.0) / 2)
    # Perplexity falling from 20 to 18 is a 10% gain.
    assert relative_gain(exp, base, ["perplexity"]) == pytest.approx(10.0)


def test_paired_test_on_a_constant_improvement():
    base = np.linspace(50, 60, 1000)
    result = paired_test(base + 1.5, base, "blimp")
    assert (result.low, result.high) == pytest.approx((1.5, 1.5))
    assert result.p_value == pytest.approx(1 / 1001) and result.significant


def test_paired_test_p_value_counts_replicates_that_are_not_better():
    diff = np.arange(-250, 750) / 10.0  # 251 replicates <= 0 out of 1000
    result = paired_test(diff, np.zeros(1000), "blimp")
    assert result.p_value == pytest.approx(252 / 1001)
    assert result.low == pytest.approx(np.percentile(diff, 2.5)) and result.low < 0 < result.high
    assert not result.significant
    # For perplexity, lower is better: the same differences are mostly worse.
    assert paired_test(diff, np.zeros(1000), "perplexity").p_value == pytest.approx(
        751 / 1001
    )  # 750 replicates >= 0


def test_a_model_against_itself_is_not_different():
    reps = np.random.default_rng(0).normal(size=500)
    result = paired_test(reps, reps, "ewok")
    assert result.p_value == 1.0 and not result.significant


def test_index_sets_are_drawn_once_per_stratum_and_shared():
    first = index_sets(30, 200, 42, "blimp/anaphor")
    assert np.array_equal(first, index_sets(30, 200, 42, "blimp/anaphor"))
    assert not np.array_equal(first, index_sets(30, 200, 42, "blimp/other"))
    counts = draw_counts(30, 200, 42, "blimp/anaphor")
    assert np.array_equal(counts[7], np.bincount(first[7], minlength=30))
    assert (counts.sum(axis=1) == 30).all()


def test_accuracy_replicates_resample_each_subtask_and_average_them():
    rows = {"subtask": ["a"] * 4 + ["b"] * 2, "correct": [True, True, True, True, False, False]}
    assert np.allclose(choice_replicates(rows, "blimp", 50, 42), 50.0)  # 100% and 0%, whatever is drawn
    mixed = {"subtask": ["a"] * 10, "correct": [True] * 5 + [False] * 5}
    replicates = choice_replicates(mixed, "blimp", 2000, 42)
    indices = index_sets(10, 2000, 42, "blimp/a")
    assert np.allclose(replicates, 100 * (indices < 5).mean(axis=1))
    assert replicates.mean() == pytest.approx(50, abs=1)


def test_perplexity_replicates_pool_resampled_documents():
    rows = {"value": [10.0, 30.0, 20.0], "tokens": [5, 10, 5]}
    replicates = perplexity_replicates(rows, 100, 42)
    counts = draw_counts(3, 100, 42, "perplexity")
    expected = np.exp((counts @ [10.0, 30.0, 20.0]) / (counts @ [5.0, 10.0, 5.0]))
    assert np.allclose(replicates, expected)


def reading_like_table(rows: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    table = {name: rng.normal(size=rows) for name in ("freq", "length", "pred")}
    table["rt"] = 2 * table["freq"] - table["length"] + 0.5 * table["pred"] + rng.normal(size=rows)
    table["rt"][3] = np.nan  # a missing measurement is dropped, as the official pipeline does
    return table


def test_weighted_regression_equals_refitting_on_duplicated_rows():
    table = reading_like_table(60, 1)
    counts = draw_counts(60, 5, 42, "reading")
    replicates = r2_gain(table, "rt", ["freq", "length"], counts)
    for sample in range(5):
        duplicated = {name: np.repeat(values, counts[sample]) for name, values in table.items()}
        assert replicates[sample] == pytest.approx(r2_gain(duplicated, "rt", ["freq", "length"]), rel=1e-9)
    ones = r2_gain(table, "rt", ["freq", "length"], np.ones((1, 60)))
    assert ones[0] == pytest.approx(r2_gain(table, "rt", ["freq", "length"]), rel=1e-12)


def test_relative_gain_divides_by_the_baseline_magnitude_and_needs_it_nonzero():
    base = dict.fromkeys(PAPER_GAIN_TASKS, 50.0) | {"reading": -20.0}
    exp = dict(base, reading=-10.0)  # an R2 gain moving from -20 to -10 is a gain
    assert relative_gain(exp, base) == pytest.approx(100 * 0.5 / 7)
    assert np.isnan(relative_gain(exp, dict(base, reading=0.0)))


def wug_predictions(correct: list[bool], value: list[float], reference: list[float]) -> pa.Table:
    """A predictions table holding WUG rows only, as `evaluate` writes them."""
    count = len(correct)
    return pa.table(
        {
            "task": ["wug"] * count,
            "subtask": ["wug_adj_nominalization"] * count,
            "item": list(range(count)),
            "correct": correct,
            "value": value,
            "reference": reference,
        }
    )


def test_spearman_matches_scipy_and_a_constant_side_counts_as_zero():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=40), rng.normal(size=40).round(1)  # ties in y
    assert spearman(x, y) == pytest.approx(100 * spearmanr(x, y)[0])
    assert spearman(np.ones(5), np.arange(5.0)) == 0.0
    batch = np.stack([x, -x])
    assert spearman(batch, np.stack([y, y])) == pytest.approx([spearman(x, y), -spearman(x, y)])


def test_wug_accuracy_replicates_resample_the_items_hits():
    value, reference = [0.9, 0.2, 0.6, 0.7], [0.8, 0.1, 0.3, 0.9]
    predictions = wug_predictions([True, False, True, True], value, reference)
    replicates = task_replicates(predictions, ["wug_accuracy", "wug_spearman"], [], 6, 42)
    # The shared index sets of WUG's one subtask, as for every accuracy task; item 1 is the only miss.
    indices = index_sets(4, 6, 42, "wug/wug_adj_nominalization")
    hits = [sum(index != 1 for index in draw) for draw in indices.tolist()]
    assert replicates["wug_accuracy"].tolist() == pytest.approx([25.0 * h for h in hits])
    draws = index_sets(4, 6, 42, "wug")
    expected = spearman(np.array(value)[draws], np.array(reference)[draws])
    assert replicates["wug_spearman"] == pytest.approx(expected)
    all_hits = wug_predictions([True] * 4, value, reference)
    only_accuracy = task_replicates(all_hits, ["wug_accuracy"], [], 6, 42)
    assert set(only_accuracy) == {"wug_accuracy"} and np.all(only_accuracy["wug_accuracy"] == 100.0)
