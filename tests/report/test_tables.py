"""Result tables with chosen columns and muDeltaREL terms, on hand-made summaries and replicates.

Table numbers are rounded to 4 decimals, hence the absolute tolerances.
"""

from __future__ import annotations

import numpy as np
import pytest

from cdsynth.errors import DataError
from cdsynth.io import write_json
from cdsynth.report.statistics import DEFAULT_TABLE_TASKS, PAPER_GAIN_TASKS, TASK_LABELS
from cdsynth.report.tables import columns, make_table, markdown, read_table, table_rows

SAMPLES = 100
BASE = dict.fromkeys(TASK_LABELS, 50.0) | {"perplexity": 20.0}
# BLiMP +10%, the WUG correlation -20%, perplexity 20 -> 18 (10% better); every other task unchanged.
BETTER = BASE | {"blimp": 55.0, "wug_spearman": 40.0, "perplexity": 18.0}


def summary(means: dict[str, float]) -> dict:
    return {
        "seeds": [1, 2],
        "bootstrap": {"samples": SAMPLES, "seed": 42},
        "items": {"blimp": "same items"},
        "tasks": {task: {"mean": mean, "std": 0.5} for task, mean in means.items()},
    }


def replicates(means: dict[str, float]) -> dict[str, np.ndarray]:
    """Replicates that differ between experiments by a constant shift: the difference is one point."""
    noise = np.random.default_rng(0).normal(size=SAMPLES)
    return {task: mean + noise for task, mean in means.items()}


def rows_for(**kwargs) -> list[dict]:
    summaries = {"Base": summary(BASE), "Better": summary(BETTER)}
    reps = {"Base": replicates(BASE), "Better": replicates(BETTER)}
    return table_rows(["Base", "Better"], summaries, reps, "Base", **kwargs)


def test_a_table_shows_the_chosen_tasks_in_order_and_gains_over_its_gain_tasks():
    tasks, gain_tasks = ["wug_spearman", "blimp"], ["blimp", "wug_spearman"]
    base, better = rows_for(tasks=tasks, gain_tasks=gain_tasks)
    assert list(better) == columns(tasks)
    assert columns(tasks)[:4] == ["experiment", "seeds", "muDeltaREL", "wug_spearman_mean"]
    assert better["muDeltaREL"] == pytest.approx(100 * (0.10 - 0.20) / 2)
    assert better["blimp_sig"] and better["blimp_p"] == pytest.approx(1 / (SAMPLES + 1), abs=1e-4)
    assert better["wug_spearman_p"] == 1.0 and better["wug_spearman_diff_low"] == pytest.approx(-10.0)
    assert base["muDeltaREL"] == 0 and not base["blimp_sig"]
    text = markdown([base, better], "T", "Base", tasks, gain_tasks)
    assert "| Experiment | seeds | μΔREL | WUG ρ | BLiMP |" in text
    assert "mean relative gain over BLiMP, WUG ρ." in text
    assert "| Better | 2 | -5.00% | 40.00 ± 0.50* | 55.00 ± 0.50* |" in text


def test_the_default_table_has_the_paper_columns_and_its_seven_task_gain():
    _, better = rows_for()
    assert list(better) == columns() == columns(DEFAULT_TABLE_TASKS)
    assert better["muDeltaREL"] == pytest.approx(
        100 * 0.10 / len(PAPER_GAIN_TASKS), abs=1e-4
    )  # only BLiMP moved
    assert "perplexity" not in PAPER_GAIN_TASKS and "wug_spearman" not in PAPER_GAIN_TASKS
    _, with_perplexity = rows_for(gain_tasks=["blimp", "perplexity"])
    assert with_perplexity["muDeltaREL"] == pytest.approx(100 * (0.10 + 0.10) / 2)


def test_unknown_or_missing_tasks_are_named():
    with pytest.raises(ValueError, match="wug"):
        rows_for(tasks=["wug"])
    summaries = {"Base": summary(BASE), "Old": summary(BASE | {"wug": 1.0})}
    del summaries["Old"]["tasks"]["wug_accuracy"]
    reps = {"Base": replicates(BASE), "Old": replicates(BASE)}
    with pytest.raises(DataError, match="Old's summary has no wug_accuracy"):
        table_rows(["Base", "Old"], summaries, reps, "Base")


def write_experiment(root, name: str, means: dict[str, float]) -> tuple[str, dict[int, str]]:
    """A summary directory and one seed's metrics.csv, as the experiment jobs write them."""
    directory = root / name
    directory.mkdir()
    write_json(summary(means), directory / "summary.json")
    np.savez(directory / "replicates.npz", **replicates(means))
    metrics = directory / "metrics.csv"
    metrics.write_text("step,tokens,train_loss,val_loss\n10,100,5.0,5.1\n20,200,4.0,4.2\n")
    return str(directory), {1: str(metrics)}


@pytest.mark.parametrize("tasks", [["blimp", "wug_accuracy", "perplexity"], DEFAULT_TABLE_TASKS])
def test_make_table_writes_the_chosen_columns_and_a_panel_per_task(tmp_path, tasks):
    dirs, metrics = {}, {}
    for name, means in (("Base", BASE), ("Better", BETTER)):
        dirs[name], metrics[name] = write_experiment(tmp_path, name, means)
    outputs = {
        "csv": tmp_path / "table.csv",
        "markdown": tmp_path / "table.md",
        "gains": [tmp_path / "gains.png"],
        "curves": [tmp_path / "curves.png"],
    }
    rows = make_table(
        "T", ["Base", "Better"], "Base", dirs, metrics, outputs, tasks=tasks, gain_tasks=["blimp"]
    )
    assert rows[1]["muDeltaREL"] == pytest.approx(10.0)
    assert list(read_table(outputs["csv"])[0]) == columns(tasks)
    assert " | ".join(TASK_LABELS[task] for task in tasks) in outputs["markdown"].read_text()
    assert outputs["gains"][0].stat().st_size > 1000
