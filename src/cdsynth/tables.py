"""Result tables: one row per experiment, every task's mean-max, std, paired-bootstrap p-value and flag.

The CSV is for machines (one column per number); the Markdown renders cells like the paper,
"71.72 ± 0.19*", where * marks a difference from the baseline whose 95% interval excludes 0.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np

from cdsynth.errors import DataError
from cdsynth.experiments import load_summary, read_history
from cdsynth.io import atomic_path
from cdsynth.plots import plot_curves, plot_gains
from cdsynth.stats import TASK_LABELS, paired_test, relative_gain

TASK_FIELDS = ("mean", "std", "p", "sig", "diff_low", "diff_high")


def columns() -> list[str]:
    return ["experiment", "seeds", "muDeltaREL"] + [f"{t}_{f}" for t in TASK_LABELS for f in TASK_FIELDS]


def table_rows(
    experiments: list[str],
    summaries: dict[str, dict[str, Any]],
    replicates: dict[str, dict[str, np.ndarray]],
    baseline: str,
    confidence: float = 0.95,
) -> list[dict[str, Any]]:
    """Rows in the given order; every experiment is compared with `baseline` (itself included)."""
    base = summaries[baseline]
    base_means = {task: base["tasks"][task]["mean"] for task in TASK_LABELS}
    rows = []
    for name in experiments:
        summary = summaries[name]
        check_comparable(name, summary, baseline, base)
        means = {task: summary["tasks"][task]["mean"] for task in TASK_LABELS}
        row: dict[str, Any] = {
            "experiment": name,
            "seeds": len(summary["seeds"]),
            "muDeltaREL": round(relative_gain(means, base_means), 4),
        }
        for task in TASK_LABELS:
            test = paired_test(replicates[name][task], replicates[baseline][task], task, confidence)
            row |= {
                f"{task}_mean": round(means[task], 4),
                f"{task}_std": round(summary["tasks"][task]["std"], 4),
                f"{task}_p": round(test.p_value, 4),
                f"{task}_sig": test.significant,
                f"{task}_diff_low": round(test.low, 4),
                f"{task}_diff_high": round(test.high, 4),
            }
        rows.append(row)
    return rows


def check_comparable(name: str, summary: dict, baseline: str, base: dict) -> None:
    """Paired replicates need the same index sets: the same items and bootstrap settings."""
    if summary["bootstrap"] != base["bootstrap"]:
        raise DataError(f"{name} and {baseline} were bootstrapped differently; rerun their summaries.")
    for task, fingerprint in base["items"].items():
        if summary["items"].get(task) != fingerprint:
            raise DataError(
                f"{name} and {baseline} were evaluated on different {task} items (eval.max_items_per_task "
                "changed between runs?); rerun their evaluations with one setting."
            )


def write_csv(rows: list[dict[str, Any]], path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns())
        writer.writeheader()
        writer.writerows(rows)


def cell(row: dict[str, Any], task: str) -> str:
    text = f"{row[f'{task}_mean']:.2f} ± {row[f'{task}_std']:.2f}"
    return text + ("*" if row[f"{task}_sig"] else "")


def markdown(rows: list[dict[str, Any]], title: str, baseline: str) -> str:
    header = ["Experiment", "seeds", "μΔREL", *TASK_LABELS.values()]
    lines = [
        f"# {title}",
        "",
        f"Mean-max over seeds ± std over seeds. * : the paired-bootstrap 95% interval of the difference "
        f"from {baseline} excludes 0. Perplexity: lower is better; every other task: higher is better.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * len(header)) + "|",
    ]
    for row in rows:
        gain = "-" if row["experiment"] == baseline else f"{row['muDeltaREL']:.2f}%"
        gain = "n/a" if np.isnan(row["muDeltaREL"]) else gain  # a baseline score of exactly 0
        values = [row["experiment"], str(row["seeds"]), gain, *(cell(row, task) for task in TASK_LABELS)]
        lines.append("| " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def write_markdown(rows: list[dict[str, Any]], path: str | os.PathLike, title: str, baseline: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(markdown(rows, title, baseline), encoding="utf-8")


def make_table(
    title: str,
    experiments: list[str],
    baseline: str,
    summary_dirs: dict[str, str],
    metrics: dict[str, dict[int, str]],
    outputs: dict[str, Any],
    confidence: float = 0.95,
) -> list[dict[str, Any]]:
    """Everything one table job writes: CSV, Markdown, the gains figure and the training curves."""
    loaded = {name: load_summary(summary_dirs[name]) for name in experiments}
    rows = table_rows(
        experiments,
        {name: summary for name, (summary, _) in loaded.items()},
        {name: replicates for name, (_, replicates) in loaded.items()},
        baseline,
        confidence,
    )
    plot_gains(rows, TASK_LABELS, baseline, outputs["gains"])
    curves = {
        name: {seed: read_history(path) for seed, path in metrics[name].items()} for name in experiments
    }
    plot_curves(curves, outputs["curves"])
    write_markdown(rows, outputs["markdown"], title, baseline)
    write_csv(rows, outputs["csv"])
    return rows


def read_table(path: str | os.PathLike) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
